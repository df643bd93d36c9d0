"""Wire models of the Faster-Whisper Transcriber's native API (``/transcribe`` and friends).

Every setting is optional; one left out takes the server's configured default. Fields the API
does not know are kept in ``model_extra``, so the route can report them. Errors are
``{"detail": "..."}`` (:class:`NativeError`).
"""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

from fastapi import UploadFile
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from whisperd.audio.decode import AudioFormat, PcmDtype
from whisperd.audio.subtitles import SubtitleStyle
from whisperd.diarization import DiarizationOptions
from whisperd.diarization.options import (
    MAX_SPEAKERS,
    SPEAKER_COUNTS,
    by_voice,
    per_channel,
)
from whisperd.engine.options import TranscribeOptions
from whisperd.errors import InvalidOptionError
from whisperd.schemas.form_fields import looks_like_text, part_bytes
from whisperd.schemas.subtitles import SubtitleFields

Quantization = Literal[
    "float32", "float16", "bfloat16", "int8", "int8_float16", "int8_bfloat16", "int8_float32"
]
Device = Literal["cuda", "cpu", "auto"]
TaskMode = Literal["transcribe", "translate"]


class NativeSettings(BaseModel):
    """The per-request settings of ``POST /transcribe`` and ``POST /transcribe/raw``."""

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True, allow_inf_nan=False)

    model: str | None = None
    """Whisper checkpoint: large-v3, large-v3-turbo, medium, medium.en, small, small.en, base,
    base.en, tiny, tiny.en, distil-whisper-large-v3, distil-whisper-medium.en,
    distil-whisper-small.en (or any name the server knows). Loaded on first use."""
    quantization: Quantization | None = None
    """CTranslate2 compute type to run the model with."""
    device: Device | None = None
    """Where the model runs."""
    language: str | None = None
    """ISO 639-1 code (``en``), BCP 47 tag (``en-US``), locale name (``en_US``) or English name
    (``english``); omit or leave empty to detect the language."""
    task_mode: TaskMode | None = None
    """Transcribe in the spoken language or translate to English."""
    include_timestamps: bool | None = None
    """Return timestamped segments (default false: decode without timestamps, segments [])."""
    word_timestamps: bool | None = None
    """Add word-level timings to each segment."""
    beam_size: Annotated[int | None, Field(ge=1, le=20)] = None
    """Beam width, 1-20 (default 5)."""
    vad_filter: bool | None = None
    """Run Silero VAD before decoding (forced on when batch_size > 1)."""
    condition_on_previous_text: bool | None = None
    """Use the previous segment's text as context for the next."""
    batch_size: Annotated[int | None, Field(ge=1, le=128)] = None
    """Above 1: batched decoding of VAD chunks (1-128, default 1)."""
    audio_format: AudioFormat = "auto"
    """Input format override: auto, file, numpy, tensor or pcm."""
    sample_rate: Annotated[int | None, Field(ge=1000, le=768_000)] = None
    """Sample rate of numpy, tensor or PCM input (resampled to 16 kHz; default 16000)."""
    dtype: PcmDtype | None = None
    """Sample type of raw PCM: float32 (default), float64, int16 or int32."""
    subtitle_format: Literal["srt", "vtt"] | None = None
    """whisperd's addition: also return the transcript as ``subtitles`` in this format, cues
    shaped by ``max_line_width``, ``max_line_count``, ``max_words_per_line``,
    ``max_cue_duration`` and ``highlight_words`` when given (as on the OpenAI routes)."""
    diarize: bool | None = None
    """whisperd's addition: label who speaks (``A``, ``B``, ...) with the speaker model; the
    labels show on segments and words and as ``A: `` line prefixes in ``text``."""
    multichannel: bool | None = None
    """whisperd's addition: transcribe each channel on its own, the speaker being the
    channel (no model needed)."""
    num_speakers: Annotated[int | None, Field(ge=1, le=MAX_SPEAKERS)] = None
    """With ``diarize``: exactly this many speakers."""
    min_speakers: Annotated[int | None, Field(ge=1, le=MAX_SPEAKERS)] = None
    """With ``diarize``: at least this many speakers."""
    max_speakers: Annotated[int | None, Field(ge=1, le=MAX_SPEAKERS)] = None
    """With ``diarize``: at most this many speakers."""

    def diarization(self) -> DiarizationOptions | None:
        """The speakers these settings ask for (None: none).

        Raises:
            InvalidOptionError: speaker counts without ``diarize``, min above max, or
                ``num_speakers`` with a bound.
        """
        counts = {name: getattr(self, name) for name in SPEAKER_COUNTS}
        if not (self.diarize or self.multichannel):
            for name, count in counts.items():
                if count is not None:
                    raise InvalidOptionError(f"{name} needs diarize=true.", param=name)
            return None
        if self.multichannel:
            return per_channel((), counts)
        return by_voice(counts)

    def subtitle_style(self) -> SubtitleStyle | None:
        """The cue shaping asked for (``None``: one cue per segment, or no subtitles).

        Raises:
            pydantic.ValidationError: on a bad shaping value, naming the field.
            InvalidOptionError: on a shaping field without ``subtitle_format``, naming it, or
                on ``max_line_count`` alone.
        """
        fields = SubtitleFields.model_validate(self.model_extra or {})
        first = fields.first_sent()
        if self.subtitle_format is None and first is not None:
            raise InvalidOptionError(
                f"{first} shapes subtitles: send subtitle_format=srt or vtt with it.", param=first
            )
        return fields.style(self.subtitle_format or "srt")

    def options(self) -> TranscribeOptions:
        """The decoding options these settings ask for, defaults filled in.

        Raises:
            pydantic.ValidationError: if the language, or a shaping value, is bad.
            InvalidOptionError: on shaping without ``subtitle_format`` (see
                :meth:`subtitle_style`).
        """
        style = self.subtitle_style()  # a bad shaping field fails before any work
        subtitles = self.subtitle_format is not None  # cues need times, shaping words
        values: dict[str, Any] = {
            "task": self.task_mode or "transcribe",
            "without_timestamps": not (self.include_timestamps or subtitles),
        }
        optional = {
            "language": self.language,
            "word_timestamps": self.word_timestamps,
            "beam_size": self.beam_size,
            "vad_filter": self.vad_filter,
            "condition_on_previous_text": self.condition_on_previous_text,
            "batch_size": self.batch_size,
        }
        values.update({k: v for k, v in optional.items() if v is not None})
        if style is not None:
            values["word_timestamps"] = True
        return TranscribeOptions.model_validate(values)

    def ignored(self) -> tuple[str, ...]:
        """The fields sent that this API does not know, sorted."""
        return tuple(sorted(set(self.model_extra or ()) - set(SubtitleFields.model_fields)))


