"""The app's OpenAPI document: FastAPI's, plus the API-key scheme and references that resolve.

FastAPI describes the routes, their declared responses (:mod:`whisperd.api.responses`) and
their models. Three things are added once, when the document is first asked for:

* schemas nested in operations (the OpenAI form's fields, the stream events) carry their own
  JSON Schema ``$defs``; OpenAPI resolves ``#/...`` references from the document's root, so
  the definitions move to ``components.schemas`` and the references follow them;
* an HTTP bearer scheme for the API keys, required by every operation outside the public
  paths, so that ``/docs`` offers "Authorize" and sends the key;
* under ``/v1`` a request that fails validation is a 400 in OpenAI's envelope, never FastAPI's
  422, so the 422 FastAPI adds there is dropped.

:func:`install_docs` serves the interactive pages, ``/docs`` (Swagger UI) and ``/redoc``, with
their scripts and styles from this server (the ``fastapi-offline`` package ships them) rather
than from a CDN, so they work on a host without internet access.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from importlib.resources import files
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse

__all__ = ["DOCS_PATHS", "SECURITY_SCHEME", "install_docs", "install_openapi"]

SECURITY_SCHEME: Final = "ApiKey"
"""Name of the API-key scheme in ``components.securitySchemes``."""

_LOCAL_DEFINITION: Final = "#/$defs/"
_COMPONENT: Final = "#/components/schemas/"

_ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
"""The files of the docs pages, by name in ``fastapi_offline/static``, and their media types."""
_ASSETS_PREFIX: Final = "/docs/assets/"
_SWAGGER_UI: Final = "/docs"
_OAUTH2_REDIRECT: Final = "/docs/oauth2-redirect"
_REDOC: Final = "/redoc"

DOCS_PATHS: Final = (
    _SWAGGER_UI,
    _OAUTH2_REDIRECT,
    _REDOC,
    *(_ASSETS_PREFIX + name for name in _ASSETS),
)
"""Every path of the docs pages and their assets (served without an API key)."""


def install_openapi(app: FastAPI, *, public_paths: Collection[str], key_required: bool) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) serve the completed document.

    Args:
        app: The app, with all its routes included.
        public_paths: Paths served without a key (the API-key middleware's).
        key_required: Whether the server checks keys; if not, the scheme is offered but optional.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)  # FastAPI's own, cached on the app
            _hoist_definitions(document)
            _add_security(document, public_paths, required=key_required)
            _drop_validation_422(document, prefix="/v1/")
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it


def _hoist_definitions(document: dict[str, Any]) -> None:
    """Move every nested ``$defs`` into ``components.schemas`` and point references there.

    A name already in the components keeps its schema there; pydantic gives one model the same
    schema wherever it appears, so the two agree.
    """
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})

    def visit(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        for name, schema in node.pop("$defs", {}).items():
            components.setdefault(name, schema)
            visit(schema)
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith(_LOCAL_DEFINITION):
            node["$ref"] = _COMPONENT + reference.removeprefix(_LOCAL_DEFINITION)
        for value in node.values():
            visit(value)

    visit(document.get("paths", {}))


def _add_security(
    document: dict[str, Any], public_paths: Collection[str], *, required: bool
) -> None:
    """Declare the bearer scheme and require it on every operation of a non-public path."""
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key given to the server with --api-key (WHISPERD_API_KEYS), "
        "sent as 'Authorization: Bearer <key>'.",
    }
    requirement: list[dict[str, list[str]]] = [{SECURITY_SCHEME: []}]
    if not required:
        requirement.append({})  # the empty requirement: no key needed
    for path, item in document.get("paths", {}).items():
        if path in public_paths:
            continue
        for operation in item.values():
            operation["security"] = requirement


def _drop_validation_422(document: dict[str, Any], *, prefix: str) -> None:
    """Remove FastAPI's 422 from the operations of paths that start with ``prefix``."""
    for path, item in document.get("paths", {}).items():
        if path.startswith(prefix):
            for operation in item.values():
                operation.get("responses", {}).pop("422", None)


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and ``/redoc`` with assets from this server, not a CDN.

    The app must be built with ``docs_url=None`` and ``redoc_url=None`` (FastAPI's own pages
    load their scripts from a CDN). Asset URLs carry the ASGI ``root_path``, so the pages also
    work behind a proxy that mounts the server under a path prefix.

    Args:
        app: The app whose OpenAPI document the pages show.
    """
    static = files("fastapi_offline") / "static"
    favicon = _asset_url("favicon.png")

    @app.get(_SWAGGER_UI, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=_under_root(request, app.openapi_url or ""),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=_under_root(request, _OAUTH2_REDIRECT),
            swagger_js_url=_under_root(request, _asset_url("swagger-ui-bundle.js")),
            swagger_css_url=_under_root(request, _asset_url("swagger-ui.css")),
            swagger_favicon_url=_under_root(request, favicon),
        )

    @app.get(_OAUTH2_REDIRECT, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(_REDOC, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=_under_root(request, app.openapi_url or ""),
            title=f"{app.title} - ReDoc",
            redoc_js_url=_under_root(request, _asset_url("redoc.standalone.js")),
            redoc_favicon_url=_under_root(request, favicon),
            with_google_fonts=False,
        )

    for name, media_type in _ASSETS.items():
        endpoint = _asset(str(static / name), media_type)
        app.add_api_route(_asset_url(name), endpoint, methods=["GET"], include_in_schema=False)


def _asset(path: str, media_type: str) -> Callable[[], Awaitable[FileResponse]]:
    """An endpoint that serves the file at ``path`` (read off the event loop)."""

    async def asset() -> FileResponse:
        return FileResponse(path, media_type=media_type)

    return asset


def _asset_url(name: str) -> str:
    return _ASSETS_PREFIX + name


def _under_root(request: Request, path: str) -> str:
    """``path`` under the prefix a proxy mounts the server at (ASGI ``root_path``)."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/") + path
