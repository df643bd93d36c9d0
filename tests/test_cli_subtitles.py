"""``whisperd transcribe`` subtitle shaping flags and ``--logprobs``: real speech, bad values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from whisperd.cli import _transcribe_command, cli
from whisperd.testing import ScriptedModel
from whisperd.testing.speech import espeak_available, speak

DATA = Path(__file__).parent / "data"
TEXT = "Please close the window before you go to bed. The children played in the garden."
_TIMING = re.compile(r"^\d\d:\d\d:\d\d[,.]\d{3} --> \d\d:\d\d:\d\d[,.]\d{3}$")


def _run(*args: str) -> Result:
    cli.add_command(_transcribe_command())
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _cue_lines(document: str) -> list[list[str]]:
    """The text lines of each cue of an SRT or WebVTT document."""
    cues = []
    for block in document.removeprefix("WEBVTT\n\n").strip().split("\n\n"):
        lines = block.split("\n")
        lines = lines[1:] if lines[0].isdigit() else lines
        assert _TIMING.match(lines[0]), block
        cues.append(lines[1:])
    return cues


def test_real_speech_shaped_srt_and_vtt(real_model: Path, tmp_path: Path) -> None:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    audio = tmp_path / "talk.wav"
    audio.write_bytes(speak(TEXT).wav_bytes())
    result = _run(
        "transcribe",
        str(audio),
        "--model",
        str(real_model),
        "--device",
        "cpu",
        "--temperature",
        "0",
        "-f",
        "srt",
        "-f",
        "vtt",
        "-f",
        "txt",
        "--max-line-width",
        "20",
        "--max-line-count",
        "2",
        "--output-dir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "talk.txt").read_text().split()
    for name in ("talk.srt", "talk.vtt"):
        cues = _cue_lines((tmp_path / name).read_text())
        assert len(cues) >= 3
        for lines in cues:
            assert 1 <= len(lines) <= 2
            assert all(len(line) <= 20 or " " not in line for line in lines)
        assert [word for lines in cues for line in lines for word in line.split()] == text


def test_highlight_and_words_per_line_to_stdout(scripted_model: ScriptedModel) -> None:
    result = _run(
        "transcribe",
        str(DATA / "speech.wav"),
        "--model",
        str(scripted_model.path),
        "-f",
        "vtt",
        "-o",
        "-",
        "--max-words-per-line",
        "2",
        "--highlight-words",
        "--no-vad-filter",
    )
    assert result.exit_code == 0, result.output
    vtt = result.stdout
    cues = _cue_lines(vtt)
    assert all(len(lines) == 1 and len(lines[0].split()) <= 2 for lines in cues)
    assert sum(lines[0].count("<u>") for lines in cues) == len(scripted_model.text.split())


def test_logprobs_flag_adds_them_to_json(scripted_model: ScriptedModel) -> None:
    result = _run(
        "transcribe",
        str(DATA / "speech.wav"),
        "--model",
        str(scripted_model.path),
        "-f",
        "json",
        "-o",
        "-",
        "--logprobs",
        "--no-vad-filter",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert list(body) == ["text", "logprobs", "usage"]
    assert "".join(entry["token"] for entry in body["logprobs"]).strip() == body["text"]
    assert all(entry["logprob"] <= 0 for entry in body["logprobs"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-line-width", "0"], "'--max-line-width'"),
        (["--max-line-width", "wide"], "--max-line-width"),
        (["--max-words-per-line", "-2"], "'--max-words-per-line'"),
        (["--max-cue-duration", "0"], "'--max-cue-duration'"),
        (["--max-cue-duration", "inf"], "--max-cue-duration"),
        (["--max-line-count", "2"], "--max-line-count: max_line_count needs max_line_width"),
        (["--max-line-width", "30", "-f", "json"], "--max-line-width shapes srt and vtt"),
    ],
)
def test_bad_shaping_flags_are_usage_errors(
    scripted_model: ScriptedModel, flags: list[str], message: str
) -> None:
    args = ["-f", "srt", *flags] if "-f" not in flags else flags
    result = _run(
        "transcribe", str(DATA / "speech.wav"), "--model", str(scripted_model.path), *args
    )
    assert result.exit_code == 2
    assert message in result.output


def test_help_lists_the_shaping_flags() -> None:
    result = _run("transcribe", "--help")
    for flag in (
        "--max-line-width",
        "--max-line-count",
        "--max-words-per-line",
        "--max-cue-duration",
        "--highlight-words",
    ):
        assert flag in result.output
