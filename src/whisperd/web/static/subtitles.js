// Subtitle shaping, as the server does it: cues re-cut from a verbose_json transcript's words
// by line width, lines per cue, words per line and cue duration, optionally one cue per word
// with that word underlined (karaoke). A line-for-line port of the server's shape_cues (its
// module documents the rules); the page's tests check its SubRip against the server's for the
// same file. The jobs API renders srt and vtt unshaped only, so the page shapes them here.

const LONG_PAUSE_S = 3.0; // a longer pause starts a new cue when cues flow across segments
const ARROW_RUN = /-{2,}>/g;

/** The server's form fields of subtitle shaping, with their bounds. */
export const SHAPING_FIELDS = {
  max_line_width: { integer: true, min: 1, max: 10000 },
  max_line_count: { integer: true, min: 1, max: 1000 },
  max_words_per_line: { integer: true, min: 1, max: 10000 },
  max_cue_duration: { integer: false, min: 0, max: 86400 },
};

/** Whether `style` ({max_line_width, ..., highlight_words}, absent as null) shapes at all. */
export function shapes(style) {
  if (!style) return false;
  return style.highlight_words === true || Object.keys(SHAPING_FIELDS).some((name) => style[name] != null);
}

/** Why `style` cannot be used (the server's rule), or "" when it can. */
export function styleProblem(style) {
  if (style.max_line_count != null && style.max_line_width == null && style.max_words_per_line == null) {
    return "Lines per subtitle needs characters per line or words per line: otherwise no line ever breaks.";
  }
  return "";
}

function linesPerCue(style) {
  if (style.max_line_count != null) return style.max_line_count;
  if (style.max_words_per_line != null && style.max_line_width == null) return 1;
  return null;
}

/** Characters as Python counts them (code points, not UTF-16 units). */
function length(text) {
  return [...text].length;
}

function clean(text) {
  return text.split(/\s+/).filter(Boolean).join(" ").replace(ARROW_RUN, "->");
}

/**
 * Each segment's words with the leading space Whisper gave them, which verbose_json strips:
 * found again in the segment's text. `[]` for a segment without timed words.
 */
export function segmentWords(transcript) {
  const segments = transcript.segments || [];
  const out = segments.map(() => []);
  let index = 0;
  let cursor = 0;
  for (const word of transcript.words || []) {
    const text = word.word || "";
    let found = -1;
    for (let i = index; i < segments.length && found < 0; i += 1) {
      const from = i === index ? cursor : 0;
      const at = segments[i].text.indexOf(text, from);
      if (at >= 0 && !segments[i].text.slice(from, at).trim()) {
        found = at;
        index = i;
      }
    }
    if (!segments.length) break;
    const segment = segments[index];
    const spaced = found < 0 || (found > 0 && /\s/.test(segment.text[found - 1]));
    const speaker = word.speaker || segment.speaker || null;
    out[index].push({ word: (spaced ? " " : "") + text, start: word.start, end: word.end, speaker });
    if (found >= 0) cursor = found + text.length;
  }
  return out;
}

/** A segment's words without timings, its time shared by their length in characters. */
function estimated(segment) {
  const words = segment.text.split(/\s+/).filter(Boolean);
  const total = words.reduce((sum, word) => sum + length(word), 0);
  const span = Math.max(segment.end - segment.start, 0);
  const timed = [];
  let start = segment.start;
  for (const word of words) {
    const end = start + (span * length(word)) / total;
    timed.push({ word: ` ${word}`, start, end, speaker: segment.speaker || null });
    start = end;
  }
  return timed;
}

function finite(value) {
  return Number.isFinite(value) ? value : 0;
}

/** Each segment's words, clamped to the audio and in time order. */
function safeWords(transcript) {
  const duration = transcript.duration;
  const limit = Number.isFinite(duration) ? Math.max(duration, 0) : Infinity;
  const timed = segmentWords(transcript);
  let previousEnd = 0;
  return (transcript.segments || []).map((segment, index) => {
    const raw = timed[index].length ? timed[index] : estimated(segment);
    const words = [];
    for (const word of raw) {
      const text = clean(word.word);
      if (!text) continue;
      const first = Math.min(Math.max(finite(word.start), previousEnd), limit);
      const last = Math.min(Math.max(finite(word.end), first), limit);
      words.push({ text, spaced: /^\s/.test(word.word), start: first, end: last, speaker: word.speaker });
      previousEnd = last;
    }
    return words;
  });
}

function lineText(line, highlight = null) {
  return line.map((word, index) => {
    const text = word === highlight ? `<u>${word.text}</u>` : word.text;
    return (word.spaced && index ? " " : "") + text;
  }).join("");
}

function cueText(lines, highlight, vtt) {
  const text = lines.map((line) => lineText(line, highlight)).join("\n");
  const speaker = lines[0][0].speaker;
  if (!speaker) return text;
  return vtt ? `<v ${speaker}>${text}` : `[${speaker}] ${text}`;
}

/** Lines and cues filled word by word. */
class Layout {
  constructor(style) {
    this.style = style;
    this.lines = linesPerCue(style);
    this.cues = []; // [cue: [line: [word]]]
  }

  add(word, newSegment, previousEnd) {
    const cue = this.cues[this.cues.length - 1];
    if (!cue || this.breaks(cue, word, newSegment, previousEnd)) {
      this.cues.push([[word]]);
      return;
    }
    const line = cue[cue.length - 1];
    if (this.fits(line, word)) line.push(word);
    else if (this.lines === null || cue.length < this.lines) cue.push([word]);
    else this.cues.push([[word]]);
  }

  breaks(cue, word, newSegment, last) {
    const style = this.style;
    if (style.max_line_count == null && newSegment) return true;
    if (word.speaker !== cue[0][0].speaker) return true;
    if (style.max_line_count != null && word.start - last > LONG_PAUSE_S) return true;
    return style.max_cue_duration != null && word.end - cue[0][0].start > style.max_cue_duration;
  }

  fits(line, word) {
    const style = this.style;
    if (style.max_words_per_line != null && line.length >= style.max_words_per_line) return false;
    if (style.max_line_width == null) return true;
    return length(lineText([...line, word])) <= style.max_line_width;
  }
}

/** One laid-out cue as timed cues: itself, or one per word (and gap) when highlighting. */
function timed(cue, style, vtt) {
  const start = cue[0][0].start;
  let end = cue[cue.length - 1][cue[cue.length - 1].length - 1].end;
  if (style.max_cue_duration != null) end = Math.min(end, start + style.max_cue_duration);
  if (!style.highlight_words) return [{ start, end, text: cueText(cue, null, vtt) }];
  const out = [];
  let shown = start;
  for (const word of cue.flat()) {
    const wordStart = Math.min(word.start, end);
    const wordEnd = Math.min(word.end, end);
    if (wordStart > shown) out.push({ start: shown, end: wordStart, text: cueText(cue, null, vtt) });
    out.push({ start: wordStart, end: wordEnd, text: cueText(cue, word, vtt) });
    shown = wordEnd;
  }
  if (end > shown) out.push({ start: shown, end, text: cueText(cue, null, vtt) });
  return out;
}

/** The cues ({start, end, text}) of `transcript` (verbose_json with words) shaped by `style`. */
export function shapeCues(transcript, style, { vtt = false } = {}) {
  const layout = new Layout(style);
  let previousEnd = 0;
  for (const words of safeWords(transcript)) {
    words.forEach((word, index) => {
      layout.add(word, index === 0, previousEnd);
      previousEnd = word.end;
    });
  }
  return layout.cues.flatMap((cue) => timed(cue, style, vtt));
}
