"""The transcription service: decode on the decode pool, model on the model executor."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from waiting import DEADLINE_S, until
from whisperd.audio.decode import AudioSource
from whisperd.config import Settings
from whisperd.engine.base import Segment, Transcript
from whisperd.engine.options import TranscribeOptions
from whisperd.errors import (
    AudioTooShortError,
    CorruptAudioError,
    EmptyAudioError,
    UnknownModelError,
)
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.testing import ScriptedModel

DATA = Path(__file__).parent / "data"


@pytest.fixture
def service(scripted_model: ScriptedModel):
    settings = Settings(
        model=str(scripted_model.path), device="cpu", compute_type="int8", offline=True
    )
    service = TranscriptionService.create(settings)
    yield service
    service.close()


def test_bytes_and_path_inputs_give_the_same_transcript(
    service: TranscriptionService, scripted_model: ScriptedModel
) -> None:
    options = TranscribeOptions(beam_size=1)
    from_path = asyncio.run(
        service.transcribe(TranscriptionRequest(AudioSource(DATA / "speech.mp3"), options))
    )
    data = (DATA / "speech.mp3").read_bytes()
    from_bytes = asyncio.run(service.transcribe(TranscriptionRequest(AudioSource(data), options)))
    assert from_path == from_bytes
    assert from_path.text == scripted_model.text.strip()
    assert from_path.duration == pytest.approx(4.9, abs=0.1)


def test_vad_leaves_no_text_for_quiet_noise(service: TranscriptionService) -> None:
    transcript = asyncio.run(
        service.transcribe(
            TranscriptionRequest(AudioSource(DATA / "silence.wav"), TranscribeOptions())
        )
    )
    assert transcript.segments == ()
    assert transcript.text == ""


def test_vad_keeps_the_speech(service: TranscriptionService) -> None:
    transcript = asyncio.run(
        service.transcribe(
            TranscriptionRequest(AudioSource(DATA / "speech.wav"), TranscribeOptions())
        )
    )
    (segment,) = transcript.segments
    assert 0.3 < segment.start < 1.5  # the clip starts with about a second of quiet


def test_bad_audio_raises_its_own_error(service: TranscriptionService) -> None:
    with pytest.raises(CorruptAudioError):
        asyncio.run(
            service.transcribe(
                TranscriptionRequest(AudioSource(DATA / "corrupt.mp3"), TranscribeOptions())
            )
        )


@pytest.mark.parametrize("vad_filter", [True, False])
def test_digital_silence_is_empty_text_with_its_duration(
    service: TranscriptionService, vad_filter: bool
) -> None:
    # The scripted model would "hear" its script in anything: silence never reaches it.
    request = TranscriptionRequest(
        AudioSource(DATA / "digital_silence.wav"),
        TranscribeOptions(vad_filter=vad_filter, task="translate"),
    )
    transcript = asyncio.run(service.transcribe(request))
    assert transcript.segments == ()
    assert transcript.text == ""
    assert transcript.duration == pytest.approx(2.0)
    assert transcript.duration_after_vad == (0.0 if vad_filter else pytest.approx(2.0))
    assert transcript.task == "translate"
    assert transcript.language == "en"
    assert transcript.model == str(service.settings.model)


def test_digital_silence_streams_only_its_transcript(service: TranscriptionService) -> None:
    async def events() -> list[object]:
        request = TranscriptionRequest(
            AudioSource(DATA / "digital_silence.wav"), TranscribeOptions(language="de")
        )
        transcription = await service.open(request)
        return [event async for event in transcription.events()]

    (transcript,) = asyncio.run(events())
    assert isinstance(transcript, Transcript)
    assert transcript.language == "de"
    assert transcript.language_probability == 1.0
    assert service.admission.in_flight == 0


def test_audio_under_a_tenth_of_a_second_is_too_short(service: TranscriptionService) -> None:
    clip = (np.sin(np.arange(800) / 3) * 0.5).astype(np.float32)  # 50 ms
    request = TranscriptionRequest(AudioSource(clip.tobytes(), format="pcm"), TranscribeOptions())
    with pytest.raises(AudioTooShortError, match=r"Minimum audio length is 0\.1 seconds"):
        asyncio.run(service.transcribe(request))


def test_empty_upload(service: TranscriptionService) -> None:
    with pytest.raises(EmptyAudioError):
        asyncio.run(service.transcribe(TranscriptionRequest(AudioSource(b""), TranscribeOptions())))


def test_model_is_loaded_once_and_reused(service: TranscriptionService) -> None:
    async def twice() -> None:
        first = await service.model()
        second = await service.model()
        assert first is second

    asyncio.run(twice())
    assert len(service.models.loaded()) == 1


def test_unknown_model_is_refused(service: TranscriptionService) -> None:
    with pytest.raises(UnknownModelError):
        asyncio.run(
            service.transcribe(
                TranscriptionRequest(
                    AudioSource(DATA / "speech.wav"), TranscribeOptions(), model="no-such-model"
                )
            )
        )


def test_work_runs_off_the_event_loop(service: TranscriptionService) -> None:
    threads: list[str] = []
    loop_turned = threading.Event()
    seen: list[bool] = []

    def record(segment: Segment) -> None:
        threads.append(threading.current_thread().name)
        # The model waits for the event loop to act: were the work on the loop, it never could.
        seen.append(loop_turned.wait(DEADLINE_S))

    async def scenario() -> None:
        work = asyncio.create_task(
            service.transcribe(
                TranscriptionRequest(
                    AudioSource(DATA / "speech.wav"), TranscribeOptions(vad_filter=False)
                ),
                on_segment=record,
            )
        )
        await until(lambda: threads, "the model never decoded a segment")
        loop_turned.set()
        await asyncio.wait_for(work, DEADLINE_S)

    asyncio.run(scenario())
    assert threads
    assert all(name.startswith("whisperd-request") for name in threads), threads
    assert seen[0] is True  # the loop kept turning while the model ran
