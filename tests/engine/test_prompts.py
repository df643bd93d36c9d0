"""The prompt budget: hotwords, previous text and prefix always leave the decoder room."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faster_whisper
import pytest
import tokenizers
from faster_whisper.tokenizer import Tokenizer

from whisperd.engine.options import TranscribeOptions
from whisperd.engine.prompts import (
    BudgetedPrompt,
    check_room,
    conditioning_budget,
    decoder_reserve,
    fit_max_new_tokens,
    share,
)
from whisperd.errors import InvalidOptionError
from whisperd.testing import ScriptedModel

N_CTX = 448


@pytest.fixture(scope="module", params=["english-only", "multilingual"])
def tokenizer(
    request: pytest.FixtureRequest, real_model: Path, scripted_model: ScriptedModel
) -> Tokenizer:
    """faster-whisper's tokenizer of the real tiny.en, and of the multilingual scripted model."""
    if request.param == "english-only":
        return Tokenizer(tokenizers.Tokenizer.from_file(str(real_model / "tokenizer.json")), False)
    hf = tokenizers.Tokenizer.from_file(str(scripted_model.path / "tokenizer.json"))
    return Tokenizer(hf, True, task="transcribe", language="en")


def faster_whisper_prompt(tokenizer: Tokenizer, previous: list[int], **kwargs: Any) -> list[int]:
    """What faster-whisper's own ``get_prompt`` builds (it only reads ``max_length``)."""
    model = faster_whisper.WhisperModel.__new__(faster_whisper.WhisperModel)
    model.max_length = N_CTX
    prompt: list[int] = model.get_prompt(tokenizer, previous, **kwargs)
    return prompt


def words(count: int, offset: int = 0) -> str:
    return " ".join(f"word{offset + index}" for index in range(count))


def test_the_decoder_keeps_what_whisper_samples_or_max_new_tokens() -> None:
    assert decoder_reserve(N_CTX, None) == 224  # openai/whisper: sample_len = n_ctx // 2
    assert decoder_reserve(N_CTX, 40) == 40


@pytest.mark.parametrize(
    ("fixed", "reserve", "budget"),
    [(1, 224, 222), (3, 224, 220), (4, 224, 219), (1, 40, 223), (3, 440, 4), (3, 444, 0)],
)
def test_conditioning_budget_is_whispers_cap_or_what_is_left(
    fixed: int, reserve: int, budget: int
) -> None:
    assert conditioning_budget(N_CTX, fixed, reserve) == budget


@pytest.mark.parametrize(
    ("hotwords", "previous", "budget", "kept"),
    [
        (10, 20, 100, (10, 20)),  # both fit
        (300, 20, 100, (80, 20)),  # short previous text kept whole
        (20, 300, 100, (20, 80)),  # short hotwords kept whole
        (300, 300, 100, (50, 50)),  # each keeps half
        (300, 300, 101, (50, 51)),
        (300, 300, 0, (0, 0)),
        (0, 300, 100, (0, 100)),
        (300, 0, 100, (100, 0)),
    ],
)
def test_share_keeps_first_hotwords_and_last_previous_text(
    hotwords: int, previous: int, budget: int, kept: tuple[int, int]
) -> None:
    hot = list(range(hotwords))
    prev = list(range(1000, 1000 + previous))

    kept_hot, kept_prev = share(hot, prev, budget)

    assert (len(kept_hot), len(kept_prev)) == kept
    assert kept_hot == hot[: len(kept_hot)]
    assert kept_prev == prev[len(prev) - len(kept_prev) :]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"without_timestamps": True},
        {"hotwords": "whisperd ctranslate2"},
        {"prefix": "So then"},
        {"prefix": "So then", "without_timestamps": True, "hotwords": "ignored with a prefix"},
    ],
)
@pytest.mark.parametrize("previous", [0, 30])
def test_short_prompts_are_laid_out_as_faster_whisper_lays_them_out(
    tokenizer: Tokenizer, kwargs: dict[str, Any], previous: int
) -> None:
    tokens = tokenizer.encode(" " + words(previous))[:previous]

    ours = BudgetedPrompt(N_CTX, None)(tokenizer, tokens, **kwargs)

    assert ours == faster_whisper_prompt(tokenizer, tokens, **kwargs)


