"""``whisperd transcribe --detect-language`` and ``--ask``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fake_llm import MODEL, closed_port_url, serving_llm
from whisperd.cli import _transcribe_command, cli
from whisperd.cli_language import detection_line
from whisperd.engine.detection import LanguageDetection, LanguageProbability
from whisperd.testing import ScriptedModel
from whisperd.testing.speech import SENTENCES, conversation, word_error_rate

DATA = Path(__file__).parent / "data"


def _run(*args: str) -> Result:
    cli.add_command(_transcribe_command())
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# --------------------------------------------------------------------------------------------
# --detect-language


def test_detection_lines() -> None:
    ranked = (
        LanguageProbability("de", 0.9),
        LanguageProbability("nl", 0.06),
        LanguageProbability("en", 0.04),
    )
    detection = LanguageDetection("de", 0.9, ranked, 3.0, "tiny")
    line = detection_line(Path("a.mp3"), detection, as_json=False)
    assert line == "a.mp3: german (de) 90.0%; dutch 6.0%, english 4.0%"
    parsed = json.loads(detection_line(Path("a.mp3"), detection, as_json=True))
    assert parsed["language"] == "de"
    assert parsed["name"] == "german"
    assert parsed["languages"][1] == {"code": "nl", "probability": 0.06}


def test_detect_language_prints_one_line_per_file_and_writes_nothing(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    shutil.copy(DATA / "speech.wav", tmp_path / "a.wav")
    shutil.copy(DATA / "speech.mp3", tmp_path / "b.mp3")
    result = _run(
        "transcribe", str(tmp_path), "--model", str(scripted_model.path), "--detect-language"
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'a.wav'}: english (en) ")
    assert lines[1].startswith(f"{tmp_path / 'b.mp3'}: english (en) ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.mp3"]


def test_detect_language_among_candidates_as_json(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    result = _run(
        "transcribe",
        str(DATA / "speech.wav"),
        "--model",
        str(scripted_model.path),
        "--detect-language",
        "--languages",
        "de,fr",
        "--no-vad-filter",
        "-f",
        "json",
    )
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout.strip())
    assert parsed["language"] in ("de", "fr")
    assert {item["code"] for item in parsed["languages"]} == {"de", "fr"}
    assert sum(item["probability"] for item in parsed["languages"]) == pytest.approx(1.0)


def test_detect_language_reports_a_bad_file_and_goes_on(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    shutil.copy(DATA / "speech.wav", tmp_path / "good.wav")
    result = _run(
        "transcribe", str(tmp_path), "--model", str(scripted_model.path), "--detect-language"
    )
    assert result.exit_code == 1
    assert "failed" in result.stderr
    assert "broken.wav" in result.stderr
    assert "good.wav: english (en)" in result.stdout


def test_detect_language_refusals(scripted_model: ScriptedModel, english_model) -> None:
    remote = _run(
        "transcribe", str(DATA / "speech.wav"), "--detect-language", "--server", "http://x"
    )
    assert remote.exit_code == 2
    assert "--detect-language runs with a local model" in remote.output
    asking = _run("transcribe", str(DATA / "speech.wav"), "--detect-language", "--ask", "hi")
    assert asking.exit_code == 2
    assert "--ask needs a transcript" in asking.output
    unknown = _run(
        "transcribe",
        str(DATA / "speech.wav"),
        "--model",
        str(scripted_model.path),
        "--detect-language",
        "--languages",
        "klingon",
    )
    assert unknown.exit_code == 2
    assert "--languages" in unknown.output
    english = _run(
        "transcribe",
        str(DATA / "speech.wav"),
        "--model",
        str(english_model.path),
        "--detect-language",
        "--languages",
        "de",
    )
    assert english.exit_code == 2
    assert "English-only" in english.output


def test_detect_language_of_real_speech(real_model: Path, tmp_path: Path) -> None:
    spoken = conversation(SENTENCES[:2])
    (tmp_path / "talk.wav").write_bytes(spoken.wav_bytes())
    result = _run(
        "transcribe", str(tmp_path / "talk.wav"), "--model", str(real_model), "--detect-language"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{tmp_path / 'talk.wav'}: english (en) 100.0%"


# --------------------------------------------------------------------------------------------
# --ask


def test_ask_prints_and_saves_the_answer_next_to_the_transcript(
    scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    with serving_llm() as llm:
        result = _run(
            "transcribe",
            str(DATA / "speech.wav"),
            "--model",
            str(scripted_model.path),
            "-o",
            str(tmp_path),
            "--ask",
            "summarize it",
            "--llm-url",
            llm.url,
            "--llm-model",
            MODEL,
        )
    assert result.exit_code == 0, result.output
    transcript = (tmp_path / "speech.txt").read_text().strip()
    answer = f"whole: {len(transcript.split())} words"
    assert result.stdout.strip() == answer
    assert (tmp_path / "speech.answer.txt").read_text() == answer + "\n"
    (message,) = llm.user_messages()
    assert transcript in message
    assert "Instruction: summarize it" in message


def test_ask_with_the_transcript_on_stdout(
    scripted_model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving_llm() as llm:
        monkeypatch.setenv("WHISPERD_LLM_URL", llm.url)
        result = _run(
            "transcribe",
            str(DATA / "speech.wav"),
            "--model",
            str(scripted_model.path),
            "-o",
            "-",
            "--ask",
            "summarize it",
        )
    assert result.exit_code == 0, result.output
    transcript, heading, answer = result.stdout.strip().split("\n")
    (message,) = llm.user_messages()
    assert message.split('"""')[1].strip() == transcript
    assert heading == "## speech"
    assert answer == f"whole: {len(transcript.split())} words"
    assert llm.listed == 1  # no --llm-model: the first model the server lists


