"""A job's speaker labelling as stored: inside its options' JSON, under :data:`DIARIZATION_KEY`.

The diarization a job asks for (:class:`~whisperd.diarization.DiarizationOptions`) is kept in
the ``options`` column beside the decoding options, so the job stores keep their schema and
interface (a job without speakers stores exactly what it did before)::

    {"language": null, ..., "diarization": {
        "mode": "speakers" | "channels", "num_speakers": 2 | null,
        "min_speakers": 1, "max_speakers": 8, "channel_names": ["agent", ...],
        "known_speakers": [{"name": "agent", "embedding": [256 floats]}, ...]}}

Known speakers are stored as the speaker encoder's embedding of their reference clip, not as
the clip: 256 numbers instead of up to 10 s of audio, and nothing more to delete with the job.
The embedding belongs to the speaker model that made it; a server with another model fails
such a job with a 400-class error (:func:`~whisperd.diarization.diarizer.reference_embeddings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from whisperd.diarization import DiarizationOptions, KnownSpeaker
from whisperd.engine.options import TranscribeOptions

__all__ = ["DIARIZATION_KEY", "job_options", "stored_options"]

DIARIZATION_KEY = "diarization"
"""The key of the diarization in a job's stored options."""
_DECIMALS = 6
"""Digits kept of each embedding value (cosine similarities move by under 1e-5)."""


def stored_options(
    options: TranscribeOptions, diarization: DiarizationOptions | None
) -> dict[str, Any]:
    """The JSON a job stores as its options: the decoding options, and the diarization under
    :data:`DIARIZATION_KEY` when there is one.

    Raises:
        ValueError: a known speaker without an embedding (a clip must be embedded first:
            :meth:`SpeakerModel.embed_references
            <whisperd.service.speakers.SpeakerModel.embed_references>`).
    """
    stored = options.model_dump(mode="json")
    if diarization is not None:
        stored[DIARIZATION_KEY] = _diarization_json(diarization)
    return stored


def job_options(stored: Mapping[str, Any]) -> tuple[TranscribeOptions, DiarizationOptions | None]:
    """A job's decoding options and diarization, from what :func:`stored_options` stored (or
    from options stored before jobs labelled speakers: no diarization).

    Raises:
        pydantic.ValidationError, InvalidOptionError, KeyError, TypeError: stored options
            that are not such JSON.
    """
    fields = dict(stored)
    diarization = fields.pop(DIARIZATION_KEY, None)
    options = TranscribeOptions.model_validate(fields)
    return options, None if diarization is None else _diarization_of(diarization)


def _diarization_json(diarization: DiarizationOptions) -> dict[str, Any]:
    known = []
    for speaker in diarization.known_speakers:
        if speaker.embedding is None:
            raise ValueError(f"known speaker {speaker.name!r} is not embedded")
        values = np.round(speaker.embedding.astype(np.float64), _DECIMALS)
        known.append({"name": speaker.name, "embedding": values.tolist()})
    return {
        "mode": diarization.mode,
        "num_speakers": diarization.num_speakers,
        "min_speakers": diarization.min_speakers,
        "max_speakers": diarization.max_speakers,
        "channel_names": list(diarization.channel_names),
        "known_speakers": known,
    }


def _diarization_of(stored: Mapping[str, Any]) -> DiarizationOptions:
    known = tuple(
        KnownSpeaker(item["name"], embedding=np.asarray(item["embedding"], dtype=np.float32))
        for item in stored.get("known_speakers", ())
    )
    return DiarizationOptions(
        mode=stored["mode"],
        num_speakers=stored.get("num_speakers"),
        min_speakers=stored.get("min_speakers", 1),
        max_speakers=stored.get("max_speakers", 8),
        known_speakers=known,
        channel_names=tuple(stored.get("channel_names", ())),
    )
