"""The native API: every example of the Faster-Whisper Transcriber's guide, run as written.

Each snippet below is the guide's code with only the host and port changed (and, where the
guide names files the reader has, our test clips copied under those names).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from whisperd.testing import ScriptedModel

if TYPE_CHECKING:
    from conftest import RunningServer

DATA = Path(__file__).parents[1] / "data"
GUIDE_URL = "http://127.0.0.1:8765"


def run_example(code: str, server: RunningServer, cwd: Path) -> str:
    """Run a guide snippet against ``server`` in ``cwd``; return what it printed."""
    source = textwrap.dedent(code).replace(GUIDE_URL, server.url)
    printed = io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(printed):
        exec(compile(source, "guide example", "exec"), {"__name__": "guide"})
    return printed.getvalue()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for name in (
        "my_audio.mp3",
        "meeting.mp3",
        "lecture.mp3",
        "file1.mp3",
        "file2.mp3",
        "file3.mp3",
    ):
        shutil.copy(DATA / "speech.mp3", tmp_path / name)
    shutil.copy(DATA / "speech.wav", tmp_path / "recording.wav")
    (tmp_path / "my_audio_files").mkdir()
    for name in ("a.mp3", "b.mp3"):
        shutil.copy(DATA / "speech.mp3", tmp_path / "my_audio_files" / name)
    return tmp_path


SIMPLEST = """
import requests
response = requests.post(
    "http://127.0.0.1:8765/transcribe",
    files={"audio": open("my_audio.mp3", "rb")},
)
print(response.json()["text"])
"""

WAV = """
import requests
with open("recording.wav", "rb") as f:
    response = requests.post(
        "http://127.0.0.1:8765/transcribe",
        files={"audio": ("recording.wav", f, "audio/wav")},
    )
print(response.json()["text"])
"""

NUMPY = """
import io
import numpy as np
import requests
# Your audio as a numpy array (float32, mono)
audio_array = np.random.randn(16000 * 5).astype(np.float32) # 5 seconds at 16kHz
buffer = io.BytesIO()
np.save(buffer, audio_array)
buffer.seek(0)
response = requests.post(
    "http://127.0.0.1:8765/transcribe",
    files={"audio": ("audio.npy", buffer, "application/octet-stream")},
    data={"sample_rate": "16000"},
)
print(response.json()["text"])
"""

TENSOR = """
import io
import torch
import requests
audio_tensor = torch.randn(16000 * 5) # 5 seconds at 16kHz
buffer = io.BytesIO()
torch.save(audio_tensor, buffer)
buffer.seek(0)
response = requests.post(
    "http://127.0.0.1:8765/transcribe",
    files={"audio": ("audio.pt", buffer, "application/octet-stream")},
    data={"sample_rate": "16000"},
)
print(response.json()["text"])
"""

PCM = """
import numpy as np
import requests
audio = np.random.randn(16000 * 3).astype(np.float32) # 3 seconds
raw_bytes = audio.tobytes()
response = requests.post(
    "http://127.0.0.1:8765/transcribe",
    files={"audio": ("audio.raw", raw_bytes, "application/octet-stream")},
    data={
        "audio_format": "pcm",
        "sample_rate": "16000",
        "dtype": "float32", # also supports: int16, int32, float64
    },
)
print(response.json()["text"])
"""

RAW_NUMPY = """
import base64, io
import numpy as np
import requests
audio = np.random.randn(16000 * 5).astype(np.float32)
buffer = io.BytesIO()
np.save(buffer, audio)
b64_data = base64.b64encode(buffer.getvalue()).decode("utf-8")
response = requests.post(
    "http://127.0.0.1:8765/transcribe/raw",
    json={
        "audio_data": b64_data,
        "audio_format": "numpy",
        "sample_rate": 16000,
    },
)
print(response.json()["text"])
"""

RAW_FILE = """
import base64
import requests
with open("my_audio.mp3", "rb") as f:
    b64_data = base64.b64encode(f.read()).decode("utf-8")
