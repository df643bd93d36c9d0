"""Speaker labels in outputs: OpenAI's ``diarized_json`` and labelled text.

A diarized transcript (:mod:`whisperd.diarization`) has one speaker per segment; these
functions render it (the other formats show speakers through :mod:`whisperd.audio.formats`:
``speaker`` on verbose_json segments and words, ``[A]`` and ``<v A>`` in cues).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from whisperd.audio.formats import usage_seconds
from whisperd.audio.turns import speaker_text, spoken

if TYPE_CHECKING:
    from whisperd.engine.base import Transcript

__all__ = ["diarized_segment_id", "speaker_text", "to_diarized_json"]


def diarized_segment_id(index: int) -> str:
    """OpenAI's diarized segment id for the ``index``-th segment (0-based): ``seg_001``, ..."""
    return f"seg_{index + 1:03d}"


def to_diarized_json(transcript: Transcript) -> dict[str, Any]:
    """OpenAI's ``diarized_json``: ``task``, ``duration``, labelled ``text``, one segment per
    speaker turn of Whisper's (``{type, id, start, end, text, speaker}``), ``usage``."""
    segments = [
        {
            "type": "transcript.text.segment",
            "id": diarized_segment_id(index),
            "start": segment.start,
            "end": segment.end,
            "text": segment.text.strip(),
            "speaker": segment.speaker or "A",
        }
        for index, segment in enumerate(spoken(transcript))
    ]
    return {
        "task": transcript.task,
        "duration": transcript.duration,
        "text": speaker_text(transcript),
        "segments": segments,
        "usage": {"type": "duration", "seconds": usage_seconds(transcript.duration)},
    }
