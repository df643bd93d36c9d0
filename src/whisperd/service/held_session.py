"""A stream session that holds its model for as long as it is open."""

from __future__ import annotations

from typing import TYPE_CHECKING

from whisperd.streaming.session import StreamSession

if TYPE_CHECKING:
    from whisperd.engine.lifecycle import ModelLease
    from whisperd.streaming.session import Decoder, Emit, StreamConfig, Vad


class HeldStreamSession(StreamSession):
    """A :class:`StreamSession` whose model stays loaded until the session is closed: an
    unload asked meanwhile waits for it, so a stream never loses its model mid-utterance."""

    def __init__(
        self, config: StreamConfig, decoder: Decoder, vad: Vad, emit: Emit, *, lease: ModelLease
    ) -> None:
        """A session like :class:`StreamSession`'s, holding ``lease`` until :meth:`close`."""
        super().__init__(config, decoder, vad, emit)
        self._lease = lease

    async def close(self) -> None:
        """Stop the worker, then let the model go."""
        try:
            await super().close()
        finally:
            self._lease.release()
