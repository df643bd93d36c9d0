"""Schema fuzzing: requests generated from ``/openapi.json`` never get a 5xx.

schemathesis reads the app's OpenAPI document and sends every operation requests built from
its schemas, both ones that fit them (positive) and ones that break them (negative). The app
runs in process on the scripted random-weight model (real CTranslate2 decoding), so a hostile
option that gets past validation reaches the decoder as it would in production. The budget is
fixed (:data:`MAX_EXAMPLES` per operation and mode, derandomized) so the job stays bounded and
repeatable.

Audio: schemathesis fills ``file``, ``audio`` and ``audio_data`` with random bytes (or leaves
them out), which only exercises the refusals of missing or undecodable audio; every other
example carries a recording of speech as its audio instead, so the options sent with it reach
the model.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans

from whisperd.app import create_app
from whisperd.config import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from schemathesis import Case
    from schemathesis.schemas import APIOperation, BaseSchema

    from whisperd.testing import ScriptedModel

MAX_EXAMPLES = 15
"""Examples per operation and generation mode."""

_AUDIO_FIELDS = {
    "/v1/audio/transcriptions": "file",
    "/v1/audio/translations": "file",
    "/v1/audio/language": "file",
    "/v1/jobs": "file",
    "/transcribe": "audio",
    "/transcribe/raw": "audio_data",
}
"""The field that carries the audio, by path of the operations that take audio."""
_OTHER_SOURCES = ("audio_url", "audio_base64")
SPEECH = Path(__file__).parents[1] / "data" / "speech.wav"


def _speech() -> bytes:
    """A short spoken sentence (WAV), so that VAD, when the example leaves it on, keeps audio
    for the model to decode."""
    return SPEECH.read_bytes()


@pytest.fixture
def api_schema(scripted_model: ScriptedModel, tmp_path: Path) -> Iterator[BaseSchema]:
    """The app's own OpenAPI document, wired to a fresh app in process (schemathesis runs the
    app's lifespan on its first request; it is ended here). Every API is on: the jobs API
    keeps its jobs under a temporary data directory. Each example is answered before the
    next is sent (one request at a time)."""
    settings = Settings(
        _env_file=None,
        model=str(scripted_model.path),
        device="cpu",
        compute_type="int8",
        offline=True,
        max_upload_mb=1,
        data_dir=tmp_path / "data",
        # Jobs are accepted and stored but not run: a job's failure is no response to check,
        # and its decoding would only load the machine.
        max_running_jobs=0,
        # No 503 for a wait estimated from a loaded machine's speed: a test run must not
        # depend on how busy the machine is.
        max_queue_wait_s=math.inf,
    )
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    shutdown_lifespans()


def _with_real_audio(case: Case) -> None:
    """Make ``case`` carry the recording of speech as its only audio, if its operation takes
    audio."""
    field = _AUDIO_FIELDS.get(case.operation.path)
    if field is None or case.operation.method.upper() != "POST":
        return
    body = case.body if isinstance(case.body, dict) else {}
    for name in _OTHER_SOURCES:
        body.pop(name, None)
    speech = _speech()
    body[field] = base64.b64encode(speech).decode() if field == "audio_data" else speech
    case.body = body


def _summary(case: Case) -> str:
    """What a failing case sent, short enough to read (bodies hold whole audio files)."""
    body = case.body
    if isinstance(body, dict):
        body = {
            key: value if len(repr(value)) < 200 else f"<{len(repr(value))} characters>"
            for key, value in body.items()
        }
    return repr({"query": case.query, "path": case.path_parameters, "body": body})[:2000]


def _server_errors(operation: APIOperation, mode: GenerationMode) -> list[str]:
    """Send ``operation`` its examples; what each one answered with a 5xx sent."""
    found: list[str] = []
    examples = itertools.count()

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def send(case: Case) -> None:
        if next(examples) % 2 == 0:
            _with_real_audio(case)
        response = case.call()
        if response.status_code >= 500:
            found.append(f"{response.status_code} {response.text[:200]!r} for {_summary(case)}")

    # An operation with nothing to break (a GET without parameters) has no negative case.
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        send()
    return found


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(api_schema: BaseSchema, mode: GenerationMode) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        failures.extend(
            f"{operation.label}: {failure}" for failure in _server_errors(operation, mode)
        )
    assert not failures, "\n".join(failures)
