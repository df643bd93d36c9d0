"""Batched decoding's own rules: the temperature fallback per chunk and sentence segments."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from whisperd.engine.batched import (
    BatchedPipeline,
    Decode,
    Fallback,
    even_batches,
    sentence_spans,
)

RULE = Fallback(
    temperatures=(0.0, 0.5, 1.0),
    compression_ratio_threshold=2.4,
    log_prob_threshold=-1.0,
    no_speech_threshold=0.6,
    best_of=3,
)


def _decode(avg_logprob: float, *, ratio: float = 1.0, no_speech: float = 0.0) -> Decode:
    return Decode([1], avg_logprob, no_speech, ratio, 0.0)


@pytest.mark.parametrize(
    ("words", "spans"),
    [
        ([], []),
        ([" Hello."], [(0, 1)]),
        ([" Hi", " there.", " How", " are", " you?"], [(0, 2), (2, 5)]),
        ([" no", " end"], [(0, 2)]),
        ([" Wait!", " What", "?"], [(0, 1), (1, 3)]),
        ([" 今日は。", " 元気？"], [(0, 1), (1, 2)]),
    ],
)
def test_sentence_spans_cover_every_word_once(
    words: list[str], spans: list[tuple[int, int]]
) -> None:
    assert sentence_spans(words) == spans


def test_a_long_sentence_is_cut_at_its_next_comma() -> None:
    words = [f" w{i}" for i in range(5)] + [" so,", " on", " and,", " end."]
    assert sentence_spans(words, max_words=3) == [(0, 6), (6, 9)]
    assert sentence_spans(words, max_words=2) == [(0, 6), (6, 8), (8, 9)]


@pytest.mark.parametrize(
    ("decode", "fails", "silence"),
    [
        (_decode(-0.2), False, False),
        (_decode(-1.5), True, False),
        (_decode(-0.2, ratio=3.0), True, False),
        (_decode(-1.5, no_speech=0.9), False, True),
        (_decode(-0.2, no_speech=0.9), False, False),
    ],
)
def test_the_fallback_rule_is_whispers(decode: Decode, fails: bool, silence: bool) -> None:
    assert RULE.fails(decode) is fails
    assert RULE.is_silence(decode) is silence


def test_when_every_temperature_fails_the_most_probable_fluent_decode_is_kept() -> None:
    attempts = [_decode(-1.2, ratio=3.0), _decode(-1.4), _decode(-1.3)]
    assert RULE.best(attempts) is attempts[2]
    assert RULE.best([_decode(-2.0, ratio=3.0), _decode(-1.5, ratio=2.5)]).avg_logprob == -1.5


class _ScriptedGenerate:
    """A model whose chunk ``i`` (a feature row holding ``i``) scores as a script says."""

    def __init__(self, scores: dict[tuple[int, float], float]) -> None:
        self.scores = scores
        self.no_speech: dict[int, float] = {}
        self.calls: list[tuple[list[int], dict[str, Any]]] = []
        self.prompts: list[list[list[int]]] = []
        self.tokens: dict[int, list[int]] = {}
        """Chunk ``i``'s text tokens when not ``[i + 10]``."""

    def generate(self, encoded: np.ndarray, prompts: list[list[int]], **options: Any) -> list[Any]:
        if len({len(prompt) for prompt in prompts}) > 1:  # CTranslate2's own rule
            raise ValueError("<|startoftranscript|> must be at the same position in all batches")
        self.prompts.append(prompts)
        chunks = [_key(row) for row in encoded]
        temperature = options.get("sampling_temperature", 0.0)
        self.calls.append((chunks, options))
        # avg_logprob = score * len / (len + 1) for one token: score = 2 * avg_logprob.
        return [
            SimpleNamespace(
                sequences_ids=[self.tokens.get(chunk, [chunk + 10])],
                scores=[2 * self.scores.get((chunk, temperature), -0.1)],
                no_speech_prob=self.no_speech.get(chunk, 0.0),
            )
            for chunk in chunks
        ]


FRAMES = 3000
"""Feature frames of a chunk (30 s)."""
HEAD = 900
"""Added to a chunk's number for the key of its head (the speech before its first word)."""


