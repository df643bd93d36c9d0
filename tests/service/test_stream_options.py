"""What a stream decode asks of the engine: finals as configured, partials greedy."""

from __future__ import annotations

import dataclasses

from whisperd.service.streams import FINAL_TAIL_MARGIN_S, utterance_options
from whisperd.streaming.session import DecodeRequest, StreamConfig

CONFIG = StreamConfig(
    beam_size=3,
    temperatures=(0.0, 0.4),
    length_penalty=0.5,
    repetition_penalty=1.1,
    max_new_tokens=100,
)


def test_finals_decode_with_the_streams_sampling_settings() -> None:
    options = utterance_options(
        CONFIG, DecodeRequest(final=True, prefix=None), hotwords=None, final_context="window"
    )
    assert options.beam_size == 3
    assert options.temperature == (0.0, 0.4)
    assert (options.length_penalty, options.repetition_penalty) == (0.5, 1.1)
    assert options.max_new_tokens == 100
    assert options.encoder_context == "window"
    assert options.min_tail_window_s == 0  # no silence heard: every leftover is decoded
    assert not options.without_timestamps


def test_partials_are_greedy_at_temperature_zero() -> None:
    options = utterance_options(
        CONFIG, DecodeRequest(final=False, prefix=None), hotwords=None, final_context="window"
    )
    assert options.beam_size == 1
    assert options.temperature == (0.0,)
    assert (options.length_penalty, options.repetition_penalty) == (1.0, 1.0)
    assert options.without_timestamps  # one window: no leftover after its last timestamp


def test_a_finals_leftover_within_its_trailing_silence_is_not_decoded() -> None:
    final = DecodeRequest(final=True, prefix=None, silent_tail_s=0.3)
    partial = DecodeRequest(final=False, prefix=None, silent_tail_s=0.3)

    def tail(request: DecodeRequest, config: StreamConfig = CONFIG) -> float:
        return utterance_options(
            config, request, hotwords=None, final_context="window"
        ).min_tail_window_s

    assert tail(final) == 0.3 + FINAL_TAIL_MARGIN_S
    assert tail(partial) == 0  # a partial, without timestamps, has no leftover
    assert tail(final, dataclasses.replace(CONFIG, skip_silent_tails=False)) == 0
