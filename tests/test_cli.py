"""``whisperd`` on the command line: transcribe files and folders, list models, help, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from whisperd.cli import _transcribe_command, cli
from whisperd.engine.options import TranscribeOptions
from whisperd.testing import ScriptedModel

DATA = Path(__file__).parent / "data"


def _run(*args: str) -> Result:
    cli.add_command(_transcribe_command())
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_srt_of_one_file_is_written_with_a_summary(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    result = _run(
        "transcribe",
        str(DATA / "speech.mp3"),
        "--model",
        str(scripted_model.path),
        "--format",
        "srt",
        "--output-dir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    srt = (tmp_path / "speech.srt").read_text()
    first_cue = srt.split("\n\n")[0].splitlines()
    assert first_cue[0] == "1"
    assert " --> " in first_cue[1]
    assert first_cue[2] == scripted_model.text.strip()
    assert "1 of 1 file(s) transcribed" in result.output
    assert "x real time" in result.output


def test_folder_is_transcribed_recursively_in_several_formats(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    recordings = tmp_path / "recordings"
    (recordings / "day2").mkdir(parents=True)
    shutil.copy(DATA / "speech.wav", recordings / "a.wav")
    shutil.copy(DATA / "speech.mp3", recordings / "day2" / "b.mp3")
    (recordings / "notes.txt").write_text("not audio")
    out = tmp_path / "out"
    result = _run(
        "transcribe",
        str(recordings),
        "--model",
        str(scripted_model.path),
        "-f",
        "txt",
        "-f",
        "verbose_json",
        "-f",
        "vtt",
        "-o",
        str(out),
        "--word-timestamps",
        "--beam-size",
        "1",
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [
        "a.txt",
        "a.verbose.json",
        "a.vtt",
        "day2/b.txt",
        "day2/b.verbose.json",
        "day2/b.vtt",
    ]
    assert (out / "a.txt").read_text().strip() == scripted_model.text.strip()
    verbose = json.loads((out / "day2" / "b.verbose.json").read_text())
    assert verbose["language"] == "english"
    assert verbose["segments"][0]["text"] == scripted_model.text
    assert (out / "a.vtt").read_text().startswith("WEBVTT\n\n")


def test_a_failing_file_gives_a_nonzero_exit_while_the_others_finish(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    result = _run(
        "transcribe",
        str(DATA / "not_audio.txt"),
        str(DATA / "speech.wav"),
        "--model",
        str(scripted_model.path),
        "-o",
        str(tmp_path),
    )
    assert result.exit_code == 1
    assert (tmp_path / "speech.txt").read_text().strip() == scripted_model.text.strip()
    assert not (tmp_path / "not_audio.txt").exists()
    assert "failed" in result.output
    assert "not_audio.txt" in result.output
    assert "1 of 2 file(s) transcribed" in result.output


def test_same_stem_inputs_do_not_overwrite_each_other(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    result = _run(
        "transcribe",
        str(DATA / "speech.wav"),
        str(DATA / "speech.mp3"),
        "--model",
        str(scripted_model.path),
        "-o",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.mp3.txt", "speech.wav.txt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--beam-size", "0"], "beam-size"),
        (["--temperature", "0,abc"], "temperature"),
        (["--task", "summarize"], "summarize"),
    ],
)
def test_bad_options_are_usage_errors(
    scripted_model: ScriptedModel, args: list[str], message: str
) -> None:
    result = _run(
        "transcribe", str(DATA / "speech.wav"), "--model", str(scripted_model.path), *args
    )
    assert result.exit_code == 2
    assert message in result.output


def test_translation_on_an_english_only_model_is_refused_before_decoding(
    english_model: ScriptedModel, tmp_path: Path
) -> None:
    result = _run(
        "transcribe",
        str(DATA / "speech.wav"),
        "--model",
        str(english_model.path),
        "--task",
        "translate",
        "-o",
        str(tmp_path),
    )
    assert result.exit_code == 2
    assert "English-only" in result.output
    assert list(tmp_path.iterdir()) == []


def test_unknown_model_and_missing_input_are_one_clear_sentence(tmp_path: Path) -> None:
    result = _run(
        "transcribe", str(DATA / "speech.wav"), "--model", "no-such-model", "-o", str(tmp_path)
    )
    assert result.exit_code == 2
    assert "Unknown model 'no-such-model'" in result.output
    result = _run("transcribe", str(tmp_path / "missing.mp3"), "--model", "tiny")
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_every_decoding_option_has_a_flag() -> None:
    result = _run("transcribe", "--help")
    for name in TranscribeOptions.model_fields:
        assert "--" + name.replace("_", "-") in result.output, name


def test_models_lists_known_names_and_what_is_cached(tmp_path: Path) -> None:
    result = _run("models", "--models-dir", str(tmp_path))
    assert result.exit_code == 0
    for name in ("large-v3-turbo", "tiny.en", "distil-large-v3"):
        assert name in result.output
    assert "turbo" in result.output


def test_console_script_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "whisperd", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("transcribe", "models", "serve"):
        assert command in done.stdout
