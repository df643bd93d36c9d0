"""``whisperd`` on the command line: transcribe files and folders, list models, help, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result

from whisperd.audio.formats import FILE_EXTENSIONS, OUTPUT_FORMATS
from whisperd.cli import _transcribe_command, cli
from whisperd.engine.base import SAMPLE_RATE
from whisperd.engine.options import TranscribeOptions
from whisperd.testing import ScriptedModel
from whisperd.testing.speech import SENTENCES, SpokenText, conversation, word_error_rate

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
    flags = {opt for param in _transcribe_command().params for opt in param.opts}
    for name in TranscribeOptions.model_fields:
        assert "--" + name.replace("_", "-") in flags, name
    listed = _run("transcribe", "--help").output
    for param in _transcribe_command().params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.opts[0] in listed, param.name


def _help_extras(command: click.Command) -> dict[str, dict[str, str]]:
    context = click.Context(command, info_name=command.name)
    return {
        str(param.name): param.get_help_extra(context)
        for param in command.params
        if isinstance(param, click.Option)
    }


def test_help_shows_the_default_of_every_option_that_has_one() -> None:
    for command in (_transcribe_command(), cli.commands["serve"], cli.commands["models"]):
        extras = _help_extras(command)
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            help_text = param.help or ""
            shown = "default" in extras[str(param.name)] or "default:" in help_text
            has_default = param.default not in (None, False, ())
            assert shown or not has_default, (command.name, param.name)
    extras = _help_extras(_transcribe_command())
    assert extras["beam_size"]["default"] == "5"
    assert extras["temperature"]["default"] == "0,0.2,0.4,0.6,0.8,1"
    assert extras["format"]["default"] == "txt"
    assert extras["vad_filter"]["default"] == "vad-filter"


def test_help_says_vad_is_on_by_default_unlike_faster_whisper() -> None:
    result = _run("transcribe", "--help")
    text = " ".join(result.output.split())
    assert "VAD is on by default, unlike faster-whisper; --no-vad-filter decodes everything" in text
    assert "--vad-filter / --no-vad-filter" in text


def test_boolean_flags_are_offered_only_in_the_direction_that_changes_something() -> None:
    flags = {
        opt
        for param in _transcribe_command().params
        for opt in (*param.opts, *getattr(param, "secondary_opts", ()))
    }
    for name, field in TranscribeOptions.model_fields.items():
        if field.annotation is not bool:
            continue
        flag = "--" + name.replace("_", "-")
        assert flag in flags, name
        assert (f"--no-{flag[2:]}" in flags) == field.default, name
    assert "--without-timestamps" in flags
    assert "--no-without-timestamps" not in flags
    assert "--no-word-timestamps" not in flags
    assert "--no-vad-filter" in flags
    assert "None" not in _run("transcribe", "--help").output


def test_format_all_writes_every_format(scripted_model: ScriptedModel, tmp_path: Path) -> None:
    result = _run(
        "transcribe",
        str(DATA / "speech.wav"),
        "--model",
        str(scripted_model.path),
        "-f",
        "all",
        "-o",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"speech.{FILE_EXTENSIONS[fmt]}" for fmt in OUTPUT_FORMATS
    )
    assert json.loads((tmp_path / "speech.json").read_text())["text"] == (
        scripted_model.text.strip()
    )


def test_verbose_json_has_words_only_when_word_timestamps_were_computed(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    for flags, out in (([], tmp_path / "plain"), (["--word-timestamps"], tmp_path / "words")):
        result = _run(
            "transcribe",
            str(DATA / "speech.wav"),
            "--model",
            str(scripted_model.path),
            "-f",
            "verbose_json",
            "-o",
            str(out),
            *flags,
        )
        assert result.exit_code == 0, result.output
    plain = json.loads((tmp_path / "plain" / "speech.verbose.json").read_text())
    timed = json.loads((tmp_path / "words" / "speech.verbose.json").read_text())
    assert "words" not in plain
    assert [w["word"] for w in timed["words"]] == list(scripted_model.words)
    assert [s["text"] for s in timed["segments"]] == [s["text"] for s in plain["segments"]]


def test_real_speech_verbose_json_carries_its_words(real_model: Path, tmp_path: Path) -> None:
    spoken = conversation(SENTENCES[:3])
    (tmp_path / "talk.webm").write_bytes(spoken.wav_bytes())
    out = tmp_path / "out"
    result = _run(
        "transcribe",
        str(tmp_path / "talk.webm"),
        "--model",
        str(real_model),
        "--word-timestamps",
        "-f",
        "verbose_json",
        "-f",
        "srt",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    verbose = json.loads((out / "talk.verbose.json").read_text())
    words = verbose["words"]
    assert word_error_rate(spoken.text, " ".join(w["word"] for w in words)) < 0.2
    assert all(w["start"] <= w["end"] for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert verbose["segments"][0]["start"] <= words[0]["start"]
    assert words[-1]["end"] <= verbose["duration"]
    assert "word" not in (out / "talk.srt").read_text()


def test_output_dir_dash_prints_the_transcript_to_stdout(
    scripted_model: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _run(
        "transcribe", str(DATA / "speech.wav"), "--model", str(scripted_model.path), "-o", "-"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == scripted_model.text.strip() + "\n"
    assert "1 of 1 file(s) transcribed" in result.stderr
    assert list(tmp_path.iterdir()) == []
    result = _run(
        "transcribe",
        str(DATA / "speech.wav"),
        "--model",
        str(scripted_model.path),
        "--output-dir",
        "-",
        "-f",
        "verbose_json",
        "--word-timestamps",
    )
    assert result.exit_code == 0, result.output
    words = json.loads(result.stdout)["words"]
    assert [w["word"] for w in words] == list(scripted_model.words)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["speech.wav", "-f", "srt", "-f", "vtt"], "one format to standard output, not 2"),
        (["speech.wav", "-f", "all"], "one format to standard output, not 6"),
        (["speech.wav", "speech.mp3"], "one file's transcript to standard output, not 2 files"),
        (["."], "one file's transcript to standard output, not"),
    ],
)
def test_stdout_takes_one_file_in_one_format(
    scripted_model: ScriptedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    for name in ("speech.wav", "speech.mp3"):
        shutil.copy(DATA / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    result = _run("transcribe", *args, "--model", str(scripted_model.path), "-o", "-")
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_without_a_terminal_progress_is_printed_as_lines_while_a_file_runs(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    noise = np.random.default_rng(3).standard_normal(SAMPLE_RATE * 90).astype(np.float32) * 0.05
    (tmp_path / "long.wav").write_bytes(SpokenText(noise, "").wav_bytes())
    result = _run(
        "transcribe",
        str(tmp_path / "long.wav"),
        "--model",
        str(scripted_model.path),
        "--no-vad-filter",
        "--beam-size",
        "1",
        "-o",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    name = str(tmp_path / "long.wav")
    assert f"{name}: 90.0 s of audio" in lines
    progress = [line for line in lines if line.startswith(f"{name}: ") and "%" in line]
    assert progress == [f"{name}: 36% (32.0 of 90.0 s)", f"{name}: 69% (62.0 of 90.0 s)"]
    assert lines.index(progress[-1]) < lines.index(f"{name}: done")
    assert "\x1b[" not in result.stderr


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
