"""The continuous decoder: CTranslate2's tokens and scores, shared batches, bad inputs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ctranslate2
import numpy as np
import pytest
import tokenizers
import torch
from transformers import WhisperForConditionalGeneration

from whisperd.engine.pytorch.backend import EncodedAudio, TorchWhisper
from whisperd.engine.pytorch.decoding import ContinuousDecoder
from whisperd.engine.pytorch.options import GenerateOptions
from whisperd.errors import CancelledError
from whisperd.scheduler.batcher import Batcher, Call, Ticket
from whisperd.testing import ModelShape
from whisperd.testing.vocab import build_vocabulary, make_words, tokenizer_json

_TOKENIZER = tokenizers.Tokenizer.from_str(
    tokenizer_json(build_vocabulary(make_words(24, 0), size=ModelShape.TINY.vocab_size))
)
SOT, EN, TRANSCRIBE, PREV, NO_TIMESTAMPS, FIRST_TIMESTAMP = (
    _TOKENIZER.token_to_id(name)
    for name in (
        "<|startoftranscript|>",
        "<|en|>",
        "<|transcribe|>",
        "<|startofprev|>",
        "<|notimestamps|>",
        "<|0.00|>",
    )
)

PROMPTS = {
    "timestamps": [SOT, EN, TRANSCRIBE],
    "no-timestamps": [SOT, EN, TRANSCRIBE, NO_TIMESTAMPS],
    "previous-text": [PREV, 100, 200, 300, SOT, EN, TRANSCRIBE],
    "prefix": [SOT, EN, TRANSCRIBE, FIRST_TIMESTAMP + 5, 400],
}
OPTIONS: dict[str, dict[str, Any]] = {
    "greedy": {"beam_size": 1},
    "beam": {"beam_size": 4},
    "beam-patience": {"beam_size": 3, "patience": 2.0},
    "beam-no-length-penalty": {"beam_size": 2, "length_penalty": 0.0, "num_hypotheses": 2},
    "first-timestamp-0": {"beam_size": 1, "max_initial_timestamp_index": 0},
    "no-suppression": {"beam_size": 2, "suppress_blank": False, "suppress_tokens": []},
    "short": {"beam_size": 1, "max_length": 20},
}


def _mel(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 80, 3000)).astype(np.float32)


@pytest.fixture(scope="module")
def encoded(net, ct2_model) -> list[tuple[torch.Tensor, Any]]:
    pairs = []
    with torch.inference_mode():
        for seed in (0, 1):
            mel = _mel(seed)
            pairs.append((net.encode(torch.from_numpy(mel)), ct2_model.encode(_storage(mel))))
    return pairs


def _storage(array: np.ndarray) -> ctranslate2.StorageView:
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array))


def _keywords(name: str) -> dict[str, Any]:
    return {
        "max_length": 64,
        "return_scores": True,
        "return_no_speech_prob": True,
        **OPTIONS[name],
    }


@pytest.mark.parametrize("prompt", sorted(PROMPTS))
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_tokens_and_scores_equal_ctranslate2(
    decoder: ContinuousDecoder, ct2_model, encoded, prompt: str, option: str
) -> None:
    keywords = _keywords(option)
    for ours_audio, theirs_audio in encoded:
        theirs = ct2_model.generate(theirs_audio, [PROMPTS[prompt]], **keywords)[0]
        ours = decoder.submit(
            ours_audio, [PROMPTS[prompt]], GenerateOptions.parse(keywords), Ticket()
        )[0]
        assert ours.sequences_ids == theirs.sequences_ids
        assert ours.scores == pytest.approx(theirs.scores, abs=1e-3)
        assert ours.no_speech_prob == pytest.approx(theirs.no_speech_prob, rel=1e-3, abs=1e-7)


def test_greedy_tokens_equal_transformers_generate(random_pair, net, decoder) -> None:
    reference = WhisperForConditionalGeneration.from_pretrained(str(random_pair.huggingface))
    mel = torch.from_numpy(_mel(3))
    prompt = PROMPTS["no-timestamps"]
    with torch.inference_mode():
        generated = reference.generate(
            input_features=mel,
            decoder_input_ids=torch.tensor([prompt]),
            max_new_tokens=40,
            do_sample=False,
            num_beams=1,
            return_timestamps=False,
        )
        audio = net.encode(mel)
    keywords = {"max_length": len(prompt) + 40, "suppress_blank": True}
    ours = decoder.submit(audio, [prompt], GenerateOptions.parse(keywords), Ticket())[0]
    expected = [int(t) for t in generated[0] if int(t) not in prompt]
    if expected and expected[-1] == random_pair.vocab().eot:
        expected = expected[:-1]
    assert ours.sequences_ids[0][: len(expected)] == expected[: len(ours.sequences_ids[0])]
    assert len(ours.sequences_ids[0]) >= min(len(expected), 20)


_CASES = [(prompt, option) for prompt in PROMPTS for option in ("greedy", "beam", "short")]


def _solo_and_together(decoder: ContinuousDecoder, audio: torch.Tensor) -> tuple[list, list, int]:
    """Every case alone, then all at once: (solo results, shared results, shared steps)."""

    def run(case: tuple[str, str]) -> Any:
        options = GenerateOptions.parse(_keywords(case[1]))
        return decoder.submit(audio, [PROMPTS[case[0]]], options, Ticket())[0]

    solo = [run(case) for case in _CASES]
    before = decoder.stats.steps
    with ThreadPoolExecutor(len(_CASES)) as pool:
        together = list(pool.map(run, _CASES))
    return solo, together, decoder.stats.steps - before


@pytest.fixture(scope="module")
def double_net(random_pair):
    """The random network in float64, so that batch composition cannot flip a near-tie."""
    return random_pair.network().double()


def _run_decoder(random_pair, net, audio: torch.Tensor, **rows: int):
    decoder = ContinuousDecoder(net, random_pair.vocab(), max_rows=32, **rows)
    decoder.start()
    try:
        return decoder, _solo_and_together(decoder, audio)
    finally:
        decoder.stop()


@pytest.fixture(scope="module")
def eager_runs(random_pair, double_net, encoded):
    return _run_decoder(random_pair, double_net, encoded[0][0].double())


def test_concurrent_calls_share_steps_and_equal_their_solo_results(eager_runs) -> None:
    """Calls of different lengths and beam sizes join and leave one running batch."""
    decoder, (solo, together, shared_steps) = eager_runs
    assert [r.sequences_ids for r in together] == [r.sequences_ids for r in solo]
    assert [r.scores[0] for r in together] == pytest.approx([r.scores[0] for r in solo], abs=1e-4)
    assert shared_steps < (decoder.stats.steps - shared_steps) / 2
    assert decoder.stats.peak_rows > 4
    assert decoder.stats.fixed_steps == 0


def test_fixed_size_steps_equal_eager_steps(random_pair, double_net, encoded, eager_runs) -> None:
    """Steps padded to fixed sizes over the whole context (what CUDA graphs replay) give the
    eager steps' tokens and scores; batches above the largest fixed size still run eagerly."""
    fixed, runs = _run_decoder(random_pair, double_net, encoded[0][0].double(), fixed_rows=6)
    for ours, theirs in zip(runs[:2], eager_runs[1][:2], strict=True):
        assert [r.sequences_ids for r in ours] == [r.sequences_ids for r in theirs]
        assert [r.scores for r in ours] == [pytest.approx(r.scores, abs=1e-9) for r in theirs]
    stats = fixed.stats
    assert 0 < stats.fixed_steps < stats.steps
    assert stats.fixed_steps == sum(n for size, n in stats.sizes.items() if size <= 6)
    assert fixed.graph_sizes == ()  # on the CPU nothing is captured


