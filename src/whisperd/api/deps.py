"""Typed access to what the lifespan put on the app, for HTTP and WebSocket routes alike."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from whisperd.audio.fetch import AudioFetcher
from whisperd.config import Settings
from whisperd.errors import ShuttingDownError
from whisperd.service import TranscriptionService


def _settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


def _service(connection: HTTPConnection) -> TranscriptionService:
    service: TranscriptionService = connection.app.state.service
    return service


def _fetcher(connection: HTTPConnection) -> AudioFetcher:
    fetcher: AudioFetcher = connection.app.state.fetcher
    return fetcher


SettingsDep = Annotated[Settings, Depends(_settings)]
ServiceDep = Annotated[TranscriptionService, Depends(_service)]
FetcherDep = Annotated[AudioFetcher, Depends(_fetcher)]


def accepting_work(connection: HTTPConnection) -> None:
    """Refuse work that arrived while the server drains before stopping; a request that
    arrived before (its upload still coming in) is served (:mod:`whisperd.api.draining`).

    Raises:
        ShuttingDownError: if the request arrived after the server was asked to stop.
    """
    draining = getattr(connection.app.state, "draining", False)
    if getattr(connection.state, "arrived_draining", draining):
        raise ShuttingDownError("The server is shutting down; retry on another instance.")
