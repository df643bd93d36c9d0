"""The transcription service: decode on the decode pool, model on the model executor."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from whisperd.audio.decode import AudioSource
from whisperd.config import Settings
from whisperd.engine.base import Segment
from whisperd.engine.options import TranscribeOptions
from whisperd.errors import CorruptAudioError, EmptyAudioError, SilentAudioError, UnknownModelError
from whisperd.service import TranscriptionService
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
    from_path = asyncio.run(service.transcribe(AudioSource(DATA / "speech.mp3"), options))
    data = (DATA / "speech.mp3").read_bytes()
    from_bytes = asyncio.run(service.transcribe(AudioSource(data), options))
    assert from_path == from_bytes
    assert from_path.text == scripted_model.text.strip()
    assert from_path.duration == pytest.approx(4.9, abs=0.1)


def test_vad_leaves_no_text_for_quiet_noise(service: TranscriptionService) -> None:
    transcript = asyncio.run(
        service.transcribe(AudioSource(DATA / "silence.wav"), TranscribeOptions())
    )
    assert transcript.segments == ()
    assert transcript.text == ""


def test_vad_keeps_the_speech(service: TranscriptionService) -> None:
    transcript = asyncio.run(
        service.transcribe(AudioSource(DATA / "speech.wav"), TranscribeOptions())
    )
    (segment,) = transcript.segments
    assert 0.3 < segment.start < 1.5  # the clip starts with about a second of quiet


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("digital_silence.wav", SilentAudioError),
        ("corrupt.mp3", CorruptAudioError),
    ],
)
def test_bad_audio_raises_its_own_error(
    service: TranscriptionService, name: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        asyncio.run(service.transcribe(AudioSource(DATA / name), TranscribeOptions()))


def test_empty_upload(service: TranscriptionService) -> None:
    with pytest.raises(EmptyAudioError):
        asyncio.run(service.transcribe(AudioSource(b""), TranscribeOptions()))


def test_model_is_loaded_once_and_reused(service: TranscriptionService) -> None:
    async def twice() -> None:
        first = await service.engine()
        second = await service.engine()
        assert first is second

    asyncio.run(twice())
    assert len(service.models.loaded()) == 1


def test_unknown_model_is_refused(service: TranscriptionService) -> None:
    with pytest.raises(UnknownModelError):
        asyncio.run(
            service.transcribe(
                AudioSource(DATA / "speech.wav"), TranscribeOptions(), model="no-such-model"
            )
        )


def test_work_runs_off_the_event_loop(service: TranscriptionService) -> None:
    threads: list[str] = []
    ticks = 0

    def record(segment: Segment) -> None:
        threads.append(threading.current_thread().name)

    async def scenario() -> None:
        nonlocal ticks
        work = asyncio.create_task(
            service.transcribe(
                AudioSource(DATA / "speech.wav"),
                TranscribeOptions(vad_filter=False),
                on_segment=record,
            )
        )
        while not work.done():
            ticks += 1
            await asyncio.sleep(0.005)
        await work

    asyncio.run(scenario())
    assert threads
    assert all(name.startswith("whisperd-request") for name in threads)
    assert ticks > 3  # the loop kept turning while the model ran
