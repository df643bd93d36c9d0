"""A job's result in its stored, neutral form: the whole transcript as JSON.

Every field of :class:`~whisperd.engine.base.Transcript` is kept (segments, words, tokens,
language, durations), so each response format can be rendered from it later by
:mod:`whisperd.audio.formats`, whichever the job was submitted with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from whisperd.engine.base import Segment, Transcript, Word

__all__ = ["transcript_json", "transcript_of"]


def transcript_json(transcript: Transcript) -> dict[str, Any]:
    """``transcript`` as a JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(transcript)


def transcript_of(stored: Mapping[str, Any]) -> Transcript:
    """The transcript :func:`transcript_json` stored.

    Raises:
        KeyError, TypeError: if ``stored`` is not such a dict.
    """
    fields = dict(stored)
    fields["segments"] = tuple(_segment(segment) for segment in stored["segments"])
    return Transcript(**fields)


def _segment(stored: Mapping[str, Any]) -> Segment:
    fields = dict(stored)
    fields["tokens"] = tuple(stored["tokens"])
    words = stored.get("words")
    fields["words"] = None if words is None else tuple(Word(**word) for word in words)
    return Segment(**fields)
