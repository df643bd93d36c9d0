"""Who said what: a transcript with word timings and its audio in, speakers on every word and
segment out.

The steps, each in its own module: windows over the speech the words show
(:mod:`~whisperd.diarization.windows`), one voice embedding per window from the speaker
encoder (:mod:`~whisperd.diarization.encoder`), clustering into speakers
(:mod:`~whisperd.diarization.clustering`), names for the clusters
(:mod:`~whisperd.diarization.naming`), and speakers for words, then segments
(:mod:`~whisperd.diarization.assignment`). Blocking and CPU-bound: run it on a worker thread.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from whisperd.diarization.assignment import label_words, split_segments
from whisperd.diarization.clustering import cluster
from whisperd.diarization.naming import speaker_labels
from whisperd.diarization.windows import speech_windows
from whisperd.engine.base import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy.typing as npt

    from whisperd.diarization.encoder import SpeakerEncoder
    from whisperd.diarization.options import DiarizationOptions
    from whisperd.engine.base import Transcript

__all__ = ["diarize"]


def diarize(
    transcript: Transcript,
    samples: npt.NDArray[np.float32],
    options: DiarizationOptions,
    encoder: SpeakerEncoder,
) -> Transcript:
    """``transcript`` with a speaker on each word and segment, segments split at speaker
    changes.

    Args:
        transcript: Decoded with word timestamps (a transcript without words, silence or no
            speech, is returned unchanged).
        samples: The 16 kHz mono audio it was decoded from.
        options: Speaker count bounds and known speakers.
        encoder: The speaker model.

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
    labels = cluster(embeddings, options.bounds)
    word_labels = label_words(words, windows, labels.tolist())
    names = _names(embeddings, labels, options, encoder)
    speakers = [names[label] for label in word_labels]
    segments = split_segments(transcript.segments, speakers)
    return dataclasses.replace(transcript, segments=tuple(segments))


def _names(
    embeddings: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    options: DiarizationOptions,
    encoder: SpeakerEncoder,
) -> list[str]:
    count = int(labels.max()) + 1
    centroids = np.stack([embeddings[labels == index].mean(axis=0) for index in range(count)])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    known = options.known_speakers
    references = encoder.embed([speaker.samples for speaker in known])
    return speaker_labels(centroids, references, [speaker.name for speaker in known])
