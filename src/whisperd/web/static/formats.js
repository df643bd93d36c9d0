// A transcript (verbose_json: segments with start/end/text/speaker, words) as the files people
// take away: text, SubRip, WebVTT, JSON and OpenAI's diarized_json, written as the server writes
// them. Speaker labels: "A: " lines in text, "[A] " in SubRip, WebVTT voice spans "<v A>".
// SubRip and WebVTT take an optional shaping style (subtitles.js).

import { shapeCues, shapes } from "./subtitles.js";

const ARROW_RUN = /-{2,}>/g;
const LINE_BREAK = /\r\n|[\n\v\f\r\x1c-\x1e\x85\u2028\u2029]/;

/** `x` rounded to a whole number, ties to the even one (as Python's round). */
function roundEven(x) {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest !== 0.5) return rest < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

function clock(seconds, separator) {
  const ms = roundEven(seconds * 1000);
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  const s = Math.floor((ms % 60000) / 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(h)}:${pad(m)}:${pad(s)}${separator}${pad(ms % 1000, 3)}`;
}

/** A cue's timing line; a start before zero is zero, an end before its start is the start. */
function timing(start, end, separator) {
  const from = Math.max(Number.isFinite(start) ? start : 0, 0);
  const to = Math.max(Number.isFinite(end) ? end : 0, from);
  return `${clock(from, separator)} --> ${clock(to, separator)}`;
}

/** Cue text safe in a subtitle: stripped lines, no blank one, no "-->". */
function cueBody(text) {
  return text.split(LINE_BREAK).map((line) => line.trim()).filter(Boolean).join("\n").replace(ARROW_RUN, "->");
}

/** `seconds` as a short clock for the page: "1:05", "1:02:03". */
export function shortClock(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function segmentsOf(transcript) {
  return (transcript.segments || []).filter((segment) => segment.text.trim());
}

/** Consecutive segments of one speaker, as `{speaker, text}` turns. */
function turns(segments) {
  const out = [];
  for (const segment of segments) {
    const last = out[out.length - 1];
    if (last && last.speaker === segment.speaker) last.text += ` ${segment.text.trim()}`;
    else out.push({ speaker: segment.speaker, text: segment.text.trim() });
  }
  return out;
}

export function toText(transcript) {
  const segments = segmentsOf(transcript);
  if (!segments.some((segment) => segment.speaker)) return `${(transcript.text || "").trim()}\n`;
  return turns(segments).map((turn) => `${turn.speaker}: ${turn.text}`).join("\n") + "\n";
}

/** The transcript's cues: one per spoken segment, or shaped by `style`. */
function cues(transcript, style, vtt) {
  if (shapes(style)) return shapeCues(transcript, style, { vtt });
  return segmentsOf(transcript).map((segment) => {
    let text = segment.text;
    if (segment.speaker) text = vtt ? `<v ${segment.speaker}>${text.trim()}` : `[${segment.speaker}] ${text.trim()}`;
    return { start: segment.start, end: segment.end, text };
  });
}

export function toSrt(transcript, style = null) {
  return cues(transcript, style, false)
    .map((cue, index) => `${index + 1}\n${timing(cue.start, cue.end, ",")}\n${cueBody(cue.text)}\n\n`)
    .join("");
}

export function toVtt(transcript, style = null) {
  const body = cues(transcript, style, true).map((cue) => `${timing(cue.start, cue.end, ".")}\n${cueBody(cue.text)}\n\n`);
  return `WEBVTT\n\n${body.join("")}`;
}

export function toJson(transcript) {
  return `${JSON.stringify(transcript, null, 2)}\n`;
}

/** OpenAI's `diarized_json` (segments `seg_001`... with their speaker). */
export function toDiarizedJson(transcript) {
  const segments = segmentsOf(transcript).map((segment, index) => ({
    type: "transcript.text.segment",
    id: `seg_${String(index + 1).padStart(3, "0")}`,
    start: segment.start,
    end: segment.end,
    text: segment.text.trim(),
    speaker: segment.speaker || "A",
  }));
  const text = turns(segments).map((turn) => `${turn.speaker}: ${turn.text}`).join("\n");
  const body = { task: transcript.task || "transcribe", duration: transcript.duration, text, segments };
  return `${JSON.stringify(body, null, 2)}\n`;
}

/** Every download: format name -> [file suffix, media type, render(transcript)]. */
export const FORMATS = {
  txt: ["txt", "text/plain", toText],
  srt: ["srt", "application/x-subrip", toSrt],
  vtt: ["vtt", "text/vtt", toVtt],
  json: ["json", "application/json", toJson],
  diarized_json: ["diarized.json", "application/json", toDiarizedJson],
};
