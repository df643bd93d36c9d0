"""A bad ``.pt`` upload is refused in whisperd's words, never with advice to weaken safety."""

from __future__ import annotations

import io
from typing import Any

import pytest

from whisperd.audio.decode import AudioSource, decode_audio
from whisperd.errors import CorruptAudioError, UnsupportedAudioError

torch = pytest.importorskip("torch")


class Recording:
    """A Python class a client might pickle around its tensor."""

    def __init__(self, samples: Any) -> None:
        self.samples = samples


def saved(value: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def refusal(data: bytes) -> str:
    with pytest.raises((UnsupportedAudioError, CorruptAudioError)) as refused:
        decode_audio(AudioSource(data))
    message = refused.value.message
    assert "weights_only" not in message
    assert "trust" not in message
    return message


def test_a_pickled_object_is_refused_and_named_without_being_loaded() -> None:
    message = refusal(saved(Recording(torch.zeros(16_000))))
    assert "holds Python objects other than tensors" in message
    assert "Recording" in message
    assert "torch.save(tensor)" in message


def test_a_cut_tensor_file_is_damaged() -> None:
    whole = saved(torch.zeros(16_000))
    with pytest.raises(CorruptAudioError, match="damaged or incomplete") as refused:
        decode_audio(AudioSource(whole[: len(whole) // 2], format="tensor"))
    assert "weights_only" not in refused.value.message
