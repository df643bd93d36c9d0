"""``max_new_tokens`` takes its whole documented range, 1-448: a cap that does not fit beside
the window's prompt in Whisper's 448-token context is lowered to what fits (448 used to be a
400 on every model). Checked on the scripted models with real CTranslate2 decoding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.engine.hub import ResolvedModel
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.whisper import WhisperEngine

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import RunningServer
    from whisperd.testing import ScriptedModel

SPEECH = Path(__file__).parents[1] / "data" / "speech.wav"


@pytest.mark.parametrize("without_timestamps", [False, True])
def test_448_is_served_over_http(
    server: RunningServer, scripted_model: ScriptedModel, without_timestamps: bool
) -> None:
    with server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", SPEECH.read_bytes())},
            data={
                "max_new_tokens": "448",
                "without_timestamps": str(without_timestamps).lower(),
                "vad_filter": "false",
            },
        )
    assert response.status_code == 200, response.text
    expected = scripted_model.plain_text if without_timestamps else scripted_model.text
    assert response.json()["text"] == expected.strip()


@pytest.fixture(params=["multilingual", "english"])
def engine(
    request: pytest.FixtureRequest, scripted_model: ScriptedModel, real_model: Path
) -> Iterator[tuple[WhisperEngine, int]]:
    """An engine, and its start-of-transcript length: the scripted multilingual model (3
    tokens), or the real tiny.en (1 token; the English-only scripted model's decoder does not
    keep to its script under beam search, so it cannot show parity)."""
    path, sot = (scripted_model.path, 3) if request.param == "multilingual" else (real_model, 1)
    built = WhisperEngine(
        ResolvedModel(request.param, path, None, None), device="cpu", compute_type="int8"
    )
    try:
        yield built, sot
    finally:
        built.close()


def test_a_cap_that_does_not_fit_decodes_as_the_largest_that_does(
    engine: tuple[WhisperEngine, int],
) -> None:
    whisper, sot = engine
    audio = decode_audio(AudioSource(SPEECH)).samples

    def segments(**options: object) -> list[tuple[float, float, str]]:
        transcript = whisper.transcribe(audio, TranscribeOptions(vad_filter=False, **options))
        return [(s.start, s.end, s.text) for s in transcript.segments]

    largest = 448 - sot
    uncapped = segments()
    assert uncapped
    assert segments(max_new_tokens=448) == segments(max_new_tokens=largest) == uncapped
    plain = segments(without_timestamps=True)
    assert segments(max_new_tokens=448, without_timestamps=True) == plain
    assert segments(max_new_tokens=largest - 1, without_timestamps=True) == plain
    # Where the cap fits, it binds: four tokens cut the window's text short.
    (short,) = segments(max_new_tokens=4, without_timestamps=True)
    full_words = " ".join(text for _, _, text in plain).split()
    assert 0 < len(short[2].split()) < len(full_words)
