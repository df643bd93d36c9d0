"""``whisperd transcribe --diarize`` / ``--multichannel`` on the real tiny.en and speaker
encoder: every output format shows who speaks; bad speaker flags are usage errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from whisperd.cli import _transcribe_command, cli
from whisperd.engine.base import SAMPLE_RATE
from whisperd.testing.speech import (
    SENTENCES,
    SPEAKER_VOICES,
    conversation,
    espeak_available,
    speak,
    wav_file,
)

pytestmark = [
    pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
pytest.importorskip("scipy")
pytest.importorskip("torch")


def _run(*args: str) -> Result:
    cli.add_command(_transcribe_command())
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "dialogue.wav"
    path.write_bytes(conversation(SENTENCES[:4], voices=SPEAKER_VOICES, pause_s=0.5).wav_bytes())
    return path


def test_every_format_shows_the_speakers(dialogue: Path, real_model: Path, tmp_path: Path) -> None:
    result = _run(
        "transcribe",
        str(dialogue),
        "--model",
        str(real_model),
        "--diarize",
        "--temperature",
        "0",
        "--format",
        "all",
        "--output-dir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    txt = (tmp_path / "dialogue.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in txt] == ["A", "B", "A", "B"]
    srt = (tmp_path / "dialogue.srt").read_text()
    assert "[A] What time does the train" in srt
    assert "[B] Please close the window" in srt
    vtt = (tmp_path / "dialogue.vtt").read_text()
    assert "<v A>What time does the train" in vtt
    assert "<v B>Please close the window" in vtt
    tsv = (tmp_path / "dialogue.tsv").read_text().splitlines()
    assert tsv[1].split("\t")[2].startswith("[A] ")
    verbose = json.loads((tmp_path / "dialogue.verbose.json").read_text())
    assert [segment["speaker"] for segment in verbose["segments"]] == ["A", "B", "A", "B"]


def test_shaped_subtitles_keep_one_labelled_speaker_per_cue(
    dialogue: Path, real_model: Path, tmp_path: Path
) -> None:
    shaping = ("--max-line-width", "24", "--max-line-count", "2", "--highlight-words")
    result = _run(
        "transcribe",
        str(dialogue),
        "--model",
        str(real_model),
        "--diarize",
        "--temperature",
        "0",
        "--format",
        "all",
        *shaping,
        "--output-dir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    for suffix, label in (("srt", r"\[([AB])\] "), ("vtt", r"<v ([AB])>")):
        document = (tmp_path / f"dialogue.{suffix}").read_text()
        blocks = document.removeprefix("WEBVTT\n\n").strip().split("\n\n")
        texts = [
            "\n".join(line for line in block.splitlines() if "-->" not in line) for block in blocks
        ]
        speakers = [re.search(label, text) for text in texts]
        assert all(speakers), texts
        order = [m.group(1) for m in speakers if m]
        assert [s for i, s in enumerate(order) if i == 0 or order[i - 1] != s] == list("ABAB")
        assert any("<u>" in text for text in texts)
    srt = (tmp_path / "dialogue.srt").read_text()
    assert "[B] <u>Please</u> close" in srt


def test_known_speaker_from_a_file_is_named(
    dialogue: Path, real_model: Path, tmp_path: Path
) -> None:
    clip = tmp_path / "customer.wav"
    clip.write_bytes(speak(" ".join(SENTENCES[8:10]), voice=SPEAKER_VOICES[1]).wav_bytes())
    result = _run(
        "transcribe",
        str(dialogue),
        "--model",
        str(real_model),
        "--diarize",
        "--known-speaker",
        f"customer={clip}",
        "--format",
        "txt",
        "--output-dir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "dialogue.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["A", "customer", "A", "customer"]


def test_multichannel_labels_each_channel(real_model: Path, tmp_path: Path) -> None:
    left, right = speak(SENTENCES[0]).samples, speak(SENTENCES[1], voice="en-gb").samples
    frames = np.zeros((len(left) + SAMPLE_RATE + len(right), 2), dtype=np.float32)
    frames[: len(left), 0] = left
    frames[len(left) + SAMPLE_RATE :, 1] = right
    stereo = tmp_path / "call.wav"
    stereo.write_bytes(wav_file(frames, channels=2))
    result = _run(
        "transcribe",
        str(stereo),
        "--model",
        str(real_model),
        "--multichannel",
        "--known-speaker",
        "agent",
        "--format",
        "txt",
        "--output-dir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "call.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["agent", "A"]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--num-speakers", "2"], "--num-speakers needs --diarize"),
        (["--known-speaker", "a=missing.wav"], "--known-speaker needs --diarize"),
        (["--diarize", "--known-speaker", "nobody"], "give NAME=FILE"),
        (["--diarize", "--min-speakers", "3", "--max-speakers", "2"], "--min-speakers"),
        (["--diarize", "--num-speakers", "0"], "--num-speakers"),
        (["--diarize", "--num-speakers", "2", "--max-speakers", "3"], "--num-speakers: num"),
        (["--multichannel", "--max-speakers", "2"], "--max-speakers: max_speakers is not used"),
    ],
)
def test_bad_speaker_flags_are_usage_errors(
    dialogue: Path, tmp_path: Path, flags: list[str], says: str
) -> None:
    result = _run("transcribe", str(dialogue), "--output-dir", str(tmp_path), *flags)
    assert result.exit_code == 2, result.output
    assert says in result.output
