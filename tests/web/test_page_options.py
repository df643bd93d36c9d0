"""The web page's subtitle options in a real browser against the real server (tiny.en): the page
cuts the srt and vtt downloads from the transcript's words, so its cues must be the server's
own, cue by cue; options the server would refuse are explained before anything is sent."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from web_helpers import API_KEY, CHROMIUM, WAIT_MS, WebServer

from whisperd.audio.formats import to_srt, to_verbose_json, to_vtt
from whisperd.audio.subtitles import SubtitleStyle
from whisperd.engine.base import Segment, Transcript, Word
from whisperd.testing.speech import espeak_available

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (apt-get install chromium)",
    ),
    pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed"),
]

SHAPING = {"max_line_width": 16, "max_line_count": 1, "max_cue_duration": 1.5}
"""Shaping that cuts the spoken sentence into several one-line cues."""
_LABELS = {
    "max_line_width": "Characters per line",
    "max_line_count": "Lines per subtitle",
    "max_words_per_line": "Words per line",
    "max_cue_duration": "Longest subtitle",
}


def _cues(document: str) -> list[list[str]]:
    """The cues of an SRT or WebVTT document, each as its lines."""
    blocks = document.strip().split("\n\n")
    return [block.split("\n") for block in blocks if block != "WEBVTT"]


def _server_subtitles(server: WebServer, audio: Path, fmt: str, shaping: dict[str, Any]) -> str:
    """The server's own ``fmt`` answer for ``audio`` with ``shaping``, as one request."""
    fields = {"response_format": fmt, **{k: str(v) for k, v in shaping.items()}}
    with httpx.Client(base_url=server.url, timeout=WAIT_MS / 1000) as client:
        answer = client.post(
            "/v1/audio/transcriptions",
            headers={"authorization": f"Bearer {API_KEY}"},
            data=fields,
            files={"file": (audio.name, audio.read_bytes(), "audio/wav")},
        )
    assert answer.status_code == 200, answer.text
    return answer.text


def _download(page: Page, button: str, folder: Path) -> str:
    with page.expect_download() as download:
        page.get_by_role("button", name=button, exact=True).click()
    target = folder / download.value.suggested_filename
    download.value.save_as(target)
    return target.read_text()


@contextmanager
def _subtitle_options(page: Page, shaping: dict[str, Any]) -> Iterator[None]:
    """The viewer's subtitle options set to ``shaping``, then blank again (the page is shared)."""
    page.get_by_text("Subtitle options").click()
    try:
        for name, value in shaping.items():
            page.get_by_label(_LABELS[name]).fill(str(value))
        yield
    finally:
        for label in _LABELS.values():
            page.get_by_label(label).fill("")
        page.get_by_text("Subtitle options").click()


def test_shaped_subtitles_are_the_servers_cue_by_cue(
    transcribed: Page, server: WebServer, speech_files: tuple[Path, Path], tmp_path: Path
) -> None:
    """The job's transcript, shaped by the page, against the server's shaped answer to one
    request with the same file (tiny.en decodes both alike)."""
    with _subtitle_options(transcribed, SHAPING):
        srt = _download(transcribed, "Subtitles (.srt)", tmp_path)
    expected = _server_subtitles(server, speech_files[0], "srt", SHAPING)
    cues, wanted = _cues(srt), _cues(expected)
    assert len(wanted) >= 3, expected  # the shaping did cut the sentence
    for number, (cue, server_cue) in enumerate(zip(cues, wanted, strict=False), start=1):
        assert cue == server_cue, f"cue {number}"
        assert all(len(line) <= SHAPING["max_line_width"] for line in cue[2:])
    assert len(cues) == len(wanted)
    assert srt == expected  # the blank lines too


def _word(text: str, start: float, end: float, speaker: str | None = None) -> Word:
    return Word(start=start, end=end, word=text, probability=0.9, speaker=speaker)


def _segment(index: int, words: list[Word], speaker: str | None = None) -> Segment:
    return Segment(
        id=index,
        seek=0,
        start=words[0].start,
        end=words[-1].end,
        text="".join(word.word for word in words),
        tokens=(),
        temperature=0.0,
        avg_logprob=-0.2,
        compression_ratio=1.2,
        no_speech_prob=0.01,
        words=tuple(words),
        speaker=speaker,
    )


