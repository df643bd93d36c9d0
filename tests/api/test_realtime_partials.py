"""Realtime turns decode partials only when they can show something (stable words)."""

from __future__ import annotations

from whisperd.api.realtime_config import RealtimeConfig


def test_without_stable_partials_no_partial_is_decoded() -> None:
    # Words become stable with the final, and a Realtime client sees only stable words
    # (deltas): a partial would cost a decode and show nothing.
    assert RealtimeConfig().stream().partials is False


def test_with_stable_partials_partials_are_decoded_for_deltas() -> None:
    assert RealtimeConfig().stream(stable_partials=True).partials is True
