"""Take the README's screenshots of the web page: ``python tests/web/screenshots.py docs``.

Serves whisperd on the real tiny.en (no API key, jobs on), transcribes a two-voice espeak-ng
dialogue with speaker labels (two speakers), opens the subtitle options, runs the live
microphone (Chromium's fake one) over two sentences, and writes ``web-desktop.png`` (1280 px
wide) and ``web-phone.png`` (390 px, a phone's width) into the folder given.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from web_helpers import WAIT_MS, launch, web_server, write_speech

from whisperd.testing.speech import SENTENCES, conversation


def _show_work(page: Page, dialogue: Path) -> None:
    page.get_by_label("Label speakers").check()
    page.get_by_label("Number of speakers").fill("2")
    page.set_input_files("#file-input", str(dialogue))
    page.get_by_text("Done,").wait_for(timeout=WAIT_MS)
    page.get_by_text("Subtitle options").click()
    page.get_by_label("Characters per line").fill("42")
    page.get_by_label("Lines per subtitle").fill("2")
    page.get_by_role("button", name="Start listening").click()
    page.locator("#live-text p.final").nth(1).wait_for(timeout=WAIT_MS)
    page.get_by_role("button", name="Stop listening").click()
    page.get_by_role("button", name="Start listening").wait_for(timeout=WAIT_MS)
    page.fill("#search", "window")
    page.locator("#transcript .w", has_text="bed").first.click()


def main(folder: Path) -> None:
    with tempfile.TemporaryDirectory() as work:
        scratch = Path(work)
        _, live = write_speech(scratch)
        dialogue = scratch / "meeting.wav"
        voices = ("en-us+m1", "en-us+f2")
        dialogue.write_bytes(conversation(SENTENCES[:4], voices=voices, pause_s=0.4).wav_bytes())
        with web_server(scratch / "data", api_keys=()) as server, sync_playwright() as playwright:
            browser = launch(playwright, fake_microphone=live)
            for name, viewport, scale in (
                ("web-desktop.png", {"width": 1280, "height": 900}, 1),
                ("web-phone.png", {"width": 390, "height": 844}, 2),
            ):
                context = browser.new_context(
                    base_url=server.url,
                    viewport=viewport,
                    device_scale_factor=scale,
                    is_mobile=scale > 1,
                    has_touch=scale > 1,
                )
                context.grant_permissions(["microphone"])
                page = context.new_page()
                page.goto("/")
                page.get_by_text("Ready.").wait_for(timeout=WAIT_MS)
                _show_work(page, dialogue)
                page.screenshot(path=str(folder / name), full_page=True)
                context.close()
            browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
