"""The service's side of diarization: the speaker model, loaded once, and known speakers'
clips decoded and checked.

The encoder is loaded on the loading pool on the first request that asks for speakers and kept
for the service's life (a 17 MB model); the diarization itself runs on a request thread
(:meth:`Transcription.run <whisperd.service.transcription.Transcription.run>`).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING

from whisperd.audio.decode import decode_audio
from whisperd.diarization import (
    KnownSpeaker,
    ResemblyzerEncoder,
    SpeakerEncoder,
    resemblyzer_weights,
)
from whisperd.diarization.options import MAX_REFERENCE_S, MIN_REFERENCE_S
from whisperd.diarization.scheduled import EmbeddingScheduler
from whisperd.errors import AudioError, CancelledError, InvalidOptionError
from whisperd.scheduler.batcher import Priority

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np
    import numpy.typing as npt

    from whisperd.audio.decode import AudioSource, DecodeLimits
    from whisperd.service.pools import WorkerPool
    from whisperd.service.requests import TranscriptionRequest

__all__ = ["REFERENCES_PARAM", "SpeakerModel", "decode_references"]

REFERENCES_PARAM = "known_speaker_references[]"
"""The field known speakers' clips come in (OpenAI's name)."""


def _default_encoder() -> SpeakerEncoder:
    return ResemblyzerEncoder(resemblyzer_weights())


class SpeakerModel:
    """The speaker encoder of one service: loaded on first use, once, behind its own
    batching scheduler (:class:`~whisperd.diarization.scheduled.EmbeddingScheduler`)."""

    def __init__(self, pool: WorkerPool, load: Callable[[], SpeakerEncoder] | None = None) -> None:
        """Load with ``load`` (default: Resemblyzer's GE2E encoder) on ``pool``."""
        self._pool = pool
        self._load = load or _default_encoder
        self._scheduler: EmbeddingScheduler | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def encoder(self, priority: Priority = Priority.INTERACTIVE) -> SpeakerEncoder:
        """The loaded encoder, its calls queued at ``priority``.

        Raises:
            DiarizationUnavailableError: the speaker model is not installed (400, with how to
                install it).
        """
        scheduler = self._scheduler
        if scheduler is None:
            scheduler = await self._pool.run(self._loaded)
        return scheduler.for_request(priority)

    async def embed_references(
        self,
        references: Sequence[tuple[str, AudioSource]],
        limits: DecodeLimits,
        priority: Priority = Priority.INTERACTIVE,
    ) -> tuple[KnownSpeaker, ...]:
        """Known speakers from their names and clips, each kept as its voice embedding only
        (what a durable job stores: 256 numbers instead of seconds of audio).

        Raises:
            DiarizationUnavailableError: the speaker model is not installed.
            InvalidOptionError: a clip that is not audio, shorter than 2 s or longer than
                10 s (``param`` ``known_speaker_references[]``).
        """
        encoder = await self.encoder(priority)
        clips = [
            await self._pool.run(_decode_reference, index, source, limits)
            for index, (_, source) in enumerate(references)
        ]
        embeddings = await self._pool.run(encoder.embed, clips) if clips else None
        return tuple(
            KnownSpeaker(name, embedding=embeddings[index])
            for index, (name, _) in enumerate(references)
            if embeddings is not None
        )

    @property
    def scheduler(self) -> EmbeddingScheduler | None:
        """The encoder's scheduler, once loaded."""
        return self._scheduler

    def close(self) -> None:
        """Stop the encoder's scheduler (a later load is refused)."""
        with self._lock:
            self._closed = True
            if self._scheduler is not None:
                self._scheduler.close()

    def _loaded(self) -> EmbeddingScheduler:
        with self._lock:
            if self._closed:
                raise CancelledError("The service is closing.")
            if self._scheduler is None:
                self._scheduler = EmbeddingScheduler(self._load())
            return self._scheduler


async def decode_references(
    request: TranscriptionRequest, pool: WorkerPool, limits: DecodeLimits
) -> TranscriptionRequest:
    """``request`` with its known speakers' clips decoded into its diarization options.

    Raises:
        InvalidOptionError: a clip that is not audio, shorter than 2 s or longer than 10 s
            (``param`` ``known_speaker_references[]``, OpenAI's rule).
    """
    if request.diarization is None or not request.speaker_references:
        return request
    known = []
    for index, (name, source) in enumerate(request.speaker_references):
        samples = await pool.run(_decode_reference, index, source, limits)
        known.append(KnownSpeaker(name, samples))
    diarization = dataclasses.replace(request.diarization, known_speakers=tuple(known))
    return dataclasses.replace(request, diarization=diarization, speaker_references=())


def _decode_reference(
    index: int, source: AudioSource, limits: DecodeLimits
) -> npt.NDArray[np.float32]:
    try:
        audio = decode_audio(source, limits)
    except AudioError as exc:
        raise InvalidOptionError(
            f"known_speaker_references[{index}] is not usable audio: {exc.message}",
            param=REFERENCES_PARAM,
        ) from exc
    if not MIN_REFERENCE_S <= audio.duration <= MAX_REFERENCE_S:
        raise InvalidOptionError(
            f"known_speaker_references[{index}] is {audio.duration:.1f} s long; each reference "
            f"must be {MIN_REFERENCE_S:g} to {MAX_REFERENCE_S:g} s of the speaker's voice.",
            param=REFERENCES_PARAM,
        )
    return audio.samples