response = requests.post(
    "http://127.0.0.1:8765/transcribe/raw",
    json={
        "audio_data": b64_data,
        "audio_format": "file",
    },
)
print(response.json()["text"])
"""

ALL_SETTINGS = """
import requests
with open("lecture.mp3", "rb") as f:
    response = requests.post(
        "http://127.0.0.1:8765/transcribe",
        files={"audio": ("lecture.mp3", f, "audio/mpeg")},
        data={
            "model": "large-v3",
            "quantization": "float16",
            "device": "cuda",
            "task_mode": "transcribe",
            "language": "en",
            "include_timestamps": "true",
            "beam_size": "5",
            "vad_filter": "true",
            "batch_size": "8",
        },
    )
result = response.json()
print(result["text"])
print(f"Detected language: {result['language']}")
print(f"Took {result['processing_time_seconds']} seconds")
"""

TIMESTAMPS = """
import requests
with open("meeting.mp3", "rb") as f:
    r = requests.post(
        "http://127.0.0.1:8765/transcribe",
        files={"audio": ("meeting.mp3", f)},
        data={"include_timestamps": "true"},
    )
result = r.json()
print("Transcript:", result["text"])
print(f"Detected: {result['language']}, duration {result['duration']:.1f}s")
print(f"Model: {result['model_used']}")
print(f"Task: {result['task']}, took {result['processing_time_seconds']:.1f}s")
for seg in result["segments"]:
    print(f"[{seg['start']:07.3f} → {seg['end']:07.3f}] {seg['text'].strip()}")