@pytest.mark.parametrize("max_new_tokens", [None, 100, 300])
@pytest.mark.parametrize("without_timestamps", [False, True])
def test_long_prompt_and_hotwords_leave_the_decoder_its_reserve(
    tokenizer: Tokenizer, max_new_tokens: int | None, without_timestamps: bool
) -> None:
    previous = tokenizer.encode(" " + words(400))
    hotwords = words(400, offset=1000)
    reserve = decoder_reserve(N_CTX, max_new_tokens)

    prompt = BudgetedPrompt(N_CTX, max_new_tokens)(
        tokenizer, previous, without_timestamps=without_timestamps, hotwords=hotwords
    )
    unbudgeted = faster_whisper_prompt(
        tokenizer, previous, without_timestamps=without_timestamps, hotwords=hotwords
    )

    assert len(unbudgeted) + reserve > N_CTX  # faster-whisper alone leaves too little
    assert len(prompt) + reserve <= N_CTX
    sot = prompt.index(tokenizer.sot)
    assert prompt[0] == tokenizer.sot_prev
    assert prompt[sot:] == unbudgeted[unbudgeted.index(tokenizer.sot) :]
    conditioning = prompt[1:sot]
    assert len(conditioning) == conditioning_budget(N_CTX, len(prompt) - sot, reserve)
    hot = tokenizer.encode(" " + hotwords)
    half = len(conditioning) // 2
    assert conditioning[:half] == hot[:half]  # the first hotwords
    assert conditioning[-half:] == previous[-half:]  # the last of the previous text


def test_no_room_for_conditioning_drops_it_with_its_marker(tokenizer: Tokenizer) -> None:
    room = N_CTX - len(tokenizer.sot_sequence)
    prompt = BudgetedPrompt(N_CTX, room)(tokenizer, [1, 2, 3], hotwords="a few words")
    assert prompt == list(tokenizer.sot_sequence)


def test_check_room_passes_what_fits_and_names_what_does_not() -> None:
    check_room(N_CTX, sot_length=3, without_timestamps=False, prefix_tokens=0, max_new_tokens=None)
    check_room(N_CTX, sot_length=3, without_timestamps=True, prefix_tokens=0, max_new_tokens=444)
    check_room(N_CTX, sot_length=3, without_timestamps=True, prefix_tokens=0, max_new_tokens=448)
    check_room(
        N_CTX, sot_length=1, without_timestamps=False, prefix_tokens=222, max_new_tokens=None
    )
    # A cap above what fits is lowered (fit_max_new_tokens), not refused.
    check_room(N_CTX, sot_length=1, without_timestamps=False, prefix_tokens=50, max_new_tokens=400)

    with pytest.raises(InvalidOptionError, match=r"prefix is 223 tokens long; at most 222") as long:
        check_room(
            N_CTX, sot_length=1, without_timestamps=False, prefix_tokens=223, max_new_tokens=None
        )
    assert long.value.param == "prefix"
    with pytest.raises(InvalidOptionError, match="prefix is 300 tokens") as both:
        check_room(
            N_CTX, sot_length=1, without_timestamps=False, prefix_tokens=300, max_new_tokens=400
        )
    assert both.value.param == "prefix"


@pytest.mark.parametrize(
    ("sot_length", "without_timestamps", "prefix_tokens", "asked", "fitted"),
    [
        (3, False, 0, None, None),
        (3, False, 0, 448, 445),
        (3, True, 0, 448, 444),
        (1, False, 0, 448, 447),
        (1, True, 0, 448, 446),
        (3, False, 10, 448, 434),  # the prefix and its <|0.00|>
        (3, True, 10, 448, 434),  # the prefix and <|notimestamps|>
        (3, False, 0, 445, 445),
        (3, False, 0, 64, 64),
    ],
)
def test_max_new_tokens_is_lowered_to_what_fits_beside_the_prompt(
    sot_length: int, without_timestamps: bool, prefix_tokens: int, asked: int, fitted: int
) -> None:
    got = fit_max_new_tokens(
        N_CTX,
        sot_length=sot_length,
        without_timestamps=without_timestamps,
        prefix_tokens=prefix_tokens,
        max_new_tokens=asked,
    )
    assert got == fitted


def test_engine_refuses_a_prefix_that_leaves_no_room(english_model: ScriptedModel) -> None:
    from whisperd.engine.hub import ResolvedModel
    from whisperd.engine.whisper import WhisperEngine

    engine = WhisperEngine(
        ResolvedModel("en", english_model.path, None, None), device="cpu", compute_type="int8"
    )
    try:
        engine.check(TranscribeOptions(prefix="So then", hotwords=words(400)))
        engine.check(TranscribeOptions(max_new_tokens=447))
        engine.check(TranscribeOptions(max_new_tokens=448))  # lowered when decoding
        with pytest.raises(InvalidOptionError) as prefix:
            engine.check(TranscribeOptions(prefix=words(300)))
    finally:
        engine.close()
    assert prefix.value.param == "prefix"
