"""Settings: the only reader of the environment.

Every field can be set as ``WHISPERD_<NAME>`` (for example ``WHISPERD_MODEL=small``), from a
``.env`` file in the working directory, or by the matching command-line flag, which wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Device = Literal["auto", "cpu", "cuda"]
EngineName = Literal["auto", "ctranslate2", "torch"]
ComputeType = Literal[
    "auto",
    "default",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
]


class Settings(BaseSettings):
    """whisperd's configuration, validated at startup."""

    model_config = SettingsConfigDict(
        env_prefix="WHISPERD_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        use_attribute_docstrings=True,
    )

    model: str = "large-v3-turbo"
    """Default model: a known name (tiny ... large-v3, large-v3-turbo/turbo, distil-*, *.en),
    a Hugging Face repo id, or a local CTranslate2 model directory."""
    engine: EngineName = "auto"
    """Inference engine: ``ctranslate2`` (faster-whisper's CTranslate2 models, any device),
    ``torch`` (Hugging Face checkpoints on PyTorch; needs the ``gpu`` extra), or ``auto``:
    torch when PyTorch sees a CUDA GPU that CTranslate2 cannot use, else ctranslate2."""
    device: Device = "auto"
    """Where the model runs: auto picks CUDA when CTranslate2 sees a GPU, else the CPU."""
    compute_type: ComputeType = "auto"
    """Weight and activation type: auto picks int8 on CPU and float16 on CUDA."""
    cpu_threads: Annotated[int, Field(ge=0)] = 0
    """Threads per model call on CPU (0: CTranslate2's default)."""
    num_workers: Annotated[int, Field(ge=1)] = 1
    """Model replicas sharing the weights (parallel model calls)."""
    max_batch_size: Annotated[int, Field(ge=1, le=256)] = 8
    """Most windows (from any requests) encoded or decoded in one model call. The torch engine
    decodes continuously instead: see ``max_decode_rows``."""
    max_decode_rows: Annotated[int, Field(ge=0, le=4096)] = 0
    """torch engine: most sequences (windows times beams) in its running decoder batch;
    0 sizes it from free GPU memory (64 on the CPU)."""
    cuda_graph_rows: Annotated[int, Field(ge=0, le=1024)] = 128
    """torch engine on CUDA: decoder steps of up to this many rows replay CUDA graphs
    captured at start (fewer kernel launches per token); 0 turns graphs off."""
    max_batch_wait_ms: Annotated[float, Field(ge=0, le=1000)] = 5.0
    """Longest a ready batch waits for other active requests' windows to join it."""
    max_queued_audio_seconds: Annotated[float, Field(gt=0)] = 4 * 3600.0
    """Audio (in seconds) admitted and not yet transcribed; beyond it new work gets 503."""
    max_streams: Annotated[int, Field(ge=1)] = 64
    """Real-time WebSocket streams open at once; beyond it new streams are refused."""
    stream_final_encoder_context: Literal["window", "audio"] = "window"
    """How stream finals are encoded: ``window`` (padded to 30 s, as Whisper was trained) or
    ``audio`` (only the audio's own length: faster, but real models hallucinate on it; see
    docs/benchmarks.md). Partials always encode only the utterance's length."""
    stream_final_context_s: Annotated[float, Field(ge=0.0, le=20.0)] = 5.0
    """Seconds of a stream's previous finals decoded again, their words forced, before each
    final (0: each final hears only its utterance). More context: closer to the batch route's
    words, at about twice the decoding cost per final (docs/benchmarks.md)."""
    stream_idle_timeout_s: Annotated[float, Field(gt=0)] = 60.0
    """A stream that sends nothing for this long is closed."""
    stream_max_seconds: Annotated[float, Field(gt=0)] = 4 * 3600.0
    """Longest audio one stream may send."""
    models_dir: Path | None = None
    """Where downloaded models are cached (default: the Hugging Face cache)."""
    offline: bool = False
    """Never reach the network: use only models already cached or local directories."""
    preload_model: bool = True
    """Load the default model when the server starts: ``/health`` answers 503 ``loading``
    until it is ready, and a model that cannot be had stops the server (exit code 2). Off:
    the first request that needs it loads it, and ``/health`` answers ``ok`` at once."""
    hf_endpoint: str | None = None
    """Hugging Face Hub endpoint (a mirror); default: the public Hub."""
    max_audio_seconds: Annotated[float, Field(gt=0)] = 4 * 3600.0
    """Longest audio accepted, in seconds of decoded audio."""
    max_upload_mb: Annotated[float, Field(gt=0)] = 25.0
    """Largest request body accepted on the transcription routes, in MiB (OpenAI's is 25)."""
    max_pending_requests: Annotated[int, Field(ge=1)] = 64
    """Transcription requests held at once (running or waiting); beyond it: 503 + Retry-After."""
    allow_private_networks: bool = False
    """Let audio URLs point at loopback, private and link-local addresses (never at cloud
    metadata). Off by default: a public server must not fetch from its own network."""
    host: str = "127.0.0.1"
    """Address the server listens on."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    """Port the server listens on."""
    shutdown_timeout_s: Annotated[float, Field(ge=0)] = 25.0
    """On SIGTERM or SIGINT, how long requests and streams in flight get to finish before
    they are stopped (503, or close code 1012 on a stream); the server then exits with 0.
    25 s keeps the whole shutdown within the 30 s Kubernetes waits before it kills a pod."""
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """API keys accepted as ``Authorization: Bearer``; empty disables auth (comma-separated
    in the environment)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Logging verbosity."""

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value
