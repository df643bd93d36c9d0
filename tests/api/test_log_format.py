"""Log lines as JSON or text, each naming its request, job and API key from every thread."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import copy_context
from pathlib import Path
from typing import Any

import pytest

from waiting import joined
from whisperd.api.log_format import (
    JsonFormatter,
    LogContextFilter,
    TextFormatter,
    configure_logging,
)
from whisperd.api.middleware import REQUEST_ID
from whisperd.config import Settings
from whisperd.scheduler.batcher import Batcher, Call
from whisperd.service.log_context import JOB_ID, KEY_FINGERPRINT
from whisperd.testing.speech import espeak_available, speak

DATA = Path(__file__).parents[1] / "data"
LOGGERS = ("whisperd", "faster_whisper")


class JsonLines(logging.Handler):
    """Keeps every record as the server's JSON line, parsed back."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(LogContextFilter())
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        assert "\n" not in line
        with self._lock:
            self.lines.append(json.loads(line))

    def of(self, **fields: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [line for line in self.lines if fields.items() <= line.items()]


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    handler = JsonLines()
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in saved:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _record(message: str = "hello %s", *args: object) -> logging.LogRecord:
    return logging.LogRecord("whisperd.test", logging.INFO, __file__, 1, message, args, None)


def test_a_json_line_holds_the_message_and_its_context() -> None:
    def log() -> str:
        REQUEST_ID.set("req-1")
        JOB_ID.set("job_1")
        KEY_FINGERPRINT.set("0123456789ab")
        record = _record("hello %s", "world")
        LogContextFilter().filter(record)
        return JsonFormatter().format(record)

    line = json.loads(copy_context().run(log))
    assert line["message"] == "hello world"
    assert line["level"] == "INFO"
    assert line["logger"] == "whisperd.test"
    assert (line["request_id"], line["job_id"], line["key_fingerprint"]) == (
        "req-1",
        "job_1",
        "0123456789ab",
    )
    assert line["time"].endswith("Z")
    assert "exception" not in line


def test_outside_any_request_the_fields_are_null_in_json_and_dashes_in_text() -> None:
    record = _record()
    LogContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert (line["request_id"], line["job_id"], line["key_fingerprint"]) == (None, None, None)
    assert "INFO [- - -] whisperd.test: hello %s" in TextFormatter().format(_record())


def test_an_exception_is_kept_in_its_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "whisperd.test", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in line["exception"]


def test_a_batch_of_a_request_and_a_job_names_both(json_lines: JsonLines) -> None:
    def runner(kind: str, calls: Sequence[Call]) -> list[Any]:
        logging.getLogger("whisperd.engine.test").info("running %d calls", len(calls))
        return [call.payload for call in calls]

    batcher = Batcher(runner, max_wait_s=30)
    batcher.start()
    tickets = [batcher.ticket(), batcher.ticket()]
    for ticket in tickets:
        batcher.enter(ticket)  # both active: the worker waits to batch them together

    def request() -> None:
        REQUEST_ID.set("req-a")
        KEY_FINGERPRINT.set("aaaaaaaaaaaa")
        batcher.submit("encode", "k", 0, items=1, ticket=tickets[0])

    def job() -> None:
        JOB_ID.set("job_b")
        KEY_FINGERPRINT.set("bbbbbbbbbbbb")
        batcher.submit("encode", "k", 1, items=1, ticket=tickets[1])

    threads = [threading.Thread(target=copy_context().run, args=(f,)) for f in (request, job)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            joined(thread)
    finally:
        batcher.stop()
    (ran,) = json_lines.of(message="running 2 calls")
    assert ran["request_id"] == "req-a"
    assert ran["job_id"] == "job_b"
    assert ran["key_fingerprint"] == "aaaaaaaaaaaa,bbbbbbbbbbbb"
    assert ran["thread"].startswith("whisperd-scheduler")


def test_server_lines_from_every_thread_name_the_request_and_key(
    serve: Callable[[Settings], Any], settings_for: Callable[..., Settings], json_lines: JsonLines
) -> None:
    key = "sk-team-secret-1"
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:12]
    settings = settings_for(preload_model=False, api_keys=[key])
    with serve(settings) as running, running.http() as http:
        response = http.post(
            "/v1/audio/transcriptions?debug=secret-query",
            files={"file": ("speech.mp3", (DATA / "speech.mp3").read_bytes())},
            headers={"x-request-id": "req-42", "authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        text = response.json()["text"]
    mine = json_lines.of(request_id="req-42")

    def on(thread: str, logger: str) -> list[dict[str, Any]]:
        return [
            line
            for line in mine
            if line["thread"].startswith(thread) and line["logger"].startswith(logger)
        ]

    # The model loads on the loading pool, the decoding loop runs on a request thread
    # (faster-whisper's own lines), the model calls on a scheduler thread.
    assert on("whisperd-loading", "whisperd.engine"), mine
    assert on("whisperd-request", "faster_whisper"), mine
    assert on("whisperd-scheduler", "whisperd.scheduler"), mine
    assert [line for line in mine if line["key_fingerprint"] != fingerprint] == []
    access = json_lines.of(logger="whisperd.access", request_id="req-42")
    assert [line["message"].rsplit(" ", 2)[0] for line in access] == [
        "POST /v1/audio/transcriptions 200"
    ]
    assert access[0]["key_fingerprint"] == fingerprint
    everything = json.dumps(json_lines.lines)
    assert key not in everything
    assert "secret-query" not in everything
    info = json.dumps([line for line in json_lines.lines if line["level"] != "DEBUG"])
    assert text
    assert text not in info


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """Put back the root logger and the library loggers that configure_logging changes."""
    root = logging.getLogger()
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "faster_whisper")
    loggers = [logging.getLogger(name) for name in names]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for logger, (kept, kept_level, propagate) in zip(loggers, saved, strict=True):
        logger.handlers[:] = kept
        logger.setLevel(kept_level)
        logger.propagate = propagate


@pytest.mark.usefixtures("logging_restored")
def test_configure_logging_writes_uvicorn_and_faster_whisper_lines_as_json() -> None:
    stream = io.StringIO()
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(io.StringIO()))
    logging.getLogger().handlers.clear()  # as in a fresh process (pytest adds its own)
    configure_logging("info", "json", stream=stream)
    logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://127.0.0.1:8000")
    logging.getLogger("faster_whisper").info("Processing audio with duration %s", "00:05.000")
    logging.getLogger("whisperd.test").debug("not at info")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("uvicorn.error", "Uvicorn running on http://127.0.0.1:8000"),
        ("faster_whisper", "Processing audio with duration 00:05.000"),
    ]
    assert not logging.getLogger("uvicorn.error").handlers  # no second line, in another format


