"""Domain exceptions.

Every error a user can cause or meet derives from :class:`WhisperdError` and carries a message
meant to be shown as is, plus a stable machine-readable ``code`` and, where it applies, the
``param`` (request field) at fault. The HTTP layers map these classes to status codes and their
own envelopes in one place each; nothing below the API knows about HTTP.

Hierarchy::

    WhisperdError
    ├── InvalidOptionError            a decoding option is out of range or unsupported
    ├── AudioError                    the audio cannot be used
    │   ├── EmptyAudioError           zero bytes, or no samples decoded
    │   ├── AudioTooShortError        shorter than the 0.1 s OpenAI accepts
    │   ├── UnsupportedAudioError     not a container or format we accept
    │   ├── CorruptAudioError         unreadable, or damaged beyond the error budget
    │   ├── TruncatedAudioError       ends before the length its header declares
    │   ├── AudioTooLongError         longer than the configured cap
    │   └── TorchUnavailableError     a PyTorch tensor was sent but torch is not installed
    ├── ModelError                    the model cannot be had
    │   ├── UnknownModelError         a name that is neither known, a repo id, nor a directory
    │   │   └── ModelNotAllowedError  a model this server does not let clients ask for
    │   ├── ModelUnavailableError     known, but cannot be downloaded or loaded
    │   └── ModelNotLoadedError       an unload asked for a model that is not loaded
    ├── TranscriptionError            the engine failed while decoding
    ├── CancelledError                the client went away; remaining work was dropped
    ├── QueueFullError                the server is at capacity; retry later
    ├── ShuttingDownError             the server is draining before it stops
    ├── UrlError                      audio given as a URL cannot be fetched
    │   ├── UrlBlockedError           scheme, port or address not allowed (SSRF guard)
    │   ├── UrlTooLargeError          the body is over the upload limit
    │   ├── UrlTimeoutError           the server was too slow
    │   └── UrlFetchError             connection failed or the server answered an error
    ├── InvalidWebhookUrlError        a job's webhook_url is refused, or webhooks are off
    ├── LlmError                      the LLM asked about a transcript gave no answer
    │   └── LlmRefusedError           it answered, but without an answer (empty, a refusal)
    ├── JobsError                     durable jobs
    │   ├── JobNotFoundError          no job of that id (for this API key)
    │   ├── JobNotFinishedError       a job's result was asked for before it succeeded
    │   ├── StorageFullError          the data directory is full; nothing was stored
    │   └── JobStoreUnavailableError  the job database or data directory cannot be used
    └── StartupError                  the server cannot start as configured
"""

from __future__ import annotations


class WhisperdError(Exception):
    """Base class of every whisperd error shown to users."""

    code: str = "whisperd_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def __str__(self) -> str:
        return self.message


class InvalidOptionError(WhisperdError):
    """A decoding option is out of range, malformed, or unsupported by the chosen model."""

    code = "invalid_option"


class AudioError(WhisperdError):
    """The audio input cannot be used."""

    code = "invalid_audio"

    def __init__(self, message: str, *, param: str | None = "file") -> None:
        super().__init__(message, param=param)


class EmptyAudioError(AudioError):
    """The input holds no bytes, or no audio samples could be decoded from it."""

    code = "empty_audio"


class AudioTooShortError(AudioError):
    """The decoded audio is shorter than the minimum length (0.1 s, as OpenAI's API refuses
    with code ``audio_too_short``)."""

    code = "audio_too_short"


class UnsupportedAudioError(AudioError):
    """The input is not in a container or encoding that whisperd accepts."""

    code = "unsupported_audio"


class CorruptAudioError(AudioError):
    """The input is unreadable or damaged beyond the tolerated share of bad packets."""

    code = "corrupt_audio"


class TruncatedAudioError(AudioError):
    """The input ends well before the duration its own header declares."""

    code = "truncated_audio"


class AudioTooLongError(AudioError):
    """The decoded audio is longer than the configured maximum duration."""

    code = "audio_too_long"


