"""Wire models of the Baseten-compatible streaming protocol (``WS /v1/stream``).

The first message is the metadata (every level refuses unknown keys, as Baseten's server does);
binary PCM frames follow, with JSON control messages in between.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from whisperd.engine.base import SAMPLE_RATE
from whisperd.streaming.pcm import Encoding


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class SamplingParams(_Strict):
    """Baseten's ``whisper_sampling_params``; accepted for compatibility."""

    beam_width: Annotated[int, Field(ge=1, le=32)] = 1
    length_penalty: float = 2.0
    repetition_penalty: float = 1.01
    sampling_temperatures: list[float] = Field(
        default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    )
    max_new_tokens: Annotated[int, Field(ge=1, le=448)] = 400


class WhisperParams(_Strict):
    """What to transcribe and how."""

    audio_language: str = "en"
    """ISO code of the spoken language, or ``auto`` to detect it per utterance."""
    language_options: list[str] = Field(default_factory=list)
    """Candidate languages for detection; a single entry fixes the language."""
    prompt: str = ""
    """Vocabulary and style hint for every utterance."""
    hotwords: str = ""
    """Words to bias decoding toward."""
    prefix: str = ""
    """Accepted for compatibility (partials use their own committed prefix)."""
    show_word_timestamps: bool = False
    """Word timings in final segments."""
    enable_vad: bool = True
    """Cut utterances with Silero VAD (off: only finalize/end_audio produce finals)."""
    language_detection_only: bool = False
    output_language: str = "auto"
    enable_chunk_level_language_detection: bool = False
    show_beam_results: bool = False
    use_dynamic_preprocessing: bool = False
    use_missing_chunk_retry: bool = False
    enable_diarization: bool = False
    diarization_granularity: str = "sentence"
    whisper_sampling_params: SamplingParams = Field(default_factory=SamplingParams)


class StreamingParams(_Strict):
    """The audio format and the partial/final cadence."""

    encoding: Encoding = "pcm_s16le"
    """pcm_s16le, pcm_mulaw or pcm_f32le, mono."""
    sample_rate: Annotated[int, Field(ge=8000, le=48000)] = SAMPLE_RATE
    """Sample rate of the PCM (resampled to 16 kHz)."""
    enable_partial_transcripts: bool = False
    """Send partial transcripts while speech goes on."""
    partial_transcript_interval_s: Annotated[float, Field(ge=0.1, le=10.0)] = 0.5
    """Seconds of new audio between partials."""
    final_transcript_max_duration_s: Annotated[float, Field(gt=1.0)] = 30.0
    """Longest utterance before it is cut at a segment boundary (at most 30)."""
    prioritize_latency: bool = True
    skip_partial_if_hallucination: bool = True
    """Do not send partials that look hallucinated."""
    include_pipeline_latency_metric: bool = False
    """Add ``pipeline_latency`` (seconds from the decode being due to the message) to results."""

    @field_validator("final_transcript_max_duration_s")
    @classmethod
    def _clamp(cls, value: float) -> float:
        return min(value, 30.0)


class VadConfig(_Strict):
    """Endpointing."""

    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """Speech probability that starts an utterance."""
    min_silence_duration_ms: Annotated[int, Field(ge=0, le=10_000)] = 300
    """Silence that ends an utterance."""
    speech_pad_ms: Annotated[int, Field(ge=0, le=2000)] = 30
    """Audio kept before speech starts."""


class StreamMetadata(_Strict):
    """The first message of a stream."""

    whisper_params: WhisperParams = Field(default_factory=WhisperParams)
    streaming_params: StreamingParams = Field(default_factory=StreamingParams)
    streaming_vad_config: VadConfig = Field(default_factory=VadConfig)
    streaming_diarization_config: dict[str, Any] | None = None
    diarization_config: dict[str, Any] | None = None
    stream_id: str | None = None
    include_timing_info: bool = False
