"""Speaker turns as text: one ``speaker: text`` line per turn of a diarized transcript."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from whisperd.engine.base import Segment, Transcript

__all__ = ["speaker_text", "spoken"]


def spoken(transcript: Transcript) -> list[Segment]:
    """The segments whose text is not blank."""
    return [segment for segment in transcript.segments if segment.text.strip()]


def speaker_text(transcript: Transcript) -> str:
    """The transcript as one ``speaker: text`` line per turn (consecutive segments of one
    speaker joined), as OpenAI's ``diarized_json`` ``text``; one line per segment without
    speakers."""
    lines: list[tuple[str | None, str]] = []
    for segment in spoken(transcript):
        text = segment.text.strip()
        if lines and segment.speaker is not None and lines[-1][0] == segment.speaker:
            lines[-1] = (segment.speaker, f"{lines[-1][1]} {text}")
        else:
            lines.append((segment.speaker, text))
    return "\n".join(text if who is None else f"{who}: {text}" for who, text in lines)
