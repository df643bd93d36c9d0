"""A Realtime transcription session's settings: what updates change, what the stream gets.

The session keeps the settings that run, in OpenAI's terms, and describes exactly those back in
``session.created`` / ``session.updated``: turn detection as the ``server_vad`` settings that
endpoint the stream (``semantic_vad`` included, see :func:`endpointing`) and no noise filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from whisperd.schemas.realtime_session import (
    LOGPROBS_INCLUDE,
    PCM_RATE,
    AudioDescription,
    AudioFormatName,
    AudioInputDescription,
    BetaSessionDescription,
    PcmaFormat,
    PcmFormat,
    PcmuFormat,
    SessionChanges,
    SessionDescription,
    Transcription,
    TurnDetection,
    default_turn_detection,
)
from whisperd.streaming.pcm import PcmDecoder
from whisperd.streaming.session import StreamConfig

if TYPE_CHECKING:
    from collections.abc import Mapping

    from whisperd.streaming.pcm import DecoderEncoding

G711_RATE = 8000
"""Sample rate of G.711 mu-law and A-law input (OpenAI: "G.711 ... 8 kHz")."""

_DECODERS: Final[Mapping[AudioFormatName, tuple[DecoderEncoding, int]]] = MappingProxyType(
    {
        "pcm16": ("pcm_s16le", PCM_RATE),
        "g711_ulaw": ("pcm_mulaw", G711_RATE),
        "g711_alaw": ("pcm_alaw", G711_RATE),
    }
)

SEMANTIC_SILENCE_MS: Final[Mapping[str, int]] = MappingProxyType(
    {"low": 1000, "medium": 500, "auto": 500, "high": 250}
)
"""Silence (ms) that ends a ``semantic_vad`` turn, by ``eagerness``.

OpenAI's semantic VAD ends a turn when a model judges the words complete; ``low`` "will wait
longer for the user to continue speaking", ``high`` "will respond more quickly", ``auto`` is
``medium``, and the longest waits are 8 s, 4 s and 2 s (OpenAI ``RealtimeTurnDetection``). No
such model runs here, so eagerness sets the silence that ends a turn: ``medium`` is the
``server_vad`` default of transcription sessions (500 ms), and ``low`` and ``high`` keep the
4 : 2 : 1 proportion of OpenAI's longest waits around it (1000 ms, 250 ms). The longest waits
themselves are not used: they bound a wait that a semantic model usually cuts short, and as a
plain silence they would hold every turn open for seconds.
"""


def endpointing(turn: TurnDetection) -> TurnDetection:
    """The ``server_vad`` settings that run for ``turn``, every one set (so all are echoed).

    ``server_vad`` keeps its settings; ``semantic_vad`` gets the silence of its eagerness
    (:data:`SEMANTIC_SILENCE_MS`) and the threshold and prefix padding of ``server_vad``.
    Settings accepted only for compatibility (``create_response``, ``idle_timeout_ms``, ...)
    are dropped, since nothing runs them.
    """
    silence_ms = turn.silence_duration_ms
    if turn.type == "semantic_vad":
        silence_ms = SEMANTIC_SILENCE_MS[turn.eagerness or "auto"]
    return TurnDetection(
        type="server_vad",
        threshold=turn.threshold,
        prefix_padding_ms=turn.prefix_padding_ms,
        silence_duration_ms=silence_ms,
    )


@dataclass
class RealtimeConfig:
    """A transcription session's settings, in OpenAI's terms, as they run."""

    audio_format: AudioFormatName = "pcm16"
    model: str = "whisper-1"
    language: str | None = None
    prompt: str = ""
    turn_detection: TurnDetection | None = field(default_factory=default_turn_detection)
    """The ``server_vad`` settings that run; None: no server VAD, the client commits turns."""
    logprobs: bool = False
    """``include`` holds ``item.input_audio_transcription.logprobs``."""

    def apply(self, changes: SessionChanges) -> None:
        """Apply a (partial) ``session.update`` / ``transcription_session.update``."""
        if changes.audio_format is not None:
            self.audio_format = changes.audio_format
        if changes.transcription is not None:
            self.model = changes.transcription.model or self.model
            self.language = changes.transcription.language or None
            self.prompt = changes.transcription.prompt or ""
        if changes.sets_turn_detection:
            turn = changes.turn_detection
            self.turn_detection = None if turn is None else endpointing(turn)
        if changes.include is not None:
            self.logprobs = LOGPROBS_INCLUDE in changes.include

    def pcm(self) -> PcmDecoder:
        """A decoder for this session's audio format."""
        return PcmDecoder(*_DECODERS[self.audio_format])

    def stream(self, *, stable_partials: bool = False) -> StreamConfig:
        """The stream session settings.

        Partials are decoded only with ``stable_partials`` (the server's
        ``stream_stable_partials``): a Realtime client sees nothing of a turn but its stable
        words (deltas), and without that setting words become stable only with the final, so
        a partial would cost a decode and show nothing.
        """
        turn = self.turn_detection or TurnDetection()
        return StreamConfig(
            language=self.language,
            prompt=self.prompt or None,
            partials=stable_partials,
            vad=self.turn_detection is not None,
            vad_threshold=turn.threshold,
            min_silence_ms=turn.silence_duration_ms,
            speech_pad_ms=turn.prefix_padding_ms,
            logprobs=self.logprobs,
        )

    def describe(
        self, session_id: str, *, beta: bool
    ) -> SessionDescription | BetaSessionDescription:
        """The session object sent in ``*.created`` / ``*.updated``."""
        transcription = Transcription(model=self.model, language=self.language, prompt=self.prompt)
        include = [LOGPROBS_INCLUDE] if self.logprobs else None
        if beta:
            return BetaSessionDescription(
                id=session_id,
                input_audio_format=self.audio_format,
                input_audio_transcription=transcription,
                turn_detection=self.turn_detection,
                include=include,
            )
        return SessionDescription(
            id=session_id,
            audio=AudioDescription(
                input=AudioInputDescription(
                    format=_ga_format(self.audio_format),
                    transcription=transcription,
                    turn_detection=self.turn_detection,
                )
            ),
            include=include,
        )


def _ga_format(name: AudioFormatName) -> PcmFormat | PcmuFormat | PcmaFormat:
    if name == "pcm16":
        return PcmFormat()
    return PcmuFormat() if name == "g711_ulaw" else PcmaFormat()
