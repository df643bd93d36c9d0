"""What a diarized transcription asks for: how speakers are told apart, how many, and whose
voices are known."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from whisperd.errors import InvalidOptionError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy as np
    import numpy.typing as npt

__all__ = [
    "DEFAULT_MAX_SPEAKERS",
    "DEFAULT_MIN_SPEAKERS",
    "MAX_KNOWN_SPEAKERS",
    "MAX_REFERENCE_S",
    "MAX_SPEAKERS",
    "MIN_REFERENCE_S",
    "SPEAKER_COUNTS",
    "DiarizationOptions",
    "KnownSpeaker",
    "by_voice",
    "per_channel",
]

MAX_KNOWN_SPEAKERS = 4
"""Most known speakers a request may name (OpenAI's limit on ``known_speaker_names[]``)."""
MIN_REFERENCE_S = 2.0
"""Shortest known-speaker reference clip, in seconds (OpenAI's: 2 to 10 s)."""
MAX_REFERENCE_S = 10.0
"""Longest known-speaker reference clip, in seconds."""
MAX_SPEAKERS = 20
"""Most speakers a request may ask the clustering for."""
DEFAULT_MIN_SPEAKERS = 1
"""Fewest speakers the clustering finds when a request names no bound."""
DEFAULT_MAX_SPEAKERS = 8
"""Most speakers the clustering finds when a request names no bound (raised to the fewest
asked for when that is more)."""

SPEAKER_COUNTS = ("num_speakers", "min_speakers", "max_speakers")
"""The request fields that bound how many speakers the clustering finds."""


@dataclass(frozen=True, slots=True)
class KnownSpeaker:
    """A speaker's name and their voice: a clip (16 kHz mono float32, 2 to 10 s), or the
    clip's embedding by the speaker encoder already (a durable job keeps only that)."""

    name: str
    samples: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    embedding: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    """The L2-normalised embedding of the clip (``(dim,)``); used instead of ``samples``."""

    def __post_init__(self) -> None:
        """Check that the voice is given.

        Raises:
            ValueError: neither ``samples`` nor ``embedding`` is given.
        """
        if self.samples is None and self.embedding is None:
            raise ValueError(f"known speaker {self.name!r} has neither a clip nor an embedding")


@dataclass(frozen=True, slots=True)
class DiarizationOptions:
    """How a transcription labels its speakers.

    ``mode="speakers"`` tells voices apart with the speaker model; ``mode="channels"``
    transcribes each channel of the recording on its own, the channel being the speaker (no
    model needed). Without ``num_speakers`` the clustering chooses the number, between
    ``min_speakers`` and ``max_speakers``.
    """

    mode: Literal["speakers", "channels"] = "speakers"
    num_speakers: int | None = None
    min_speakers: int = DEFAULT_MIN_SPEAKERS
    max_speakers: int = DEFAULT_MAX_SPEAKERS
    known_speakers: tuple[KnownSpeaker, ...] = ()
    channel_names: tuple[str, ...] = ()
    """Speaker names of the channels in order, with ``mode="channels"`` (the rest are
    labelled ``A``, ``B``, ... by channel)."""

    def __post_init__(self) -> None:
        """Check the counts and names.

        Raises:
            InvalidOptionError: naming the field at fault.
        """
        if self.num_speakers is not None and not 1 <= self.num_speakers <= MAX_SPEAKERS:
            raise InvalidOptionError(
                f"num_speakers must be between 1 and {MAX_SPEAKERS}, not {self.num_speakers}.",
                param="num_speakers",
            )
        if not 1 <= self.min_speakers <= self.max_speakers <= MAX_SPEAKERS:
            raise InvalidOptionError(
                f"min_speakers ({self.min_speakers}) and max_speakers ({self.max_speakers}) "
                f"must satisfy 1 <= min_speakers <= max_speakers <= {MAX_SPEAKERS}.",
                param="min_speakers",
            )
        if len(self.known_speakers) > MAX_KNOWN_SPEAKERS:
            raise InvalidOptionError(
                f"At most {MAX_KNOWN_SPEAKERS} known speakers may be given, not "
                f"{len(self.known_speakers)}.",
                param="known_speaker_names[]",
            )
        names = [speaker.name for speaker in self.known_speakers] or list(self.channel_names)
        if any(not name.strip() for name in names) or len(set(names)) != len(names):
            raise InvalidOptionError(
                "known_speaker_names[] must be distinct, non-empty names.",
                param="known_speaker_names[]",
            )

    @property
    def bounds(self) -> tuple[int, int]:
        """The least and most speakers the clustering may find."""
        if self.num_speakers is not None:
            return self.num_speakers, self.num_speakers
        return self.min_speakers, self.max_speakers


def by_voice(counts: Mapping[str, int | None]) -> DiarizationOptions:
    """Speakers told apart by voice, as many as ``counts`` say: exactly ``num_speakers``, or
    between ``min_speakers`` (default :data:`DEFAULT_MIN_SPEAKERS`) and ``max_speakers``
    (default :data:`DEFAULT_MAX_SPEAKERS`, raised to ``min_speakers``).

    Args:
        counts: The request's :data:`SPEAKER_COUNTS` (None: not given).

    Raises:
        InvalidOptionError: ``num_speakers`` with a bound (one of them would be ignored), or
            counts out of range, naming the field.
    """
    exact, least, most = (counts.get(name) for name in SPEAKER_COUNTS)
    if exact is not None and (least is not None or most is not None):
        raise InvalidOptionError(
            "num_speakers is an exact count: send it, or min_speakers/max_speakers, not both.",
            param="num_speakers",
        )
    least = least or DEFAULT_MIN_SPEAKERS
    return DiarizationOptions(
        num_speakers=exact,
        min_speakers=least,
        max_speakers=most or max(DEFAULT_MAX_SPEAKERS, least),
    )


def per_channel(
    channel_names: Sequence[str], counts: Mapping[str, int | None]
) -> DiarizationOptions:
    """Per-channel speakers (``multichannel``): each channel is one speaker, named in order by
    ``channel_names`` (the rest ``A``, ``B``, ...).

    Args:
        channel_names: Names of the first channels.
        counts: The request's :data:`SPEAKER_COUNTS` (None: not given).

    Raises:
        InvalidOptionError: naming the first speaker count given: the channels are the
            speakers, so a count would be ignored.
    """
    for name in SPEAKER_COUNTS:
        if counts.get(name) is not None:
            raise InvalidOptionError(
                f"{name} is not used with multichannel: each channel is one speaker. Leave "
                "it out, or send diarize without multichannel to tell voices apart.",
                param=name,
            )
    return DiarizationOptions(mode="channels", channel_names=tuple(channel_names))
