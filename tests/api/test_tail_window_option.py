"""``min_tail_window_s`` as a form field: refused out of range and with ``clip_timestamps``, in
OpenAI's 400 envelope naming the field; accepted alone. (With an explicit ``batch_size`` the
engine refuses it: tests/engine/test_whisper.py.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from test_non_finite_numbers import wav_bytes

if TYPE_CHECKING:
    from conftest import RunningServer


@pytest.mark.parametrize(
    ("data", "told"),
    [
        ({"min_tail_window_s": "-1"}, "greater than or equal to 0"),
        ({"min_tail_window_s": "31"}, "less than or equal to 30"),
        ({"min_tail_window_s": "1", "clip_timestamps": "0,1"}, "clip_timestamps"),
    ],
)
def test_a_tail_window_the_decoder_cannot_honour_is_refused_naming_it(
    fake_server: RunningServer, data: dict[str, str], told: str
) -> None:
    with fake_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions", files={"file": ("tone.wav", wav_bytes())}, data=data
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "min_tail_window_s"
    assert error["type"] == "invalid_request_error"
    assert told in error["message"]


def test_a_tail_window_alone_is_accepted(fake_server: RunningServer) -> None:
    with fake_server.http() as http:
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("tone.wav", wav_bytes())},
            data={"min_tail_window_s": "0.5"},
        )
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["text"], str)
