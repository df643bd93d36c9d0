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
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from fastapi import FastAPI

__all__ = ["SECURITY_SCHEME", "install_openapi"]

SECURITY_SCHEME: Final = "ApiKey"
"""Name of the API-key scheme in ``components.securitySchemes``."""

_LOCAL_DEFINITION: Final = "#/$defs/"
_COMPONENT: Final = "#/components/schemas/"


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
