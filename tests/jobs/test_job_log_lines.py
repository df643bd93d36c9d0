"""The job routes name their job in the ``job_id`` field of their log lines."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from whisperd.api.log_format import JsonFormatter, LogContextFilter
from whisperd.service.log_context import JOB_ID

Serve = Callable[..., Any]


class JsonLines(logging.Handler):
    """Every record as the server's JSON line, parsed back."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(LogContextFilter())
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = json.loads(self.format(record))
        with self._lock:
            self.lines.append(line)

    def access(self, request_id: str) -> dict[str, Any]:
        """The one access line of the request ``request_id``."""
        with self._lock:
            found = [
                line
                for line in self.lines
                if line["logger"] == "whisperd.access" and line["request_id"] == request_id
            ]
        assert len(found) == 1, self.lines
        return found[0]


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    handler = JsonLines()
    logger = logging.getLogger("whisperd")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_job_routes_name_the_job_in_their_lines_and_in_the_route(
    job_server: Serve, json_lines: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str | None]] = []
    with job_server() as server:
        job_id = server.submit().json()["id"]
        assert server.finished(job_id)["status"] == "succeeded"
        jobs = server.app.state.jobs
        for name in ("get", "transcript", "delete", "list", "submit"):
            original = getattr(jobs, name)

            async def spy(
                *args: Any, _name: str = name, _original: Any = original, **kwargs: Any
            ) -> Any:
                seen.append((_name, JOB_ID.get()))
                return await _original(*args, **kwargs)

            monkeypatch.setattr(jobs, name, spy)

        def call(method: str, path: str, request_id: str) -> int:
            headers = {"x-request-id": request_id}
            return server.http.request(method, path, headers=headers).status_code

        assert call("GET", f"/v1/jobs/{job_id}", "req-get") == 200
        assert call("GET", f"/v1/jobs/{job_id}/result", "req-result") == 200
        assert call("DELETE", f"/v1/jobs/{job_id}", "req-delete") == 200
        assert call("GET", "/v1/jobs/job_missing", "req-missing") == 404
        assert call("GET", "/v1/jobs", "req-list") == 200
        assert server.submit().status_code == 202  # on the same keep-alive connection

    # Inside each route (and the pool threads it uses) the job is the context's.
    routes = [(name, value) for name, value in seen if name not in ("list", "submit")]
    assert {name for name, _ in routes} == {"get", "transcript", "delete"}
    assert {value for _, value in routes[:-1]} == {job_id}
    assert routes[-1] == ("get", "job_missing")
    # ...and only there: the routes after them, on the same connection, name no job.
    assert [(name, value) for name, value in seen if name in ("list", "submit")] == [
        ("list", None),
        ("submit", None),
    ]
    # The access line of each job route names its job; the listing names none.
    for request_id, expected in (
        ("req-get", job_id),
        ("req-result", job_id),
        ("req-delete", job_id),
        ("req-missing", "job_missing"),
        ("req-list", None),
    ):
        line = json_lines.access(request_id)
        assert line["job_id"] == expected, line
    assert json_lines.access("req-missing")["message"].startswith("GET /v1/jobs/{job_id} 404")
    # The submission's access line names no job: its id is made inside the route.
    submitted = [
        line
        for line in json_lines.lines
        if line["logger"] == "whisperd.access" and line["message"].startswith("POST /v1/jobs ")
    ]
    assert [line["job_id"] for line in submitted] == [None, None]
