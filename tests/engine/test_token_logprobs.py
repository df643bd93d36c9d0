"""Token log-probabilities from the word-alignment pass: bytes, recording, matching segments."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from whisperd.audio.decode import AudioSource
from whisperd.config import Settings
from whisperd.engine.base import TokenLogprob
from whisperd.engine.options import TranscribeOptions
from whisperd.engine.token_logprobs import (
    AlignmentRecorder,
    TokenLogprobReader,
    tail_logprobs,
    token_bytes,
)
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.testing import ScriptedModel

DATA = Path(__file__).parents[1] / "data"


def test_token_bytes_reverse_gpt2s_byte_alphabet() -> None:
    assert token_bytes("Ġhello") == b" hello"
    assert token_bytes("Ċ") == b"\n"
    assert token_bytes("Ã©") == "é".encode()  # two byte-level characters, one letter
    assert token_bytes("Ã") == b"\xc3"  # half a UTF-8 character stays half
    assert token_bytes("日本") == "日本".encode()  # not byte level: taken as text


@dataclass
class _Aligned:
    text_token_probs: list[float]


class _Model:
    """Aligns every sequence with probabilities 0.5, 0.25, ... and one for end of text."""

    def align(self, *args: Any, **kwargs: Any) -> list[_Aligned]:
        text_tokens = args[2]
        return [_Aligned([0.5**n for n in range(1, len(t) + 2)]) for t in text_tokens]

    def encode(self) -> str:
        return "passed through"


class _Tokenizer:
    def token_to_id(self, token: str) -> int:
        assert token == "<|endoftext|>"
        return 100

    def id_to_token(self, token: int) -> str:
        return f"Ġw{token}"


def test_the_reader_gives_each_segment_its_aligned_tokens_in_order() -> None:
    recorder = AlignmentRecorder(_Model())
    reader = TokenLogprobReader(recorder, _Tokenizer())
    assert recorder.encode() == "passed through"
    recorder.align(None, [1], [[1, 2, 3, 4]], 100, median_filter_width=7)
    first = reader.segment((150, 1, 2, 160))  # timestamp tokens have no entry
    second = reader.segment((160, 3, 4, 170))
    assert first is not None
    assert second is not None
    assert [e.token for e in first] == [" w1", " w2"]
    assert [e.logprob for e in [*first, *second]] == [math.log(0.5**n) for n in range(1, 5)]
    assert first[0].bytes == tuple(b" w1")
    assert reader.segment((5, 6)) is None  # never aligned (decoded without word timestamps)
    recorder.align(None, [1], [[5, 6]], 100)
    found = reader.segment((5, 6))
    assert found is not None
    assert [e.token for e in found] == [" w5", " w6"]


def _entry(text: str, logprob: float = -0.1) -> TokenLogprob:
    return TokenLogprob(token=text, logprob=logprob, bytes=tuple(text.encode()))


def test_tail_logprobs_finds_the_tokens_of_the_last_words() -> None:
    entries = [_entry(" Hello"), _entry(" wor"), _entry("ld"), _entry(".")]
    assert tail_logprobs(entries, " world.") == tuple(entries[1:])
    assert tail_logprobs(entries, "Hello world.") == tuple(entries)  # trimmed transcript
    assert tail_logprobs(entries, "") == ()
    assert tail_logprobs(entries, "orld.") is None  # not whole tokens
    assert tail_logprobs(entries, " planet.") is None


@pytest.fixture(scope="module")
def service(scripted_model: ScriptedModel) -> Any:
    settings = Settings(
        _env_file=None,
        model=str(scripted_model.path),
        device="cpu",
        compute_type="int8",
        offline=True,
    )
    service = TranscriptionService.create(settings)
    yield service
    service.close()


def test_segments_carry_logprobs_only_when_asked(
    service: TranscriptionService, scripted_model: ScriptedModel
) -> None:
    audio = (DATA / "speech.wav").read_bytes()

    def run(**options: Any) -> Any:
        wanted = TranscribeOptions(vad_filter=False, **options)
        return asyncio.run(service.transcribe(TranscriptionRequest(AudioSource(audio), wanted)))

    plain = run()
    assert all(segment.logprobs is None for segment in plain.segments)
    assert plain.logprobs == ()
    asked = run(logprobs=True)
    assert asked.text == plain.text
    for segment in asked.segments:
        assert segment.logprobs is not None
        assert "".join(e.token for e in segment.logprobs) == segment.text
        assert all(e.logprob <= 0 for e in segment.logprobs)
        # word probability is the mean probability of the word's tokens (one token per word)
        assert segment.words is not None
        probabilities = [math.exp(e.logprob) for e in segment.logprobs]
        assert [w.probability for w in segment.words] == pytest.approx(probabilities)
