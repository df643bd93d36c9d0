"""``whisperd transcribe --server`` with the speaker flags, on a real ``whisperd serve`` (the real
tiny.en and speaker encoder, jobs in a temporary data directory): a two-voice espeak-ng
dialogue gets the labels and turns a local run writes; ``--num-speakers``, known speakers and
``--multichannel`` reach the job the server stores; the same command resumes its job and a
changed speaker flag submits a new one; a bad known speaker's clip, or a server without the
speaker model, is that file's error with the server's message."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from click.testing import CliRunner, Result

from served import served
from whisperd.audio.formats import OUTPUT_FORMATS, Granularity, render, to_verbose_json
from whisperd.cli import _transcribe_command, cli
from whisperd.cli_remote_client import data_url, speaker_fields, transcript_of_verbose
from whisperd.cli_speakers import diarization_from_flags
from whisperd.engine.base import SAMPLE_RATE, Segment, Transcript, Word
from whisperd.schemas.diarization import DiarizationFields
from whisperd.schemas.form_fields import read_fields
from whisperd.schemas.openai import ARRAY_FIELDS
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

_MODEL_FLAGS = ("--device", "cpu", "--compute-type", "int8", "--offline")
_BLOCK_SPEAKER_MODEL = (
    "import sys; sys.modules['resemblyzer'] = None; "  # as if it were not installed
    "from whisperd.cli import main; main()"
)


@dataclass(frozen=True)
class Server:
    """A running ``whisperd serve`` and the SQLite file its jobs are stored in."""

    url: str
    database: Path

    def jobs(self) -> list[dict[str, Any]]:
        """Every job, newest first."""
        body = httpx.get(f"{self.url}/v1/jobs", params={"limit": 100}, timeout=30)
        assert body.status_code == 200, body.text
        return list(body.json()["data"])

    def diarization(self, job_id: str) -> dict[str, Any]:
        """The diarization the server stored with the job (its options' ``diarization``)."""
        with closing(sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT options FROM jobs WHERE id = ?", (job_id,)).fetchone()
        assert row is not None, job_id
        return dict(json.loads(row[0])["diarization"])


@contextmanager
def _serve(model: Path, base: Path, *, speaker_model: bool = True) -> Iterator[Server]:
    """Run ``whisperd serve`` on ``model`` with jobs in ``base/data`` (no API key)."""
    start = ["-m", "whisperd"] if speaker_model else ["-c", _BLOCK_SPEAKER_MODEL]
    command = [sys.executable, *start, "serve", "--model", str(model), "--port", "0"]
    command += [*_MODEL_FLAGS, "--data-dir", str(base / "data")]
    with served(command, base / "serve.log") as url:
        yield Server(url, base / "data" / "jobs.sqlite3")


@pytest.fixture(scope="module")
def server(real_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with _serve(real_model, tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "dialogue.wav"
    path.write_bytes(conversation(SENTENCES[:4], voices=SPEAKER_VOICES, pause_s=0.5).wav_bytes())
    return path


@pytest.fixture(scope="module")
def customer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-10 s clip of the second voice of :func:`dialogue`."""
    path = tmp_path_factory.mktemp("clips") / "customer.wav"
    path.write_bytes(speak(" ".join(SENTENCES[8:10]), voice=SPEAKER_VOICES[1]).wav_bytes())
    return path


def _transcribe(*args: str) -> Result:
    cli.add_command(_transcribe_command())
    return CliRunner().invoke(cli, ["transcribe", *args])


def _remote(server: Server, *args: str) -> Result:
    return _transcribe(*args, "--server", server.url)


def _local(real_model: Path, *args: str) -> Result:
    return _transcribe(*args, "--model", str(real_model), *_MODEL_FLAGS)


def _new_jobs(server: Server, before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {job["id"] for job in before}
    return [job for job in server.jobs() if job["id"] not in seen]


def _turns(folder: Path, stem: str) -> dict[str, list[tuple[str, str]]]:
    """Each speaker-labelled format's (speaker, text) turns, in order."""
    txt = (folder / f"{stem}.txt").read_text().splitlines()
    srt = (folder / f"{stem}.srt").read_text()
    vtt = (folder / f"{stem}.vtt").read_text()
    tsv = (folder / f"{stem}.tsv").read_text().splitlines()[1:]
    verbose = json.loads((folder / f"{stem}.verbose.json").read_text())
    cue = r"\[([^\]]+)\] (.*)"
    return {
        "txt": re.findall(r"^([^:]+): (.*)$", "\n".join(txt), flags=re.MULTILINE),
        "srt": re.findall(f"^{cue}$", srt, flags=re.MULTILINE),
        "vtt": re.findall(r"^<v ([^>]+)>(.*)$", vtt, flags=re.MULTILINE),
        "tsv": [
            tuple(match.groups()) for row in tsv if (match := re.fullmatch(cue, row.split("\t")[2]))
        ],
        "verbose_json": [(s["speaker"], s["text"]) for s in verbose["segments"]],
        "words": [(word["speaker"], word["word"]) for word in verbose.get("words", [])],
    }


def _flags(**given: Any) -> dict[str, Any]:
    """The speaker flags' parameters as click passes them (none given: their defaults)."""
    defaults = {"diarize": False, "multichannel": False, "known_speaker": (), "server": None}
    counts = dict.fromkeys(("num_speakers", "min_speakers", "max_speakers"))
    return {**defaults, **counts, **given}


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"diarize": True},
        {"diarize": True, "num_speakers": 3},
        {"diarize": True, "min_speakers": 2, "max_speakers": 5},
        {"diarize": True, "min_speakers": 9},
        {"diarize": True, "max_speakers": 1},
        {"diarize": True, "known_speaker": ("agent, first=OTHER", "[customer]=VOICE")},
        {"multichannel": True},
        {"diarize": True, "known_speaker": ("agent=VOICE", "customer=VOICE")},
        {"multichannel": True, "known_speaker": ("agent", "the, customer")},
    ],
)
def test_the_server_reads_the_speaker_fields_back_into_the_local_diarization(
    customer: Path, tmp_path: Path, given: dict[str, Any]
) -> None:
    other = tmp_path / "other.wav"
    other.write_bytes(customer.read_bytes()[:-2])  # a second, different clip
    clip_of = {"VOICE": str(customer), "OTHER": str(other)}
    known = tuple(
        re.sub("VOICE|OTHER", lambda m: clip_of[m[0]], item)
        for item in given.pop("known_speaker", ())
    )
    diarization, clips = diarization_from_flags(_flags(known_speaker=known, **given))
    references = [(name, data_url(clip.data)) for name, clip in clips]
    fields = speaker_fields(diarization, references)
    # What the jobs route does with a form's fields (api/jobs.py).
    items = [("response_format", "verbose_json"), *fields.items()]
    form = read_fields(items, arrays=ARRAY_FIELDS)
    read, read_clips = DiarizationFields.model_validate(form).options(
        model="whisper-1", response_format="verbose_json"
    )
    assert read == diarization
    paths = [clip.data for _, clip in clips]
    assert all(isinstance(path, Path) for path in paths)
    expected = [path.read_bytes() if isinstance(path, Path) else path for path in paths]
    assert [(name, clip.data) for name, clip in read_clips] == [
        (name, data) for (name, _), data in zip(clips, expected, strict=True)
    ]


def test_speakers_come_back_from_verbose_json_and_render_every_format_the_same() -> None:
    words = (
        Word(0.0, 0.5, " Hello", 0.9, speaker="agent"),
        Word(0.5, 1.0, " there.", 0.8, speaker="agent"),
        Word(1.2, 1.6, " Hi!", 0.7, speaker="B"),
    )
    segments = (
        Segment(
            0, 0, 0.0, 1.0, " Hello there.", (1, 2), 0.0, -0.1, 1.0, 0.01, words[:2], None, "agent"
        ),
        Segment(1, 0, 1.2, 1.6, " Hi!", (3,), 0.0, -0.2, 1.0, 0.02, words[2:], None, "B"),
    )
    transcript = Transcript(segments, language="en", language_probability=0.9, duration=2.0)
    granularities: tuple[Granularity, ...] = ("segment", "word")
    body = json.loads(json.dumps(to_verbose_json(transcript, granularities=granularities)))
    rebuilt = transcript_of_verbose(body, words=True)
    assert [s.speaker for s in rebuilt.segments] == ["agent", "B"]
    assert [w.speaker for s in rebuilt.segments for w in s.words or ()] == ["agent", "agent", "B"]
    for fmt in OUTPUT_FORMATS:
        expected = render(transcript, fmt, granularities=granularities)
        assert render(rebuilt, fmt, granularities=granularities) == expected, fmt
    plain = transcript_of_verbose(
        body
        | {"segments": [{k: v for k, v in s.items() if k != "speaker"} for s in body["segments"]]},
        words=False,
    )
    assert [s.speaker for s in plain.segments] == [None, None]


def _outputs(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(folder.iterdir())}


def test_a_dialogue_gets_the_speakers_a_local_run_writes_and_a_rerun_resumes_its_job(
    server: Server, real_model: Path, dialogue: Path, tmp_path: Path
) -> None:
    flags = (str(dialogue), "--diarize", "--temperature", "0", "-f", "all", "--word-timestamps")
    before = server.jobs()
    remote = _remote(server, *flags, "-o", str(tmp_path / "remote"))
    assert remote.exit_code == 0, remote.output
    local = _local(real_model, *flags, "-o", str(tmp_path / "local"))
    assert local.exit_code == 0, local.output

    expected = _turns(tmp_path / "local", "dialogue")
    assert [speaker for speaker, _ in expected["txt"]] == ["A", "B", "A", "B"]
    assert {speaker for speaker, _ in expected["words"]} == {"A", "B"}
    assert _turns(tmp_path / "remote", "dialogue") == expected
    assert _outputs(tmp_path / "remote") == _outputs(tmp_path / "local")  # and all else too
    (job,) = _new_jobs(server, before)
    assert server.diarization(job["id"])["mode"] == "speakers"

    jobs = server.jobs()
    again = _remote(server, *flags, "-o", str(tmp_path / "again"))
    assert again.exit_code == 0, again.output
    assert server.jobs() == jobs  # the same job, none new
    assert _turns(tmp_path / "again", "dialogue") == expected

    counted = _remote(server, *flags, "--num-speakers", "2", "-o", str(tmp_path / "counted"))
    assert counted.exit_code == 0, counted.output
    (new,) = _new_jobs(server, jobs)
    assert server.diarization(new["id"])["num_speakers"] == 2


def test_counts_and_known_speakers_reach_the_server(
    server: Server, dialogue: Path, customer: Path, tmp_path: Path
) -> None:
    before = server.jobs()
    flags = ("--diarize", "--num-speakers", "2", "--known-speaker", f"customer={customer}")
    done = _remote(server, str(dialogue), *flags, "-f", "txt", "-f", "srt", "-o", str(tmp_path))
    assert done.exit_code == 0, done.output
    (job,) = _new_jobs(server, before)
    stored = server.diarization(job["id"])
    assert (stored["mode"], stored["num_speakers"]) == ("speakers", 2)
    assert [known["name"] for known in stored["known_speakers"]] == ["customer"]
    lines = (tmp_path / "dialogue.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["A", "customer", "A", "customer"]
    assert "[customer] Please close the window" in (tmp_path / "dialogue.srt").read_text()

    bounded = ("--diarize", "--min-speakers", "2", "--max-speakers", "3")
    again = _remote(server, str(dialogue), *bounded, "-o", str(tmp_path / "bounded"))
    assert again.exit_code == 0, again.output
    (job,) = _new_jobs(server, [*before, job])
    stored = server.diarization(job["id"])
    assert (stored["num_speakers"], stored["min_speakers"], stored["max_speakers"]) == (None, 2, 3)


def _stereo(path: Path) -> Path:
    """One voice on the left channel, then another on the right."""
    left, right = speak(SENTENCES[0]).samples, speak(SENTENCES[1], voice="en-gb").samples
    frames = np.zeros((len(left) + SAMPLE_RATE + len(right), 2), dtype=np.float32)
    frames[: len(left), 0] = left
    frames[len(left) + SAMPLE_RATE :, 1] = right
    path.write_bytes(wav_file(frames, channels=2))
    return path


def test_multichannel_labels_each_channel_on_the_server(server: Server, tmp_path: Path) -> None:
    stereo = _stereo(tmp_path / "call.wav")
    flags = (str(stereo), "--multichannel", "--known-speaker", "agent", "-f", "txt")
    before = server.jobs()
    done = _remote(server, *flags, "-o", str(tmp_path / "remote"))
    assert done.exit_code == 0, done.output
    (job,) = _new_jobs(server, before)
    stored = server.diarization(job["id"])
    assert (stored["mode"], stored["channel_names"]) == ("channels", ["agent"])
    lines = (tmp_path / "remote" / "call.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["agent", "A"]


@pytest.mark.parametrize(
    ("clip", "says"),
    [
        ("not audio", "known_speaker_references[0] is not usable audio"),
        ("short", "known_speaker_references[0] is 1.0 s long"),
    ],
)
def test_a_bad_known_speaker_clip_is_each_files_error_with_the_servers_message(
    server: Server, dialogue: Path, tmp_path: Path, clip: str, says: str
) -> None:
    reference = tmp_path / "voice.wav"
    if clip == "short":
        voice = speak(SENTENCES[2], voice=SPEAKER_VOICES[1])
        reference.write_bytes(replace(voice, samples=voice.samples[:SAMPLE_RATE]).wav_bytes())
    else:
        reference.write_text("this is not audio")
    before = server.jobs()
    done = _remote(
        server,
        str(dialogue),
        "--diarize",
        "--known-speaker",
        f"customer={reference}",
        "-o",
        str(tmp_path / "out"),
    )
    assert done.exit_code == 1, done.output
    assert "Traceback" not in done.output
    failures = [line for line in done.output.splitlines() if line.startswith("failed ")]
    assert len(failures) == 1, done.output
    assert failures[0].startswith(f"failed {dialogue}: {says}")
    assert failures[0].endswith(f"(HTTP 400 from {server.url})")
    assert server.jobs() == before  # refused: nothing was kept
    assert not (tmp_path / "out").exists()


def test_a_server_without_the_speaker_model_is_each_files_error_saying_how_to_install_it(
    real_model: Path, dialogue: Path, tmp_path: Path
) -> None:
    with _serve(real_model, tmp_path, speaker_model=False) as bare:
        done = _remote(bare, str(dialogue), "--diarize", "-o", str(tmp_path / "out"))
        assert bare.jobs() == []
    assert done.exit_code == 1, done.output
    assert "Traceback" not in done.output
    failures = [line for line in done.output.splitlines() if line.startswith("failed ")]
    assert len(failures) == 1, done.output
    assert failures[0].startswith(f"failed {dialogue}: Diarization needs the speaker model")
    assert "pip install 'whisperd[diarize]'" in failures[0]
    assert failures[0].endswith(f"(HTTP 400 from {bare.url})")
