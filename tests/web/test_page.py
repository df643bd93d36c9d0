"""The web page in a real browser (Debian's Chromium through Playwright) against a real server
on the real Whisper tiny.en with jobs on and API keys required: uploads show the spoken words,
words seek the player, subtitles download, the page finds its jobs again after a reload, the
microphone (Chromium's fake one, fed an espeak-ng conversation) is transcribed live over
/v1/realtime and its transcript taken away, the API key is asked for and checked, bad files are
explained, and the static files carry their caching and security headers."""

from __future__ import annotations

import importlib.util
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from playwright.sync_api import expect
from web_helpers import API_KEY, CHROMIUM, LIVE_SENTENCES, SPOKEN, WAIT_MS, WebServer

from whisperd.testing.speech import SENTENCES, conversation, espeak_available, normalize
from whisperd.testing.speech import word_error_rate as wer
from whisperd.web import web_paths
from whisperd.web.routes import CONTENT_SECURITY_POLICY

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (apt-get install chromium)",
    ),
    pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed"),
]

DATA = Path(__file__).parents[1] / "data"


def _poll(page: Page, expression: str) -> None:
    """Wait until ``expression`` is true in the page (evaluated through the debugger, which
    the page's policy allows; ``wait_for_function`` evaluates strings, which it forbids)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        page.wait_for_timeout(50)


def _upload(page: Page, *files: Path) -> None:
    page.set_input_files("#file-input", [str(f) for f in files])


def test_an_uploaded_file_shows_its_words_and_a_click_seeks_the_player(transcribed: Page) -> None:
    page = transcribed
    text = page.locator("#transcript .text").inner_text()
    assert wer(SPOKEN, text) <= 0.25, text  # tiny.en hears "lean" for "leave" at times
    word = page.locator("#transcript .w", has_text=re.compile(r"^train$"))
    start = float(word.get_attribute("data-start") or "nan")
    assert 0.3 < start < 2.5
    word.click()
    player_time = page.evaluate("document.querySelector('#player-box audio').currentTime")
    assert player_time == pytest.approx(start, abs=0.05)
    expect(page.locator(".w.current")).to_have_text("train")
    # A segment's time is a button: the keyboard seeks too.
    page.locator("#transcript .time").first.focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.querySelector('#player-box audio').currentTime") < 0.05


def test_search_marks_matches_and_enter_goes_to_them(transcribed: Page) -> None:
    page = transcribed
    page.fill("#search", "city")
    assert page.locator("#search-count").inner_text().startswith("1 match")
    assert page.locator(".w.match").inner_text().startswith("city")
    page.press("#search", "Enter")
    start = float(page.locator(".w.match").get_attribute("data-start") or "nan")
    assert page.evaluate("document.querySelector('#player-box audio').currentTime") == (
        pytest.approx(start, abs=0.05)
    )
    page.fill("#search", "zebra")
    assert page.locator("#search-count").inner_text() == "0 matches"


def test_the_srt_download_holds_timed_cues_of_the_words(transcribed: Page, tmp_path: Path) -> None:
    page = transcribed
    with page.expect_download() as download:
        page.get_by_role("button", name="Subtitles (.srt)").click()
    assert download.value.suggested_filename == "speech.srt"
    target = tmp_path / "speech.srt"
    download.value.save_as(target)
    srt = target.read_text()
    cue = re.compile(r"^1\n00:00:\d\d,\d{3} --> 00:00:0\d,\d{3}\n(.+)\n", re.MULTILINE)
    match = cue.match(srt)
    assert match, srt
    assert wer(SPOKEN, match.group(1)) <= 0.25
    page.get_by_role("button", name="Copy text").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert normalize(copied) == normalize(page.locator("#transcript .text").inner_text())


def test_a_reopened_page_finds_its_job_and_audio_again(transcribed: Page) -> None:
    page = transcribed
    page.reload()
    item = page.locator("#file-list .file", has_text="speech.wav")
    item.get_by_text("Done,").wait_for(timeout=WAIT_MS)
    item.get_by_role("button", name="Show the transcript of speech.wav").click()
    assert "train" in page.locator("#transcript").inner_text()
    _poll(page, "document.querySelector('#player-box audio')?.duration > 2")


def test_an_unreadable_file_is_explained(page: Page) -> None:
    _upload(page, DATA / "not_audio.txt")
    state = page.locator("#file-list .state.error")
    state.wait_for(timeout=WAIT_MS)
    message = state.inner_text()
    assert "not in a recognised audio or video format" in message, message
    assert not page.locator("#viewer").is_visible()


def test_the_microphone_is_transcribed_live(page: Page, tmp_path: Path) -> None:
    take_away = page.get_by_role("button", name="Live transcript (.txt)")
    assert take_away.is_disabled()  # nothing to take away yet
    page.get_by_role("button", name="Start listening").click()
    finals = page.locator("#live-text p.final")
    finals.nth(len(LIVE_SENTENCES) - 1).wait_for(timeout=WAIT_MS)
    heard = " ".join(finals.all_inner_texts())
    assert wer(" ".join(LIVE_SENTENCES), heard) <= 0.3, heard
    assert page.locator("#live-message").inner_text() == ""
    page.get_by_role("button", name="Stop listening").click()
    page.get_by_role("button", name="Start listening").wait_for(timeout=WAIT_MS)
    assert page.locator("#live-status").inner_text() == "Off"
    with page.expect_download() as download:
        take_away.click()
    assert re.fullmatch(r"live-[-\d]+\.txt", download.value.suggested_filename)
    target = tmp_path / "live.txt"
    download.value.save_as(target)
    turns = [text.strip() for text in finals.all_inner_texts()]
    assert target.read_text() == "".join(f"{turn}\n" for turn in turns)
    page.get_by_role("button", name="Copy live transcript").click()
    assert page.evaluate("navigator.clipboard.readText()") == target.read_text()


def test_the_api_key_is_asked_for_checked_and_kept(browser: Browser, server: WebServer) -> None:
    context = browser.new_context(base_url=server.url)
    try:
        page = context.new_page()
        page.goto("/")
        key = page.get_by_label("Key", exact=True)
        key.wait_for()
        assert "Enter the API key" in page.locator("#key-message").inner_text()
        key.fill("wrong-key")
        page.get_by_role("button", name="Save key").click()
        page.get_by_text("The saved API key was refused").wait_for()
        key.fill(API_KEY)
        page.get_by_role("button", name="Save key").click()
        expect(page.locator("#server-status")).to_have_text(re.compile("^Ready"))
        page.reload()
        expect(page.locator("#server-status")).to_have_text(re.compile("^Ready"))
        assert page.evaluate("localStorage.getItem('whisperd.apiKey')") == API_KEY
    finally:
        context.close()


def test_every_control_has_a_name_and_a_phone_needs_no_sideways_scroll(page: Page) -> None:
    unnamed = page.evaluate(
        """[...document.querySelectorAll('input, select, button')]
           .filter((el) => !el.hidden && el.type !== 'hidden')
           .filter((el) => !(el.labels?.length || el.getAttribute('aria-label')
                             || el.textContent.trim()))
           .map((el) => el.outerHTML)"""
    )
    assert unnamed == []
    reached = []
    for _ in range(20):  # the keyboard reaches every control, in the page's order
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id"))
    wanted = ["api-key", "model", "language", "task", "words", "diarize", "file-input"]
    assert [name for name in dict.fromkeys(reached) if name in wanted] == wanted
    assert "live-toggle" in reached
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_static_files_carry_caching_and_security_headers(server: WebServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        for path in web_paths():
            answer = client.get(path)  # no API key: the page loads, then asks for one
            assert answer.status_code == 200, path
            assert answer.headers["cache-control"] == "no-cache"
            policy = answer.headers["content-security-policy"]
            assert policy == CONTENT_SECURITY_POLICY
            assert "default-src 'none'" in policy
            assert "script-src 'self';" in policy
            assert "unsafe-inline" not in policy
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert not re.search(r"https?://", answer.text), f"{path} names another host"
            again = client.get(path, headers={"if-none-match": answer.headers["etag"]})
            assert again.status_code == 304, path
        assert client.get("/web/app.js").headers["content-type"].startswith("text/javascript")
        key = {"authorization": f"Bearer {API_KEY}"}
        assert client.get("/web/missing.js", headers=key).status_code == 404
        assert client.get("/v1/models").status_code == 401  # the API still needs its key


def test_speakers_are_labelled_and_coloured_and_counted(page: Page, tmp_path: Path) -> None:
    """With "Label speakers", each voice (two sentences each: a voice heard for under about
    3.6 s joins its nearest, diarization/clustering.py) gets its label and colour, and a
    diarized JSON (as a job, or as one request where the server's jobs cannot label speakers);
    the same dialogue
    sent again with "Number of speakers" 1 comes back as one speaker."""
    if any(importlib.util.find_spec(name) is None for name in ("resemblyzer", "scipy", "torch")):
        pytest.skip("the speaker model's packages (the diarize extra) are missing")
    two_voices = conversation(SENTENCES[:4], voices=("en-us+m1", "en-us+f2"), pause_s=0.4)
    path = tmp_path / "dialogue.wav"
    path.write_bytes(two_voices.wav_bytes())
    page.get_by_label("Label speakers").check()
    _upload(page, path)
    page.get_by_text("Done,").wait_for(timeout=WAIT_MS)
    speakers = page.locator("#transcript .seg .spk").all_inner_texts()
    assert set(speakers) == {"A", "B"}, speakers
    colours = page.evaluate(
        """[...document.querySelectorAll('#transcript .spk')]
           .map((el) => getComputedStyle(el).color)"""
    )
    assert len(set(colours)) == 2
    with page.expect_download() as download:
        page.get_by_role("button", name="Diarized JSON").click()
    body = json.loads(Path(download.value.path()).read_text())
    assert {s["speaker"] for s in body["segments"]} == {"A", "B"}
    assert body["text"].startswith("A: ")
    count = page.get_by_label("Number of speakers")
    count.fill("1")
    _upload(page, path)
    again = page.locator("#file-list .file").nth(1)
    again.get_by_text("Done,").wait_for(timeout=WAIT_MS)
    again.get_by_role("button", name="Show the transcript of dialogue.wav").click()
    speakers = page.locator("#transcript .seg .spk").all_inner_texts()
    assert speakers, "no speaker labels"
    assert set(speakers) == {"A"}, speakers
    page.get_by_label("Label speakers").uncheck()
    assert not count.is_visible()  # the counts are asked only with speaker labels
