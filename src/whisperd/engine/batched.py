"""Batched decoding of VAD chunks: faster-whisper's pipeline with Whisper's fallback and sentences.

faster-whisper's ``BatchedInferencePipeline`` cuts the audio at VAD pauses into chunks of up to
30 s and decodes them side by side, each chunk on its own (no previous text). Two of its choices
cost words or timing, and :class:`BatchedPipeline` replaces them:

- it decodes at the first temperature only. Here every chunk that fails Whisper's checks
  (compression ratio above ``compression_ratio_threshold``, or average log-probability below
  ``log_prob_threshold`` unless ``no_speech_prob`` says the chunk is silence) is decoded again
  at the next temperature, the failing chunks of a batch together, as openai-whisper's
  ``decode_with_fallback`` does for one window. A chunk whose best decode is judged silence
  (``no_speech_prob`` above ``no_speech_threshold`` and a low log-probability) gives no text,
  as in sequential decoding.
- with timestamp tokens its chunks end early: on real speech whole sentences after a chunk's
  last timestamp are lost (7 of 200 on an 11-minute recording with tiny.en). So text is always
  decoded without timestamp tokens, and when segment times are wanted, each chunk's text is cut
  at sentence ends (``.``, ``?``, ``!`` and their CJK forms) into segments whose times come from
  the word-alignment pass (cross-attention, as for word timestamps).

Without timestamp tokens a chunk's decode may still stop early (tiny.en gave 10 words for the 12
s of two voices taking turns). Sequential decoding would seek to its last timestamp and go on;
here every chunk is aligned, and the speech after its last word, when long enough, is decoded as
a chunk of its own (:meth:`BatchedPipeline._with_unheard`). The decode may also start late:
after a long prompt, tiny.en began a chunk's text 4 s into its speech. The speech before its
first word, when as long, is decoded on its own too.
"""

from __future__ import annotations

import contextvars
import itertools
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import faster_whisper
import numpy as np
from faster_whisper.transcribe import get_compression_ratio

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from faster_whisper.tokenizer import Tokenizer

__all__ = ["BatchedPipeline", "Decode", "Fallback", "even_batches", "sentence_spans"]

SENTENCE_ENDS = (".", "?", "!", "。", "？", "！")
"""Word endings after which a chunk's text is cut into a new segment."""

TAIL_S = 1.5
"""Speech after a chunk's last aligned word, or before its first, at least this long (s) is
decoded on its own."""

MIN_PROGRESS_S = 0.5
"""A chunk's tail is decoded only when its heard words reach this far (s) into the chunk."""

MAX_SEGMENT_WORDS = 40
"""A sentence longer than this is cut after its next comma, so subtitles stay readable."""


@dataclass(frozen=True, slots=True)
class Decode:
    """One chunk's decode at one temperature."""

    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float


@dataclass(frozen=True, slots=True)
class Fallback:
    """Whisper's temperature fallback rule (openai-whisper ``transcribe.decode_with_fallback``).

    Attributes:
        temperatures: Tried in order; the first is the greedy or beam-search decode.
        compression_ratio_threshold: Above it (gzip ratio of the text) a decode is repetitive.
        log_prob_threshold: Below it (average token log-probability) a decode is doubtful.
        no_speech_threshold: Above it (probability of ``<|nospeech|>``), a doubtful decode is
            silence: it is not retried, and gives no text.
        best_of: Candidates sampled at each temperature above 0; the most probable is kept.
    """

    temperatures: tuple[float, ...]
    compression_ratio_threshold: float | None
    log_prob_threshold: float | None
    no_speech_threshold: float | None
    best_of: int

    def is_silence(self, decode: Decode) -> bool:
        """Whether ``decode`` is judged to be silence (its text is then dropped)."""
        return (
            self.no_speech_threshold is not None
            and decode.no_speech_prob > self.no_speech_threshold
            and self.log_prob_threshold is not None
            and decode.avg_logprob < self.log_prob_threshold
        )

    def fails(self, decode: Decode) -> bool:
        """Whether ``decode`` must be tried again at the next temperature."""
        if self.is_silence(decode):
            return False
        repetitive = (
            self.compression_ratio_threshold is not None
            and decode.compression_ratio > self.compression_ratio_threshold
        )
        doubtful = (
            self.log_prob_threshold is not None and decode.avg_logprob < self.log_prob_threshold
        )
        return repetitive or doubtful

    def best(self, attempts: Sequence[Decode]) -> Decode:
        """The decode kept when every temperature failed: the most probable one that is not
        repetitive, else the most probable one."""
        threshold = self.compression_ratio_threshold
        fluent = [d for d in attempts if threshold is None or d.compression_ratio <= threshold]
        return max(fluent or attempts, key=lambda d: d.avg_logprob)