def _key(encoded_row: np.ndarray) -> int:
    """The scripted key of an encoded chunk (its first and last feature frames): the chunk's
    number, a tail's first frame, or a head's chunk number plus :data:`HEAD` (a head keeps its
    chunk's first frame, and its last frame is zero)."""
    first, last = int(encoded_row[0]), int(encoded_row[1])
    return first + HEAD if last == 0 and first < 1000 else first


def _features(chunks: int) -> np.ndarray:
    """One feature row per chunk: frame ``f`` of chunk ``c`` holds ``c + 1000 f``, so a model
    reading the first frame knows the chunk and where in it a tail begins."""
    frames = np.arange(FRAMES, dtype=np.float64) * 1000
    return np.arange(chunks, dtype=np.float64)[:, None, None] + frames[None, None, :]


def _aligner(heard_s: dict[int, float], started_s: dict[int, float] | None = None) -> Any:
    """faster-whisper's ``add_word_timestamps``, scripted: a segment of token ``t`` is one word
    ending ``heard_s[t - 10]`` s into its chunk, or at the chunk's end, and starting
    ``started_s[t - 10]`` s into it, or at its start."""

    def add_word_timestamps(chunks: list[list[dict[str, Any]]], *_: Any) -> float:
        for segment in (segment for chunk in chunks for segment in chunk):
            key = segment["tokens"][0] - 10
            heard = heard_s.get(key, segment["end"] - segment["start"])
            segment["end"] = segment["start"] + heard
            segment["start"] += (started_s or {}).get(key, 0.0)
            segment["words"] = [
                {"word": segment["text"], "start": segment["start"], "end": segment["end"]}
            ]
        return 0.0

    return add_word_timestamps


def _pipeline(
    model: _ScriptedGenerate,
    heard_s: dict[int, float] | None = None,
    started_s: dict[int, float] | None = None,
) -> BatchedPipeline:
    view = SimpleNamespace(
        model=model,
        max_length=448,
        frames_per_second=100,
        encode=lambda features: np.asarray(features)[:, 0, [0, -1]],
        get_prompt=lambda tokenizer, previous_tokens=(), **_: [*previous_tokens, 1, 2, 3],
        add_word_timestamps=_aligner(heard_s or {}, started_s),
    )
    return BatchedPipeline(view, RULE, sentence_segments=False)


def _options() -> SimpleNamespace:
    """faster-whisper's decoding options, as the pipeline reads them (beam 5, no words)."""
    return SimpleNamespace(
        initial_prompt=None,
        hotwords=None,
        max_new_tokens=None,
        multilingual=False,
        beam_size=5,
        patience=1.0,
        length_penalty=1.0,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        suppress_blank=True,
        suppress_tokens=[-1],
        word_timestamps=False,
        prepend_punctuations="",
        append_punctuations="",
    )


def test_failing_chunks_are_decoded_again_together_at_the_next_temperatures() -> None:
    model = _ScriptedGenerate({(1, 0.0): -1.5, (2, 0.0): -1.5, (2, 0.5): -1.6, (2, 1.0): -1.2})
    tokenizer = SimpleNamespace(decode=lambda tokens: "text", encode=lambda text: [])
    options = _options()
    features = _features(3)

    _, outputs = _pipeline(model).generate_segment_batched(features, tokenizer, options)

    assert [chunks for chunks, _ in model.calls] == [[0, 1, 2], [1, 2], [2]]
    first, second, _ = (options for _, options in model.calls)
    assert first["beam_size"] == 5
    assert "sampling_temperature" not in first
    assert (second["beam_size"], second["sampling_topk"]) == (1, 0)
    assert (second["num_hypotheses"], second["sampling_temperature"]) == (3, 0.5)
    assert [o["temperature"] for o in outputs] == [0.0, 0.5, 1.0]
    assert [o["tokens"] for o in outputs] == [[10], [11], [12]]
    assert outputs[2]["avg_logprob"] == pytest.approx(-1.2)


