"""The model lifecycle over HTTP: ``/v1/loaded_models`` (list, load, unload), idle unloading
with ``model_ttl``, ``max_loaded_models``, requests that outlive an unload, and the allow-list
on both APIs."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import openai
import pytest
import websockets

from waiting import joined, until, wait_until
from whisperd.api.models import DEFAULT_ALIASES
from whisperd.config import Settings
from whisperd.testing import ScriptedModel
from whisperd.testing.hub import hub_cache
from whisperd.testing.speech import SENTENCES, espeak_available, speak, word_error_rate

if TYPE_CHECKING:
    from conftest import RunningServer

DATA = Path(__file__).parents[1] / "data"

REPOS = {
    "tiny": "Systran/faster-whisper-tiny",
    "base": "Systran/faster-whisper-base",
    "small": "Systran/faster-whisper-small",
}


def _wav(seconds: float) -> bytes:
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(int(16000 * seconds)) * 0.05 * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def _loaded(server: RunningServer) -> list[dict[str, Any]]:
    with server.http() as http:
        answer = http.get("/v1/loaded_models")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "list"
    data: list[dict[str, Any]] = body["data"]
    return data


def _ids(server: RunningServer) -> list[str]:
    return [entry["id"] for entry in _loaded(server)]


def _transcribe(server: RunningServer, model: str, audio: str = "speech.wav") -> str:
    with (DATA / audio).open("rb") as file:
        result = server.client().audio.transcriptions.create(model=model, file=file)
    return result.text


@pytest.fixture(scope="module")
def cache(scripted_model: ScriptedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An offline Hub cache holding tiny, base and small (the scripted model's files)."""
    return hub_cache(tmp_path_factory.mktemp("hub"), scripted_model.path, list(REPOS.values()))


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_an_idle_model_unloads_after_its_ttl_and_reloads_with_the_same_result(
    serve: Callable[[Settings], Any], settings_for: Callable[..., Settings], real_model: Path
) -> None:
    other = str(real_model)  # the real tiny.en, beside the scripted default model
    spoken = speak(SENTENCES[0])
    settings = settings_for(model_ttl=0.2, allowed_models=[other])

    def transcribe(server: RunningServer) -> str:
        result = server.client().audio.transcriptions.create(
            model=other, file=("speech.wav", spoken.wav_bytes()), temperature=0.0
        )
        return result.text

    with serve(settings) as server:
        first = transcribe(server)
        assert word_error_rate(spoken.text, first) <= 0.2, first
        wait_until(lambda: other not in _ids(server), "the idle model was not unloaded")
        assert [entry["pinned"] for entry in _loaded(server)] == [True]  # the default stays
        again = transcribe(server)
    assert again == first


def test_listing_loading_and_unloading_by_api(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings], cache: Path
) -> None:
    settings = settings_for(model="tiny", models_dir=cache, model_ttl=600.0)
    with serve_fake(settings) as server, server.http() as http:
        (tiny,) = _loaded(server)
        assert tiny["id"] == "tiny"
        assert (tiny["device"], tiny["compute_type"]) == ("cpu", "int8")
        assert tiny["memory_bytes"] > 0
        assert tiny["memory_source"] == "model_files"
        assert tiny["pinned"] is True
        assert tiny["expires_at"] is None
        assert tiny["in_use"] == 0
        assert tiny["unloading"] is False
        assert tiny["loaded_at"] <= tiny["last_used_at"]

        loaded = http.post("/v1/loaded_models/base")
        assert loaded.status_code == 200, loaded.text
        base = loaded.json()
        assert (base["id"], base["object"], base["pinned"]) == ("base", "loaded_model", False)
        assert base["expires_at"] == base["last_used_at"] + 600
        assert _ids(server) == ["tiny", "base"]
        # A repo id (with its slash, raw or percent-encoded) names the same engine.
        again = http.post("/v1/loaded_models/" + quote(REPOS["base"], safe=""))
        assert again.status_code == 200, again.text
        assert _ids(server) == ["tiny", "base"]

        unloaded = http.delete("/v1/loaded_models/" + REPOS["base"])
        assert unloaded.status_code == 200, unloaded.text
        assert unloaded.json() == {
            "id": REPOS["base"],
            "object": "loaded_model",
            "deleted": True,
            "engines": 1,
        }
        assert _ids(server) == ["tiny"]
        # OpenAI's ids of the default model name the server's default, as they do elsewhere.
        assert http.delete("/v1/loaded_models/whisper-1").json()["engines"] == 1
        assert _ids(server) == []
        assert http.post("/v1/loaded_models/whisper-1").json()["id"] == "tiny"
        assert _ids(server) == ["tiny"]


