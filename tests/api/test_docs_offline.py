"""The docs pages load every script and style from this server, so they work offline."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from whisperd.app import create_app
from whisperd.config import Settings

_ASSET_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


def _app(**overrides: Any) -> FastAPI:
    values: dict[str, Any] = {"model": "tiny", "offline": True, **overrides}
    return create_app(Settings(_env_file=None, **values))


def _urls(html: str) -> list[str]:
    return [src or url for src, url in _ASSET_URL.findall(html)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_only_local_assets_that_are_served(page: str) -> None:
    transport = httpx.ASGITransport(_app(api_keys=["k"]))  # the docs need no key
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        html = await http.get(page)
        assert html.status_code == 200
        urls = _urls(html.text)
        assert urls, html.text
        for url in urls:
            assert not urlsplit(url).netloc, f"{page} loads {url} from another host"
            assert url.startswith("/"), url
        served = {url: await http.get(url) for url in urls}
    kinds = {url.rsplit(".", 1)[-1] for url in urls}
    assert "js" in kinds
    if page == "/docs":
        assert "css" in kinds
    for url, response in served.items():
        assert response.status_code == 200, url
        assert response.content, url
        if url.endswith(".js"):
            assert "javascript" in response.headers["content-type"]
        if url.endswith(".css"):
            assert response.headers["content-type"].startswith("text/css")
    assert served["/openapi.json" if page == "/docs" else urls[-1]].status_code == 200


@pytest.mark.anyio
async def test_the_docs_follow_a_proxys_path_prefix() -> None:
    transport = httpx.ASGITransport(_app(), root_path="/stt")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        html = await http.get("/stt/docs")
    assert html.status_code == 200
    assert all(url.startswith("/stt/") for url in _urls(html.text)), html.text