def seconds_to_srt_time(s):
    h = int(s // 3600)
    m = int((s % 3600) // 60)
    sec = s % 60
    return f"{h:02d}:{m:02d}:{sec:06.3f}".replace(".", ",")
def to_srt(segments):
    lines = []
    for i, seg in enumerate(segments, 1):
        lines.append(f"{i}")
        lines.append(f"{seconds_to_srt_time(seg['start'])} --> {seconds_to_srt_time(seg['end'])}")
        lines.append(seg["text"].strip())
        lines.append("")
    return "\\n".join(lines)
srt_text = to_srt(result["segments"])
print(srt_text)
"""

HEALTH_STATUS_MODELS = """
import time
import requests
r = requests.get("http://127.0.0.1:8765/health")
print(r.json())
r = requests.get("http://127.0.0.1:8765/status")
status = r.json()
print(status)
while True:
    status = requests.get("http://127.0.0.1:8765/status").json()
    if status["queue_depth"] == 0 and not status["transcription_active"]:
        break
    print(f"Server busy (queue: {status['queue_depth']}), waiting...")
    time.sleep(2)
print("Server is free, submitting...")
r = requests.get("http://127.0.0.1:8765/models")
models = r.json()
print(models)
models = requests.get("http://127.0.0.1:8765/models").json()
for name, info in models.items():
    if info["supports_translation"]:
        print(name)
"""

THREADS = """
import threading
import requests
def transcribe(file_path):
    with open(file_path, "rb") as f:
        r = requests.post(
            "http://127.0.0.1:8765/transcribe",
            files={"audio": (file_path, f)},
        )
    print(f"{file_path}: {r.json()['text'][:80]}...")
threads = [
    threading.Thread(target=transcribe, args=("file1.mp3",)),
    threading.Thread(target=transcribe, args=("file2.mp3",)),
    threading.Thread(target=transcribe, args=("file3.mp3",)),
]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""

ERROR_HANDLING = """
import requests
def transcribe_file(file_path, **settings):
    try:
        with open(file_path, "rb") as f:
            r = requests.post(
                "http://127.0.0.1:8765/transcribe",
                files={"audio": (file_path, f)},
                data=settings,
                timeout=300,
            )
    except requests.ConnectionError:
        print("Cannot connect — is the server running?")
        return None
    except requests.Timeout:
        print("Request timed out")
        return None
    if r.status_code == 200:
        return r.json()
    error = r.json()
    detail = error.get("detail", "Unknown error")
    if r.status_code == 400:
        print(f"Bad request: {detail}")
    elif r.status_code == 422:
        for err in detail:
            print(f"Validation error at {err['loc']}: {err['msg']}")
    elif r.status_code == 500:
        print(f"Server error: {detail}")
    elif r.status_code == 503:
        print("Server is shutting down, try again later")
    return None
result = transcribe_file("meeting.mp3", model="large-v3", language="en")
if result:
    print(result["text"])
"""

FOLDER = """
import requests
from pathlib import Path
SERVER = "http://127.0.0.1:8765"
AUDIO_DIR = Path("./my_audio_files")
# Check server is running
health = requests.get(f"{SERVER}/health")
if health.status_code != 200:
    print("Server is not running!")
    exit(1)
for audio_file in sorted(AUDIO_DIR.glob("*.mp3")):
    print(f"Transcribing: {audio_file.name}...", end=" ", flush=True)
    with open(audio_file, "rb") as f:
        response = requests.post(
            f"{SERVER}/transcribe",
            files={"audio": (audio_file.name, f, "audio/mpeg")},
            data={"language": "en", "beam_size": "5"},
        )
    if response.status_code == 200:
        result = response.json()
        text = result["text"]
        duration = result["duration"]
        speed = result["processing_time_seconds"]
        output_file = audio_file.with_suffix(".txt")
        output_file.write_text(text, encoding="utf-8")
        print(f"Done ({duration:.1f}s audio in {speed:.1f}s)")
    else:
        print(f"Failed: {response.json().get('detail', 'Unknown error')}")
"""


# The guide's simplest example leaves its file open; that warning is the guide's, not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("example", "clip"), [(SIMPLEST, "speech.mp3"), (WAV, "speech.wav"), (RAW_FILE, "speech.mp3")]
)
def test_file_examples_print_the_transcript(
    native_server: RunningServer, workdir: Path, fake_transcript, example: str, clip: str
) -> None:
    printed = run_example(example, native_server, workdir)
    assert printed.strip() == fake_transcript(clip, without_timestamps=True).text


@pytest.mark.parametrize("example", [NUMPY, PCM, RAW_NUMPY])
def test_array_examples_run(native_server: RunningServer, workdir: Path, example: str) -> None:
    printed = run_example(example, native_server, workdir)
    assert printed.endswith("\n")  # printed response.json()["text"] without an error


def test_tensor_example_runs(native_server: RunningServer, workdir: Path) -> None:
    pytest.importorskip("torch")
    printed = run_example(TENSOR, native_server, workdir)
    assert printed.endswith("\n")


def test_every_setting_example(
    native_server: RunningServer, workdir: Path, fake_transcript
) -> None:
    printed = run_example(ALL_SETTINGS, native_server, workdir).splitlines()
    assert printed[0] == fake_transcript("speech.mp3").text
    assert printed[1] == "Detected language: en"
    assert printed[2].startswith("Took ")


def test_timestamps_and_srt_example(
    native_server: RunningServer, workdir: Path, fake_transcript
) -> None:
    expected = fake_transcript("speech.mp3")
    (segment,) = expected.segments
    printed = run_example(TIMESTAMPS, native_server, workdir)
    assert f"Transcript: {expected.text}" in printed
    assert "Detected: en, duration 4.9s" in printed
    assert "Model: large-v3-turbo - int8" in printed
    assert "Task: transcribe" in printed
    line = re.search(r"\[(\d{3}\.\d{3}) → (\d{3}\.\d{3})\] (.*)", printed)
    assert line is not None
    assert float(line[2]) - float(line[1]) == pytest.approx(segment.end - segment.start)
    assert line[3] == expected.text
    assert "\n1\n00:00:00," in printed


def test_health_status_and_models_examples(native_server: RunningServer, workdir: Path) -> None:
    printed = run_example(HEALTH_STATUS_MODELS, native_server, workdir).splitlines()
    assert printed[0] == "{'status': 'ok'}"
    assert "'server_running': True" in printed[1]
    assert "'queue_depth': 0" in printed[1]
    assert "'transcription_active': False" in printed[1]
    assert printed[2] == "Server is free, submitting..."
    assert "'medium.en': {'name': 'medium.en', 'supports_translation': False}" in printed[3]
    multilingual = printed[4:]
    assert "large-v3" in multilingual
    assert "tiny.en" not in multilingual
    assert "distil-whisper-large-v3" not in multilingual


def test_concurrent_clients_each_get_their_own_result(
    native_server: RunningServer, workdir: Path, fake_transcript
) -> None:
    printed = run_example(THREADS, native_server, workdir).splitlines()
    expected = fake_transcript("speech.mp3", without_timestamps=True).text[:80]
    assert sorted(printed) == [f"file{i}.mp3: {expected}..." for i in (1, 2, 3)]


def test_error_handling_example(
    native_server: RunningServer, workdir: Path, fake_transcript
) -> None:
    printed = run_example(ERROR_HANDLING, native_server, workdir)
    assert printed.strip() == fake_transcript("speech.mp3", without_timestamps=True).text


def test_folder_script(native_server: RunningServer, workdir: Path, fake_transcript) -> None:
    printed = run_example(FOLDER, native_server, workdir)
    assert printed.count("Done (4.9s audio in") == 2
    written = (workdir / "my_audio_files" / "a.txt").read_text()
    assert written == fake_transcript("speech.mp3", without_timestamps=True).text


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_examples(native_server: RunningServer, workdir: Path, fake_transcript) -> None:
    base = native_server.url
    commands = [
        f"curl {base}/health",
        f'curl -F "audio=@my_audio.mp3" {base}/transcribe',
        f'curl -F "audio=@my_audio.mp3" -F "model=large-v3" -F "quantization=float16" '
        f'-F "task_mode=transcribe" -F "language=en" -F "include_timestamps=true" '
        f'-F "beam_size=5" {base}/transcribe',
    ]
    outputs = [
        subprocess.run(
            command, shell=True, cwd=workdir, capture_output=True, text=True, check=True
        ).stdout
        for command in commands
    ]
    assert outputs[0] == '{"status":"ok"}'
    assert fake_transcript("speech.mp3", without_timestamps=True).text in outputs[1]
    assert '"model_used":"large-v3 - float32"' in outputs[2]
    assert '"segments":[{"start"' in outputs[2]


def _post(
    server: RunningServer,
    files: Any = None,
    data: Any = None,
    json: Any = None,
    path: str = "/transcribe",
) -> Any:
    with server.http() as http:
        return http.post(path, files=files, data=data, json=json)


def test_response_shape(native_server: RunningServer, fake_transcript) -> None:
    plain = _post(native_server, files={"audio": ("a.mp3", (DATA / "speech.mp3").read_bytes())})
    assert plain.status_code == 200
    body = plain.json()
    assert set(body) == {
        "text",
        "segments",
        "language",
        "duration",
        "task",
        "model_used",
        "processing_time_seconds",
    }
    assert body["segments"] == []
    assert body["model_used"] == "large-v3-turbo - int8"
    timed = _post(
        native_server,
        files={"audio": ("a.mp3", (DATA / "speech.mp3").read_bytes())},
        data={"include_timestamps": "true", "word_timestamps": "true"},
    ).json()
    (segment,) = timed["segments"]
    (expected,) = fake_transcript("speech.mp3", word_timestamps=True).segments
    assert segment["text"] == expected.text  # the engine's leading space kept
    assert [w["word"].strip() for w in segment["words"]] == [
        w.word.strip() for w in expected.words or ()
    ]
    assert segment["start"] == round(segment["start"], 3)


def test_errors_in_the_guides_style(native_server: RunningServer) -> None:
    audio = (DATA / "speech.mp3").read_bytes()
    unknown = _post(native_server, files={"audio": ("a.mp3", audio)}, data={"model": "FakeModel"})
    assert unknown.status_code == 400
    assert unknown.json()["detail"].startswith("Unknown model 'FakeModel'. Available: ['tiny.en'")
    empty = _post(native_server, files={"audio": ("a.mp3", b"")})
    assert (empty.status_code, empty.json()) == (400, {"detail": "Empty audio data"})
    garbage = _post(native_server, files={"audio": ("a.mp3", b"this is not audio at all")})
    assert garbage.status_code == 400
    assert garbage.json()["detail"].startswith("Failed to process audio: ")
    missing = _post(native_server, data={"model": "tiny"})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "audio"]
    assert missing.json()["detail"][0]["type"] == "missing"
    beam = _post(native_server, files={"audio": ("a.mp3", audio)}, data={"beam_size": "21"})
    assert beam.status_code == 422
    raw = _post(
        native_server, json={"audio_data": "%%%", "audio_format": "file"}, path="/transcribe/raw"
    )
    assert raw.status_code == 400
    assert raw.json()["detail"].startswith("Failed to process audio: ")