def test_bad_loads_and_unloads_get_clear_errors(
    serve_fake: Callable[..., Any],
    settings_for: Callable[..., Settings],
    cache: Path,
    english_model: ScriptedModel,
) -> None:
    with serve_fake(settings_for(model="tiny", models_dir=cache)) as server, server.http() as http:
        not_loaded = http.delete("/v1/loaded_models/small")
        no_such = http.post("/v1/loaded_models/no-such-model")
        not_allowed = http.post("/v1/loaded_models/" + quote(str(english_model.path), safe=""))
        uncached = http.post("/v1/loaded_models/medium")
        blank = http.post("/v1/loaded_models/%20")
    assert not_loaded.status_code == 404
    assert not_loaded.json()["error"]["code"] == "model_not_loaded"
    assert "'small' is not loaded" in not_loaded.json()["error"]["message"]
    for answer in (no_such, not_allowed, blank):
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "model_not_found"
        assert answer.json()["error"]["param"] == "model"
    assert "WHISPERD_ALLOWED_MODELS" in not_allowed.json()["error"]["message"]
    assert uncached.status_code == 503  # allowed, but not in the offline cache
    assert "offline mode is on" in uncached.json()["error"]["message"]


def test_the_limit_unloads_the_least_recently_used_model(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings], cache: Path
) -> None:
    settings = settings_for(model="tiny", models_dir=cache, max_loaded_models=2)
    with serve_fake(settings) as server, server.http() as http:
        assert _transcribe(server, "base")
        assert _ids(server) == ["tiny", "base"]
        assert http.post("/v1/loaded_models/small").status_code == 200
        # tiny is the default (never evicted); base was the least recently used other one.
        assert _ids(server) == ["tiny", "small"]
        assert _transcribe(server, "base")
        assert _ids(server) == ["tiny", "base"]


def test_a_request_in_flight_survives_an_unload_of_its_model(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings], cache: Path
) -> None:
    gate = threading.Event()
    statuses: list[int] = []
    texts: list[str] = []
    settings = settings_for(model="tiny", models_dir=cache)
    with serve_fake(settings, gate) as server, server.http() as http:

        def post() -> None:
            with server.http() as own:
                answer = own.post(
                    "/v1/audio/transcriptions",
                    files={"file": ("long.wav", _wav(65))},
                    data={"model": "base", "vad_filter": "false"},
                )
            statuses.append(answer.status_code)
            texts.append(answer.json().get("text", ""))

        worker = threading.Thread(target=post)
        worker.start()
        try:
            wait_until(
                lambda: any(e["id"] == "base" and e["in_use"] for e in _loaded(server)),
                "the long request never held its model",
            )
            engine = server.app.state.service.models.peek("base", device="cpu", compute_type="int8")
            unloaded = http.delete("/v1/loaded_models/base")
            assert unloaded.status_code == 200
            assert unloaded.json()["engines"] == 1
            (base,) = [entry for entry in _loaded(server) if entry["id"] == "base"]
            assert (base["unloading"], base["in_use"]) == (True, 1)
            assert not engine.closed  # the request still uses it
        finally:
            gate.set()
            joined(worker)
        assert statuses == [200]
        assert texts[0]
        wait_until(lambda: engine.closed, "the unloaded engine was not closed after its request")
        wait_until(lambda: _ids(server) == ["tiny"], "the unloaded model stayed after its request")
        assert _transcribe(server, "base")  # a new request loads it again
        assert _ids(server) == ["tiny", "base"]


