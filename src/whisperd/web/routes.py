"""Serve the web page: ``GET /`` is ``static/index.html``, ``GET /web/<name>`` every file of
``static/``, with caching and security headers.

Caching: every answer has ``Cache-Control: no-cache`` with an ``ETag`` and ``Last-Modified``
(Starlette's :class:`~starlette.staticfiles.StaticFiles`), so a browser keeps each file but asks
again each time, and gets a bodiless 304 while it is unchanged. The files have no versioned
names (there is no build step), so this is what keeps a page and its modules from different
versions of whisperd apart after an upgrade.

Security: a Content-Security-Policy that allows only this origin's scripts, styles, images and
connections (the page's ``fetch`` calls and the ``/v1/realtime`` WebSocket, which CSP Level 3
matches with ``'self'``), media from ``blob:`` URLs (the user's own files, played locally), no
inline script, no plugins, no framing; plus ``nosniff``, no referrer, and the microphone for
this origin only.
"""

from __future__ import annotations

import os
from importlib.resources import as_file, files
from typing import TYPE_CHECKING, Final

from starlette.routing import Route
from starlette.staticfiles import StaticFiles

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.responses import Response
    from starlette.types import Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "WEB_PREFIX", "install_web", "web_paths"]

WEB_PREFIX: Final = "/web"
"""Where the page's files are served: ``/web/app.js`` is ``static/app.js``."""

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)
"""The policy of every file of the page (the API's answers carry none: they are not pages)."""

_HEADERS: Final = {
    "cache-control": "no-cache",
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "permissions-policy": "microphone=(self), camera=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}

_MEDIA_TYPES: Final = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
"""Media types set here rather than read from the host's mimetypes table, which may lack
``.js`` or map it to ``application/x-javascript`` (a module script then fails to load)."""


def _static_dir() -> str:
    """The directory of the page's files inside the installed package."""
    with as_file(files("whisperd.web") / "static") as path:
        return os.fspath(path)


def web_paths() -> tuple[str, ...]:
    """Every path the page is served on (``/`` and ``/web/<name>`` per file), for the API-key
    middleware's public paths: the page loads without a key, then asks for one."""
    static = files("whisperd.web") / "static"
    names = sorted(entry.name for entry in static.iterdir() if entry.is_file())
    return ("/", *(f"{WEB_PREFIX}/{name}" for name in names))


class _WebFiles(StaticFiles):
    """StaticFiles with the page's headers and media types on every file answer."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """The file (or a 304), with :data:`_HEADERS` and the media type of its suffix."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(_HEADERS)
        media = _MEDIA_TYPES.get(os.path.splitext(full_path)[1])
        if media is not None and status_code != 304:
            response.headers["content-type"] = f"{media}; charset=utf-8"
        return response


class _Index:
    """``GET /``: the page's ``index.html``, as the static files serve it."""

    def __init__(self, files_app: StaticFiles) -> None:
        self._files = files_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._files({**scope, "path": "/index.html", "root_path": ""}, receive, send)


def install_web(app: FastAPI) -> None:
    """Serve the page on ``app``: ``/`` and everything under :data:`WEB_PREFIX`.

    Nothing is read at install time beyond the directory's location; a missing file is a 404.
    """
    static = _WebFiles(directory=_static_dir(), follow_symlink=False)
    app.router.routes.append(
        Route("/", _Index(static), methods=["GET", "HEAD"], include_in_schema=False)
    )
    app.mount(WEB_PREFIX, static, name="web")
