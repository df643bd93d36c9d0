"""The speaker encoder behind a batching scheduler: embeddings as their own kind of model call.

Every diarized request's windows become one ``embed`` call (:data:`EMBED`) queued in the
speaker model's :class:`~whisperd.scheduler.batcher.Batcher`; calls queued together, from any
number of requests, run as one forward pass over all their windows, ranked by the requests'
priorities as Whisper's calls are. The scheduler knows nothing of speakers: it merges calls by
kind and runs :meth:`EmbeddingScheduler._run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from whisperd.scheduler.batcher import Batcher, Call, Priority, split_by_call

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    from whisperd.diarization.encoder import SpeakerEncoder

__all__ = ["EMBED", "MAX_BATCH_CLIPS", "EmbeddingScheduler"]

EMBED = "embed"
"""The kind of the speaker encoder's model calls."""
MAX_BATCH_CLIPS = 512
"""Most clips merged into one forward pass (about 13 minutes of speech in 1.6 s windows)."""


class EmbeddingScheduler:
    """A speaker encoder whose calls from every request are batched together."""

    def __init__(self, encoder: SpeakerEncoder, *, workers: int = 1) -> None:
        """Start the scheduler's ``workers`` threads over ``encoder``."""
        self._encoder = encoder
        self._batcher = Batcher(
            self._run, max_batch_size=MAX_BATCH_CLIPS, workers=workers, name="whisperd-speakers"
        )
        self._batcher.start()

    @property
    def calls(self) -> int:
        """Request calls served so far (``embed`` calls)."""
        return self._batcher.stats.kinds[EMBED]

    @property
    def batches(self) -> int:
        """Forward passes run so far."""
        return self._batcher.stats.batches

    def for_request(self, priority: Priority = Priority.INTERACTIVE) -> SpeakerEncoder:
        """The encoder as one request sees it: its calls queued at ``priority``."""
        return _ScheduledEncoder(self._batcher, priority, self._encoder.dimension)

    def close(self) -> None:
        """Fail queued calls and stop the threads."""
        self._batcher.stop()

    def _run(self, kind: str, calls: Sequence[Call]) -> list[npt.NDArray[np.float32]]:
        clips = [clip for call in calls for clip in call.payload]
        return split_by_call(self._encoder.embed(clips), calls)


class _ScheduledEncoder:
    """One request's view of an :class:`EmbeddingScheduler` (a :class:`SpeakerEncoder`)."""

    def __init__(self, batcher: Batcher, priority: Priority, dimension: int) -> None:
        self._batcher = batcher
        self._priority = priority
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, clips: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        if not clips:
            return np.zeros((0, self._dimension), dtype=np.float32)
        with self._batcher.request(self._priority) as ticket:
            result: npt.NDArray[np.float32] = self._batcher.submit(
                EMBED, None, clips, items=len(clips), ticket=ticket
            )
        return result
