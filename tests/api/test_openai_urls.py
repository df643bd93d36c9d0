"""Audio given as a URL: fetched from a local server when private networks are allowed."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from waiting import joined

if TYPE_CHECKING:
    from conftest import RunningServer

DATA = Path(__file__).parents[1] / "data"


class _AudioHandler(http.server.BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = (DATA / "speech.mp3").read_bytes()
        self.send_response(200)
        self.send_header("content-type", "audio/mpeg")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def audio_host() -> Iterator[tuple[str, list[str]]]:
    requests: list[str] = []
    handler = type("Handler", (_AudioHandler,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        joined(thread)


def test_file_as_url_and_audio_url_with_private_networks_allowed(
    settings_for, serve_fake, audio_host, fake_transcript
) -> None:
    base, requests = audio_host
    running: RunningServer
    with serve_fake(settings_for(allow_private_networks=True)) as running, running.http() as http:
        as_file = http.post(
            "/v1/audio/transcriptions",
            files={"file": (None, f"{base}/clip.aac")},
            data={"model": "openai/whisper-large-v3-turbo", "response_format": "verbose_json"},
        )
        as_audio_url = http.post(
            "/v1/audio/transcriptions", data={"model": "whisper-1", "audio_url": f"{base}/a"}
        )
    assert as_file.status_code == 200, as_file.text
    assert as_file.json()["text"] == fake_transcript("speech.mp3").text
    assert as_audio_url.json()["text"] == fake_transcript("speech.mp3").text
    assert requests == ["/clip.aac", "/a"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/x",
        "http://localhost:{port}/x",
        "http://169.254.169.254/latest",
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
    ],
)
def test_private_addresses_are_refused_by_default(
    fake_server: RunningServer, audio_host, url: str
) -> None:
    base, requests = audio_host
    port = base.rsplit(":", 1)[1]
    with fake_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            data={"model": "whisper-1", "audio_url": url.format(port=port)},
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_blocked"
    assert requests == []
