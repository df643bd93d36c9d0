"""One server on the real tiny.en (jobs on, API keys required) for all the web page's tests, and
one Chromium per test module: Playwright's sync API keeps an event loop running in the main
thread while it lives, so it must end with its module, before tests that call asyncio.run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect
from web_helpers import API_KEY, WAIT_MS, WebServer, launch, web_server, write_speech

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="session")
def speech_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The spoken sentence for uploads and the conversation the fake microphone plays."""
    return write_speech(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    with web_server(tmp_path_factory.mktemp("data")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(speech_files: tuple[Path, Path]) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright, fake_microphone=speech_files[1])
        yield browser
        browser.close()


@contextmanager
def _ready_page(browser: Browser, server: WebServer) -> Iterator[Page]:
    """A fresh browser profile with the API key saved, on the page, ready; the page must raise
    no error (a Content-Security-Policy violation included)."""
    context = browser.new_context(base_url=server.url, accept_downloads=True)
    context.grant_permissions(["microphone", "clipboard-read", "clipboard-write"])
    context.add_init_script(f"localStorage.setItem('whisperd.apiKey', {API_KEY!r})")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/")
    expect(page.locator("#server-status")).to_have_text(re.compile("^Ready"))
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


@pytest.fixture
def page(browser: Browser, server: WebServer) -> Iterator[Page]:
    with _ready_page(browser, server) as ready:
        yield ready


@pytest.fixture(scope="module")
def transcribed(
    browser: Browser, server: WebServer, speech_files: tuple[Path, Path]
) -> Iterator[Page]:
    """A page that has transcribed the spoken sentence (as a job) and shows it; shared by the
    tests of the viewer, which leave it showing that transcript with its options as they were."""
    with _ready_page(browser, server) as ready:
        ready.set_input_files("#file-input", str(speech_files[0]))
        ready.get_by_text("Done,").wait_for(timeout=WAIT_MS)
        ready.locator("#transcript .w").first.wait_for()
        yield ready
