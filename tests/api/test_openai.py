"""The OpenAI-compatible API through the official openai SDK against a real server.

The server runs fake engines wherever a test checks only the wire (formats, envelopes, form
fields, admission); the real scripted model serves the parity test with faster-whisper.
"""

from __future__ import annotations

import base64
import contextlib
import io
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import openai
import pytest

from waiting import joined, wait_until
from whisperd.engine.options import TranscribeOptions
from whisperd.testing import ScriptedModel

DATA = Path(__file__).parents[1] / "data"


def _wav(seconds: float, amplitude: float = 0.05, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal(int(16000 * seconds)) * amplitude * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


if TYPE_CHECKING:
    from conftest import RunningServer


@contextlib.contextmanager
def long_request_running(
    server: RunningServer, seconds: float, gate: threading.Event
) -> Iterator[threading.Event]:
    """Keep a ``seconds``-long transcription on the (fake) model for the duration of the block:
    its engine waits at the closed ``gate`` after the first window until the block ends.

    Yields an event set once the request has finished (for checks made while it ran).
    """
    audio = _wav(seconds)
    finished = threading.Event()
    statuses: list[int] = []

    def post() -> None:
        with server.http() as http:
            response = http.post(
                "/v1/audio/transcriptions",
                files={"file": ("long.wav", audio)},
                data={"model": "whisper-1", "vad_filter": "false"},
            )
        statuses.append(response.status_code)
        finished.set()

    gate.clear()
    worker = threading.Thread(target=post)
    worker.start()
    admission = server.app.state.service.admission
    try:
        wait_until(lambda: admission.running or finished.is_set(), "the long request never ran")
        assert not finished.is_set(), f"the long request ended at once: {statuses}"
        yield finished
    finally:
        gate.set()
        joined(worker)
    assert statuses == [200]


def test_json_is_the_default_format(fake_server: RunningServer, fake_transcript) -> None:
    with (DATA / "speech.wav").open("rb") as audio:
        result = fake_server.client().audio.transcriptions.create(model="whisper-1", file=audio)
    assert result.text == fake_transcript("speech.wav").text


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
def test_text_formats(fake_server: RunningServer, fake_transcript, fmt: str) -> None:
    with (DATA / "speech.mp3").open("rb") as audio:
        result = fake_server.client().audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format=fmt,  # type: ignore[arg-type]
        )
    assert isinstance(result, str)
    words = fake_transcript("speech.mp3").text
    if fmt == "text":
        assert result.strip() == words
    elif fmt == "srt":
        assert result.startswith("1\n00:00:0")
        assert "," in result.splitlines()[1]
        assert words in result
    else:
        assert result.startswith("WEBVTT\n\n")
        assert words in result


def test_text_content_types(fake_server: RunningServer) -> None:
    with fake_server.http() as http:
        for fmt, media in (("text", "text/plain"), ("srt", "text/plain"), ("vtt", "text/vtt")):
            response = http.post(
                "/v1/audio/transcriptions",
                files={"file": ("a.wav", (DATA / "speech.wav").read_bytes())},
                data={"model": "whisper-1", "response_format": fmt},
            )
            assert response.status_code == 200
            assert response.headers["content-type"].startswith(media)


def test_verbose_json_segments(fake_server: RunningServer, fake_transcript) -> None:
    expected = fake_transcript("speech.wav")
    (expected_segment,) = expected.segments
    with (DATA / "speech.wav").open("rb") as audio:
        result = fake_server.client().audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="verbose_json"
        )
    assert result.language == "english"
    assert result.duration == pytest.approx(4.9, abs=0.1)
    assert result.text == expected.text
    assert result.segments is not None
    (segment,) = result.segments
    assert segment.text == expected_segment.text
    assert segment.id == 0
    assert segment.tokens == list(expected_segment.tokens)  # the words and two timestamps
    assert result.words is None
    assert result.usage is not None
    assert result.usage.seconds == 5


