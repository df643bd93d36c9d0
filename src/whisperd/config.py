"""Settings: the only reader of the environment.

Every field can be set as ``WHISPERD_<NAME>`` (for example ``WHISPERD_MODEL=small``), from a
``.env`` file in the working directory, or by the matching command-line flag, which wins.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
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
        allow_inf_nan=False,  # WHISPERD_MAX_UPLOAD_MB=inf (or nan, 1e309) is refused
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
    """Threads per model call on CPU (0: CTranslate2's default). Unless this or
    ``num_workers`` is set, CTranslate2 on the CPU runs one one-thread model call per core at
    once (at most 4 calls, the cores shared evenly beyond that): see
    ``service/loading.py``'s ``model_threads``."""
    num_workers: Annotated[int, Field(ge=1)] = 1
    """Model replicas sharing the weights (parallel model calls). Unless this or
    ``cpu_threads`` is set, on the CPU: one per core, at most 4 (see ``cpu_threads``)."""
    max_batch_size: Annotated[int, Field(ge=1, le=256)] = 8
    """Most windows (from any requests) encoded or decoded in one model call. Unless set, for
    CTranslate2 on the CPU 1 with several workers (the default there) and 2 with one: there a
    merged call costs about the sum of its parts, while its memory grows with windows times
    beams (each beam keeps the encoder's keys and values of its window), so merging 8 short
    requests at beam 5 took tiny.en from 350 to 1,050 MiB for no throughput
    (docs/benchmarks.md). A request's own batch of VAD chunks (``batch_size``)
    still runs whole. The torch engine decodes continuously instead: see
    ``max_decode_rows``."""
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
    max_queue_wait_s: Annotated[float, Field(gt=0, allow_inf_nan=True)] = 30.0
    """Longest estimated wait (queued audio over the measured speed, in seconds) a new request
    is admitted to; beyond it 503 with ``Retry-After``. Half of the 60 s that common clients and
    reverse proxies wait, leaving room for the request's own work. ``inf`` disables it (the one
    setting that takes it; ``nan`` is refused)."""
    max_streams: Annotated[int, Field(ge=1)] = 64
    """Real-time WebSocket streams open at once; beyond it new streams are refused."""
    stream_final_encoder_context: Literal["window", "audio"] = "audio"
    """How stream finals are encoded (``TranscribeOptions.encoder_context``): ``audio`` (only
    the final's own audio, its encoding completed to a window with the padding's: on tiny.en
    and a CPU, context-free finals at 0.4x the CPU of ``window`` with fewer words lost, finals
    with 20 s of context at 0.75x with the same words; docs/benchmarks.md) or ``window``
    (padded to 30 s, as Whisper was trained, and as the batch routes decode). Partials always
    encode only the utterance."""
    stream_final_context_s: Annotated[float, Field(ge=0.0, le=20.0)] = 20.0
    """Most seconds of a stream's previous finals decoded again with each final, so a short
    utterance is heard inside a longer window as the batch route hears it (0: each final hears
    only its utterance). 20 s: the batch route's words on tiny.en, at about 4x the time per
    final of 0 s; lower it to serve more streams per CPU core (docs/benchmarks.md)."""
    stream_final_latency_target_s: Annotated[float, Field(ge=0.0)] = 1.0
    """Seconds from the end of speech to a stream's final that each final's context is chosen
    to fit: the stream learns what its finals' decodes cost per second of audio (the machine's
    load included), and a final hears as much context as the time it has left affords (none
    once it has waited that long). So one stream on an idle fast server (a GPU) gets the whole
    context, one on a small CPU about 10 s of it (tiny.en), and many streams stay in real
    time. 0: every final gets the whole context, whatever the load."""
    stream_merge_queued_finals: bool = True
    """A stream's finals queued behind the one about to be decoded (its finals come slower
    than its speech, as on an overloaded server) are decoded with it as one 30 s window, each
    utterance keeping its own words: one encoding for several utterances, so a stream that
    falls behind catches up. Off: every final is decoded on its own."""
    stream_skip_silent_tails: bool = True
    """A stream final whose words end within its trailing silence (the VAD heard the speech
    stop) leaves the rest undecoded; faster-whisper decodes every leftover after a window's last
    word as a 30 s window of its own, which for an utterance is mostly silence and doubled
    the final's cost (docs/benchmarks.md). Off: every leftover is decoded."""
    stream_stable_partials: bool = False
    """Let partials make words stable (two agreeing partials, four words held back): stable
    text and Realtime deltas come while the person speaks, but greedy guesses forced into the
    finals cost words (about 1.3x the batch route's WER on tiny.en, docs/benchmarks.md). Off:
    an utterance's words become stable with its final, as the batch route would decode them."""
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
    model_ttl: Annotated[float | None, Field(ge=0)] = None
    """Seconds a model may stay unused (no request or stream holding it) before it is
    unloaded and its memory freed; the next request for it loads it again. Unset: models stay
    loaded. The default model is never unloaded for being idle."""
    max_loaded_models: Annotated[int, Field(ge=0)] = 0
    """Most engines (a model on one device and compute type) loaded at once: loading one more
    first unloads the least recently used idle one (never the default model; when every other
    one is in use, the new one loads anyway and the excess goes as soon as one is idle).
    0: no limit."""
    allowed_models: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["known"])
    """Models clients may ask for, comma-separated in the environment: ``known`` (every name,
    alias and repository of the catalogue: tiny ... large-v3-turbo, distil-*), names, Hugging
    Face repo ids or model directories, each with shell wildcards (``Systran/*``, which a
    table model matches by its repository too); ``*`` allows any. The default model is always
    allowed; others are refused with 404 ``model_not_found`` (400 on the native API) and not
    listed by ``/v1/models``."""
    hf_endpoint: str | None = None
    """Hugging Face Hub endpoint (a mirror); default: the public Hub."""
    max_audio_seconds: Annotated[float, Field(gt=0)] = 4 * 3600.0
    """Longest audio accepted, in seconds of decoded audio."""
    max_decoded_audio_seconds: Annotated[float, Field(gt=0)] = 8 * 3600.0
    """Decoded audio (in seconds) held in memory at once by all requests together, from the
    start of each decode to the end of its transcription: 230 MB per hour (16 kHz float32), so
    1.8 GB by default, room for two requests of the longest audio accepted. Beyond it new work
    gets 503 + Retry-After; one request alone is always admitted."""
    max_upload_mb: Annotated[float, Field(gt=0)] = 25.0
    """Largest request body accepted on the transcription routes, in MiB (OpenAI's is 25)."""
    max_pending_requests: Annotated[int, Field(ge=1)] = 64
    """Transcription requests held at once (running or waiting); beyond it: 503 + Retry-After."""
    malloc_arenas: Annotated[int, Field(ge=0, le=64)] = 2
    """Most glibc malloc arenas the process creates (``M_ARENA_MAX``; 0: glibc's own limit,
    eight per core). Each thread that allocates while others do gets an arena of its own, and
    freed model buffers stay in it: under 16 concurrent requests two arenas held 140 MiB less
    than the default, at the same speed (docs/benchmarks.md). Ignored off glibc."""
    allow_private_networks: bool = False
    """Let audio URLs and job webhook URLs point at loopback, private and link-local addresses
    (never at cloud metadata). Off by default: a public server must not reach its own network."""
    webhook_secret: SecretStr | None = None
    """Signing secret of job webhooks (Standard Webhooks): ``whsec_`` then the base64 of 24 to
    64 random bytes; the receivers verify with it, and every server sharing a job database
    needs the same one. Unset: jobs that ask for a ``webhook_url`` are refused (400). Make one
    with ``python -c "import base64, secrets; print('whsec_' +
    base64.b64encode(secrets.token_bytes(32)).decode())"``."""
    webhook_max_attempts: Annotated[int, Field(ge=1, le=50)] = 8
    """Attempts to deliver one job webhook before giving up."""
    webhook_first_delay_s: Annotated[float, Field(ge=0)] = 5.0
    """Wait before a webhook's second attempt; each later wait doubles (with jitter)."""
    webhook_max_delay_s: Annotated[float, Field(ge=0)] = 600.0
    """Longest wait between two webhook attempts (a receiver's Retry-After included)."""
    webhook_timeout_s: Annotated[float, Field(gt=0)] = 15.0
    """Seconds a webhook receiver has to answer one attempt (connecting included)."""
    llm_url: str | None = None
    """Base URL of an OpenAI-compatible chat completions API (Ollama
    ``http://127.0.0.1:11434/v1``, vLLM, llama.cpp, FastFlowLM) that ``ask`` and
    ``whisperd transcribe --ask`` send the transcript to. Unset: ``ask`` is refused (400)."""
    llm_model: str | None = None
    """Model name to ask at ``llm_url``; unset: the first model its ``/models`` lists."""
    llm_api_key: SecretStr | None = None
    """API key of ``llm_url`` (sent as ``Authorization: Bearer``), if it needs one."""
    llm_timeout_s: Annotated[float, Field(gt=0)] = 120.0
    """Seconds one LLM call may take (connecting included) before ``ask`` gives up on it."""
    llm_context_tokens: Annotated[int, Field(ge=1024, le=10_000_000)] = 8192
    """The LLM's context window, in tokens estimated from characters (4 per token for ASCII,
    1 for any other character): a quarter is kept for the answer, and a transcript longer than
    what is left is asked about in parts whose answers are then combined (map-reduce)."""
    data_dir: Path | None = None
    """Where durable jobs (``/v1/jobs``) keep their database and spooled audio; None: the
    jobs API is off. It must be writable, on a local disk (SQLite's WAL needs one host)."""
    database_url: str | None = None
    """The job database: ``sqlite:///PATH`` or ``postgresql://...``; None: the SQLite file
    ``jobs.sqlite3`` in ``data_dir``."""
    job_ttl: Annotated[float, Field(gt=0)] = 7 * 86400.0
    """Seconds a finished job, its audio and its result are kept before they are deleted."""
    job_lease_s: Annotated[float, Field(gt=0)] = 30.0
    """A running job's lease, renewed by its server's heartbeat (every third of it, or every
    2 s if sooner); a job whose server died is taken up again (here or by another server)
    once it expires."""
    job_max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    """Attempts at a job before it ends ``failed`` (bad input fails at the first)."""
    max_running_jobs: Annotated[int, Field(ge=0)] = 2
    """Jobs this server transcribes at once, at bulk priority behind interactive requests;
    0: this server accepts and serves jobs but runs none (another server runs them)."""
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
    log_format: Literal["text", "json"] = "text"
    """How ``whisperd serve`` writes log lines (whisperd's, uvicorn's, faster-whisper's) to
    standard error: ``text``, or ``json`` (one object per line: time, level, logger, message,
    request_id, job_id, key_fingerprint, thread)."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins of browser apps allowed to call the API (CORS), as ``scheme://host[:port]``,
    comma-separated in the environment; ``*`` allows any origin. Empty: no cross-origin
    browser calls."""
    metrics_port: Annotated[int | None, Field(ge=1, le=65535)] = None
    """Serve ``/metrics`` on this port of the same host instead, without an API key (for a
    Prometheus on a private network); the main port then has no ``/metrics``. Unset: the main
    port serves it, behind the API key when keys are set."""
    otel_endpoint: str | None = None
    """OpenTelemetry: the OTLP/HTTP base URL of a collector (``http://collector:4318``, what
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` holds; spans go to its ``/v1/traces``). Set: every HTTP
    request and WebSocket is traced with FastAPI's instrumentation (needs the ``otel``
    extra: ``pip install 'whisperd[otel]'``). Unset: no tracing."""
    otel_service_name: Annotated[str, Field(min_length=1)] = "whisperd"
    """OpenTelemetry: the ``service.name`` of this server's spans."""
    replica_name: str | None = None
    """A name for this server, sent in the ``X-Whisperd-Replica`` header of every answer and
    shown by ``/status`` (``--ray`` sets it to each replica's id, and labels each replica's
    ``/metrics`` with it). Unset: no header."""
    ray: bool = False
    """Serve through Ray Serve (the ``ray`` extra: ``pip install 'whisperd[ray]'``): Ray's
    proxy listens on ``host:port`` and spreads requests and streams over ``replicas`` copies of
    this server, each with its own model (docs/ray.md)."""
    ray_address: str | None = None
    """The Ray cluster to deploy to (``ray://head:10001``, or ``auto`` for the cluster that
    ``ray start`` runs on this machine). Unset: a Ray instance of its own on this machine."""
    replicas: Annotated[int, Field(ge=1, le=1024)] = 1
    """``--ray``: replicas to run, or the fewest when ``max_replicas`` is set."""
    max_replicas: Annotated[int | None, Field(ge=1, le=1024)] = None
    """``--ray``: autoscale between ``replicas`` and this many replicas by ongoing requests
    (``replica_target_requests`` per replica). Unset: always ``replicas``."""
    replica_target_requests: Annotated[float, Field(gt=0, le=10_000)] = 4.0
    """``--ray`` with ``max_replicas``: ongoing requests and streams per replica the
    autoscaler aims at."""
    replica_gpus: Annotated[float, Field(ge=0, le=64)] = 0.0
    """``--ray``: GPUs each replica reserves (fractions share one: 0.5 puts two replicas on a
    GPU); 0: CPU replicas."""
    replica_cpus: Annotated[float, Field(ge=0, le=1024)] = 1.0
    """``--ray``: CPU cores each replica reserves on its node."""

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        return [check_cors_origin(origin) for origin in value]

    @field_validator("otel_endpoint")
    @classmethod
    def _check_otel_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", value):
            raise ValueError(
                f"{value!r} is not an OTLP/HTTP endpoint: write http(s)://host:port, "
                "like http://collector:4318"
            )
        return value.removesuffix("/") if value is not None else None

    @field_validator("metrics_port")
    @classmethod
    def _check_metrics_port(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value == info.data.get("port"):
            raise ValueError("the metrics port must differ from the server's port")
        return value

    @field_validator("max_replicas")
    @classmethod
    def _check_max_replicas(cls, value: int | None, info: ValidationInfo) -> int | None:
        fewest = info.data.get("replicas")
        if value is not None and fewest is not None and value < fewest:
            raise ValueError(f"max_replicas ({value}) is below replicas ({fewest})")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_webhook_secret(value.get_secret_value())
        return value

    @field_validator("api_keys", "allowed_models", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value


class ClientSettings(BaseSettings):
    """What ``whisperd transcribe --server`` reads from the environment (not server settings:
    ``whisperd serve`` has no flag for them)."""

    model_config = SettingsConfigDict(
        env_prefix="WHISPERD_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        use_attribute_docstrings=True,
    )

    api_key: SecretStr | None = None
    """The API key sent to the server (``WHISPERD_API_KEY``); ``--api-key`` wins, but shows
    the key in the process list."""


def export_to_children(name: str, value: str) -> None:
    """Set the environment variable ``name`` of this process for the processes it starts
    (Ray's, under ``whisperd serve --ray``), unless it is already set: the user's value wins.
    Here because this module is the only one that touches the environment."""
    os.environ.setdefault(name, value)


WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
"""How a Standard Webhooks HMAC secret starts (the spec's "secret serialization")."""


def check_webhook_secret(secret: str) -> None:
    """Refuse a webhook signing secret that is not ``whsec_`` + base64 of 24 to 64 bytes.

    The Standard Webhooks specification asks for at least 24 random bytes (192 bits);
    receivers' libraries read the same ``whsec_`` form.

    Raises:
        ValueError: naming what is wrong, never quoting the secret.
    """
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError(f"the webhook secret must start with {WEBHOOK_SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret is not valid base64 after 'whsec_'") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"the webhook secret holds {len(key)} bytes; 24 to 64 are needed")


_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#@\s]+")


def check_cors_origin(origin: str) -> str:
    """An allowed CORS origin in the form browsers send it in ``Origin`` (RFC 6454): scheme,
    host and optional port, lower case, no path (one trailing ``/`` is dropped); or ``*``.

    Raises:
        ValueError: naming the origin, if it has a path, query, user or no scheme.
    """
    if origin == "*":
        return origin
    normal = origin.removesuffix("/").lower()
    if not _ORIGIN.fullmatch(normal):
        raise ValueError(
            f"{origin!r} is not an origin: write scheme://host[:port] with no path, "
            "like https://app.example.com, or * for any"
        )
    return normal