def test_a_failing_llm_keeps_the_transcript(scripted_model: ScriptedModel, tmp_path: Path) -> None:
    result = _run(
        "transcribe",
        str(DATA / "speech.wav"),
        "--model",
        str(scripted_model.path),
        "-o",
        str(tmp_path),
        "--ask",
        "summarize it",
        "--llm-url",
        closed_port_url(),
        "--llm-model",
        MODEL,
    )
    assert result.exit_code == 1
    written = (tmp_path / "speech.txt").read_text().strip()
    assert written in (scripted_model.text.strip(), scripted_model.plain_text.strip())
    assert not (tmp_path / "speech.answer.txt").exists()
    assert "no answer" in result.stderr
    assert "cannot be reached" in result.stderr
    assert "1 answer(s) failed" in result.stderr
    assert result.stdout == ""


def test_ask_needs_an_llm(scripted_model: ScriptedModel, tmp_path: Path) -> None:
    result = _run(
        "transcribe",
        str(DATA / "speech.wav"),
        "--model",
        str(scripted_model.path),
        "-o",
        str(tmp_path),
        "--ask",
        "summarize it",
    )
    assert result.exit_code == 2
    assert "--llm-url" in result.output
    assert list(tmp_path.iterdir()) == []
    blank = _run(
        "transcribe", str(DATA / "speech.wav"), "-o", str(tmp_path), "--ask", " ", "--llm-url", "x"
    )
    assert blank.exit_code == 2
    assert "--ask needs an instruction" in blank.output
    assert list(tmp_path.iterdir()) == []


def test_ask_about_real_speech(real_model: Path, tmp_path: Path) -> None:
    spoken = conversation(SENTENCES[:3])
    (tmp_path / "talk.wav").write_bytes(spoken.wav_bytes())
    with serving_llm() as llm:
        result = _run(
            "transcribe",
            str(tmp_path / "talk.wav"),
            "--model",
            str(real_model),
            "-o",
            str(tmp_path / "out"),
            "--ask",
            "list the people",
            "--llm-url",
            llm.url,
            "--llm-model",
            MODEL,
            "--llm-context-tokens",
            "1024",
        )
    assert result.exit_code == 0, result.output
    transcript = (tmp_path / "out" / "talk.txt").read_text()
    assert word_error_rate(spoken.text, transcript) < 0.2
    (message,) = llm.user_messages()  # three sentences fit a 1024-token context
    assert message.split('"""')[1].split() == transcript.split()
    assert message.endswith("Instruction: list the people")
    assert (tmp_path / "out" / "talk.answer.txt").read_text().strip() == result.stdout.strip()