class _MeetingGenerate(_ScriptedGenerate):
    """A scripted model whose ``generate`` calls wait until ``together`` of them are inside."""

    def __init__(self, together: int) -> None:
        super().__init__({})
        self.barrier = threading.Barrier(together, timeout=10)
        self.threads: set[str] = set()

    def generate(self, encoded: np.ndarray, prompts: list[list[int]], **options: Any) -> list[Any]:
        self.threads.add(threading.current_thread().name)
        self.barrier.wait()
        return super().generate(encoded, prompts, **options)


def _segments_of(
    pipeline: BatchedPipeline, chunks: int, batch_size: int, duration_s: float = 5.0
) -> list[Any]:
    tokenizer = SimpleNamespace(
        decode=lambda tokens: f"t{tokens}", encode=lambda text: [], eot=10**9
    )
    options = _options()
    metadata = [{"offset": 40.0 * i, "duration": duration_s} for i in range(chunks)]
    return list(
        pipeline._batched_segments_generator(
            _features(chunks), tokenizer, metadata, batch_size, options, False
        )
    )


def test_parallel_batches_decode_at_once_and_come_back_in_order() -> None:
    model = _MeetingGenerate(together=2)
    pipeline = _pipeline(model)
    parallel = BatchedPipeline(pipeline.model, RULE, sentence_segments=False, parallel_batches=2)

    segments = _segments_of(parallel, chunks=8, batch_size=2)

    assert [s.text for s in segments] == [f"t[{chunk + 10}]" for chunk in range(8)]
    assert [s.start for s in segments] == [40.0 * chunk for chunk in range(8)]
    assert [s.id for s in segments] == list(range(1, 9))
    assert len(model.threads) == 2


def test_one_batch_at_a_time_never_overlaps() -> None:
    model = _MeetingGenerate(together=1)
    segments = _segments_of(_pipeline(model), chunks=5, batch_size=2)
    assert [s.text for s in segments] == [f"t[{chunk + 10}]" for chunk in range(5)]
    assert model.threads == {threading.current_thread().name}


def test_a_failing_batch_stops_the_run_with_its_error() -> None:
    class _Failing(_ScriptedGenerate):
        def generate(self, encoded: np.ndarray, prompts: list[list[int]], **options: Any) -> Any:
            if int(encoded[0, 0]) == 2:
                raise RuntimeError("out of memory")
            return super().generate(encoded, prompts, **options)

    pipeline = _pipeline(_Failing({}))
    parallel = BatchedPipeline(pipeline.model, RULE, sentence_segments=False, parallel_batches=2)
    with pytest.raises(RuntimeError, match="out of memory"):
        _segments_of(parallel, chunks=6, batch_size=2)


def test_speech_after_a_chunks_last_word_is_decoded_on_its_own_until_heard() -> None:
    """Chunk 0 of 20 s is heard to 2 s, its tail (from frame 200) to 3 s more, the rest (from
    5 s) to its end; chunk 1 is heard whole."""
    model = _ScriptedGenerate({})
    pipeline = _pipeline(model, heard_s={0: 2.0, 200_000: 3.0})

    segments = _segments_of(pipeline, chunks=2, batch_size=2, duration_s=20.0)

    tail, rest = 200_000, 500_000
    assert [s.text for s in segments] == [f"t[{key + 10}]" for key in (0, tail, rest, 1)]
    assert [(s.start, s.end) for s in segments] == [
        (0.0, 2.0),
        (2.0, 5.0),
        (5.0, 20.0),
        (40.0, 60.0),
    ]
    assert [chunks for chunks, _ in model.calls] == [[0, 1], [tail], [rest]]


def test_tails_of_one_batch_hear_previous_texts_cut_to_one_length() -> None:
    """Both chunks of a batch stop early, one after a one-token text, one after three tokens:
    each tail hears its chunk's text as previous text, the longer cut to the shorter's length
    (the model needs the prompts of one call aligned)."""
    model = _ScriptedGenerate({})
    model.tokens = {1: [11, 12, 13]}
    pipeline = _pipeline(model, heard_s={0: 2.0, 1: 4.0})

    segments = _segments_of(pipeline, chunks=2, batch_size=2, duration_s=20.0)

    assert [s.text for s in segments] == ["t[10]", "t[200010]", "t[11, 12, 13]", "t[400011]"]
    assert [(s.start, s.end) for s in segments] == [(0, 2), (2, 20), (40, 44), (44, 60)]
    assert model.prompts == [[[1, 2, 3], [1, 2, 3]], [[10, 1, 2, 3], [13, 1, 2, 3]]]


