"""Wire models of the Baseten-compatible streaming protocol (``WS /v1/stream``).

The first message is the metadata (every level refuses unknown keys, as Baseten's server does);
binary PCM frames follow, with JSON control messages in between.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from whisperd.engine.base import SAMPLE_RATE
from whisperd.languages import language_or_auto, normalize_language
from whisperd.streaming.pcm import Encoding


class _Strict(BaseModel):
    """Unknown keys and non-finite numbers (``NaN``, ``Infinity``, ``1e309``) are refused."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)


class SamplingParams(_Strict):
    """Baseten's ``whisper_sampling_params``: how finals are decoded (partials are greedy).

    A field left out takes whisperd's batch default, not Baseten's (beam 1, length penalty 2),
    so a stream's finals are decoded as the same audio uploaded to the batch routes would be.
    """

    beam_width: Annotated[int | None, Field(ge=1, le=32)] = None
    """Beam width of finals; unset: 5, as the batch routes."""
    length_penalty: Annotated[float | None, Field(ge=-10.0, le=10.0)] = None
    """Beam-search length penalty; unset: 1 (faster-whisper's)."""
    repetition_penalty: Annotated[float | None, Field(ge=0.1, le=5.0)] = None
    """Penalty on tokens already generated; unset: 1 (none)."""
    sampling_temperatures: (
        Annotated[list[Annotated[float, Field(ge=0.0, le=1.0)]], Field(min_length=1)] | None
    ) = None
    """Temperature fallback of finals; unset: 0, 0.2, ..., 1.0 (Whisper's)."""
    max_new_tokens: Annotated[int | None, Field(ge=1, le=448)] = None
    """Most tokens per final; unset: the model's limit."""


class WhisperParams(_Strict):
    """What to transcribe and how."""

    audio_language: Annotated[str, AfterValidator(language_or_auto)] = "en"
    """ISO code of the spoken language, or ``auto`` to detect it per utterance."""
    language_options: list[Annotated[str, AfterValidator(normalize_language)]] = Field(
        default_factory=list
    )
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
