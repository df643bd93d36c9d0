"""Every ``$ref`` of ``/openapi.json`` resolves from the document's root.

Code generators and schema fuzzers resolve ``#/...`` references against the whole document,
so a reference to a schema's own ``$defs`` (``#/$defs/VadParameters``) breaks them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from whisperd.app import create_app
from whisperd.config import Settings


def references(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    """``(where, reference)`` of every ``$ref`` string in ``node``, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from references(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from references(item, f"{where}/{index}")


def resolve(document: dict[str, Any], reference: str) -> Any:
    """The node a local JSON pointer reference names (RFC 6901 escapes undone)."""
    assert reference.startswith("#/"), f"not a local reference: {reference}"
    node: Any = document
    for token in reference[2:].split("/"):
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """``/openapi.json`` as a client downloads it (strict JSON: no NaN or Infinity)."""
    app = create_app(Settings(_env_file=None, preload_model=False))

    async def fetch() -> str:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/openapi.json")
        assert response.status_code == 200
        return response.text

    text = asyncio.run(fetch())
    parsed: dict[str, Any] = json.loads(
        text, parse_constant=lambda name: pytest.fail(f"{name} in the document")
    )
    return parsed


def test_every_reference_resolves_from_the_root(document: dict[str, Any]) -> None:
    found = list(references(document))
    unresolved = []
    for where, reference in found:
        try:
            target = resolve(document, reference)
        except (AssertionError, KeyError, IndexError, ValueError):
            unresolved.append(f"{where}: {reference}")
            continue
        assert isinstance(target, dict), f"{where}: {reference} names no schema"
    assert not unresolved, "\n".join(unresolved)
    assert len(found) >= 20


def test_no_schema_keeps_definitions_of_its_own(document: dict[str, Any]) -> None:
    def defs(node: Any, where: str = "#") -> Iterator[str]:
        if isinstance(node, dict):
            if "$defs" in node:
                yield where
            for key, value in node.items():
                yield from defs(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                yield from defs(item, f"{where}/{index}")

    assert list(defs(document)) == []


@pytest.mark.parametrize("path", ["/v1/audio/transcriptions", "/v1/audio/translations"])
def test_the_audio_bodies_reach_the_vad_parameters(document: dict[str, Any], path: str) -> None:
    body = document["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
    vad = body["schema"]["properties"]["vad_parameters"]
    targets = [resolve(document, reference) for _, reference in references(vad)]
    assert any(target.get("title") == "VadParameters" for target in targets)
    (vad_schema,) = (target for target in targets if target.get("title") == "VadParameters")
    assert set(vad_schema["properties"]) >= {"threshold", "speech_pad_ms"}