class TorchUnavailableError(AudioError):
    """A PyTorch tensor was sent, but PyTorch is not installed on this server."""

    code = "torch_unavailable"


class ModelError(WhisperdError):
    """The requested model cannot be had."""

    code = "model_error"

    def __init__(self, message: str, *, param: str | None = "model") -> None:
        super().__init__(message, param=param)


class UnknownModelError(ModelError):
    """The name is not a known model, a Hugging Face repo id, or a local model directory."""

    code = "model_not_found"


class ModelNotAllowedError(UnknownModelError):
    """The model exists but is not on the server's allow-list (``allowed_models``): answered
    as a model that does not exist (OpenAI: 404 ``model_not_found``; native API: 400)."""


class ModelUnavailableError(ModelError):
    """The model is known but cannot be downloaded or loaded."""

    code = "model_unavailable"


class ModelNotLoadedError(ModelError):
    """An unload asked for a model that is not loaded (404)."""

    code = "model_not_loaded"


class TranscriptionError(WhisperdError):
    """The engine failed while decoding (for example out of memory)."""

    code = "transcription_failed"


class CancelledError(WhisperdError):
    """The caller went away (for example a disconnected client); its remaining work was dropped."""

    code = "cancelled"


class QueueFullError(WhisperdError):
    """The server holds as much work as it accepts; the caller should retry later."""

    code = "server_busy"

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShuttingDownError(WhisperdError):
    """The server is draining before it stops and takes no new work."""

    code = "shutting_down"


class UrlError(WhisperdError):
    """Audio given as a URL cannot be fetched."""

    code = "url_error"

    def __init__(self, message: str, *, param: str | None = "file") -> None:
        super().__init__(message, param=param)


class UrlBlockedError(UrlError):
    """The URL's scheme, port, credentials or resolved address is not allowed."""

    code = "url_blocked"


class UrlTooLargeError(UrlError):
    """The fetched body is larger than the upload limit."""

    code = "url_too_large"


class UrlTimeoutError(UrlError):
    """The remote server did not answer (or finish sending) in time."""

    code = "url_timeout"


class UrlFetchError(UrlError):
    """The connection failed, or the remote server answered with an error status."""

    code = "url_http_error"


class LlmError(WhisperdError):
    """The LLM that ``ask`` sends a transcript to is unreachable, too slow, or answered an
    error status (the transcript itself is never lost to it)."""

    code = "llm_unavailable"

    def __init__(self, message: str, *, param: str | None = "ask") -> None:
        super().__init__(message, param=param)


class LlmRefusedError(LlmError):
    """The LLM answered without an answer: no text, or a refusal."""

    code = "llm_refused"


class InvalidWebhookUrlError(WhisperdError):
    """A job's ``webhook_url`` is refused (scheme, credentials, internal address), or this
    server sends no webhooks (no ``WHISPERD_WEBHOOK_SECRET``)."""

    code = "invalid_webhook_url"

    def __init__(self, message: str, *, param: str | None = "webhook_url") -> None:
        super().__init__(message, param=param)


class JobsError(WhisperdError):
    """A durable job cannot be had or stored."""

    code = "jobs_error"


class JobNotFoundError(JobsError):
    """No job has that id, or it belongs to another API key."""

    code = "job_not_found"

    def __init__(self, message: str, *, param: str | None = "job_id") -> None:
        super().__init__(message, param=param)


class JobNotFinishedError(JobsError):
    """The job's result was asked for while it is queued or running, or after it failed."""

    code = "job_not_finished"


class StorageFullError(JobsError):
    """The data directory has no room for the job's audio; nothing of it was kept."""

    code = "insufficient_storage"


class JobStoreUnavailableError(JobsError):
    """The job database or the data directory cannot be opened, read or written."""

    code = "job_store_unavailable"


class StartupError(WhisperdError):
    """``whisperd serve`` cannot start as configured: a port it cannot bind (the metrics
    port), or tracing asked for without the ``otel`` extra. Raised before it serves a request;
    the command line prints it and exits with 2."""

    code = "startup_failed"
