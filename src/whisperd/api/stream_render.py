"""What a Baseten-protocol stream sends for its session's events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from whisperd.schemas.stream_messages import (
    DecodeErrorBody,
    EndOfAudioTranscription,
    ErrorMessage,
    SpeechMessage,
    TranscriptionMessage,
    TranscriptionSegment,
    WordTimestamp,
)

if TYPE_CHECKING:
    from whisperd.engine.base import Segment, Word
    from whisperd.schemas.stream import StreamMetadata
    from whisperd.streaming.session import Failed, Result, SpeechStarted, SpeechStopped


def _hallucinated(segment: Segment) -> bool:
    silent = segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0
    return silent or segment.compression_ratio > 2.4


def _word(word: Word, offset: float) -> WordTimestamp:
    return WordTimestamp(
        start_time=round(offset + word.start, 3),
        end_time=round(offset + word.end, 3),
        word=word.word.strip(),
        prob=word.probability,
    )


def _segment(segment: Segment, result: Result) -> TranscriptionSegment:
    transcript = result.transcript
    return TranscriptionSegment(
        start_time=round(result.start + segment.start, 3),
        end_time=round(result.start + segment.end, 3),
        text=segment.text.strip(),
        log_prob=segment.avg_logprob,
        word_timestamps=[_word(w, result.start) for w in segment.words or ()],
        possible_hallucination=_hallucinated(segment),
        speaker=segment.speaker,
        language_code=transcript.language,
        language_prob=transcript.language_probability,
    )


class BasetenRenderer:
    """Baseten's messages for a stream opened with ``metadata``."""

    def __init__(self, metadata: StreamMetadata) -> None:
        """Render as ``metadata`` asks (latency metric, hallucinated partials skipped)."""
        self.metadata = metadata

    def speech_started(self, event: SpeechStarted) -> list[SpeechMessage]:
        """``speech_started`` with the stream time."""
        return [
            SpeechMessage(
                type="speech_started",
                audio_time=round(event.audio_time, 3),
                transcription_num=event.number,
            )
        ]

    def speech_stopped(self, event: SpeechStopped) -> list[SpeechMessage]:
        """``speech_stopped`` with the stream time."""
        return [
            SpeechMessage(
                type="speech_stopped",
                audio_time=round(event.audio_time, 3),
                transcription_num=event.number,
            )
        ]

    def result(self, event: Result) -> list[TranscriptionMessage]:
        """A ``transcription``; none for a partial that looks hallucinated, if so asked."""
        segments = [_segment(s, event) for s in event.transcript.segments]
        streaming = self.metadata.streaming_params
        hallucinated = any(s.possible_hallucination for s in segments)
        if not event.is_final and streaming.skip_partial_if_hallucination and hallucinated:
            return []
        kind = EndOfAudioTranscription if event.end_of_audio else TranscriptionMessage
        return [
            kind(
                segments=segments,
                language_code=event.transcript.language,
                language_prob=event.transcript.language_probability,
                audio_length_sec=round(event.billed_duration, 3),
                is_final=event.is_final,
                transcription_num=event.number,
                pipeline_latency=round(event.latency, 3)
                if streaming.include_pipeline_latency_metric
                else None,
                latency_ms=round(event.latency * 1000),
                stable_text=event.stable,
                unstable_text=event.unstable,
            )
        ]

    def failed(self, event: Failed) -> list[ErrorMessage]:
        """A recoverable ``error`` naming the failure."""
        return [ErrorMessage(body=DecodeErrorBody(error=event.message, code=event.code))]
