"""A later text extends the stable text sent before it, or contradicts it."""

from __future__ import annotations

import pytest

from whisperd.testing.stable_text import extends_stable


@pytest.mark.parametrize(
    ("text", "stable"),
    [
        ("it was dark and then", "it was dark"),
        ("it was dark, and then", "it was dark"),  # the last stable word gains a comma
        ("it was dark.", "it was dark"),
        ("it was dark", "it was dark"),
        ("anything at all", ""),
    ],
)
def test_a_text_that_goes_on_from_the_stable_words_extends_them(text: str, stable: str) -> None:
    assert extends_stable(text, stable)


@pytest.mark.parametrize(
    ("text", "stable"),
    [
        ("where did you put the keys", "where did you bought the"),  # a word retracted
        ("on the 6th of May", "on the 6"),  # a stable word continued
        ("it was", "it was dark"),  # stable words dropped
        ("it, was dark", "it was dark"),  # punctuation only on the last stable word
        ("", "it"),
    ],
)
def test_a_text_that_changes_a_stable_word_contradicts_it(text: str, stable: str) -> None:
    assert not extends_stable(text, stable)
