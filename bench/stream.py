"""Real-time streams: K concurrent WebSocket streams paced in real time through ``/v1/stream``.

Each stream plays the committed speech clip three times (about 15 s: three utterances with
pauses) at real-time pace in 32 ms frames, with partials every 0.5 s. Reported per K: time to
the first partial after speech starts, final latency after the end of speech,
the mean interval between partials, the partial revision rate (partials whose text does not
extend the previous one), and whether the streams kept real time (every final within 2 s).
Final latency runs from the end of speech as the VAD places it (the start of the silence that
closes the utterance), so it includes the 300 ms of silence needed to decide the end.
The baseline in the same run is one stream alone.

The model is the scripted random-weight one (fixed work per decode, so the engine's shapes can
be timed where no real checkpoint of that shape is at hand: the torch engine's turbo shape on a
GPU). Its words mean nothing, so it says nothing of accuracy: streams on the real tiny.en, with
their WER next to every latency, are ``bench/stream_accuracy.py``.

    python bench/stream.py [--shape tiny] [--streams 1 2 4 8 16] [--write docs/benchmarks.md]
    python bench/stream.py --engine torch --device cuda --shape turbo --streams 1 8 32 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import websockets

from common import (
    ROOT,
    free_port,
    machine,
    model_dir,
    percentile,
    server,
    whisperd_command,
    write_section,
)
from whisperd.audio.decode import AudioSource, decode_audio

FRAME = 512
METADATA = {
    "whisper_params": {"audio_language": "en"},
    "streaming_params": {
        "encoding": "pcm_s16le",
        "sample_rate": 16000,
        "enable_partial_transcripts": True,
        "partial_transcript_interval_s": 0.5,
    },
    "streaming_vad_config": {"threshold": 0.5, "min_silence_duration_ms": 300, "speech_pad_ms": 30},
}


@dataclass
class StreamStats:
    """What one stream saw."""

    first_partial: list[float] = field(default_factory=list)
    final_latency: list[float] = field(default_factory=list)
    partial_gaps: list[float] = field(default_factory=list)
    revisions: int = 0
    partials: int = 0


def audio() -> bytes:
    """The speech clip three times, as 16-bit PCM."""
    clip = decode_audio(AudioSource(ROOT / "tests" / "data" / "speech.wav")).samples
    return (np.tile(clip, 3) * 32767).astype(np.int16).tobytes()


async def one_stream(url: str, pcm: bytes) -> StreamStats:
    """Play ``pcm`` in real time and record the timings of what comes back."""
    stats = StreamStats()
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps(METADATA))
        start = time.perf_counter()

        async def send() -> None:
            for index, offset in enumerate(range(0, len(pcm), FRAME * 2)):
                await asyncio.sleep(max(0.0, start + index * FRAME / 16000 - time.perf_counter()))
                await ws.send(pcm[offset : offset + FRAME * 2])
            await ws.send(json.dumps({"type": "end_audio"}))

        sender = asyncio.create_task(send())
        speech_at: float | None = None
        stopped_at: float | None = None
        last_partial: float | None = None
        shown = ""
        while True:
            message = json.loads(await ws.recv())
            now = time.perf_counter()
            kind = message.get("type")
            if kind == "speech_started":
                speech_at, last_partial, shown = start + message["audio_time"], None, ""
            elif kind == "speech_stopped":
                stopped_at = start + message["audio_time"]
            elif kind == "transcription" and not message["is_final"]:
                text = f"{message['stable_text']} {message['unstable_text']}".strip()
                stats.partials += 1
                stats.revisions += not text.startswith(shown)
                shown = text
                if last_partial is None and speech_at is not None:
                    stats.first_partial.append(now - speech_at)
                elif last_partial is not None:
                    stats.partial_gaps.append(now - last_partial)
                last_partial = now
            elif kind == "transcription" and stopped_at is not None:
                stats.final_latency.append(now - stopped_at)
                stopped_at = None
            elif kind == "end_audio" and message["body"]["status"] == "finished":
                break
        await sender
    return stats


async def run_level(url: str, pcm: bytes, streams: int) -> list[StreamStats]:
    """``streams`` concurrent streams, started together."""
    return list(await asyncio.gather(*(one_stream(url, pcm) for _ in range(streams))))


def row(streams: int, results: list[StreamStats]) -> tuple[str, float]:
    """A table row and the level's final-latency p95."""
    first = [v for r in results for v in r.first_partial]
    final = [v for r in results for v in r.final_latency]
    gaps = [v for r in results for v in r.partial_gaps]
    partials = sum(r.partials for r in results)
    revisions = sum(r.revisions for r in results) / partials if partials else 0.0
    p95 = percentile(final, 95)
    kept = "yes" if final and max(final) < 2.0 else "no"
    return (
        f"| {streams} | {percentile(first, 50):.2f} | {percentile(final, 50):.2f} / "
        f"{p95:.2f} | {np.mean(gaps) if gaps else float('nan'):.2f} | {revisions:.0%} | "
        f"{kept} |",
        p95,
    )


