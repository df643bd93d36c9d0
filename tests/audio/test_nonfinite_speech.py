"""NaN and infinite samples in real speech, through the service on the real Whisper tiny.en.

Dropouts (1 % of the samples at most) are zeroed and the words still come out; more is refused
as corrupt audio. Every rendering of the transcript is strict JSON.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import pytest

from whisperd.audio.decode import AudioSource
from whisperd.audio.formats import render
from whisperd.engine.base import SAMPLE_RATE, Transcript
from whisperd.engine.options import TranscribeOptions
from whisperd.errors import CorruptAudioError
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.testing.speech import SENTENCES, conversation, espeak_available, word_error_rate

if TYPE_CHECKING:
    from whisperd.testing.speech import SpokenText

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def service(real_service: TranscriptionService) -> TranscriptionService:
    return real_service


@pytest.fixture(scope="module")
def spoken() -> SpokenText:
    return conversation(SENTENCES[:3])


def float_wav(samples: np.ndarray) -> bytes:
    """A 32-bit float WAV, non-finite samples and all."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            samples.astype(np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def with_dropouts(samples: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    count = max(1, int(share * samples.size))
    spoiled = samples.copy()
    where = rng.choice(samples.size, count, replace=False)
    spoiled[where] = rng.choice([np.nan, np.inf, -np.inf], count)
    return spoiled


def transcribe(service: TranscriptionService, data: bytes, **options: Any) -> Transcript:
    request = TranscriptionRequest(AudioSource(data), TranscribeOptions(temperature=0.0, **options))
    return asyncio.run(service.transcribe(request))


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a JSON body")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("vad_filter", [True, False], ids=["vad", "no-vad"])
def test_one_nan_sample_changes_no_word(
    service: TranscriptionService, spoken: SpokenText, vad_filter: bool
) -> None:
    clean = transcribe(service, float_wav(spoken.samples), vad_filter=vad_filter)
    spoiled = spoken.samples.copy()
    spoiled[spoiled.size // 2] = np.nan

    got = transcribe(service, float_wav(spoiled), vad_filter=vad_filter)

    assert got.text == clean.text
    assert word_error_rate(spoken.text, got.text) <= 0.08, got.text
    body = strict_json(render(got, "verbose_json", granularities=("segment", "word")))
    assert body["text"] == got.text


@pytest.mark.parametrize("vad_filter", [True, False], ids=["vad", "no-vad"])
def test_one_percent_of_dropouts_still_gives_the_words(
    service: TranscriptionService, spoken: SpokenText, vad_filter: bool
) -> None:
    got = transcribe(service, float_wav(with_dropouts(spoken.samples, 0.01)), vad_filter=vad_filter)

    assert word_error_rate(spoken.text, got.text) <= 0.25, got.text  # 0.07 and 0.15 measured
    strict_json(render(got, "verbose_json"))


def test_more_dropouts_than_tolerated_are_refused(
    service: TranscriptionService, spoken: SpokenText
) -> None:
    with pytest.raises(CorruptAudioError, match=r"\(2\.0%\) are NaN or infinite"):
        transcribe(service, float_wav(with_dropouts(spoken.samples, 0.02)))
