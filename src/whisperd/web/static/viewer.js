// The transcript next to its player: click a word or a segment's time to play from there, the
// word being spoken highlighted, speakers coloured, low-confidence words marked, search.

import { shortClock } from "./formats.js";

/** Words under this probability are marked as low-confidence guesses. */
export const LOW_CONFIDENCE = 0.5;

/** Each segment of `transcript` with the words (verbose_json's top-level list) inside it. */
export function wordsBySegment(transcript) {
  const segments = (transcript.segments || []).map((segment) => ({ ...segment, words: [] }));
  const words = [...(transcript.words || [])].sort((a, b) => a.start - b.start);
  if (!segments.length && words.length) {
    segments.push({ start: words[0].start, end: words[words.length - 1].end, text: transcript.text, words: [] });
  }
  let index = 0;
  for (const word of words) {
    while (index < segments.length - 1 && word.start >= segments[index + 1].start - 0.01) index += 1;
    if (segments.length) segments[index].words.push(word);
  }
  return segments;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Where an audio or video player and a transcript view meet. */
export class Viewer {
  /**
   * @param {HTMLElement} playerBox where the player goes
   * @param {HTMLElement} transcriptBox where the transcript goes
   */
  constructor(playerBox, transcriptBox) {
    this.playerBox = playerBox;
    this.box = transcriptBox;
    this.player = null;
    this.words = []; // [{start, end, node}] in time order
    this.segments = []; // [{start, end, node}]
    this.current = null;
    this.currentSegment = null;
    this.matches = [];
    this.matchIndex = -1;
    this.frame = 0;
    this.box.addEventListener("click", (event) => this.onClick(event));
  }

  /** Show `transcript`; play `media` (a Blob or File, or null when the audio is gone). */
  show(transcript, media) {
    this.stop();
    this.playerBox.replaceChildren();
    this.player = null;
    if (media) {
      const video = (media.type || "").startsWith("video/");
      this.player = element(video ? "video" : "audio");
      this.player.controls = true;
      this.player.preload = "metadata";
      this.player.src = URL.createObjectURL(media);
      this.player.setAttribute("aria-label", video ? "Video player" : "Audio player");
      if (video) this.player.playsInline = true;
      for (const name of ["timeupdate", "seeked"]) this.player.addEventListener(name, () => this.sync());
      this.player.addEventListener("play", () => this.loop());
      this.playerBox.append(this.player);
    } else {
      this.playerBox.append(element("p", "hint", "The audio is not kept in this browser: the transcript alone is shown."));
    }
    this.render(transcript);
  }

  render(transcript) {
    this.words = [];
    this.segments = [];
    const speakers = [];
    const fragment = document.createDocumentFragment();
    for (const segment of wordsBySegment(transcript)) {
      const node = element("div", "seg");
      node.dataset.start = segment.start;
      if (segment.speaker) {
        if (!speakers.includes(segment.speaker)) speakers.push(segment.speaker);
        node.classList.add(`s${speakers.indexOf(segment.speaker) % 8}`);
        node.dataset.speaker = segment.speaker;
      }
      const time = element("button", "time", shortClock(segment.start));
      time.type = "button";
      time.dataset.start = segment.start;
      time.setAttribute("aria-label", `Play from ${shortClock(segment.start)}`);
      const text = element("p", "text");
      if (segment.speaker) text.append(element("span", "spk", segment.speaker), " ");
      if (segment.words.length) {
        segment.words.forEach((word, index) => {
          const span = element("span", "w", word.word.trim());
          span.dataset.start = word.start;
          if (typeof word.probability === "number" && word.probability < LOW_CONFIDENCE) {
            span.classList.add("low");
            span.title = `Low confidence: ${Math.round(word.probability * 100)}%`;
          }
          text.append(span);
          if (index < segment.words.length - 1) text.append(" ");
          this.words.push({ start: word.start, end: word.end, node: span, text: word.word.trim() });
        });
      } else {
        text.append(segment.text.trim());
      }
      node.append(time, text);
      fragment.append(node);
      this.segments.push({ start: segment.start, end: segment.end, node, text: segment.text });
    }
    if (!this.segments.length) fragment.append(element("p", "hint", "No speech was heard in this file."));
    this.box.replaceChildren(fragment);
    this.current = null;
    this.currentSegment = null;
  }

  onClick(event) {
    const target = event.target.closest("[data-start]");
    if (!target || !this.box.contains(target) || target.classList.contains("seg")) return;
    this.seek(Number(target.dataset.start));
  }

  /** Play position to `seconds` (the player keeps playing or stays paused). */
  seek(seconds) {
    if (!this.player) return;
    this.player.currentTime = seconds;
    this.sync();
  }

  loop() {
    cancelAnimationFrame(this.frame);
    const step = () => {
      this.sync();
      if (this.player && !this.player.paused && !this.player.ended) this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  stop() {
    cancelAnimationFrame(this.frame);
    if (this.player && this.player.src) URL.revokeObjectURL(this.player.src);
  }

  /** Mark the word and segment at the player's position. */
  sync() {
    if (!this.player) return;
    const t = this.player.currentTime;
    const word = latest(this.words, t);
    const now = word && t <= word.end + 0.25 ? word.node : null;
    if (now !== this.current) {
      this.current?.classList.remove("current");
      now?.classList.add("current");
      this.current = now;
      if (now && !this.player.paused) now.scrollIntoView({ block: "nearest" });
    }
    const segment = latest(this.segments, t);
    const seg = segment && t <= segment.end + 0.25 ? segment.node : null;
    if (seg !== this.currentSegment) {
      this.currentSegment?.classList.remove("current-seg");
      seg?.classList.add("current-seg");
      this.currentSegment = seg;
    }
  }

  /** Mark what matches `query`; returns how many matches there are. */
  search(query) {
    for (const node of this.matches) node.classList.remove("match");
    this.matches = [];
    this.matchIndex = -1;
    const wanted = query.trim().toLowerCase();
    if (!wanted) return 0;
    if (!wanted.includes(" ") && this.words.length) {
      this.matches = this.words.filter((w) => w.text.toLowerCase().includes(wanted)).map((w) => w.node);
    } else {
      this.matches = this.segments.filter((s) => s.text.toLowerCase().includes(wanted)).map((s) => s.node);
    }
    for (const node of this.matches) node.classList.add("match");
    return this.matches.length;
  }

  /** Go to the next match: scroll to it and play from it. */
  nextMatch() {
    if (!this.matches.length) return;
    this.matchIndex = (this.matchIndex + 1) % this.matches.length;
    const node = this.matches[this.matchIndex];
    node.scrollIntoView({ block: "center" });
    this.seek(Number(node.dataset.start));
  }
}

/** The last item of `items` (sorted by start) that starts at or before `t`. */
function latest(items, t) {
  let low = 0;
  let high = items.length - 1;
  let found = null;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (items[middle].start <= t + 0.001) {
      found = items[middle];
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}
