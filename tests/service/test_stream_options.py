"""What a stream decode asks of the engine: finals as configured, partials greedy."""

from __future__ import annotations

from whisperd.service.streams import utterance_options
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


def test_partials_are_greedy_at_temperature_zero() -> None:
    options = utterance_options(
        CONFIG, DecodeRequest(final=False, prefix=None), hotwords=None, final_context="window"
    )
    assert options.beam_size == 1
    assert options.temperature == (0.0,)
    assert (options.length_penalty, options.repetition_penalty) == (1.0, 1.0)
