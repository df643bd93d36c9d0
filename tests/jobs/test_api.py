"""The jobs API on a fake-engine server: submit, poll, fetch every format, idempotency,
owners, pagination, cancellation, retention and every bad input."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from job_servers import DATA, SPEECH

from waiting import joined, wait_until
from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.audio.formats import render, to_json
from whisperd.engine.options import TranscribeOptions
from whisperd.testing import FakeEngine

Serve = Callable[..., Any]


def _expected(audio: bytes = SPEECH, **options: Any) -> Any:
    """What a fake engine makes of ``audio``: the transcript a fake-engine job must store."""
    samples = decode_audio(AudioSource(audio)).samples
    return FakeEngine().transcribe(samples, TranscribeOptions(**options))


def test_a_job_runs_and_its_result_comes_in_every_format(job_server: Serve) -> None:
    expected = _expected()
    with job_server() as server:
        response = server.submit(response_format="srt", metadata='{"ticket": 42}')
        assert response.status_code == 202, response.text
        job = response.json()
        assert (job["object"], job["status"], job["metadata"]) == (
            "transcription.job",
            "queued",
            {"ticket": 42},
        )
        done = server.finished(job["id"])
        assert done["status"] == "succeeded", done
        assert done["progress"] == {
            "done_seconds": round(expected.duration, 3),
            "total_seconds": expected.duration,
            "fraction": 1.0,
        }
        assert (done["attempts"], done["error"]) == (1, None)
        assert done["created_at"] <= done["started_at"] <= done["finished_at"]
        result = f"/v1/jobs/{job['id']}/result"
        default = server.http.get(result)
        assert default.text == render(expected, "srt")
        assert default.headers["content-type"] == "text/plain; charset=utf-8"
        assert server.http.get(result, params={"response_format": "json"}).json() == to_json(
            expected
        )
        for fmt in ("text", "vtt"):
            answer = server.http.get(result, params={"response_format": fmt})
            assert answer.text == render(expected, fmt)
        verbose = server.http.get(result, params={"response_format": "verbose_json"}).json()
        assert [s["text"] for s in verbose["segments"]] == [s.text for s in expected.segments]
        assert server.audio_files() == []


def test_words_asked_at_submission_come_with_the_result(job_server: Serve) -> None:
    expected = _expected(word_timestamps=True)
    with job_server() as server:
        job = server.submit(
            response_format="verbose_json", **{"timestamp_granularities[]": "word"}
        ).json()
        assert server.finished(job["id"])["status"] == "succeeded"
        verbose = server.http.get(f"/v1/jobs/{job['id']}/result").json()
        assert [w["word"] for w in verbose["words"]] == [w.word.strip() for w in expected.words]


def test_a_resubmission_with_the_same_idempotency_key_returns_the_same_job(
    job_server: Serve,
) -> None:
    with job_server(max_running_jobs=0) as server:
        headers = {"idempotency-key": "upload-7"}
        files = {"file": ("a.wav", SPEECH, "audio/wav")}
        first = server.http.post("/v1/jobs", files=files, headers=headers)
        again = server.http.post("/v1/jobs", files=files, headers=headers)
        other = server.http.post("/v1/jobs", files=files)
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.json()["id"] == first.json()["id"] != other.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert len(server.audio_files()) == 2
        listed = server.http.get("/v1/jobs").json()
        assert [job["id"] for job in listed["data"]] == [other.json()["id"], first.json()["id"]]


def test_pages_go_newest_first_with_a_cursor_and_a_status_filter(job_server: Serve) -> None:
    with job_server(max_running_jobs=0) as server:
        ids = [server.submit().json()["id"] for _ in range(5)]
        pages, after = [], None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"after": after} if after else {})}
            page = server.http.get("/v1/jobs", params=params).json()
            pages.append([job["id"] for job in page["data"]])
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
        queued = server.http.get("/v1/jobs", params={"status": "queued"}).json()
        assert len(queued["data"]) == 5
        assert server.http.get("/v1/jobs", params={"status": "succeeded"}).json()["data"] == []


def test_a_key_sees_only_its_own_jobs(job_server: Serve) -> None:
    with job_server(api_keys="key-a,key-b", max_running_jobs=0) as server:
        job = server.submit(key="key-a").json()
        b = {"authorization": "Bearer key-b"}
        assert server.http.get(f"/v1/jobs/{job['id']}", headers=b).status_code == 404
        assert server.http.get(f"/v1/jobs/{job['id']}/result", headers=b).status_code == 404
        assert server.http.delete(f"/v1/jobs/{job['id']}", headers=b).status_code == 404
        assert server.http.get("/v1/jobs", headers=b).json()["data"] == []
        mine = server.http.get("/v1/jobs", headers={"authorization": "Bearer key-a"}).json()
        assert [j["id"] for j in mine["data"]] == [job["id"]]
        assert server.job(job["id"], key="key-a")["status"] == "queued"
        assert server.http.get("/v1/jobs").status_code == 401


def test_cancelling_a_running_job_stops_it_and_deletes_its_audio(job_server: Serve) -> None:
    gate = threading.Event()  # closed: the fake engine holds every window after the first
    with job_server(gate=gate, job_lease_s=1.5) as server:
        job = server.submit(chunk_length=1).json()
        server.until(job["id"], lambda j: j["progress"]["done_seconds"] > 0, "first window")
        response = server.http.delete(f"/v1/jobs/{job['id']}")
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"
        assert server.audio_files() == []
        gate.set()
        wait_until(lambda: not server.app.state.jobs.runner.running, "the run stopped")
        after = server.job(job["id"])
        assert (after["status"], after["attempts"]) == ("cancelled", 1)
        result = server.http.get(f"/v1/jobs/{job['id']}/result")
        assert result.status_code == 409
        assert result.json()["error"]["code"] == "job_not_finished"
        # Deleting a finished job removes it.
        assert server.http.delete(f"/v1/jobs/{job['id']}").status_code == 200
        assert server.http.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_finished_jobs_are_deleted_after_the_ttl(job_server: Serve) -> None:
    with job_server(job_ttl=0.5) as server:
        job = server.submit().json()
        wait_until(
            lambda: server.http.get(f"/v1/jobs/{job['id']}").status_code == 404,
            "the job was not deleted",
        )
        assert server.audio_files() == []
        assert server.http.get(f"/v1/jobs/{job['id']}/result").status_code == 404


def test_audio_that_cannot_be_decoded_fails_the_job_at_once(job_server: Serve) -> None:
    with job_server() as server:
        job = server.submit((DATA / "not_audio.txt").read_bytes()).json()
        failed = server.finished(job["id"])
        assert (failed["status"], failed["attempts"]) == ("failed", 1)
        assert failed["error"]["type"] == "invalid_request_error"
        assert failed["error"]["param"] == "file"
        assert failed["error"]["message"]


def _error(response: Any) -> tuple[int, str | None, str | None]:
    error = response.json()["error"]
    return response.status_code, error["param"], error["code"]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"stream": "true"}, "stream"),
        ({"ask": "summarize it"}, "ask"),
        ({"metadata": "[1, 2]"}, "metadata"),
        ({"metadata": json.dumps({str(n): n for n in range(17)})}, "metadata"),
        ({"task": "summarize"}, "task"),
        ({"webhook_url": "https://example.com/hook"}, "webhook_url"),
        ({"beam_size": "0"}, "beam_size"),
    ],
)
def test_bad_submissions_are_refused_and_keep_nothing(
    job_server: Serve, fields: dict[str, str], param: str
) -> None:
    with job_server(max_running_jobs=0) as server:
        response = server.submit(**fields)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
        assert server.audio_files() == []
        assert server.http.get("/v1/jobs").json()["data"] == []


def test_bad_reads_are_refused(job_server: Serve) -> None:
    with job_server(max_running_jobs=0) as server:
        assert _error(server.http.get("/v1/jobs/job_nope")) == (404, "job_id", "job_not_found")
        assert _error(server.http.delete("/v1/jobs/job_nope"))[0] == 404
        queued = server.submit().json()["id"]
        assert _error(server.http.get(f"/v1/jobs/{queued}/result"))[0] == 409
        assert server.http.get("/v1/jobs", params={"limit": 0}).status_code == 400
        assert server.http.get("/v1/jobs", params={"status": "lost"}).status_code == 400
        no_file = server.http.post("/v1/jobs", data={"model": "whisper-1"})
        assert _error(no_file)[:2] == (400, "file")
    with job_server() as server:
        done = server.submit().json()["id"]
        assert server.finished(done)["status"] == "succeeded"
        result = f"/v1/jobs/{done}/result"
        assert _error(server.http.get(result, params={"response_format": "docx"})) == (
            400,
            "response_format",
            "invalid_option",
        )
        words = {"response_format": "verbose_json", "timestamp_granularities[]": "word"}
        assert _error(server.http.get(result, params=words))[:2] == (
            400,
            "timestamp_granularities",
        )


def test_without_a_data_directory_the_jobs_api_is_off(job_server: Serve) -> None:
    with job_server(data_dir=None) as server:
        response = server.http.get("/v1/jobs")
        assert _error(response) == (503, None, "job_store_unavailable")
        assert "WHISPERD_DATA_DIR" in response.json()["error"]["message"]


def test_audio_from_a_url_or_base64_is_spooled_before_the_answer(job_server: Serve) -> None:
    directory = str(DATA)

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=directory, **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=files.serve_forever, daemon=True)
    thread.start()
    expected = _expected()
    try:
        with job_server(allow_private_networks=True, max_running_jobs=0) as server:
            url = f"http://127.0.0.1:{files.server_address[1]}/speech.wav"
            by_url = server.http.post("/v1/jobs", data={"audio_url": url})
            encoded = base64.b64encode(SPEECH).decode()
            by_base64 = server.http.post("/v1/jobs", data={"audio_base64": encoded})
            assert (by_url.status_code, by_base64.status_code) == (202, 202)
            spooled = [(server.data_dir / "audio" / name) for name in server.audio_files()]
            assert sorted(path.read_bytes() for path in spooled) == [SPEECH, SPEECH]
        with job_server(allow_private_networks=True) as server:
            for job in (by_url.json(), by_base64.json()):
                assert server.finished(job["id"])["status"] == "succeeded"
                result = server.http.get(f"/v1/jobs/{job['id']}/result").json()
                assert result == to_json(expected)
    finally:
        files.shutdown()
        files.server_close()
        joined(thread)
