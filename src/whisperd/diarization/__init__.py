"""Speaker diarization: who said what (speaker model or one speaker per channel)."""

from whisperd.diarization.channels import channel_labels, merge_channels
from whisperd.diarization.diarizer import diarize
from whisperd.diarization.encoder import (
    DiarizationUnavailableError,
    ResemblyzerEncoder,
    SpeakerEncoder,
    resemblyzer_weights,
)
from whisperd.diarization.options import DiarizationOptions, KnownSpeaker

__all__ = [
    "DiarizationOptions",
    "DiarizationUnavailableError",
    "KnownSpeaker",
    "ResemblyzerEncoder",
    "SpeakerEncoder",
    "channel_labels",
    "diarize",
    "merge_channels",
    "resemblyzer_weights",
]
