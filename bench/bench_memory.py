"""Peak memory of decoding, per hour of audio: small files that expand to hours of samples.

Each input is a small file declaring hours of audio (FLAC of digital silence, Ogg/Opus of a
tone, both made here with PyAV). Each decoder runs in a fresh process: it decodes a one-second
clip of the same kind first (codecs and libraries loaded), resets the process's peak resident
memory (``/proc/self/clear_refs``, Linux), decodes the file and reports how far the peak rose
above where it started. The baseline, measured in the same run, is the size of the decoded
samples themselves (float32, 16 kHz mono: 230 MB per hour); faster-whisper's ``decode_audio``
(which gathers every chunk and joins them, as whisperd did before) is measured too.

    python bench/bench_memory.py [--hours 1] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

RATE = 16_000
_CHILD = r"""
import json, sys
from pathlib import Path
import numpy as np

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)

decoder, warm, path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
if decoder == "whisperd":
    from whisperd.audio.decode import AudioSource, DecodeLimits, decode_audio
    limits = DecodeLimits(max_duration_s=24 * 3600.0)
    run = lambda p: decode_audio(AudioSource(p), limits).samples
else:
    from faster_whisper import decode_audio as fw
    run = lambda p: fw(str(p))
run(warm)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
start = status("VmRSS")
samples = run(path)
size = int(np.asarray(samples).nbytes)
print(json.dumps({"start": start, "peak": status("VmHWM"), "samples": size}))
"""


def encode(samples: np.ndarray, rate: int, fmt: str, codec: str) -> bytes:
    """Encode mono float32 ``samples`` with PyAV in blocks (never all at once)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        step = rate * 10
        for start in range(0, len(samples), step):
            block = np.ascontiguousarray(samples[start : start + step]).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
            frame.sample_rate = rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def silence(seconds: float, rate: int) -> np.ndarray:
    """Digital zeros after a short tone (so the audio is not silent)."""
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * np.arange(rate) / rate)
    return np.concatenate([tone, np.zeros(int(seconds * rate) - rate)]).astype(np.float32)


def tone(seconds: float, rate: int) -> np.ndarray:
    """A 440 Hz tone."""
    return (0.3 * np.sin(2 * np.pi * 440.0 * np.arange(int(seconds * rate)) / rate)).astype(
        np.float32
    )


CASES = {
    "FLAC, 16 kHz, digital silence": (silence, RATE, "flac", "flac"),
    "Ogg/Opus, 48 kHz, tone": (tone, 48_000, "ogg", "libopus"),
}


def measure(decoder: str, warm: Path, path: Path) -> dict[str, int]:
    """Run ``decoder`` on ``path`` in a fresh process and return its memory figures."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, decoder, str(warm), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Measure every case and print (or write) a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--write", type=Path, help="append the results to this Markdown file")
    args = parser.parse_args()
    seconds = args.hours * 3600
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (signal, rate, fmt, codec) in CASES.items():
            warm, path = Path(folder, f"warm.{fmt}"), Path(folder, f"long.{fmt}")
            warm.write_bytes(encode(signal(1.0, rate), rate, fmt, codec))
            path.write_bytes(encode(signal(seconds, rate), rate, fmt, codec))
            size_mb = path.stat().st_size / 1e6
            for decoder in ("whisperd", "faster-whisper"):
                got = measure(decoder, warm, path)
                rise = (got["peak"] - got["start"]) / 1e6
                samples = got["samples"] / 1e6
                rows.append(
                    f"| {name} ({size_mb:.1f} MB) | {decoder} | {samples:.0f} | {rise:.0f} "
                    f"| {rise / args.hours:.0f} | {rise / samples:.2f}x |"
                )
    table = "\n".join(
        [
            f"Machine: {platform.machine()}, {platform.system()}, Python "
            f"{platform.python_version()}, av {av.__version__}; {args.hours:g} h of audio.",
            "",
            "| input | decoder | samples MB (baseline) | peak rise MB | MB per audio hour "
            "| ratio to baseline |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    print(table)
    if args.write:
        with args.write.open("a") as out:
            out.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
