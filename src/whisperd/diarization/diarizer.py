"""Who said what: a transcript with word timings and its audio in, speakers on every word and
segment out.

The steps, each in its own module: windows over the speech the words show
(:mod:`~whisperd.diarization.windows`), one voice embedding per window from the speaker
encoder (:mod:`~whisperd.diarization.encoder`), clustering into speakers
(:mod:`~whisperd.diarization.clustering`), names for the clusters
(:mod:`~whisperd.diarization.naming`), speakers for words
(:mod:`~whisperd.diarization.assignment`), each speaker change moved to where the voices
change (:mod:`~whisperd.diarization.boundaries`), then speakers for segments. Blocking and
CPU-bound: run it on a worker thread.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from whisperd.diarization.assignment import label_words, split_segments
from whisperd.diarization.boundaries import refine_changes
from whisperd.diarization.clustering import MERGE_DISTANCE, cluster
from whisperd.diarization.naming import speaker_labels
from whisperd.diarization.windows import speech_windows
from whisperd.engine.base import SAMPLE_RATE
from whisperd.errors import InvalidOptionError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    from whisperd.diarization.encoder import SpeakerEncoder
    from whisperd.diarization.options import DiarizationOptions, KnownSpeaker
    from whisperd.engine.base import Transcript

__all__ = ["diarize", "reference_embeddings"]


def diarize(
    transcript: Transcript,
    samples: npt.NDArray[np.float32],
    options: DiarizationOptions,
    encoder: SpeakerEncoder,
    *,
    merge_distance: float = MERGE_DISTANCE,
) -> Transcript:
    """``transcript`` with a speaker on each word and segment, segments split at speaker
    changes.

    Args:
        transcript: Decoded with word timestamps (a transcript without words, silence or no
            speech, is returned unchanged).
        samples: The 16 kHz mono audio it was decoded from.
        options: Speaker count bounds and known speakers.
        encoder: The speaker model.
        merge_distance: The clustering's threshold (:data:`~whisperd.diarization.clustering.
            MERGE_DISTANCE`; the benchmark sweeps it).

    Returns:
        The transcript, every segment one speaker's; one speaker is labelled ``A`` (or a
        known speaker's name when the voice matches).
    """
    words = transcript.words
    windows = speech_windows(words, transcript.duration)
    if not words or not windows:
        return transcript
    clips = [
        samples[round(window.start * SAMPLE_RATE) : round(window.end * SAMPLE_RATE)]
        for window in windows
    ]
    embeddings = encoder.embed(clips)
    labels = cluster(embeddings, options.bounds, merge_distance, windows)
    centroids = _centroids(embeddings, labels)
    word_labels = label_words(words, windows, labels.tolist())
    word_labels = refine_changes(words, word_labels, samples, centroids, encoder)
    known = options.known_speakers
    references = reference_embeddings(known, encoder)
    names = speaker_labels(centroids, references, [speaker.name for speaker in known])
    speakers = [names[label] for label in word_labels]
    segments = split_segments(transcript.segments, speakers)
    return dataclasses.replace(transcript, segments=tuple(segments))


def _centroids(
    embeddings: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """``(clusters, dim)``: each cluster's mean embedding, L2-normalised."""
    count = int(labels.max()) + 1
    centroids = np.stack([embeddings[labels == index].mean(axis=0) for index in range(count)])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    return centroids


def reference_embeddings(
    known: Sequence[KnownSpeaker], encoder: SpeakerEncoder
) -> npt.NDArray[np.float32]:
    """``(len(known), dim)`` L2-normalised embeddings of the known speakers: those given, the
    others' clips embedded in one call.

    Raises:
        InvalidOptionError: a given embedding is not of the encoder's dimension (a job
            submitted to a server with another speaker model).
    """
    out = np.zeros((len(known), encoder.dimension), dtype=np.float32)
    clips = [index for index, speaker in enumerate(known) if speaker.embedding is None]
    if clips:
        embedded = encoder.embed([_samples(known[index]) for index in clips])
        out[clips] = embedded
    for index, speaker in enumerate(known):
        if speaker.embedding is None:
            continue
        if speaker.embedding.shape != (encoder.dimension,):
            raise InvalidOptionError(
                f"The known speaker {speaker.name!r} was embedded by another speaker model "
                f"({speaker.embedding.shape[0]} values, this one makes {encoder.dimension}).",
                param="known_speaker_references[]",
            )
        out[index] = speaker.embedding
    return out


def _samples(speaker: KnownSpeaker) -> npt.NDArray[np.float32]:
    assert speaker.samples is not None
    return speaker.samples