@pytest.mark.usefixtures("logging_restored")
def test_configure_logging_in_text_names_the_context() -> None:
    stream = io.StringIO()
    logging.getLogger().handlers.clear()  # as in a fresh process (pytest adds its own)
    configure_logging("info", "text", stream=stream)

    def log() -> None:
        REQUEST_ID.set("req-7")
        logging.getLogger("whisperd.test").info("hello")

    copy_context().run(log)
    assert stream.getvalue().rstrip().endswith("INFO [req-7 - -] whisperd.test: hello")


def test_serve_with_json_logs_writes_every_line_as_json(tmp_path: Path) -> None:
    broken = tmp_path / "broken"  # a model directory whose weights are not a model
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    (broken / "model.bin").write_bytes(b"not a model")
    command = [sys.executable, "-m", "whisperd", "serve", "--model", str(broken), "--port", "0"]
    done = subprocess.run(
        [*command, "--engine", "ctranslate2", "--device", "cpu", "--log-format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    *logged, error = done.stderr.strip().splitlines()
    assert error.startswith(f"error: The default model '{broken}' is not available")
    lines = [json.loads(line) for line in logged]
    assert any(
        line["logger"] == "uvicorn.error" and line["message"].startswith("Uvicorn running on")
        for line in lines
    ), lines
    failed = [line for line in lines if line["level"] == "ERROR"]
    assert [line["logger"] for line in failed] == ["whisperd.service.core"], lines
    assert {"request_id", "job_id", "key_fingerprint", "time", "thread"} <= failed[0].keys()


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_no_line_at_info_holds_the_words_of_real_speech(
    serve: Callable[[Settings], Any], real_model: Path, json_lines: JsonLines
) -> None:
    spoken = speak("She bought a red bicycle from the shop on the corner.")
    settings = Settings(
        _env_file=None, model=str(real_model), device="cpu", compute_type="int8", offline=True
    )
    with serve(settings) as running, running.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", spoken.wav_bytes())},
            data={"response_format": "json"},
            headers={"x-request-id": "req-real"},
        )
    assert response.status_code == 200, response.text
    assert "bicycle" in response.json()["text"].lower()
    assert json_lines.of(request_id="req-real", logger="faster_whisper")  # it did log
    info = [line for line in json_lines.lines if line["level"] != "DEBUG"]
    assert not [line for line in info if "bicycle" in json.dumps(line).lower()]
