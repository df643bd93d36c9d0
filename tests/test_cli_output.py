"""Where ``whisperd transcribe`` puts transcripts: atomic files, or a stream (``-o -``)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from whisperd.audio.formats import OUTPUT_FORMATS, render
from whisperd.cli_output import FileOutput, StreamOutput, write_atomically
from whisperd.engine.base import Segment, Transcript, Word


def _transcript() -> Transcript:
    words = (Word(0.0, 0.4, " Hello", 0.9), Word(0.5, 1.0, " there.", 0.8))
    segment = Segment(
        id=0,
        seek=0,
        start=0.0,
        end=1.0,
        text=" Hello there.",
        tokens=(1, 2),
        temperature=0.0,
        avg_logprob=-0.1,
        compression_ratio=1.0,
        no_speech_prob=0.01,
        words=words,
    )
    return Transcript((segment,), "en", 1.0, 1.5)


def test_verbose_json_carries_words_when_they_were_computed_and_other_formats_are_unchanged(
    tmp_path: Path,
) -> None:
    transcript = _transcript()
    written = FileOutput(OUTPUT_FORMATS, word_timestamps=True).write(transcript, tmp_path / "a")
    assert [p.name for p in written] == [
        "a.txt",
        "a.json",
        "a.verbose.json",
        "a.srt",
        "a.vtt",
        "a.tsv",
    ]
    verbose = json.loads((tmp_path / "a.verbose.json").read_text())
    assert verbose["words"] == [
        {"word": "Hello", "start": 0.0, "end": 0.4, "probability": 0.9},
        {"word": "there.", "start": 0.5, "end": 1.0, "probability": 0.8},
    ]
    for fmt, path in zip(OUTPUT_FORMATS, written, strict=True):
        if fmt != "verbose_json":
            assert path.read_text() == render(transcript, fmt)


def test_verbose_json_has_no_words_without_word_timestamps(tmp_path: Path) -> None:
    FileOutput(("verbose_json",)).write(_transcript(), tmp_path / "a")
    assert "words" not in json.loads((tmp_path / "a.verbose.json").read_text())


def test_stream_output_prints_one_format_and_writes_no_file(tmp_path: Path) -> None:
    stream = io.StringIO()
    output = StreamOutput("json", stream, word_timestamps=True)
    assert output.write(_transcript(), tmp_path / "a") == []
    assert stream.getvalue() == render(_transcript(), "json") + "\n"
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "talk.srt"
    target.write_text("old")

    def fail(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, "new")
    assert [p.name for p in tmp_path.iterdir()] == ["talk.srt"]
    assert target.read_text() == "old"


def test_an_atomic_write_replaces_the_file_with_the_usual_permissions(tmp_path: Path) -> None:
    usual = tmp_path / "usual.txt"
    usual.write_text("x")
    target = tmp_path / "talk.txt"
    write_atomically(target, "héllo\n")
    write_atomically(target, "again\n")
    assert target.read_text(encoding="utf-8") == "again\n"
    assert target.stat().st_mode == usual.stat().st_mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.txt", "usual.txt"]
