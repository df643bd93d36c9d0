"""Diarization on the OpenAI API: the request fields that ask for speakers, and the
``diarized_json`` response and stream events.

Asking (OpenAI's ``CreateTranscriptionRequest``, plus whisperd's own fields):

- the model ``gpt-4o-transcribe-diarize`` (served by the server's default model),
  ``diarize=true`` with any Whisper model, or ``response_format=diarized_json``: speakers told
  apart by voice with the speaker model (the ``whisperd[diarize]`` extra);
- ``known_speaker_names[]`` with ``known_speaker_references[]`` (data URLs of 2-10 s clips, at
  most 4, paired by index): the matching speakers take those names, the others ``A``, ``B``,
  ...;
- ``multichannel=true``: each channel transcribed on its own, the speaker being the channel
  (``known_speaker_names[]`` then name the channels in order; no references, no model);
- ``num_speakers``, or ``min_speakers`` / ``max_speakers``: how many speakers to find.

Speakers show in ``diarized_json`` (OpenAI's ``CreateTranscriptionResponseDiarizedJson``), on
``verbose_json`` segments and words, as ``A: `` line prefixes in ``text``, and as
``[A]`` / ``<v A>`` labels in srt and vtt cues.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from whisperd.audio.decode import AudioSource
from whisperd.diarization import DiarizationOptions
from whisperd.diarization.options import (
    MAX_KNOWN_SPEAKERS,
    MAX_SPEAKERS,
    SPEAKER_COUNTS,
    by_voice,
    per_channel,
)
from whisperd.errors import InvalidOptionError

__all__ = [
    "DIARIZE_MODEL",
    "DiarizationFields",
    "DiarizedSegment",
    "TranscriptTextSegment",
    "TranscriptionDiarized",
]

DIARIZE_MODEL: Final = "gpt-4o-transcribe-diarize"
"""OpenAI's diarizing model id: the server's default model with ``diarize=true``."""
_NAMES = "known_speaker_names[]"
_REFERENCES = "known_speaker_references[]"


class DiarizationFields(BaseModel):
    """The request fields that ask for speakers."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", use_attribute_docstrings=True, populate_by_name=True
    )

    diarize: bool = False
    """Tell speakers apart by voice (the ``gpt-4o-transcribe-diarize`` model asks the same)."""
    multichannel: bool = False
    """Transcribe each channel on its own; the speaker is the channel (no model needed)."""
    num_speakers: Annotated[int | None, Field(ge=1, le=MAX_SPEAKERS)] = None
    """Exactly this many speakers (else the clustering chooses)."""
    min_speakers: Annotated[int | None, Field(ge=1, le=MAX_SPEAKERS)] = None
    """At least this many speakers."""
    max_speakers: Annotated[int | None, Field(ge=1, le=MAX_SPEAKERS)] = None
    """At most this many speakers."""
    known_speaker_names: Annotated[tuple[str, ...], Field(alias=_NAMES)] = ()
    """Names of known speakers (at most 4), paired with ``known_speaker_references[]``."""
    known_speaker_references: Annotated[tuple[str, ...], Field(alias=_REFERENCES)] = ()
    """Data URLs (``data:audio/wav;base64,...``) of 2-10 s of each known speaker's voice."""

    @field_validator("known_speaker_names", "known_speaker_references", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("num_speakers", "min_speakers", "max_speakers", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def options(
        self, *, model: str, response_format: str
    ) -> tuple[DiarizationOptions | None, tuple[tuple[str, AudioSource], ...]]:
        """The diarization asked for (None: none) and the known speakers' clips.

        Raises:
            InvalidOptionError: known speakers, or speaker counts, without diarization; more
                than 4 known speakers; names and references that do not pair up; a reference
                that is not a base64 data URL (each naming its field).
        """
        wanted = self.diarize or model.strip() == DIARIZE_MODEL
        wanted = wanted or response_format == "diarized_json"
        if not (wanted or self.multichannel):
            self._refuse_without_diarization()
            return None, ()
        if len(self.known_speaker_names) > MAX_KNOWN_SPEAKERS:
            raise InvalidOptionError(
                f"At most {MAX_KNOWN_SPEAKERS} known speakers may be given, not "
                f"{len(self.known_speaker_names)}.",
                param=_NAMES,
            )
        counts = {name: getattr(self, name) for name in SPEAKER_COUNTS}
        if self.multichannel:
            if self.known_speaker_references:
                raise InvalidOptionError(
                    "known_speaker_references[] are not used with multichannel=true: the "
                    "channels are the speakers; name them with known_speaker_names[].",
                    param=_REFERENCES,
                )
            return per_channel(self.known_speaker_names, counts), ()
        return by_voice(counts), self._references()

    def _refuse_without_diarization(self) -> None:
        """A 400 for the first speaker field sent without diarization, saying what turns
        on the diarization that uses it (speaker counts and references need the speaker
        model; names also label multichannel's channels)."""
        if self.known_speaker_names:
            raise InvalidOptionError(
                f"{_NAMES} needs diarization: send diarize=true (or the model "
                f"{DIARIZE_MODEL}), or multichannel=true to name the channels.",
                param=_NAMES,
            )
        sent = [
            name
            for name in ("known_speaker_references", *SPEAKER_COUNTS)
            if getattr(self, name) not in (None, [], ())
        ]
        if sent:
            wire = _REFERENCES if sent[0] == "known_speaker_references" else sent[0]
            raise InvalidOptionError(
                f"{wire} needs diarization by voice: send diarize=true (or the model "
                f"{DIARIZE_MODEL}).",
                param=wire,
            )

    def _references(self) -> tuple[tuple[str, AudioSource], ...]:
        names, references = self.known_speaker_names, self.known_speaker_references
        if len(names) != len(references):
            raise InvalidOptionError(
                f"known_speaker_names[] ({len(names)}) and known_speaker_references[] "
                f"({len(references)}) must pair up one to one.",
                param=_REFERENCES if names else _NAMES,
            )
        return tuple(
            (name, AudioSource(_data_url_bytes(index, url)))
            for index, (name, url) in enumerate(zip(names, references, strict=True))
        )


def _data_url_bytes(index: int, url: str) -> bytes:
    """The bytes of a ``data:<type>;base64,<data>`` URL."""
    head, comma, data = url.strip().partition(",")
    if not (comma and head.startswith("data:") and head.endswith(";base64")):
        raise InvalidOptionError(
            f"known_speaker_references[{index}] must be a data URL of an audio clip "
            "(data:audio/wav;base64,...).",
            param=_REFERENCES,
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidOptionError(
            f"known_speaker_references[{index}] is not valid base64.", param=_REFERENCES
        ) from None
    if not raw:
        raise InvalidOptionError(
            f"known_speaker_references[{index}] holds no audio.", param=_REFERENCES
        )
    return raw


class DiarizedSegment(BaseModel):
    """A segment of ``diarized_json`` (OpenAI's ``TranscriptionDiarizedSegment``)."""

    type: Literal["transcript.text.segment"] = "transcript.text.segment"
    id: str
    """``seg_001``, ``seg_002``, ... (a string, unlike verbose_json's)."""
    start: float
    """Start in seconds."""
    end: float
    """End in seconds."""
    text: str
    """What the speaker said, trimmed."""
    speaker: str
    """A known speaker's name, or ``A``, ``B``, ... (or a channel's label)."""


class TranscriptionDiarized(BaseModel):
    """The ``diarized_json`` response (OpenAI's ``CreateTranscriptionResponseDiarizedJson``)."""

    task: Literal["transcribe", "translate"] = "transcribe"
    duration: float
    """Duration of the audio in seconds."""
    text: str
    """The transcript, one ``speaker: text`` line per turn."""
    segments: list[DiarizedSegment]
    usage: dict[str, object]
    """``{"type": "duration", "seconds": N}``."""


class TranscriptTextSegment(DiarizedSegment):
    """A ``stream=true`` event of a diarized request: one diarized segment."""