def test_a_batch_of_prompts_is_one_call(decoder: ContinuousDecoder, encoded) -> None:
    audio = torch.cat([encoded[0][0], encoded[1][0]])
    options = GenerateOptions.parse(_keywords("greedy"))
    both = decoder.submit(audio, [PROMPTS["timestamps"]] * 2, options, Ticket())
    first = decoder.submit(encoded[0][0], [PROMPTS["timestamps"]], options, Ticket())[0]
    second = decoder.submit(encoded[1][0], [PROMPTS["timestamps"]], options, Ticket())[0]
    assert [r.sequences_ids for r in both] == [first.sequences_ids, second.sequences_ids]


def test_sampling_returns_the_best_of_its_hypotheses(decoder: ContinuousDecoder, encoded) -> None:
    torch.manual_seed(0)
    keywords = {
        "beam_size": 1,
        "num_hypotheses": 3,
        "sampling_topk": 0,
        "sampling_temperature": 0.8,
        "max_length": 60,
        "return_scores": True,
    }
    result = decoder.submit(
        encoded[0][0], [PROMPTS["timestamps"]], GenerateOptions.parse(keywords), Ticket()
    )[0]
    assert len(result.sequences_ids) == 3
    assert result.scores == sorted(result.scores, reverse=True)
    assert all(all(0 <= t < 51865 for t in seq) for seq in result.sequences_ids)


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"beam_size": 17}, "needs 17 decoder rows"),
        ({"beam_size": 0}, "at least 1"),
        ({"beam_size": 1, "unknown_option": 1}, "unexpected options"),
        ({"suppress_tokens": [10**9]}, "not a token id"),
        ({"max_length": 1000}, "must fit"),
    ],
)
def test_bad_options_are_clear_errors(
    decoder: ContinuousDecoder, encoded, keywords: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decoder.submit(
            encoded[0][0], [PROMPTS["timestamps"]], GenerateOptions.parse(keywords), Ticket()
        )


def test_a_prompt_without_start_of_transcript_is_refused(
    decoder: ContinuousDecoder, encoded
) -> None:
    with pytest.raises(ValueError, match="startoftranscript"):
        decoder.submit(encoded[0][0], [[EN, TRANSCRIBE]], GenerateOptions(), Ticket())


def test_cancelled_calls_fail_and_free_their_rows(decoder: ContinuousDecoder, encoded) -> None:
    audio = encoded[0][0]
    ticket = Ticket()
    ticket.cancel()
    with pytest.raises(CancelledError):
        decoder.submit(audio, [PROMPTS["timestamps"]], GenerateOptions(), ticket)
    # Cancel one long decode midway; the decoder goes on serving others.
    running = Ticket()
    long = GenerateOptions.parse({"beam_size": 4, "max_length": 400})
    errors: list[BaseException] = []

    def decode() -> None:
        try:
            decoder.submit(audio, [PROMPTS["timestamps"]], long, running)
        except CancelledError as exc:
            errors.append(exc)

    thread = threading.Thread(target=decode)
    thread.start()
    while decoder.stats.steps == 0 or not decoder.running:
        threading.Event().wait(0.01)
    running.cancel()
    thread.join(timeout=60)
    assert errors
    after = decoder.submit(audio, [PROMPTS["timestamps"]], GenerateOptions(), Ticket())
    assert after[0].sequences_ids
    deadline = time.monotonic() + 30
    while decoder.running and time.monotonic() < deadline:  # released right after the result
        threading.Event().wait(0.01)
    assert decoder.running == 0


def test_stopping_fails_waiting_calls(net, random_pair) -> None:
    decoder = ContinuousDecoder(net, random_pair.vocab(), max_rows=4)
    with pytest.raises(CancelledError):
        decoder.submit(
            torch.zeros(1, 1500, net.dims.d_model),
            [PROMPTS["timestamps"]],
            GenerateOptions(),
            Ticket(),
        )
    decoder.stop()


def test_language_detection_and_alignment_equal_ctranslate2(
    net, random_pair, ct2_model, encoded
) -> None:
    constants = random_pair.checkpoint().constants
    languages = {i: f"<|{i}|>" for i in constants.lang_ids}
    model = TorchWhisper(net, random_pair.vocab(), constants, languages, max_rows=4, encode_batch=2)
    batcher = Batcher(model.run_batch)
    batcher.start()
    try:
        ours_audio = EncodedAudio(torch.cat([encoded[0][0], encoded[1][0]]))
        theirs_audio = ct2_model.encode(_storage(np.concatenate([_mel(0), _mel(1)])))
        ticket = Ticket()
        detected = batcher.submit("detect_language", 1500, ours_audio, items=2, ticket=ticket)
        expected = ct2_model.detect_language(theirs_audio)
        for ours, theirs in zip(detected, expected, strict=True):
            names = {i: _TOKENIZER.id_to_token(i) for i in constants.lang_ids}
            assert [names[int(t.strip("<|>"))] for t, _ in ours[:5]] == [t for t, _ in theirs[:5]]
            assert [p for _, p in ours[:5]] == pytest.approx([p for _, p in theirs[:5]], rel=1e-3)
        start = [SOT, EN, TRANSCRIBE]
        texts = [[100, 200, 300, 400, 500], [600, 700]]
        for frames in (3000, [3000, 2000]):
            payload = (ours_audio, start, texts, frames, 7)
            aligned = batcher.submit("align", object(), payload, items=2, ticket=ticket)
            reference = ct2_model.align(theirs_audio, start, texts, frames, median_filter_width=7)
            for ours_result, theirs_result in zip(aligned, reference, strict=True):
                assert ours_result.alignments == [tuple(p) for p in theirs_result.alignments]
                assert ours_result.text_token_probs == pytest.approx(
                    theirs_result.text_token_probs, rel=1e-3
                )
    finally:
        batcher.stop()


def test_an_encoder_pass_out_of_memory_is_split(net, random_pair, monkeypatch) -> None:
    """Passes that run out of device memory are halved until they fit; the outputs are the
    same, and a window that fits nowhere is a clear error."""
    constants = random_pair.checkpoint().constants
    model = TorchWhisper(net, random_pair.vocab(), constants, {}, max_rows=4, encode_batch=4)
    mel = np.concatenate([_mel(seed) for seed in range(5)])
    calls = [Call("encode", 3000, mel[:3], 3, Ticket()), Call("encode", 3000, mel[3:], 2, Ticket())]
    expected = [r.hidden for r in model.run_batch("encode", calls)]
    encode, fits = net.encode, [1]

    def scarce(chunk: torch.Tensor) -> torch.Tensor:
        if chunk.shape[0] > fits[0]:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return encode(chunk)

    monkeypatch.setattr(net, "encode", scarce)
    ours = [r.hidden for r in model.run_batch("encode", calls)]
    assert model.encode_batch == 1
    for got, want in zip(ours, expected, strict=True):
        torch.testing.assert_close(got, want)
    fits[0] = 0
    with pytest.raises(torch.cuda.OutOfMemoryError, match="does not fit"):
        model.run_batch("encode", calls)
