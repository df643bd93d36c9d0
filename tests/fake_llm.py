"""A small OpenAI-compatible chat server on 127.0.0.1 for tests of ``ask``: it checks the
requests it receives and answers as a test tells it to (or fails, stalls, refuses)."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from waiting import joined

MODEL = "tiny-llm"
"""The one model the fake lists."""


@dataclass
class FakeLlm:
    """What the fake serves, and what it received."""

    url: str = ""
    """Its base URL (``http://127.0.0.1:PORT/v1``)."""
    mode: str = "answer"
    """``answer``; ``error`` (HTTP 500); ``missing_model`` (404); ``slow`` (stalls
    ``delay_s``); ``empty`` (an empty answer); ``refuse`` (a refusal)."""
    delay_s: float = 3.0
    chats: list[dict[str, Any]] = field(default_factory=list)
    """Every chat completion request body, in order."""
    headers: list[dict[str, str]] = field(default_factory=list)
    """The headers of every request, names in lower case."""
    listed: int = 0
    """How many times ``/v1/models`` was asked."""

    def user_messages(self) -> list[str]:
        """The user message of every chat, in order."""
        return [body["messages"][-1]["content"] for body in self.chats]


def _reply(body: dict[str, Any]) -> str:
    """A deterministic answer that tells which prompt it answers."""
    message = body["messages"][-1]["content"]
    part = re.search(r"this is part (\d+) of (\d+)", message)
    if part:
        return f"part-{part[1]}-of-{part[2]}"
    if "Combine these answers" in message:
        answers = re.findall(r"Answer for part \d+:\n(\S+)", message)
        return "combined[" + "+".join(answers) + "]"
    transcript = message.split('"""')[1].split()
    return f"whole: {len(transcript)} words"


def _handler(state: FakeLlm) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            assert self.path == "/v1/models", self.path
            state.listed += 1
            self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

        def do_POST(self) -> None:
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            length = int(self.headers["content-length"])
            body = json.loads(self.rfile.read(length))
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            state.chats.append(body)
            if state.mode == "slow":
                time.sleep(state.delay_s)
            if state.mode == "error":
                self._send(500, {"error": {"message": "the GPU caught fire", "type": "server"}})
                return
            if state.mode == "missing_model" or body.get("model") != MODEL:
                message = f"model '{body.get('model')}' not found"
                self._send(404, {"error": {"message": message, "type": "not_found"}})
                return
            content = {"empty": "", "refuse": None}.get(state.mode, _reply(body))
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if state.mode == "refuse":
                message["refusal"] = "I cannot help with that."
            self._send(
                200,
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": MODEL,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                },
            )

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def serving_llm(mode: str = "answer", **kwargs: Any) -> Iterator[FakeLlm]:
    """Run a :class:`FakeLlm` on a loopback port for the block."""
    state = FakeLlm(mode=mode, **kwargs)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        joined(thread)


def closed_port_url() -> str:
    """The base URL of a loopback port nothing listens on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
