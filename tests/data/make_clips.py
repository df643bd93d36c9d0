"""Regenerate the committed audio test clips, and build bigger inputs for tests on the fly.

Run ``python tests/data/make_clips.py [OUTDIR]`` (default: this folder). Output is deterministic
for a given espeak-ng and PyAV/FFmpeg build: every random signal uses a fixed seed and every
encoder is fed the same samples.

Clips written:

* ``speech.wav`` / ``speech.mp3``: espeak-ng saying two short sentences, 16 kHz mono, with about
  one second of very quiet noise before and after.
* ``speech_webm_named.wav``: the same speech as WebM/Opus, deliberately misnamed ``.wav``.
* ``silence.wav``: five seconds of white noise at about -60 dBFS (quiet, but not digital zeros).
* ``digital_silence.wav``: two seconds of exact zeros.
* ``tone.ogg``: a few seconds of a music-like chord progression, Ogg/Opus.
* ``corrupt.mp3``: ``speech.mp3`` with a large middle part overwritten by random bytes.
* ``truncated.wav``: ``speech.wav`` cut in half; its header still declares the full length.
* ``not_audio.txt``: plain text.

The helpers (``encode``, ``sine``, ``flac_bomb`` ...) are imported by the tests.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import soxr

Samples = npt.NDArray[np.float32]

RATE = 16_000
SPEECH_TEXT = "Hello, this is a test of the speech server."
HERE = Path(__file__).resolve().parent


def db_to_amplitude(dbfs: float) -> float:
    """Convert a level in dBFS to a linear amplitude (full scale = 1.0)."""
    return float(10.0 ** (dbfs / 20.0))


def noise(seconds: float, dbfs: float, rate: int = RATE, seed: int = 0) -> Samples:
    """White noise with an RMS level of ``dbfs``, from a seeded generator."""
    rng = np.random.default_rng(seed)
    count = round(seconds * rate)
    return (rng.standard_normal(count) * db_to_amplitude(dbfs)).astype(np.float32)


def sine(freq: float, seconds: float, rate: int = RATE, amplitude: float = 0.5) -> Samples:
    """A pure sine of ``freq`` Hz."""
    t = np.arange(round(seconds * rate), dtype=np.float64) / rate
    return (amplitude * np.sin(2.0 * np.pi * freq * t)).astype(np.float32)


def music(seconds: float = 4.0, rate: int = RATE) -> Samples:
    """A music-like signal: a I-V-vi-IV chord progression of decaying harmonic notes."""
    chords = ((261.63, 329.63, 392.0), (196.0, 246.94, 293.66), (220.0, 261.63, 329.63),
              (174.61, 220.0, 261.63))  # fmt: skip
    per_chord = seconds / len(chords)
    t = np.arange(round(per_chord * rate), dtype=np.float64) / rate
    envelope = np.exp(-2.5 * t) * np.minimum(1.0, t * 200.0)
    parts = []
    for chord in chords:
        tone = sum(np.sin(2 * np.pi * f * k * t) / k for f in chord for k in (1, 2, 3))
        parts.append(0.12 * envelope * tone)
    return np.concatenate(parts).astype(np.float32)


def espeak(text: str = SPEECH_TEXT) -> Samples:
    """Synthesise ``text`` with espeak-ng and return it as 16 kHz mono float32."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run([exe, "-v", "en-us", "-s", "160", "-w", str(wav), text], check=True)
        samples, rate = read(wav)
    return np.asarray(soxr.resample(samples, rate, RATE, quality="HQ"), dtype=np.float32)


def speech() -> Samples:
    """The espeak-ng sentence with about one second of -70 dBFS noise on each side."""
    voice = espeak()
    pad = noise(1.0, -70.0, seed=1)
    return np.concatenate([pad, voice, pad[::-1]]).astype(np.float32)


def read(path: Path | bytes) -> tuple[Samples, int]:
    """Decode a file with PyAV to mono float32 at its own rate (test helper, not hardened)."""
    src = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    with av.open(src, "r") as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = [
            out.to_ndarray().reshape(-1)
            for frame in container.decode(stream)
            for out in resampler.resample(frame)
        ]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32), rate


