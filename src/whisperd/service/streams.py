"""How a real-time stream's utterances are decoded and its audio scored for speech."""

from __future__ import annotations

import asyncio
import math
import threading
from typing import TYPE_CHECKING, Any, Literal

from whisperd.engine.base import SAMPLE_RATE
from whisperd.engine.options import WINDOW_S, TranscribeOptions
from whisperd.scheduler.batcher import Priority
from whisperd.streaming.session import DecodeRequest, Result

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from whisperd.engine.base import Engine, Transcript
    from whisperd.scheduler.admission import Admission
    from whisperd.service.pools import WorkerPool
    from whisperd.streaming.session import (
        Decoder,
        Emit,
        Event,
        StreamConfig,
        Vad,
    )


PARTIAL_TOKENS_PER_SECOND = 8.0
"""Most tokens a partial decodes per second of its audio, on top of :data:`PARTIAL_TOKENS`:
fast speech gives about 6 (words, punctuation and timestamps). Greedy decoding of a short
clip often loops on a phrase until the model's 448-token limit, which made such a partial
cost ten times a normal one; cut there, it still fails the quality checks as it did."""
PARTIAL_TOKENS = 8
"""Tokens every partial may decode whatever its length."""


FINAL_TAIL_MARGIN_S = 0.2
"""How much earlier than the VAD's end of speech a final's words may end and the leftover
after them still go undecoded (``TranscribeOptions.min_tail_window_s``): faster-whisper
decodes the leftover after a window's last word as a window of its own, which for an utterance
is its trailing silence and doubled the final's cost; a final whose words end earlier (the
decode stopped before the last words) has the leftover decoded, as before."""


def skipped_tail_s(config: StreamConfig, request: DecodeRequest) -> float:
    """The shortest leftover after a decode's words that is still decoded (seconds; 0: every
    leftover, as faster-whisper): for a final whose trailing silence is known, that silence
    and :data:`FINAL_TAIL_MARGIN_S` (with ``config.skip_silent_tails``). A partial, decoded
    without timestamps, has no leftover."""
    if not (config.skip_silent_tails and request.final and request.silent_tail_s > 0):
        return 0.0
    return min(request.silent_tail_s + FINAL_TAIL_MARGIN_S, WINDOW_S)


def partial_token_cap(audio_s: float) -> int:
    """Most tokens a partial of ``audio_s`` seconds decodes (see
    :data:`PARTIAL_TOKENS_PER_SECOND`)."""
    return PARTIAL_TOKENS + math.ceil(audio_s * PARTIAL_TOKENS_PER_SECOND)


def utterance_options(
    config: StreamConfig,
    request: DecodeRequest,
    *,
    hotwords: str | None,
    final_context: Literal["window", "audio"],
    audio_s: float | None = None,
) -> TranscribeOptions:
    """Decoding options of one stream decode of ``audio_s`` seconds (None: unknown).

    Finals: the stream's beam width, penalties, temperature fallback and word timings when asked;
    partials: greedy at temperature 0, at most :func:`partial_token_cap` tokens, without
    timestamp tokens, so one window holds all the audio so far (with timestamps, Whisper often
    ended the window at the last sentence's end, and the newest words were decoded as a window
    of their own: 1.4x the CPU on real speech, docs/benchmarks.md). Both force the
    utterance's stable words as prefix and are conditioned on the client's prompt followed by
    the stream's previous finals. Partials encode only the utterance's length; finals
    ``final_context`` (the whole 30 s window by default, as Whisper was trained), and leave a
    silent leftover after their words undecoded (:func:`skipped_tail_s`).
    """
    max_new_tokens = config.max_new_tokens
    if not request.final and audio_s is not None:
        cap = partial_token_cap(audio_s)
        max_new_tokens = cap if max_new_tokens is None else min(max_new_tokens, cap)
    prompt = " ".join(part for part in (config.prompt, request.prompt) if part)
    return TranscribeOptions(
        language=config.language,
        initial_prompt=prompt or None,
        hotwords=hotwords or None,
        prefix=request.prefix,
        word_timestamps=request.word_timestamps or (config.word_timestamps and request.final),
        logprobs=config.logprobs and request.final,
        vad_filter=False,
        condition_on_previous_text=False,
        beam_size=config.beam_size if request.final else 1,
        temperature=config.temperatures if request.final else (0.0,),
        length_penalty=config.length_penalty if request.final else 1.0,
        repetition_penalty=config.repetition_penalty if request.final else 1.0,
        max_new_tokens=max_new_tokens,
        without_timestamps=not request.final,
        encoder_context=final_context if request.final else "audio",
        min_tail_window_s=skipped_tail_s(config, request),
    )


def check_stream(
    engine: Engine,
    config: StreamConfig,
    *,
    hotwords: str | None,
    final_context: Literal["window", "audio"],
) -> None:
    """Refuse, before any audio, a stream whose decodes the model cannot honour (a language
    an English-only model does not speak, a prompt with no room left).

    Raises:
        InvalidOptionError: naming the option at fault (``language``, ...).
    """
    request = DecodeRequest(final=True, prefix=None)
    engine.check(utterance_options(config, request, hotwords=hotwords, final_context=final_context))


def stream_decoder(
    engine: Engine,
    config: StreamConfig,
    *,
    hotwords: str | None,
    final_context: Literal["window", "audio"],
    pool: WorkerPool,
    admission: Admission,
) -> Decoder:
    """A decoder for one stream's utterances, on the stream pool, at stream priorities.

    Finals are scheduled before partials, and both before HTTP requests; every decode counts
    in the admission's stream work while it runs.
    """

    async def decode(audio: np.ndarray[Any, Any], request: DecodeRequest) -> Transcript:
        heard_s = len(audio) / SAMPLE_RATE
        options = utterance_options(
            config, request, hotwords=hotwords, final_context=final_context, audio_s=heard_s
        )
        priority = Priority.STREAM_FINAL if request.final else Priority.STREAMING
        cancel = threading.Event()
        async with admission.stream_work(heard_s):
            try:
                transcript = await pool.run(
                    engine.transcribe, audio, options, None, priority=priority, cancel=cancel
                )
            except asyncio.CancelledError:
                cancel.set()  # its model calls still queued are dropped
                raise
        return transcript

    return decode


def stream_vad(pool: WorkerPool) -> Vad:
    """A fresh per-stream VAD (it keeps state between calls) scoring on the VAD pool."""
    from whisperd.engine.vad import StreamingVad

    vad = StreamingVad()

    async def score(audio: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return await pool.run(vad, audio)

    return score


def timing_finals(emit: Emit, observe: Callable[[float], None]) -> Emit:
    """``emit``, telling ``observe`` first the latency of each final (seconds from asking for
    the utterance's final to its transcript; several utterances decoded together each count)."""

    async def timed(event: Event) -> None:
        if isinstance(event, Result) and event.is_final:
            observe(event.latency)
        await emit(event)

    return timed
