"""A Realtime transcription session's settings: what updates change, what the stream gets."""

from __future__ import annotations

from dataclasses import dataclass, field

from whisperd.schemas.realtime_session import (
    PCM_RATE,
    AudioDescription,
    AudioFormatName,
    AudioInputDescription,
    BetaSessionDescription,
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

_MULAW_RATE = 8000


@dataclass
class RealtimeConfig:
    """A transcription session's settings, in OpenAI's terms."""

    audio_format: AudioFormatName = "pcm16"
    model: str = "whisper-1"
    language: str | None = None
    prompt: str = ""
    turn_detection: TurnDetection | None = field(default_factory=default_turn_detection)
    """None: no server VAD; the client commits each turn."""

    def apply(self, changes: SessionChanges) -> None:
        """Apply a (partial) ``session.update`` / ``transcription_session.update``."""
        if changes.audio_format is not None:
            self.audio_format = changes.audio_format
        if changes.transcription is not None:
            self.model = changes.transcription.model or self.model
            self.language = changes.transcription.language or None
            self.prompt = changes.transcription.prompt or ""
        if changes.sets_turn_detection:
            self.turn_detection = changes.turn_detection

    def pcm(self) -> PcmDecoder:
        """The decoder for this session's audio format."""
        if self.audio_format == "pcm16":
            return PcmDecoder("pcm_s16le", PCM_RATE)
        return PcmDecoder("pcm_mulaw", _MULAW_RATE)

    def stream(self) -> StreamConfig:
        """The stream session settings."""
        turn = self.turn_detection or TurnDetection()
        return StreamConfig(
            language=self.language,
            prompt=self.prompt or None,
            partials=True,
            vad=self.turn_detection is not None,
            vad_threshold=turn.threshold,
            min_silence_ms=turn.silence_duration_ms,
            speech_pad_ms=turn.prefix_padding_ms,
        )

    def describe(
        self, session_id: str, *, beta: bool
    ) -> SessionDescription | BetaSessionDescription:
        """The session object sent in ``*.created`` / ``*.updated``."""
        transcription = Transcription(model=self.model, language=self.language, prompt=self.prompt)
        if beta:
            return BetaSessionDescription(
                id=session_id,
                input_audio_format=self.audio_format,
                input_audio_transcription=transcription,
                turn_detection=self.turn_detection,
            )
        audio_format = PcmFormat() if self.audio_format == "pcm16" else PcmuFormat()
        return SessionDescription(
            id=session_id,
            audio=AudioDescription(
                input=AudioInputDescription(
                    format=audio_format,
                    transcription=transcription,
                    turn_detection=self.turn_detection,
                )
            ),
        )
