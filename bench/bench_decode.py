"""Decode speed: whisperd's hardened decoder against faster-whisper's ``decode_audio``.

Both decode the same 10-minute 44.1 kHz stereo MP3 (music-like chords, made here with PyAV) to
16 kHz mono float32. whisperd decodes packet by packet with caps and an allowlist; the figure
that matters is the ratio, measured in the same run on the same machine.

    python bench/bench_decode.py [--minutes 10] [--repeats 5] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from faster_whisper import decode_audio as fw_decode

from whisperd.audio.decode import AudioSource, decode_audio

RATE = 44_100


def make_mp3(minutes: float) -> bytes:
    """Encode ``minutes`` of stereo chords as a 128 kbit/s MP3."""
    t = np.arange(int(minutes * 60 * RATE)) / RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 4
    stereo = np.stack([chord, np.roll(chord, 100)]).astype(np.float32)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as container:
        stream = container.add_stream("mp3", rate=RATE, layout="stereo")
        stream.bit_rate = 128_000
        for start in range(0, stereo.shape[1], 1152 * 64):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(stereo[:, start : start + 1152 * 64]).reshape(1, -1),
                format="flt",
                layout="stereo",
            )
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def best_of(repeats: int, fn: Callable[[], object]) -> list[float]:
    """Wall times of ``repeats`` runs of ``fn``."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    """Run the benchmark, print a table, optionally append it to a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()

    data = make_mp3(args.minutes)
    ours_samples = decode_audio(AudioSource(data)).samples
    theirs_samples = fw_decode(io.BytesIO(data))
    ours = best_of(args.repeats, lambda: decode_audio(AudioSource(data)))
    theirs = best_of(args.repeats, lambda: fw_decode(io.BytesIO(data)))
    audio_s = args.minutes * 60
    rows = [
        ("faster-whisper decode_audio (baseline)", statistics.median(theirs), len(theirs_samples)),
        ("whisperd decode_audio", statistics.median(ours), len(ours_samples)),
    ]
    lines = [
        f"### Decode: {args.minutes:g} min 44.1 kHz stereo MP3 -> 16 kHz mono float32",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {platform.system()}, "
        f"Python {platform.python_version()}, av {av.__version__}; median of {args.repeats}.",
        "",
        "| decoder | median s | audio s per s | samples | ratio to baseline |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, seconds, samples in rows:
        lines.append(
            f"| {name} | {seconds:.3f} | {audio_s / seconds:.0f} | {samples} | "
            f"{rows[0][1] / seconds:.2f}x |"
        )
    table = "\n".join(lines)
    print(table)
    if args.write is not None:
        with args.write.open("a", encoding="utf-8") as out:
            out.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