def test_word_granularity_gives_words_only(fake_server: RunningServer, fake_transcript) -> None:
    expected = fake_transcript("speech.wav", word_timestamps=True)
    with (DATA / "speech.wav").open("rb") as audio:
        result = fake_server.client().audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word"],
        )
    assert result.segments is None
    assert result.words is not None
    assert [w.word for w in result.words] == [w.word.strip() for w in expected.words]
    assert all(w.start <= w.end for w in result.words)


def test_both_granularities(fake_server: RunningServer) -> None:
    with (DATA / "speech.wav").open("rb") as audio:
        result = fake_server.client().audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert result.segments
    assert result.words


# The SDK marks audio.translations.create deprecated; whisperd still serves the route.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_translation(fake_server: RunningServer, fake_transcript) -> None:
    with (DATA / "speech.wav").open("rb") as audio:
        result = fake_server.client().audio.translations.create(
            model="whisper-1", file=audio, response_format="verbose_json"
        )
    assert result.text == fake_transcript("speech.wav", task="translate").text


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_translation_is_refused_by_an_english_only_model(
    english_model: ScriptedModel, settings_for, serve_fake
) -> None:
    with (
        serve_fake(settings_for(model=str(english_model.path))) as running,
        (DATA / "speech.wav").open("rb") as audio,
        pytest.raises(openai.BadRequestError) as info,
    ):
        running.client().audio.translations.create(model="whisper-1", file=audio)
    assert info.value.status_code == 400
    assert info.value.param == "task"
    assert "English-only" in info.value.message


def test_stream_sends_a_delta_per_segment_then_done(
    fake_server: RunningServer, fake_transcript
) -> None:
    audio = _wav(65)
    expected = fake_transcript(audio)
    events = list(
        fake_server.client().audio.transcriptions.create(
            model="whisper-1",
            file=("long.wav", audio),
            stream=True,
            extra_body={"vad_filter": "false"},
        )
    )
    types = [event.type for event in events]
    assert types == ["transcript.text.delta"] * 3 + ["transcript.text.done"]
    texts = [s.text for s in expected.segments]
    assert [e.delta for e in events[:3]] == [texts[0].lstrip(), *texts[1:]]  # type: ignore[union-attr]
    done = events[-1]
    assert done.text == expected.text  # type: ignore[union-attr]
    assert "".join(e.delta for e in events[:3]) == done.text  # type: ignore[union-attr]


def test_decoding_extras_are_form_fields(fake_server: RunningServer) -> None:
    with fake_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", _wav(40))},
            data={
                "model": "whisper-1",
                "response_format": "verbose_json",
                "vad_filter": "false",
                "chunk_length": "10",
                "beam_size": "1",
                "temperature": "0,0.5",
            },
        )
    assert response.status_code == 200, response.text
    starts = [s["start"] for s in response.json()["segments"]]
    assert starts == [0.0, 10.0, 20.0, 30.0]


def test_http_text_equals_the_engine_text(
    server: RunningServer, scripted_model: ScriptedModel
) -> None:
    from whisperd.engine.hub import ResolvedModel
    from whisperd.engine.whisper import WhisperEngine

    audio = _wav(40, seed=3)
    engine = WhisperEngine(
        ResolvedModel("m", scripted_model.path, None, None), device="cpu", compute_type="int8"
    )
    samples = np.frombuffer(audio[44:], dtype=np.int16).astype(np.float32) / 32768.0
    try:
        expected = engine.transcribe(
            samples, TranscribeOptions(without_timestamps=True, vad_filter=False)
        )
    finally:
        engine.close()
    with server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", audio)},
            data={"model": "whisper-1", "without_timestamps": "true", "vad_filter": "false"},
        )
    assert response.json()["text"] == expected.text


def test_open_webui_request_shape(fake_server: RunningServer, fake_transcript) -> None:
    webm = (DATA / "speech_webm_named.wav").read_bytes()
    assert webm[:4] == b"\x1a\x45\xdf\xa3"  # really WebM
    with fake_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("recording.wav", webm, "audio/wav")},
            data={"model": "whisper-1", "language": "en"},
        )
    assert response.status_code == 200
    assert response.json()["text"] == fake_transcript("speech_webm_named.wav").text


