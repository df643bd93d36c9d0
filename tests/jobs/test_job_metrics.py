"""Jobs in the metrics (submitted, running, finished by state) and in the log lines (job id and
key fingerprint on every line of an attempt)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from waiting import wait_until
from whisperd.api.log_format import JsonFormatter, LogContextFilter

KEY = "sk-jobs-1"
AUTH = {"authorization": f"Bearer {KEY}"}


def scrape(server: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = server.http.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def jobs(server: Any) -> dict[str, float]:
    samples = scrape(server)
    return {
        "submitted": samples.get(("whisperd_jobs_submitted_total", frozenset()), 0.0),
        "running": samples.get(("whisperd_jobs_running", frozenset()), 0.0),
        **{
            state: samples.get(("whisperd_jobs_finished_total", frozenset({("state", state)})), 0.0)
            for state in ("succeeded", "failed", "cancelled")
        },
    }


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(LogContextFilter())
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[Lines]:
    logger, handler = logging.getLogger("whisperd"), Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_job_is_counted_and_its_lines_name_it(
    job_server: Callable[..., Any], lines: Lines
) -> None:
    with job_server(api_keys=[KEY]) as server:
        assert jobs(server) == dict.fromkeys(
            ("submitted", "running", "succeeded", "failed", "cancelled"), 0.0
        )
        job_id = server.submit(key=KEY).json()["id"]
        assert server.submit(key=KEY).status_code == 202
        wait_until(lambda: server.job(job_id, KEY)["status"] == "succeeded", "no success")
        wait_until(lambda: jobs(server)["succeeded"] == 2, "both jobs were not counted")
        counted = jobs(server)
    assert counted == {
        "submitted": 2,
        "running": 0,
        "succeeded": 2,
        "failed": 0,
        "cancelled": 0,
    }
    mine = [line for line in lines.lines if line["job_id"] == job_id]
    assert any(line["message"] == f"Job {job_id}: succeeded" for line in mine), lines.lines
    fingerprint = hashlib.sha256(KEY.encode()).hexdigest()[:12]
    assert [line for line in mine if line["key_fingerprint"] != fingerprint] == []


def test_a_cancelled_job_is_counted_once(job_server: Callable[..., Any]) -> None:
    with job_server(api_keys=[KEY], max_running_jobs=0) as server:
        job_id = server.submit(key=KEY).json()["id"]
        assert server.http.delete(f"/v1/jobs/{job_id}", headers=AUTH).status_code == 200
        counted = jobs(server)
    assert counted["submitted"] == 1
    assert counted["cancelled"] == 1
    assert counted["succeeded"] == 0