def _transcripts() -> list[Transcript]:
    """Transcripts whose shaping meets every rule: long words and lines, pauses over 3 s,
    times out of order and past the end, arrows, no spaces (Chinese), speakers."""
    talk = " The quick brown fox, jumps over--> the extraordinarily lazy dog. Then it sleeps"
    words, start = [], 0.0005
    for index, text in enumerate(re.findall(r" ?\S+", talk)):
        words.append(_word(text, start, start + 0.3 + index * 0.01))
        start += 0.4 if index != 6 else 3.5
    plain = Transcript(
        segments=(_segment(0, words[:7]), _segment(1, words[7:])),
        language="en",
        language_probability=1.0,
        duration=words[-1].end - 0.1,
    )
    chinese = [_word(text, 0.25 * i, 0.25 * i + 0.2) for i, text in enumerate("我们今天去公园")]
    spoken = [
        _segment(0, [_word(" Hello", 0.0, 0.4, "A"), _word(" there.", 0.4, 0.9, "A")], "A"),
        _segment(1, [_word(" Hi,", 1.0, 1.2, "B"), _word(" how", 1.2, 1.5, "B")], "B"),
    ]
    return [
        plain,
        Transcript(
            segments=(_segment(0, chinese),), language="zh", language_probability=1.0, duration=2.0
        ),
        Transcript(segments=tuple(spoken), language="en", language_probability=1.0, duration=2.0),
    ]


STYLES = (
    SubtitleStyle(),
    SubtitleStyle(max_line_width=12),
    SubtitleStyle(max_line_width=20, max_line_count=2),
    SubtitleStyle(max_words_per_line=2),
    SubtitleStyle(max_words_per_line=3, max_line_width=14, max_line_count=1),
    SubtitleStyle(max_cue_duration=0.7),
    SubtitleStyle(max_line_width=10, max_line_count=1, max_cue_duration=1.1),
    SubtitleStyle(highlight_words=True),
    SubtitleStyle(max_words_per_line=2, highlight_words=True, max_cue_duration=0.5),
)


def test_the_pages_shaping_is_the_servers_for_every_rule(transcribed: Page) -> None:
    """The page's srt and vtt of a verbose_json transcript equal the server's for the same
    transcript, for every style (the rules of whisperd.audio.subtitles)."""
    cases = [
        {"transcript": to_verbose_json(t, granularities=("segment", "word")), "style": style}
        for t in _transcripts()
        for style in map(dataclasses.asdict, STYLES)
    ]
    rendered = transcribed.evaluate(
        """async (cases) => {
             const formats = await import('/web/formats.js');
             return cases.map(({transcript, style}) =>
               [formats.toSrt(transcript, style), formats.toVtt(transcript, style)]);
           }""",
        cases,
    )
    index = 0
    for transcript in _transcripts():
        for style in STYLES:
            wanted = [to_srt(transcript, style), to_vtt(transcript, style)]
            assert rendered[index] == wanted, (transcript.language, style)
            index += 1


def test_wrong_options_are_explained_before_anything_is_sent_or_saved(
    transcribed: Page, speech_files: tuple[Path, Path]
) -> None:
    page = transcribed
    downloads: list[object] = []
    page.on("download", lambda download: downloads.append(download))
    with _subtitle_options(page, {"max_line_count": 2}):
        page.get_by_role("button", name="Subtitles (.srt)").click()
        message = page.locator("#subtitle-message").inner_text()
        assert "needs characters per line or words per line" in message, message
        page.get_by_label("Characters per line").fill("0")
        page.get_by_role("button", name="Subtitles (.vtt)").click()
        message = page.locator("#subtitle-message").inner_text()
        assert message.startswith("Characters per line must be a whole number from 1"), message
    files = page.locator("#file-list .file").count()
    page.get_by_label("Label speakers").check()
    try:
        page.get_by_label("Fewest speakers").fill("3")
        page.get_by_label("Most speakers").fill("2")
        page.set_input_files("#file-input", str(speech_files[0]))
        message = page.locator("#files-message").inner_text()
        assert "fewest speakers cannot be more than the most" in message, message
    finally:
        page.get_by_label("Fewest speakers").fill("")
        page.get_by_label("Most speakers").fill("")
        page.get_by_label("Label speakers").uncheck()
    assert page.locator("#file-list .file").count() == files
    page.wait_for_timeout(200)
    assert downloads == []
