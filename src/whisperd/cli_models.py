"""``whisperd models loaded|load|unload --server URL``: a server's loaded models, by its API.

Each command makes one call to the loaded-models API of a running server
(:mod:`whisperd.api.models_admin`): ``GET /v1/loaded_models``, ``POST`` or ``DELETE
/v1/loaded_models/{model}``. The API key comes from ``WHISPERD_API_KEY`` (or ``--api-key``). A
refusal or a server that cannot be reached prints the reason and exits with 2.
"""

from __future__ import annotations

import time
from typing import Any, Final
from urllib.parse import quote

import click
import httpx2
from rich.console import Console
from rich.table import Table

from whisperd.config import ClientSettings

__all__ = ["ServerError", "load", "loaded", "unload"]

_TIMEOUT_S: Final = 600.0
"""How long a call may take: loading a model may download it first."""


def _server_params() -> list[click.Parameter]:
    """``--server`` and ``--api-key``, new for each command."""
    return [
        click.Option(
            ["--server"],
            required=True,
            metavar="URL",
            help="The whisperd server (e.g. http://127.0.0.1:8000).",
        ),
        click.Option(
            ["--api-key"],
            default=None,
            help="API key of --server; prefer WHISPERD_API_KEY, which the process list does "
            "not show.",
        ),
    ]


class ServerError(click.ClickException):
    """The server refused the call or could not be reached (exit status 2)."""

    exit_code = 2


def _fail(message: str) -> ServerError:
    return ServerError(message)


def _call(method: str, server: str, path: str, api_key: str | None) -> dict[str, Any]:
    """One call to the server; its JSON object.

    Raises:
        ServerError: with the server's message, or why it could not
            be reached.
    """
    key = api_key or _environment_key()
    headers = {"authorization": f"Bearer {key}"} if key else {}
    url = server.rstrip("/") + path
    try:
        with httpx2.Client(headers=headers, timeout=_TIMEOUT_S, trust_env=False) as http:
            response = http.request(method, url)
    except httpx2.HTTPError as error:
        raise _fail(f"Cannot reach the server at {server}: {error}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise _fail(f"{_message(body, response.text)} (HTTP {response.status_code})")
    if not isinstance(body, dict):
        raise _fail(f"The server at {server} did not answer with a JSON object: is it whisperd?")
    return body


def _environment_key() -> str | None:
    secret = ClientSettings().api_key
    return secret.get_secret_value() if secret is not None else None


def _message(body: object, text: str) -> str:
    """The error envelope's message (OpenAI's ``error.message``), else the body's start."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message"))
    return text[:200] or "no message"


def _model_path(model: str) -> str:
    return "/v1/loaded_models/" + quote(model, safe="")


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _ago(when: float | None, now: float) -> str:
    if when is None:
        return "-"
    seconds = now - when
    return f"{seconds:.0f} s ago" if seconds >= 0 else f"in {-seconds:.0f} s"


def _state(entry: dict[str, Any]) -> str:
    if entry["unloading"]:
        return "unloading"
    return "pinned" if entry["pinned"] else "-"


def _table(entries: list[dict[str, Any]]) -> Table:
    now = time.time()
    table = Table("model", "device", "compute type", "memory", "in use", "last used", "unloads")
    for entry in entries:
        expires = entry["expires_at"]
        table.add_row(
            entry["id"],
            entry["device"],
            entry["compute_type"],
            _mib(entry["memory_bytes"]),
            str(entry["in_use"]),
            _ago(entry["last_used_at"], now),
            _ago(expires, now) if expires is not None else _state(entry),
        )
    return table


def _loaded(server: str, api_key: str | None) -> None:
    """List the models loaded on a server: device, compute type, memory (the size of the
    model's files), requests using each, last use, and when each unloads if idle."""
    body = _call("GET", server, "/v1/loaded_models", api_key)
    Console(soft_wrap=True).print(_table(body["data"]))


def _load(model: str, server: str, api_key: str | None) -> None:
    """Load MODEL on a server now (a no-op if it is loaded), so its first request does not
    wait. The server's allow-list applies."""
    entry = _call("POST", server, _model_path(model), api_key)
    click.echo(f"loaded {entry['id']} on {entry['device']} ({entry['compute_type']})")


def _unload(model: str, server: str, api_key: str | None) -> None:
    """Unload MODEL on a server (every device and compute type); requests using it finish
    first, and a later request loads it again."""
    body = _call("DELETE", server, _model_path(model), api_key)
    click.echo(f"unloaded {body['id']} ({body['engines']} engine(s))")


loaded = click.Command("loaded", callback=_loaded, params=_server_params(), help=_loaded.__doc__)
load = click.Command(
    "load",
    callback=_load,
    params=[click.Argument(["model"]), *_server_params()],
    help=_load.__doc__,
)
unload = click.Command(
    "unload",
    callback=_unload,
    params=[click.Argument(["model"]), *_server_params()],
    help=_unload.__doc__,
)