def sentence_spans(
    words: Sequence[str], max_words: int = MAX_SEGMENT_WORDS
) -> list[tuple[int, int]]:
    """``[start, end)`` word index ranges of the sentences of ``words``.

    A sentence ends after a word ending in one of :data:`SENTENCE_ENDS`; one longer than
    ``max_words`` also ends after its next word ending in a comma. Every word is in exactly one
    range, in order.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for index, word in enumerate(words):
        text = word.strip()
        length = index + 1 - start
        if text.endswith(SENTENCE_ENDS) or (length >= max_words and text.endswith((",", "，"))):
            spans.append((start, index + 1))
            start = index + 1
    if start < len(words):
        spans.append((start, len(words)))
    return spans


def even_batches(chunks: int, most: int, parallel: int) -> list[slice]:
    """Consecutive batches of ``chunks`` chunks, at most ``most`` each, as even in size as can be,
    and as many as a multiple of ``parallel`` where there are enough chunks.

    ``parallel`` batches decode at once: 22 chunks of at most 2 in 11 batches would leave one
    thread idle for the last; in 12 batches of 2 or 1 both finish together.
    """
    count = -(-chunks // most)
    count = min(chunks, -(-count // parallel) * parallel)
    if count == 0:
        return []
    size, larger = divmod(chunks, count)
    bounds = [0]
    for index in range(count):
        bounds.append(bounds[-1] + size + (1 if index < larger else 0))
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


@dataclass(frozen=True, slots=True)
class _Unheard:
    """The audio of a chunk before its first heard word or after its last, as a chunk of its
    own."""

    features: np.ndarray[Any, Any]
    """Its log-mel features, padded with zeros to the chunk's frames."""
    metadata: dict[str, Any]
    """``offset`` and ``duration`` (s), in faster-whisper's chunk metadata."""
    previous: list[int]
    """Whisper's previous text for decoding it: the chunk's text tokens for a tail, none for a
    head."""


_Finder = Callable[[list[dict[str, Any]], np.ndarray[Any, Any], dict[str, Any]], _Unheard | None]
"""Finds a chunk's unheard head or tail from its segments, features and metadata."""


