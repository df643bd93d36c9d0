"""A job's end reaches its webhook: one signed event per job, its attempts shown on the job."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from waiting import joined, wait_until

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A local webhook receiver: its URL and what it received."""
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
        joined(thread)


def _events(received: list[tuple[dict[str, str], bytes]]) -> list[dict[str, Any]]:
    verifier = Webhook(SECRET)
    return [verifier.verify(body, headers) for headers, body in received]


def test_a_succeeded_and_a_cancelled_job_each_post_one_signed_event(
    job_server: Callable[..., Any], receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    gate = threading.Event()
    settings = {"webhook_secret": SECRET, "allow_private_networks": True}
    with job_server(gate=gate, **settings) as server:
        held = server.submit(chunk_length=1, webhook_url=url, metadata='{"n": 1}').json()
        server.until(held["id"], lambda job: job["progress"]["done_seconds"] > 0, "started")
        assert server.http.delete(f"/v1/jobs/{held['id']}").status_code == 200
        gate.set()
        done = server.submit(webhook_url=url, metadata='{"n": 2}').json()
        wait_until(lambda: len(received) == 2, "two events were not delivered")
        for job_id in (held["id"], done["id"]):
            server.until(job_id, lambda job: job["webhook"]["status"] == "delivered", "shown")
        shown = server.job(done["id"])["webhook"]
    events = sorted(_events(received), key=lambda event: event["data"]["metadata"]["n"])
    assert [(e["type"], e["data"]["id"], e["data"]["status"]) for e in events] == [
        ("job.cancelled", held["id"], "cancelled"),
        ("job.succeeded", done["id"], "succeeded"),
    ]
    assert shown["url"] == url
    assert [(a["status_code"], a["error"]) for a in shown["attempts"]] == [(204, None)]
    assert json.loads(received[0][1])["data"]["object"] == "transcription.job"
