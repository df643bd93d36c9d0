"""Native-API envelope for errors the middleware answers before any route runs.

The middleware (API keys, body limits) answers in OpenAI's envelope. Outside ``/v1`` the native
API's clients read ``{"detail": "..."}``, so this wrapper rewrites those few early answers
(401, 400, 408, 413 whose body is ``{"error": {...}}``) for native paths. Route responses are
already in the right envelope and pass through untouched.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_REWRITTEN = frozenset({400, 401, 408, 413})


def _native_body(body: bytes) -> bytes | None:
    try:
        document: Any = json.loads(body)
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict) or "message" not in error:
        return None
    return json.dumps({"detail": error["message"]}).encode()


class NativeEnvelopeMiddleware:
    """Rewrite early OpenAI-style error answers to ``{"detail": ...}`` outside ``/v1``."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through everything but early error answers on native paths."""
        if scope["type"] != "http" or str(scope.get("path", "")).startswith("/v1"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] in _REWRITTEN:
                start = message
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await _flush(send, start, b"".join(chunks))

        await self.app(scope, receive, capture)


async def _flush(send: Send, start: Message, body: bytes) -> None:
    rewritten = _native_body(body)
    headers = list(start.get("headers", []))
    if rewritten is not None:
        body = rewritten
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})
