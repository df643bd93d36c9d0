"""CORS: browser apps on the configured origins may call the API; no others, none by default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from whisperd.config import Settings

APP = "https://app.example.com"
PREFLIGHT = {
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
}


def test_a_preflight_from_an_allowed_origin_is_answered_without_a_key(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(cors_origins=[APP, "http://localhost:3000"], api_keys=["k-1"])
    with serve_fake(settings) as running, running.http() as http:
        allowed = http.options("/v1/audio/transcriptions", headers={"origin": APP, **PREFLIGHT})
        refused = http.options(
            "/v1/audio/transcriptions", headers={"origin": "https://evil.example", **PREFLIGHT}
        )
        # The actual call: its answer (even a 401) tells the browser it may read it.
        unauthorized = http.get("/v1/models", headers={"origin": APP})
        listed = http.get("/v1/models", headers={"origin": APP, "authorization": "Bearer k-1"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP
    assert allowed.headers["x-request-id"]  # preflights are requests like any other
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == APP
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == APP
    exposed = listed.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed
    assert "retry-after" in exposed


def test_no_origin_is_allowed_by_default(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    with serve_fake(settings_for()) as running, running.http() as http:
        preflight = http.options("/v1/audio/transcriptions", headers={"origin": APP, **PREFLIGHT})
        call = http.get("/v1/models", headers={"origin": APP})
    assert "access-control-allow-origin" not in preflight.headers
    assert call.status_code == 200
    assert "access-control-allow-origin" not in call.headers


def test_any_origin_with_a_star(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    with serve_fake(settings_for(cors_origins=["*"])) as running, running.http() as http:
        preflight = http.options(
            "/v1/audio/transcriptions", headers={"origin": "https://any.example", **PREFLIGHT}
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_origins_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WHISPERD_CORS_ORIGINS", "https://App.Example.com/, http://localhost:3000")
    assert Settings(_env_file=None).cors_origins == [APP, "http://localhost:3000"]


@pytest.mark.parametrize(
    "origin",
    ["app.example.com", "https://app.example.com/path", "https://user@app.example.com", ""],
)
def test_what_is_not_an_origin_is_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="cors_origins"):
        Settings(_env_file=None, cors_origins=[origin])