@pytest.mark.parametrize(
    "heard_s",
    [
        pytest.param({0: 19.0}, id="the rest is shorter than a tail"),
        pytest.param({0: 0.2}, id="the words reach too short a way in"),
    ],
)
def test_no_tail_is_decoded_without_speech_left_or_progress(heard_s: dict[int, float]) -> None:
    model = _ScriptedGenerate({})
    segments = _segments_of(_pipeline(model, heard_s), chunks=1, batch_size=1, duration_s=20.0)
    assert [s.text for s in segments] == ["t[10]"]
    assert len(model.calls) == 1


def test_speech_before_a_chunks_first_word_is_decoded_on_its_own() -> None:
    """Chunk 0 of 20 s is heard from 4 s on: its first 4 s are decoded as a head, without
    previous text, and come first; chunk 1 is heard whole."""
    model = _ScriptedGenerate({})
    pipeline = _pipeline(model, started_s={0: 4.0})

    segments = _segments_of(pipeline, chunks=2, batch_size=2, duration_s=20.0)

    assert [s.text for s in segments] == [f"t[{key + 10}]" for key in (HEAD, 0, 1)]
    assert [(s.start, s.end) for s in segments] == [(0.0, 4.0), (4.0, 20.0), (40.0, 60.0)]
    assert [chunks for chunks, _ in model.calls] == [[0, 1], [HEAD]]
    assert model.prompts[1] == [[1, 2, 3]]


@pytest.mark.parametrize(
    "started_s",
    [
        pytest.param({0: 1.0}, id="the head is shorter than a tail"),
        pytest.param({0: 4.0, HEAD: 3.0}, id="a head's own head"),
    ],
)
def test_no_head_is_decoded_short_or_twice(started_s: dict[int, float]) -> None:
    model = _ScriptedGenerate({})
    pipeline = _pipeline(model, started_s=started_s)

    _segments_of(pipeline, chunks=1, batch_size=1, duration_s=20.0)

    assert len(model.calls) == len(started_s)


def test_a_silent_head_adds_nothing() -> None:
    model = _ScriptedGenerate({(HEAD, t): -3.0 for t in RULE.temperatures})
    model.no_speech = {HEAD: 0.9}
    segments = _segments_of(
        _pipeline(model, started_s={0: 4.0}), chunks=1, batch_size=1, duration_s=20.0
    )
    assert [s.text for s in segments] == ["t[10]"]


def test_a_silent_tail_adds_nothing() -> None:
    model = _ScriptedGenerate({(200_000, t): -3.0 for t in RULE.temperatures})
    model.no_speech = {200_000: 0.9}
    segments = _segments_of(_pipeline(model, {0: 2.0}), chunks=1, batch_size=1, duration_s=20.0)
    assert [s.text for s in segments] == ["t[10]"]


@pytest.mark.parametrize(
    ("chunks", "most", "parallel", "sizes"),
    [
        (0, 2, 2, []),
        (1, 2, 2, [1]),
        (5, 2, 1, [2, 2, 1]),
        (22, 2, 2, [2] * 10 + [1, 1]),
        (22, 4, 2, [4, 4, 4, 4, 3, 3]),
        (7, 2, 4, [2, 2, 2, 1]),
        (16, 8, 2, [8, 8]),
    ],
)
def test_batches_are_even_and_a_multiple_of_the_threads(
    chunks: int, most: int, parallel: int, sizes: list[int]
) -> None:
    batches = even_batches(chunks, most, parallel)
    assert [b.stop - b.start for b in batches] == sizes
    assert [b.start for b in batches] == [sum(sizes[:i]) for i in range(len(sizes))]
