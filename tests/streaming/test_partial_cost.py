"""What a stream decode may cost: partials decode a bounded number of tokens."""

from __future__ import annotations

from whisperd.service.streams import PARTIAL_TOKENS, partial_token_cap, utterance_options
from whisperd.streaming.session import DecodeRequest, StreamConfig

PARTIAL = DecodeRequest(final=False, prefix=None)
FINAL = DecodeRequest(final=True, prefix=None)


def test_a_partial_decodes_at_most_its_audios_share_of_tokens() -> None:
    one = utterance_options(
        StreamConfig(), PARTIAL, hotwords=None, final_context="window", audio_s=1.0
    )
    five = utterance_options(
        StreamConfig(), PARTIAL, hotwords=None, final_context="window", audio_s=5.0
    )
    assert one.max_new_tokens == partial_token_cap(1.0) == PARTIAL_TOKENS + 8
    assert five.max_new_tokens == partial_token_cap(5.0) == PARTIAL_TOKENS + 40
    # fast speech (about 4 words or 6 tokens a second) fits
    assert partial_token_cap(3.0) > 6 * 3.0


def test_the_clients_own_cap_wins_when_lower() -> None:
    options = utterance_options(
        StreamConfig(max_new_tokens=10), PARTIAL, hotwords=None, final_context="window", audio_s=5.0
    )
    assert options.max_new_tokens == 10


def test_finals_keep_the_clients_cap_or_none() -> None:
    options = utterance_options(
        StreamConfig(), FINAL, hotwords=None, final_context="window", audio_s=1.0
    )
    assert options.max_new_tokens is None