def _audio_part(value: object) -> object:
    """An ``audio`` part sent without a filename (or with only RFC 5987's ``filename*``)
    arrives as text: turn it back into the upload it is.

    Raises:
        ValueError: if the part holds short printable text (a path, a word), not audio.
    """
    if not isinstance(value, str):
        return value
    if value and looks_like_text(value):
        raise ValueError("the audio part holds text, not audio: send the file's bytes")
    data = part_bytes(value)
    return UploadFile(io.BytesIO(data), size=len(data))


class TranscribeForm(NativeSettings):
    """``POST /transcribe``: a multipart form with the audio file and the settings."""

    audio: Annotated[UploadFile, BeforeValidator(_audio_part)]
    """Audio or video file, .npy, .pt or raw PCM (a filename is optional)."""


class RawTranscribeRequest(NativeSettings):
    """``POST /transcribe/raw``: base64 audio in a JSON body, plus the same settings."""

    audio_data: str
    """Base64 of the audio: a whole file, a .npy array, a torch tensor or raw PCM."""


class NativeWord(BaseModel):
    """A word with its timing."""

    start: float
    end: float
    word: str
    probability: float
    speaker: Annotated[str | None, Field(exclude_if=lambda value: value is None)] = None
    """With ``diarize`` or ``multichannel``: who said it (absent otherwise)."""


class NativeSegment(BaseModel):
    """A timestamped segment (text keeps faster-whisper's leading space)."""

    start: float
    end: float
    text: str
    words: list[NativeWord] | None = None
    speaker: Annotated[str | None, Field(exclude_if=lambda value: value is None)] = None
    """With ``diarize`` or ``multichannel``: who said it (absent otherwise)."""


class NativeTranscription(BaseModel):
    """The result of ``/transcribe`` and ``/transcribe/raw``."""

    text: str
    """The whole transcription, segments joined by newlines."""
    segments: list[NativeSegment]
    """Timestamped segments; [] when include_timestamps is false."""
    language: str
    """Detected (or given) ISO language code."""
    duration: float
    """Duration of the audio in seconds."""
    task: str
    model_used: str
    """Model and compute type, e.g. "large-v3-turbo - int8"."""
    processing_time_seconds: float
    subtitles: Annotated[str | None, Field(exclude_if=lambda value: value is None)] = None
    """With ``subtitle_format``: the SRT or WebVTT document (whisperd's addition; absent
    otherwise, so the seed API's shape is unchanged)."""


class NativeModel(BaseModel):
    """One entry of ``GET /models``."""

    name: str
    supports_translation: bool


class NativeStatus(BaseModel):
    """``GET /status``: the scheduler's real state."""

    server_running: bool = True
    queue_depth: int
    """Requests admitted and waiting for the model."""
    transcription_active: bool
    """True while the model is working on a request."""
    requests_in_flight: int
    queued_audio_seconds: float
    """Audio admitted and not yet transcribed (the queue bound is measured in it)."""
    active_streams: int
    """Real-time WebSocket streams open."""
    stream_decodes: int
    """Stream decodes (partials and finals) running or waiting for the model."""
    loaded_models: list[str]
    """Loaded models as "name - compute type"."""
    default_model: str
    uptime_seconds: float
    version: str
    replica: str | None = None
    """The server that answered (the ``replica_name`` setting; each replica's id under Ray
    Serve); null when unnamed."""


class Health(BaseModel):
    """``GET /health``: whether the server accepts work."""

    status: Literal["ok", "loading", "failed", "shutting_down"]
    """``ok`` (200) while the server accepts work; 503 with ``loading`` while the default model
    loads, ``failed`` if it cannot be had, ``shutting_down`` once the server drains."""


class NativeError(BaseModel):
    """The native API's error envelope."""

    detail: str
    """What went wrong, meant to be shown as is."""
