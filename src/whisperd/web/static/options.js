// The options a file is sent with, and the subtitle shaping of the downloads, read from the
// page's controls and checked as the server checks them, so that a mistake is explained before
// anything is sent or saved.

import { SHAPING_FIELDS, styleProblem } from "./subtitles.js";

const $ = (id) => document.getElementById(id);

/** The speaker count fields (the server's names) and the ids of their inputs. */
const SPEAKER_INPUTS = { num_speakers: "num-speakers", min_speakers: "min-speakers", max_speakers: "max-speakers" };

/** The subtitle shaping fields (the server's names) and the ids of their inputs. */
const SUBTITLE_INPUTS = {
  max_line_width: "max-line-width",
  max_line_count: "max-line-count",
  max_words_per_line: "max-words-per-line",
  max_cue_duration: "max-cue-duration",
};

function labelOf(input) {
  return input.labels?.[0]?.textContent.trim() || input.id;
}

/** The number in `input` (null when blank); throws an Error in words when it is not usable. */
function numberIn(input, { integer, min, max, above = false }) {
  const raw = input.value.trim();
  if (!raw && input.validity.valid) return null;
  const value = Number(raw);
  const low = above ? value <= min : value < min;
  if (!raw || !Number.isFinite(value) || low || value > max || (integer && !Number.isInteger(value))) {
    const kind = integer ? "a whole number" : "a number";
    const range = above ? `above ${min}` : `from ${min}`;
    input.closest("details")?.setAttribute("open", "");
    input.focus();
    throw new Error(`${labelOf(input)} must be ${kind} ${range} to ${max}, or blank.`);
  }
  return value;
}

/** The speaker counts asked for: {num_speakers, min_speakers, max_speakers}, blank as null. */
function speakerCounts() {
  const counts = {};
  for (const [name, id] of Object.entries(SPEAKER_INPUTS)) {
    counts[name] = numberIn($(id), { integer: true, min: 1, max: Number($(id).max) });
  }
  const { min_speakers: least, max_speakers: most } = counts;
  if (least !== null && most !== null && least > most) {
    $("min-speakers").focus();
    throw new Error("The fewest speakers cannot be more than the most speakers.");
  }
  return counts;
}

/** The subtitle shaping asked for: the server's fields, blank as null. Throws an Error in
 * words when a field cannot be used. */
export function subtitleStyle() {
  const style = { highlight_words: $("highlight-words").checked };
  for (const [name, id] of Object.entries(SUBTITLE_INPUTS)) {
    const bounds = SHAPING_FIELDS[name];
    style[name] = numberIn($(id), { ...bounds, above: !bounds.integer });
  }
  const problem = styleProblem(style);
  if (problem) {
    $("subtitle-options").open = true;
    $("max-line-count").focus();
    throw new Error(problem);
  }
  return style;
}

/**
 * The options of the files form: {model, language, task, words, diarize, prompt, speakers}.
 * Throws an Error in words when a field cannot be used.
 */
export function readOptions() {
  const diarize = $("diarize").checked;
  return {
    model: $("model").value,
    language: $("language").value,
    task: $("task").value,
    words: $("words").checked,
    diarize,
    prompt: $("prompt").value.trim(),
    speakers: diarize ? speakerCounts() : {},
  };
}

/** Show the speaker counts only while "Label speakers" is on. */
export function wireOptions() {
  const toggle = () => {
    $("speaker-counts").hidden = !$("diarize").checked;
  };
  $("diarize").addEventListener("change", toggle);
  toggle();
}