def run_config(
    model: Path, pcm: bytes, levels: list[int], context: str, args: argparse.Namespace
) -> str:
    """Every stream count against one server whose finals use ``context``."""
    rows, baseline, sustained = [], None, 0
    port = free_port()
    env = {"WHISPERD_STREAM_FINAL_ENCODER_CONTEXT": context, "WHISPERD_ENGINE": args.engine}
    command = whisperd_command(model, port, args.device, _compute_type(args))
    with server(command, port, env):
        url = f"ws://127.0.0.1:{port}/v1/stream"
        asyncio.run(run_level(url, pcm, 1))  # warm up: load the model
        for streams in levels:
            line, p95 = row(streams, asyncio.run(run_level(url, pcm, streams)))
            rows.append(line)
            baseline = baseline if baseline is not None else p95
            if p95 < 1.0:
                sustained = streams
    return "\n".join(
        [
            "",
            f"Finals encoded with `WHISPERD_STREAM_FINAL_ENCODER_CONTEXT={context}` (partials "
            "always encode only the utterance):",
            "",
            "| streams | first partial p50 s | final latency p50 / p95 s | partial interval s | "
            "partial revisions | every final < 2 s |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"Largest number of streams with final-latency p95 under 1 s: {sustained}; "
            f"ratio of final-latency p95 at the largest count to one stream alone (baseline, same "
            f"run, {baseline:.2f} s): {float(rows and p95) / baseline:.1f}x.",
        ]
    )


def _compute_type(args: argparse.Namespace) -> str:
    """int8 for CTranslate2 on the CPU; the torch engine's own choice (fp32 CPU, fp16 CUDA)."""
    return "int8" if args.engine == "ctranslate2" and args.device == "cpu" else "auto"


def main() -> None:
    """Run every level, print the table, optionally write it to a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", default="tiny", choices=["tiny", "base", "turbo"])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--engine", default="ctranslate2", choices=["ctranslate2", "torch"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    pcm = audio()
    sections = []
    model_format = "huggingface" if args.engine == "torch" else "ctranslate2"
    with tempfile.TemporaryDirectory() as cache:
        # Utterances are ~4 s of speech: ~12 tokens per decode, as real speech would give.
        model = model_dir(args.shape, Path(cache), words=12, model_format=model_format)
        for context in ("window", "audio"):
            sections.append(run_config(model, pcm, args.streams, context, args))
    runtime = f"{args.engine} engine, {args.device} {_compute_type(args)}"
    lines = [
        f"Scripted random-weight model, {args.shape} shape, {runtime}, 12 tokens per decode "
        "(~3 per second of a 4 s utterance); ~15 s per stream (three utterances), partials "
        "every 0.5 s, VAD end after 300 ms of silence. "
        f"Machine: {machine()}.",
        "",
        *sections,
    ]
    default = args.engine == "ctranslate2" and args.device == "cpu"
    title = f"Real-time streams ({args.shape} shape, CPU)"
    flags = f"--shape {args.shape}"
    if not default:
        title = f"Real-time streams ({args.shape} shape, {args.engine} engine, {args.device})"
        flags += f" --engine {args.engine} --device {args.device}"
    write_section(args.write, title, f"`python bench/stream.py {flags}`\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