def test_the_allow_list_refuses_other_models_on_both_apis(
    fake_server: RunningServer, english_model: ScriptedModel
) -> None:
    other = str(english_model.path)
    with pytest.raises(openai.NotFoundError) as refused:
        _transcribe(fake_server, other)
    assert refused.value.code == "model_not_found"
    body: Any = refused.value.body
    assert body["param"] == "model"
    assert f"The model '{other}' is not available on this server" in body["message"]
    with (DATA / "speech.wav").open("rb") as audio, fake_server.http() as http:
        native = http.post("/transcribe", files={"audio": audio}, data={"model": other})
    assert native.status_code == 400
    assert native.json()["detail"].startswith(f"Unknown model '{other}'")
    assert other not in [entry["id"] for entry in _loaded(fake_server)]


@pytest.mark.parametrize(
    ("patterns", "allowed", "refused"),
    [
        (["known"], ["base", "Systran/faster-whisper-base"], []),
        ([], [], ["base", "Systran/faster-whisper-base"]),
        (["Systran/*"], ["Systran/faster-whisper-base", "base"], ["large-v3-turbo"]),
        (["*"], ["base"], []),
    ],
)
def test_allow_list_patterns(
    serve_fake: Callable[..., Any],
    settings_for: Callable[..., Settings],
    cache: Path,
    patterns: list[str],
    allowed: list[str],
    refused: list[str],
) -> None:
    settings = settings_for(model="tiny", models_dir=cache, allowed_models=patterns)
    with serve_fake(settings) as server:
        for name in allowed:
            assert _transcribe(server, name)
        for name in refused:
            with pytest.raises(openai.NotFoundError):
                _transcribe(server, name)
        # The default model, by any of its names, is always allowed.
        assert _transcribe(server, "tiny")
        assert _transcribe(server, REPOS["tiny"])


def test_the_loaded_models_api_needs_the_key(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    with serve_fake(settings_for(api_keys=["sesame"])) as server, server.http() as http:
        keyless = [
            http.get("/v1/loaded_models"),
            http.post("/v1/loaded_models/tiny"),
            http.delete("/v1/loaded_models/tiny"),
        ]
        keyed = http.get("/v1/loaded_models", headers={"authorization": "Bearer sesame"})
    assert [answer.status_code for answer in keyless] == [401, 401, 401]
    assert keyed.status_code == 200


def test_a_stream_keeps_its_model_through_an_unload(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings], cache: Path
) -> None:
    from test_stream import METADATA, _receive_until, pcm_chunks, transcriptions, ws_url

    settings = settings_for(model="tiny", models_dir=cache)
    with serve_fake(settings) as server, server.http() as http:
        models = server.app.state.service.models

        async def stream() -> list[dict[str, Any]]:
            messages: list[dict[str, Any]] = []
            async with websockets.connect(ws_url(server)) as ws:
                await ws.send(json.dumps(METADATA))
                await until(
                    lambda: [r.in_use for r in models.models()] == [1],
                    "the stream never held its model",
                )
                answer = await asyncio.to_thread(http.delete, "/v1/loaded_models/tiny")
                assert answer.status_code == 200, answer.text
                assert [(r.unloading, r.in_use) for r in models.models()] == [(True, 1)]
                for frame in pcm_chunks("speech.wav"):
                    await ws.send(frame)
                await ws.send(json.dumps({"type": "end_audio"}))
                await _receive_until(
                    ws,
                    messages,
                    lambda m: m.get("type") == "end_audio" and m["body"]["status"] == "finished",
                )
            return messages

        messages = asyncio.run(stream())
        assert len(transcriptions(messages, final=True)) == 1  # decoded after the unload
        wait_until(lambda: _ids(server) == [], "the unloaded model stayed after its stream")
        assert _transcribe(server, "tiny")  # the next request loads it again
        assert _ids(server) == ["tiny"]


def test_the_models_listing_shows_only_allowed_models(
    serve_fake: Callable[..., Any], settings_for: Callable[..., Settings], cache: Path
) -> None:
    settings = settings_for(model="tiny", models_dir=cache, allowed_models=["base*"])
    with serve_fake(settings) as server:
        client = server.client()
        ids = [model.id for model in client.models.list()]
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("small")
    assert set(ids) == {"tiny", "base", "base.en", *DEFAULT_ALIASES}
    assert ids.count("tiny") == 1
