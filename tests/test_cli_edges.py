"""``whisperd transcribe`` on edge inputs: a too-short file fails alone, silence is empty text."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from whisperd.cli import _transcribe_command, cli
from whisperd.engine.base import SAMPLE_RATE
from whisperd.testing import ScriptedModel
from whisperd.testing.speech import SpokenText

DATA = Path(__file__).parent / "data"


def test_a_too_short_file_fails_with_its_reason_and_silence_gives_empty_files(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    blip = np.sin(np.arange(SAMPLE_RATE // 20) / 3).astype(np.float32) * 0.5  # 50 ms
    (folder / "blip.wav").write_bytes(SpokenText(blip, "").wav_bytes())
    shutil.copy(DATA / "digital_silence.wav", folder / "quiet.wav")
    shutil.copy(DATA / "speech.wav", folder / "speech.wav")
    out = tmp_path / "out"
    cli.add_command(_transcribe_command())

    result = CliRunner().invoke(
        cli,
        ["transcribe", str(folder), "--model", str(scripted_model.path), "-f", "txt", "-f",
         "srt", "--output-dir", str(out)],
        catch_exceptions=False,
    )  # fmt: skip

    assert "blip.wav: failed: Audio file is too short. Minimum audio length is 0.1 seconds." in (
        " ".join(result.output.split())
    ), result.output
    assert "2 of 3 file(s) transcribed" in result.output
    assert result.exit_code == 1  # some file failed
    assert (out / "quiet.txt").read_text().strip() == ""
    assert (out / "quiet.srt").read_text() == ""
    assert (out / "speech.txt").read_text().strip() == scripted_model.text.strip()
    assert not (out / "blip.txt").exists()
