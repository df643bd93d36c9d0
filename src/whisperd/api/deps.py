"""Typed access to what the lifespan put on the app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from whisperd.audio.fetch import AudioFetcher
from whisperd.config import Settings
from whisperd.errors import ShuttingDownError
from whisperd.service import TranscriptionService


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _service(request: Request) -> TranscriptionService:
    service: TranscriptionService = request.app.state.service
    return service


def _fetcher(request: Request) -> AudioFetcher:
    fetcher: AudioFetcher = request.app.state.fetcher
    return fetcher


SettingsDep = Annotated[Settings, Depends(_settings)]
ServiceDep = Annotated[TranscriptionService, Depends(_service)]
FetcherDep = Annotated[AudioFetcher, Depends(_fetcher)]


def accepting_work(request: Request) -> None:
    """Refuse new work while the server drains before stopping.

    Raises:
        ShuttingDownError: once the server was asked to stop.
    """
    if getattr(request.app.state, "draining", False):
        raise ShuttingDownError("The server is shutting down; retry on another instance.")