def test_translation_on_an_english_only_model(
    settings_for, serve_fake, english_model: ScriptedModel, tmp_path: Path
) -> None:
    from whisperd.testing.hub import hub_cache

    cache = hub_cache(tmp_path / "hub", english_model.path, ["Systran/faster-whisper-tiny.en"])
    with serve_fake(settings_for(models_dir=cache)) as running:
        response = _post(
            running,
            files={"audio": ("a.mp3", (DATA / "speech.mp3").read_bytes())},
            data={"model": "tiny.en", "task_mode": "translate"},
        )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Transcription failed: ")
    assert "English-only" in response.json()["detail"]


def test_draining_server_refuses_new_work(settings_for, serve_fake) -> None:
    with serve_fake(settings_for()) as running:
        running.app.state.draining = True
        with running.http() as http:
            health = http.get("/health")
            native = http.post("/transcribe", files={"audio": ("a.mp3", b"x")})
            openai = http.post("/v1/audio/transcriptions", files={"file": ("a.mp3", b"x")})
        running.app.state.draining = False
    assert health.status_code == 503
    assert (native.status_code, native.json()) == (503, {"detail": "Server shutting down"})
    assert openai.status_code == 503
    assert openai.json()["error"]["code"] == "shutting_down"


def test_the_server_flips_to_draining_when_asked_to_stop(settings_for) -> None:
    import signal

    import uvicorn

    from whisperd.app import DrainingServer, create_app

    app = create_app(settings_for())
    app.state.draining = False
    server = DrainingServer(uvicorn.Config(app), app, shutdown_timeout_s=1)
    server.handle_exit(signal.SIGTERM, None)
    assert app.state.draining is True
    assert server.should_exit is False  # it stops once the work in flight is done