def test_base64_audio(fake_server: RunningServer, fake_transcript) -> None:
    encoded = base64.b64encode((DATA / "speech.mp3").read_bytes()).decode()
    with fake_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            data={"model": "whisper-1", "audio_base64": encoded, "audio_suffix": ".mp3"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == fake_transcript("speech.mp3").text


def test_health_answers_while_a_long_transcription_runs(
    fake_server: RunningServer, engine_gate: threading.Event
) -> None:
    with (
        long_request_running(fake_server, 300, engine_gate) as finished,
        fake_server.http() as http,
    ):
        health = http.get("/health")
        running_when_answered = not finished.is_set()
    assert health.status_code == 200
    assert running_when_answered  # /health answered while the model was busy


def test_request_id_is_echoed_or_made(fake_server: RunningServer) -> None:
    with fake_server.http() as http:
        given = http.get("/health", headers={"x-request-id": "abc-123"})
        made = http.get("/health", headers={"x-request-id": "bad id!"})
    assert given.headers["x-request-id"] == "abc-123"
    assert made.headers["x-request-id"] not in ("", "bad id!")


def test_models_list_and_retrieve(fake_server: RunningServer) -> None:
    client = fake_server.client()
    ids = [model.id for model in client.models.list()]
    assert "whisper-1" in ids
    assert "large-v3-turbo" in ids
    assert "tiny.en" in ids
    turbo = client.models.retrieve("large-v3-turbo")
    assert turbo.id == "large-v3-turbo"
    extra = turbo.model_extra or {}
    assert extra["capabilities"]["translation"] is True
    assert "beam_size" in extra["parameters"]["properties"]
    assert "timestamp_granularities[]" in extra["parameters"]["properties"]
    english = client.models.retrieve("tiny.en").model_extra or {}
    assert english["capabilities"] == {
        "transcription": True,
        "translation": False,
        "languages": ["en"],
    }


def test_model_ids_with_a_slash_raw_or_encoded(fake_server: RunningServer) -> None:
    with fake_server.http() as http:
        raw = http.get("/v1/models/Systran/faster-whisper-small")
        encoded = http.get("/v1/models/Systran%2Ffaster-whisper-small")
    assert raw.status_code == encoded.status_code == 200
    assert raw.json()["id"] == encoded.json()["id"] == "Systran/faster-whisper-small"


def test_unknown_model_is_404(fake_server: RunningServer) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        fake_server.client().models.retrieve("no-such-model")
    assert info.value.code == "model_not_found"
    with (DATA / "speech.wav").open("rb") as audio, pytest.raises(openai.NotFoundError) as info:
        fake_server.client().audio.transcriptions.create(model="no-such-model", file=audio)
    assert info.value.param == "model"


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"beam_size": "0"}, "beam_size"),
        ({"response_format": "docx"}, "response_format"),
        ({"temperature": "hot"}, "temperature"),
        ({"timestamp_granularities[]": "sentence"}, "timestamp_granularities[]"),
        ({"vad_parameters": "{oops"}, "vad_parameters"),
        ({"language": "klingon"}, "language"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(
    fake_server: RunningServer, data: dict[str, str], param: str
) -> None:
    with fake_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", _wav(1))},
            data={"model": "whisper-1", **data},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("not_audio.txt", "unsupported_audio"),
        ("corrupt.mp3", "corrupt_audio"),
        ("truncated.wav", "truncated_audio"),
    ],
)
def test_bad_audio_is_400_with_its_code(fake_server: RunningServer, name: str, code: str) -> None:
    with (DATA / name).open("rb") as audio, pytest.raises(openai.BadRequestError) as info:
        fake_server.client().audio.transcriptions.create(model="whisper-1", file=audio)
    assert info.value.code == code
    assert info.value.param == "file"