class BatchedPipeline(faster_whisper.BatchedInferencePipeline):  # type: ignore[misc]
    """faster-whisper's batched pipeline, decoding with :class:`Fallback`, decoding the tail
    of a chunk whose text stops early, and cutting chunks into sentence segments timed by word
    alignment.

    ``sentence_segments`` off, each chunk (and each tail) is one segment from its first word to
    its last.
    """

    def __init__(
        self,
        model: Any,
        fallback: Fallback,
        *,
        sentence_segments: bool,
        parallel_batches: int = 1,
    ) -> None:
        """Run on ``model`` (a faster-whisper ``WhisperModel`` or whisperd's view of one).

        ``parallel_batches`` batches are decoded at once (the scheduler's workers, each a model
        call in parallel); results, word alignment included, still come in order.
        """
        if parallel_batches < 1:
            raise ValueError("parallel_batches must be at least 1")
        super().__init__(model)
        self._fallback = fallback
        self._sentences = sentence_segments
        self._parallel = parallel_batches

    def forward(
        self,
        features: np.ndarray[Any, Any],
        tokenizer: Tokenizer,
        chunks_metadata: list[dict[str, Any]],
        options: Any,
    ) -> list[list[dict[str, Any]]]:
        """Decode one batch of chunks into their segments (dicts, as faster-whisper's own).

        A chunk judged silence gives no segment; the others are timed by the word-alignment
        pass, with their heads' and tails' segments (:meth:`_with_unheard`).
        """
        encoder_output, outputs = self.generate_segment_batched(features, tokenizer, options)
        return self._timed(features, tokenizer, chunks_metadata, options, encoder_output, outputs)

    def _timed(
        self,
        features: np.ndarray[Any, Any],
        tokenizer: Tokenizer,
        chunks_metadata: list[dict[str, Any]],
        options: Any,
        encoder_output: Any,
        outputs: list[dict[str, Any]],
        *,
        heads: bool = True,
    ) -> list[list[dict[str, Any]]]:
        """One decoded batch's chunks as segments, timed by the word-alignment pass, each
        preceded by the segments of its head (``heads`` off for chunks that are heads
        themselves) and followed by those of its tail (:meth:`_with_unheard`).

        The alignment's rule for the first word after a pause takes the batch's start as the
        last speech before it, so each batch is timed on its own, whichever worker decodes it.
        """
        heard = [i for i, output in enumerate(outputs) if output["tokens"]]
        if not heard:
            return []
        chunks = [self._segments(tokenizer, chunks_metadata[i], outputs[i]) for i in heard]
        if len(heard) < len(outputs):
            encoder_output = self.model.encode(features[heard])
        frames_per_second = self.model.frames_per_second
        self.model.add_word_timestamps(
            chunks,
            tokenizer,
            encoder_output,
            [int(np.ceil(chunks_metadata[i]["duration"]) * frames_per_second) for i in heard],
            options.prepend_punctuations,
            options.append_punctuations,
            float(chunks_metadata[0]["offset"]),
        )
        return self._with_unheard(
            chunks,
            [features[i] for i in heard],
            [chunks_metadata[i] for i in heard],
            tokenizer,
            options,
            heads=heads,
        )

    def _with_unheard(
        self,
        chunks: list[list[dict[str, Any]]],
        features: list[np.ndarray[Any, Any]],
        chunks_metadata: list[dict[str, Any]],
        tokenizer: Tokenizer,
        options: Any,
        *,
        heads: bool,
    ) -> list[list[dict[str, Any]]]:
        """``chunks`` (aligned), each preceded by the segments of its unheard head (with
        ``heads``) and followed by those of its unheard tail.

        Whisper decoding a window without timestamp tokens may stop early: the speech after
        its last word is lost (sequential decoding seeks to the last timestamp and decodes on).
        A chunk whose last aligned word ends :data:`TAIL_S` or more before the chunk's end has
        that rest decoded and aligned as a chunk of its own (the tails of a batch together,
        each after its chunk's text as previous text), and so on while each round moves on by
        at least :data:`MIN_PROGRESS_S`. The decode may also begin late, after a long prompt
        most of all: a chunk whose first aligned word starts :data:`TAIL_S` or more after the
        chunk does has that speech decoded the same way (without previous text), once.
        """
        if heads:
            found = self._unheard(chunks, features, chunks_metadata, self._head)
            for index, segments in self._decode_unheard(found, tokenizer, options).items():
                chunks[index] = segments + chunks[index]
        found = self._unheard(chunks, features, chunks_metadata, self._tail)
        for index, segments in self._decode_unheard(found, tokenizer, options, heads=True).items():
            chunks[index] = chunks[index] + segments
        return chunks

    @staticmethod
    def _unheard(
        chunks: list[list[dict[str, Any]]],
        features: list[np.ndarray[Any, Any]],
        chunks_metadata: list[dict[str, Any]],
        find: _Finder,
    ) -> dict[int, _Unheard]:
        """What ``find`` finds unheard in each chunk, by the chunk's index."""
        return {
            index: piece
            for index, chunk in enumerate(chunks)
            if (piece := find(chunk, features[index], chunks_metadata[index])) is not None
        }

    def _head(
        self,
        chunk: list[dict[str, Any]],
        features: np.ndarray[Any, Any],
        metadata: dict[str, Any],
    ) -> _Unheard | None:
        """``chunk``'s audio before its first aligned word, when at least :data:`TAIL_S` long;
        else None."""
        words = [word for segment in chunk for word in segment.get("words") or []]
        if not words:
            return None
        offset = float(metadata["offset"])
        frames_per_second = self.model.frames_per_second
        last = int((words[0]["start"] - offset) * frames_per_second)
        if last < TAIL_S * frames_per_second:
            return None
        head = np.zeros_like(features)
        head[..., :last] = features[..., :last]
        return _Unheard(head, {"offset": offset, "duration": last / frames_per_second}, [])

    def _decode_unheard(
        self,
        pieces: dict[int, _Unheard],
        tokenizer: Tokenizer,
        options: Any,
        *,
        heads: bool = False,
    ) -> dict[int, list[dict[str, Any]]]:
        """``pieces`` (by their chunk's index) decoded together and timed (:meth:`_timed`,
        ``heads`` as there): the segments of each piece not judged silence."""
        if not pieces:
            return {}
        features = np.stack([piece.features for piece in pieces.values()])
        encoder_output, outputs = self.generate_segment_batched(
            features, tokenizer, options, [piece.previous for piece in pieces.values()]
        )
        timed = iter(
            self._timed(
                features,
                tokenizer,
                [piece.metadata for piece in pieces.values()],
                options,
                encoder_output,
                outputs,
                heads=heads,
            )
        )
        return {
            index: next(timed)
            for index, output in zip(pieces, outputs, strict=True)
            if output["tokens"]
        }

    def _tail(
        self,
        chunk: list[dict[str, Any]],
        features: np.ndarray[Any, Any],
        metadata: dict[str, Any],
    ) -> _Unheard | None:
        """``chunk``'s audio after its last aligned word, when at least :data:`TAIL_S` long
        and its words reach :data:`MIN_PROGRESS_S` into the chunk; else None."""
        words = [word for segment in chunk for word in segment.get("words") or []]
        offset, duration = float(metadata["offset"]), float(metadata["duration"])
        heard_s = (words[-1]["end"] - offset) if words else 0.0
        if heard_s < MIN_PROGRESS_S or duration - heard_s < TAIL_S:
            return None
        frames_per_second = self.model.frames_per_second
        first = int(heard_s * frames_per_second)
        rest = np.zeros_like(features)
        rest[..., : features.shape[-1] - first] = features[..., first:]
        cut_s = first / frames_per_second
        heard_tokens = [token for segment in chunk for token in segment["tokens"]]
        return _Unheard(
            rest, {"offset": offset + cut_s, "duration": duration - cut_s}, heard_tokens
        )

    def _batched_segments_generator(
        self,
        features: np.ndarray[Any, Any],
        tokenizer: Tokenizer,
        chunks_metadata: list[dict[str, Any]],
        batch_size: int,
        options: Any,
        log_progress: bool,
    ) -> Iterator[faster_whisper.transcribe.Segment]:
        """faster-whisper's segments of every batch, in order, each with the temperature its
        chunk was decoded at."""
        del log_progress
        number = 0
        batches = even_batches(len(features), batch_size, self._parallel)
        decoded = self._decoded_in_order(features, chunks_metadata, batches, tokenizer, options)
        for chunks in decoded:
            for chunk in chunks:
                for segment in chunk:
                    number += 1
                    words = (
                        segment.get("words") if options.word_timestamps or self._sentences else None
                    )
                    yield faster_whisper.transcribe.Segment(
                        id=number,
                        seek=segment["seek"],
                        start=round(segment["start"], 3),
                        end=round(segment["end"], 3),
                        text=segment["text"],
                        tokens=segment["tokens"],
                        avg_logprob=segment["avg_logprob"],
                        compression_ratio=segment["compression_ratio"],
                        no_speech_prob=segment["no_speech_prob"],
                        temperature=segment["temperature"],
                        words=None
                        if words is None
                        else [faster_whisper.transcribe.Word(**w) for w in words],
                    )

    def _decoded_in_order(
        self,
        features: np.ndarray[Any, Any],
        chunks_metadata: list[dict[str, Any]],
        batches: list[slice],
        tokenizer: Tokenizer,
        options: Any,
    ) -> Iterator[list[list[dict[str, Any]]]]:
        """:meth:`forward` of each batch, in order, with up to ``parallel_batches`` of them
        decoding at once (each in the caller's context, so its model calls log under the
        caller's request)."""
        parallel = min(self._parallel, len(batches))
        if parallel <= 1:  # a clip's single batch: no thread to start
            for batch in batches:
                yield self.forward(features[batch], tokenizer, chunks_metadata[batch], options)
            return
        pool = ThreadPoolExecutor(parallel, thread_name_prefix="whisperd-chunks")
        pending: deque[Future[list[list[dict[str, Any]]]]] = deque()
        try:
            for batch in batches:
                context = contextvars.copy_context()
                pending.append(
                    pool.submit(
                        context.run,
                        self.forward,
                        features[batch],
                        tokenizer,
                        chunks_metadata[batch],
                        options,
                    )
                )
                if len(pending) >= 2 * parallel:  # a thread done early takes the next batch
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _segments(
        self, tokenizer: Tokenizer, metadata: dict[str, Any], output: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """One chunk's output as segments: its sentences (timed later by alignment) or one."""
        tokens = [t for t in output["tokens"] if t < tokenizer.eot]
        pieces = [tokens]
        if self._sentences and tokens:
            words, word_tokens = tokenizer.split_to_word_tokens([*tokens, tokenizer.eot])
            spans = sentence_spans(words[:-1])
            pieces = [[t for part in word_tokens[a:b] for t in part] for a, b in spans]
        offset = float(metadata["offset"])
        texts = [tokenizer.decode(piece) for piece in pieces]
        return [
            {
                "text": text,
                "tokens": piece,
                "avg_logprob": output["avg_logprob"],
                "no_speech_prob": output["no_speech_prob"],
                "compression_ratio": get_compression_ratio(text),
                "temperature": output["temperature"],
                "start": offset,
                "end": offset + float(metadata["duration"]),
                "seek": int(offset * self.model.frames_per_second),
            }
            for piece, text in zip(pieces, texts, strict=True)
        ]

    def generate_segment_batched(
        self,
        features: np.ndarray[Any, Any],
        tokenizer: Tokenizer,
        options: Any,
        previous: Sequence[list[int]] = (),
    ) -> tuple[Any, list[dict[str, Any]]]:
        """Encode and decode ``features`` (one chunk each) with the fallback rule.

        Args:
            previous: Per chunk, the text tokens heard just before it (a tail's chunk), given
                as Whisper's previous text after ``initial_prompt`` (the last 223 tokens
                kept, as in sequential decoding); empty: none for any chunk. The chunks'
                texts are cut to the shortest's length (its last tokens kept): CTranslate2
                decodes a batch only when every prompt puts ``<|startoftranscript|>`` at the
                same position.

        Returns:
            The encoder output of the whole batch, and per chunk a dict of ``tokens``,
            ``avg_logprob``, ``no_speech_prob`` and ``temperature`` (no tokens for silence).
        """
        initial = tokenizer.encode(options.initial_prompt) if options.initial_prompt else []
        if previous:
            kept = min(len(before) for before in previous)
            previous = [before[len(before) - kept :] for before in previous]
        prompts = [
            self.model.get_prompt(
                tokenizer,
                previous_tokens=[*initial, *before],
                without_timestamps=True,
                hotwords=options.hotwords,
            )
            for before in (previous or [[]] * len(features))
        ]
        max_length = self.model.max_length
        if options.max_new_tokens is not None:
            longest = max(len(prompt) for prompt in prompts)
            max_length = min(max_length, longest + options.max_new_tokens)
        encoder_output = self.model.encode(features)
        prompts = self._with_languages(prompts, tokenizer, encoder_output, options)
        decodes = self._decode_all(
            features, encoder_output, prompts, tokenizer, options, max_length
        )
        return encoder_output, [
            {
                "tokens": [] if self._fallback.is_silence(d) else d.tokens,
                "avg_logprob": d.avg_logprob,
                "no_speech_prob": d.no_speech_prob,
                "temperature": d.temperature,
            }
            for d in decodes
        ]

    def _with_languages(
        self, prompts: list[list[int]], tokenizer: Tokenizer, encoder_output: Any, options: Any
    ) -> list[list[int]]:
        """``prompts``, one per chunk; multilingual decoding puts each chunk's own language
        in."""
        if not options.multilingual:
            return prompts
        detected = self.model.model.detect_language(encoder_output)
        chunk_prompts = []
        for prompt, languages in zip(prompts, detected, strict=True):
            chunk_prompt = list(prompt)
            chunk_prompt[prompt.index(tokenizer.language)] = tokenizer.tokenizer.token_to_id(
                languages[0][0]
            )
            chunk_prompts.append(chunk_prompt)
        return chunk_prompts

    def _decode_all(
        self,
        features: np.ndarray[Any, Any],
        encoder_output: Any,
        prompts: list[list[int]],
        tokenizer: Tokenizer,
        options: Any,
        max_length: int,
    ) -> list[Decode]:
        """Every chunk decoded at the first temperature, failing ones again at the next ones
        (re-encoding only those chunks), the best attempt kept."""
        rule = self._fallback
        first, *rest = rule.temperatures
        attempts = [
            [d]
            for d in self._decode(encoder_output, prompts, tokenizer, options, first, max_length)
        ]
        for temperature in rest:
            failing = [i for i, tried in enumerate(attempts) if rule.fails(tried[-1])]
            if not failing:
                break
            encoded = self.model.encode(features[failing])
            retried = self._decode(
                encoded, [prompts[i] for i in failing], tokenizer, options, temperature, max_length
            )
            for index, decode in zip(failing, retried, strict=True):
                attempts[index].append(decode)
        return [tried[-1] if not rule.fails(tried[-1]) else rule.best(tried) for tried in attempts]

    def _decode(
        self,
        encoder_output: Any,
        prompts: list[list[int]],
        tokenizer: Tokenizer,
        options: Any,
        temperature: float,
        max_length: int,
    ) -> list[Decode]:
        """One ``generate`` call: beam search at temperature 0, else ``best_of`` samples."""
        if temperature > 0:
            search: dict[str, Any] = {
                "beam_size": 1,
                "num_hypotheses": self._fallback.best_of,
                "sampling_topk": 0,
                "sampling_temperature": temperature,
            }
        else:
            search = {"beam_size": options.beam_size, "patience": options.patience}
        results = self.model.model.generate(
            encoder_output,
            prompts,
            length_penalty=options.length_penalty,
            repetition_penalty=options.repetition_penalty,
            no_repeat_ngram_size=options.no_repeat_ngram_size,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=options.suppress_blank,
            suppress_tokens=options.suppress_tokens,
            **search,
        )
        decodes = []
        for result in results:
            tokens = list(result.sequences_ids[0])
            avg_logprob = (
                result.scores[0] * len(tokens) ** options.length_penalty / (len(tokens) + 1)
            )
            decodes.append(
                Decode(
                    tokens=tokens,
                    avg_logprob=float(avg_logprob),
                    no_speech_prob=float(result.no_speech_prob),
                    compression_ratio=get_compression_ratio(tokenizer.decode(tokens).strip()),
                    temperature=temperature,
                )
            )
        return decodes