def test_docs_describe_every_setting(native_server: RunningServer) -> None:
    with native_server.http() as http:
        spec = http.get("/openapi.json").json()
        assert http.get("/docs").status_code == 200
        assert http.get("/redoc").status_code == 200
    body = spec["paths"]["/transcribe"]["post"]["requestBody"]["content"]
    schema_ref = body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    properties = spec["components"]["schemas"][schema_ref]["properties"]
    for name in (
        "audio",
        "model",
        "quantization",
        "device",
        "language",
        "task_mode",
        "include_timestamps",
        "word_timestamps",
        "beam_size",
        "vad_filter",
        "condition_on_previous_text",
        "batch_size",
        "audio_format",
        "sample_rate",
        "dtype",
    ):
        assert properties[name].get("description"), name


def test_early_errors_use_the_native_envelope_on_native_paths(settings_for, serve_fake) -> None:
    with (
        serve_fake(settings_for(api_keys=["k"], max_upload_mb=0.01)) as running,
        running.http() as http,
    ):
        unauthorized = http.post("/transcribe", files={"audio": ("a.mp3", b"x")})
        key = {"Authorization": "Bearer k"}
        big = http.post("/transcribe", files={"audio": ("a.wav", b"x" * 200_000)}, headers=key)
        openai_side = http.get("/v1/models")
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {
        "detail": "Missing API key: send it as 'Authorization: Bearer <key>'."
    }
    assert unauthorized.headers["x-request-id"]
    assert big.status_code == 413
    assert big.json()["detail"].startswith("Maximum content size limit")
    assert openai_side.status_code == 401
    assert openai_side.json()["error"]["code"] == "invalid_api_key"