def encode(
    samples: Samples,
    rate: int,
    container_format: str,
    codec: str,
    *,
    layout: str = "mono",
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
) -> bytes:
    """Encode mono float32 ``samples`` at ``rate`` with PyAV and return the file's bytes.

    The samples are duplicated to every channel of ``layout``. ``options`` go to the encoder
    (for example ``{"strict": "experimental"}`` for FFmpeg's native Vorbis encoder).
    """
    channels = av.AudioLayout(layout).nb_channels
    interleaved = np.repeat(np.asarray(samples, dtype=np.float32), channels)
    buf = io.BytesIO()
    # bitexact: no random Ogg serials or Matroska UIDs, no encoder version strings.
    with av.open(
        buf, "w", format=container_format, container_options={"fflags": "+bitexact"}
    ) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout, options=options or {})
        assert isinstance(stream, av.AudioStream)
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        step = 4096
        for start in range(0, len(samples), step):
            block = interleaved[start * channels : (start + step) * channels]
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def to_wav(samples: Samples, rate: int = RATE) -> bytes:
    """16-bit PCM WAV bytes."""
    return encode(samples, rate, "wav", "pcm_s16le")


def corrupt(data: bytes, start: float = 0.3, end: float = 0.7, seed: int = 7) -> bytes:
    """Overwrite the ``[start, end)`` fraction of ``data`` with seeded random bytes."""
    rng = np.random.default_rng(seed)
    lo, hi = int(len(data) * start), int(len(data) * end)
    return data[:lo] + rng.integers(0, 256, hi - lo, dtype=np.uint8).tobytes() + data[hi:]


def truncate(data: bytes, keep: float = 0.5) -> bytes:
    """Keep only the first ``keep`` fraction of ``data`` (headers are left as they were)."""
    return data[: int(len(data) * keep)]


def flac_bomb(seconds: float, rate: int = 48_000) -> bytes:
    """FLAC of ``seconds`` of digital silence: a few hundred bytes per minute of audio."""
    return encode(np.zeros(round(seconds * rate), dtype=np.float32), rate, "flac", "flac")


def hls_playlist(url: str) -> bytes:
    """An HLS media playlist whose single segment is ``url``."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:10",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXTINF:10.0,", url, "#EXT-X-ENDLIST", ""]  # fmt: skip
    return "\n".join(lines).encode()


def ffconcat(url: str) -> bytes:
    """An ffconcat script that would pull ``url`` in."""
    return f"ffconcat version 1.0\nfile '{url}'\n".encode()


def make_all(outdir: Path) -> dict[str, int]:
    """Write every committed clip into ``outdir``; return their sizes in bytes."""
    outdir.mkdir(parents=True, exist_ok=True)
    voice = speech()
    speech_mp3 = encode(voice, RATE, "mp3", "libmp3lame", bit_rate=32_000)
    speech_wav = to_wav(voice)
    clips = {
        "speech.wav": speech_wav,
        "speech.mp3": speech_mp3,
        "speech_webm_named.wav": encode(voice, RATE, "webm", "libopus", bit_rate=24_000),
        "silence.wav": to_wav(noise(5.0, -60.0, seed=2)),
        "digital_silence.wav": to_wav(np.zeros(2 * RATE, dtype=np.float32)),
        "tone.ogg": encode(music(4.0, 48_000), 48_000, "ogg", "libopus", bit_rate=32_000),
        "corrupt.mp3": corrupt(speech_mp3, 0.25, 0.75),
        "truncated.wav": truncate(speech_wav, 0.5),
        "not_audio.txt": b"This is a plain text file, not audio.\n" * 20,
    }
    for name, data in clips.items():
        (outdir / name).write_bytes(data)
    return {name: len(data) for name, data in clips.items()}


def main(argv: list[str]) -> int:
    """Command-line entry point."""
    outdir = Path(argv[1]) if len(argv) > 1 else HERE
    for name, size in make_all(outdir).items():
        print(f"{size:>8}  {outdir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