def test_missing_and_conflicting_sources(fake_server: RunningServer) -> None:
    with fake_server.http() as http:
        missing = http.post("/v1/audio/transcriptions", data={"model": "whisper-1"})
        both = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", _wav(1))},
            data={"model": "whisper-1", "audio_base64": base64.b64encode(b"x").decode()},
        )
        bad64 = http.post(
            "/v1/audio/transcriptions", data={"model": "whisper-1", "audio_base64": "***"}
        )
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "file"
    assert both.status_code == 400
    assert bad64.status_code == 400
    assert bad64.json()["error"]["param"] == "audio_base64"


def test_upload_over_the_limit_is_413(settings_for, serve_fake) -> None:
    with (
        serve_fake(settings_for(max_upload_mb=0.05)) as running,
        pytest.raises(openai.APIStatusError) as info,
    ):
        running.client().audio.transcriptions.create(model="whisper-1", file=("big.wav", _wav(5)))
    assert info.value.status_code == 413
    assert info.value.code == "file_too_large"


def test_api_keys(settings_for, serve_fake) -> None:
    with serve_fake(settings_for(api_keys=["k-one", "k-two"])) as running:
        with (DATA / "speech.wav").open("rb") as audio:
            ok = running.client(api_key="k-two").audio.transcriptions.create(
                model="whisper-1", file=audio
            )
        assert ok.text
        with pytest.raises(openai.AuthenticationError) as info:
            running.client(api_key="wrong").models.list()
        assert info.value.status_code == 401
        assert info.value.code == "invalid_api_key"
        with running.http() as http:
            assert http.get("/health").status_code == 200
            assert http.get("/v1/models").status_code == 401


def test_server_full_is_503_with_retry_after(settings_for, serve_fake) -> None:
    gate = threading.Event()
    with (
        serve_fake(settings_for(max_pending_requests=1), gate) as running,
        long_request_running(running, 200, gate),
        running.http() as http,
    ):
        refused = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", _wav(1))},
            data={"model": "whisper-1"},
        )
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["error"]["code"] == "server_busy"


def test_unknown_routes_use_the_envelope(fake_server: RunningServer) -> None:
    with fake_server.http() as http:
        response = http.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_openapi_describes_the_form(fake_server: RunningServer) -> None:
    with fake_server.http() as http:
        spec = http.get("/openapi.json").json()
    body = spec["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]
    fields = body["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"file", "model", "response_format", "beam_size", "vad_filter"} <= set(fields)


def test_stream_deltas_arrive_while_the_model_still_runs(
    fake_server: RunningServer, engine_gate: threading.Event, fake_transcript
) -> None:
    audio = _wav(300)
    windows = len(fake_transcript(audio).segments)
    admission = fake_server.app.state.service.admission
    engine_gate.clear()  # the engine holds its second window until the first delta is read
    try:
        with (
            fake_server.http() as http,
            http.stream(
                "POST",
                "/v1/audio/transcriptions",
                files={"file": ("long.wav", audio)},
                data={"model": "whisper-1", "stream": "true", "vad_filter": "false"},
            ) as response,
        ):
            lines = response.iter_lines()
            first = next(line for line in lines if line)
            still_running = admission.running
            engine_gate.set()
            rest = [line for line in lines if line]
    finally:
        engine_gate.set()
    assert first.startswith('data: {"type": "transcript.text.delta"')
    assert still_running == 1  # the first delta came before the last window was decoded
    assert len(rest) == windows  # the other windows' deltas and the done event


def test_audio_queue_bound_is_503_with_the_reason(settings_for, serve_fake) -> None:
    gate = threading.Event()
    with (
        serve_fake(settings_for(max_queued_audio_seconds=100), gate) as running,
        long_request_running(running, 300, gate),
        running.http() as http,
    ):
        native_status = http.get("/status").json()
        openai_status = http.get("/v1/status").json()
        refused = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", _wav(2))},
            data={"model": "whisper-1"},
        )
    assert native_status["queued_audio_seconds"] == openai_status["queued_audio_seconds"] == 300
    assert native_status["transcription_active"] is True
    assert refused.status_code == 503
    assert "100 s queue" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1
