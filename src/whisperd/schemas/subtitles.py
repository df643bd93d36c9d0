"""Subtitle shaping fields of a transcription request, named as openai-whisper's command line.

``max_line_width``, ``max_line_count``, ``max_words_per_line`` and ``highlight_words`` are
openai-whisper's ``--max_line_width`` and so on (their meaning is in
:mod:`whisperd.audio.subtitles`); ``max_cue_duration`` (seconds) is whisperd's own. They shape
``srt`` and ``vtt`` answers only, so a request that sends one with another format, or with
``stream=true``, is refused (400 naming the field) rather than answered without the shaping it
asked for.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from whisperd.audio.subtitles import SubtitleStyle
from whisperd.errors import InvalidOptionError

__all__ = ["SHAPED_FORMATS", "SubtitleFields"]

SHAPED_FORMATS = ("srt", "vtt")
"""The output formats subtitle shaping applies to."""


class SubtitleFields(BaseModel):
    """The subtitle shaping fields; all absent means one cue per Whisper segment."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", use_attribute_docstrings=True, allow_inf_nan=False
    )

    max_line_width: Annotated[int | None, Field(ge=1, le=10_000)] = None
    """Most characters on a subtitle line (srt and vtt). A word longer than this gets a line of
    its own; words are never broken."""
    max_line_count: Annotated[int | None, Field(ge=1, le=1_000)] = None
    """Most lines in a cue; cues then flow across segments (needs ``max_line_width`` or
    ``max_words_per_line``)."""
    max_words_per_line: Annotated[int | None, Field(ge=1, le=10_000)] = None
    """Most words on a subtitle line; without ``max_line_width`` each line is its own cue."""
    max_cue_duration: Annotated[float | None, Field(gt=0, le=86_400)] = None
    """Longest cue, in seconds."""
    highlight_words: bool = False
    """Show each cue once per word with that word underlined (``<u>``), karaoke style."""

    @field_validator(
        "max_line_width",
        "max_line_count",
        "max_words_per_line",
        "max_cue_duration",
        mode="before",
    )
    @classmethod
    def _blank_is_absent(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def first_sent(self) -> str | None:
        """The first shaping field given a value (``highlight_words`` only when true)."""
        return next((n for n, v in self.model_dump().items() if v not in (None, False)), None)

    def style(self, response_format: str, *, stream: bool = False) -> SubtitleStyle | None:
        """The shaping asked for, checked against the answer it is asked of.

        Args:
            response_format: The request's output format.
            stream: Whether the request asked for Server-Sent Events.

        Returns:
            The style, or ``None`` when no shaping field was sent.

        Raises:
            InvalidOptionError: naming the first field sent, when the format is not srt or
                vtt or the answer is streamed; naming ``max_line_count`` when it comes without
                ``max_line_width`` or ``max_words_per_line``.
        """
        first = self.first_sent()
        if first is None:
            return None
        if stream or response_format not in SHAPED_FORMATS:
            raise InvalidOptionError(
                f"{first} shapes subtitles: it needs response_format srt or vtt, without "
                f"stream (got {response_format}{' with stream' if stream else ''}).",
                param=first,
            )
        try:
            return SubtitleStyle(**self.model_dump())
        except ValueError as exc:  # the fields' bounds leave only max_line_count's rule
            raise InvalidOptionError(f"{exc}.", param="max_line_count") from None
