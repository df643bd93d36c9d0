"""Ignored fields with any name are reported in the response header without breaking it.

A header value must be Latin-1 without control characters; a field named ``naïve€`` or holding
a comma used to fail the response with a 500 (found by schema fuzzing). Such names are
percent-encoded (UTF-8) in ``X-Whisperd-Ignored-Fields``.
"""

from __future__ import annotations

import io
import wave
from typing import TYPE_CHECKING
from urllib.parse import unquote

import numpy as np
import pytest

from whisperd.api.inputs import IGNORED_FIELDS_HEADER

if TYPE_CHECKING:
    from conftest import RunningServer

NAMES = ("naïve€", "a,b", "plain[]", "100%", "ключ")


def wav_bytes() -> bytes:
    """One second of a 440 Hz tone as a 16 kHz WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        tone = 3000 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)
        out.writeframes(tone.astype("<i2").tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("path", "upload"), [("/v1/audio/transcriptions", "file"), ("/transcribe", "audio")]
)
def test_any_ignored_name_is_reported_percent_encoded(
    fake_server: RunningServer, path: str, upload: str
) -> None:
    with fake_server.http() as http:
        response = http.post(
            path,
            files={upload: ("tone.wav", wav_bytes())},
            data=dict.fromkeys(NAMES, "x"),
        )
    assert response.status_code == 200, response.text
    reported = response.headers[IGNORED_FIELDS_HEADER].split(", ")
    assert sorted(unquote(name) for name in reported) == sorted(NAMES)
    assert "plain[]" in reported
    assert all(name.isascii() and name.isprintable() and "," not in name for name in reported)
