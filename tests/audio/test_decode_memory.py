"""Memory of decoding: about the decoded samples themselves, reserved before they are held.

The bound is checked where it matters, in a process whose data segment is limited
(``RLIMIT_DATA``) to what it holds after a warm-up plus one and a half times the decoded
samples: an hour of audio from a small FLAC decodes within it, and gathering chunks and joining
them (faster-whisper's ``decode_audio``, as whisperd did before) runs out of memory.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from whisperd.audio.buffer import RESERVE_STEP_S, SampleBuffer
from whisperd.audio.decode import AudioSource, DecodeLimits, decode_audio
from whisperd.engine.base import SAMPLE_RATE
from whisperd.errors import AudioTooLongError, QueueFullError

HOUR_S = 3600.0

_LIMITED_DECODE = r"""
import resource, sys
from pathlib import Path

def data_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024

decoder, warm, path, seconds = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
if decoder == "whisperd":
    from whisperd.audio.decode import AudioSource, decode_audio
    run = lambda p: decode_audio(AudioSource(p)).samples
else:
    from faster_whisper import decode_audio as gather_and_join
    run = lambda p: gather_and_join(str(p))
run(warm)
limit = data_bytes() + int(1.5 * seconds * 16000 * 4)
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
try:
    samples = run(path)
except MemoryError:
    print("out of memory")
else:
    print(len(samples))
"""


def flac(seconds: float, *, declare_length: bool = True) -> bytes:
    """FLAC of a one-second tone then digital silence: about 200 kB per hour.

    Without ``declare_length`` the STREAMINFO total is zeroed, as a FLAC streamed to a pipe
    has it: nothing tells its length before it is decoded.
    """
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as out:
        stream = out.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        tone = 0.5 * np.sin(2 * np.pi * 440.0 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)
        silent = round(seconds * SAMPLE_RATE) - SAMPLE_RATE
        step = 10 * SAMPLE_RATE
        blocks = [tone.astype(np.float32)]
        blocks += [np.zeros(min(step, silent - at), np.float32) for at in range(0, silent, step)]
        for block in blocks:
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = bytearray(buffer.getvalue())
    if not declare_length:
        data[8 + 13] &= 0xF0  # STREAMINFO's 36-bit total sample count
        data[8 + 14 : 8 + 18] = bytes(4)
    return bytes(data)


def limited_decode(decoder: str, warm: Path, path: Path, seconds: float) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _LIMITED_DECODE, decoder, str(warm), str(path), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's RLIMIT_DATA")
@pytest.mark.parametrize("declare_length", [True, False], ids=["declared", "streamed"])
def test_an_hour_from_a_small_file_decodes_within_one_and_a_half_times_its_samples(
    tmp_path: Path, declare_length: bool
) -> None:
    warm, path = tmp_path / "warm.flac", tmp_path / "hour.flac"
    warm.write_bytes(flac(1.0))
    path.write_bytes(flac(HOUR_S + 1, declare_length=declare_length))
    assert path.stat().st_size < 2_000_000

    assert limited_decode("whisperd", warm, path, HOUR_S + 1) == str(int(HOUR_S + 1) * SAMPLE_RATE)

    pytest.importorskip("faster_whisper")
    assert limited_decode("gather-and-join", warm, path, HOUR_S + 1) == "out of memory"


class Reservations:
    """A :data:`~whisperd.audio.buffer.Reserve` that records totals and may refuse past one."""

    def __init__(self, refuse_over: float = float("inf")) -> None:
        self.totals: list[float] = []
        self.refuse_over = refuse_over

    def __call__(self, total: float) -> None:
        self.totals.append(total)
        if total > self.refuse_over:
            raise QueueFullError("no room", retry_after=3)


def test_a_declared_duration_is_reserved_before_decoding() -> None:
    reserve = Reservations(refuse_over=0.0)
    with pytest.raises(QueueFullError, match="no room"):
        decode_audio(AudioSource(flac(600.0)), reserve=reserve)
    assert reserve.totals == [pytest.approx(600.0, abs=0.01)]

    reserve = Reservations()
    decoded = decode_audio(AudioSource(flac(600.0)), reserve=reserve)
    assert decoded.duration == pytest.approx(600.0, abs=0.01)
    assert reserve.totals[0] == pytest.approx(600.0, abs=0.01)
    assert max(reserve.totals) <= 600.0 + RESERVE_STEP_S + 1


def test_undeclared_audio_is_reserved_minute_by_minute_as_it_decodes() -> None:
    reserve = Reservations()
    decoded = decode_audio(AudioSource(flac(300.0, declare_length=False)), reserve=reserve)

    assert decoded.duration == pytest.approx(300.0, abs=0.01)
    assert reserve.totals == sorted(reserve.totals)
    assert len(reserve.totals) >= 300 / RESERVE_STEP_S
    assert decoded.duration <= reserve.totals[-1] <= decoded.duration + 2 * RESERVE_STEP_S

    refused = Reservations(refuse_over=100.0)
    with pytest.raises(QueueFullError):
        decode_audio(AudioSource(flac(300.0, declare_length=False)), reserve=refused)
    assert refused.totals[-1] <= 100.0 + 2 * RESERVE_STEP_S


def test_a_declared_duration_over_the_cap_is_refused_before_anything_is_held() -> None:
    reserve = Reservations()
    with pytest.raises(AudioTooLongError, match="longer than the 0:01:00 limit"):
        decode_audio(AudioSource(flac(600.0)), DecodeLimits(max_duration_s=60.0), reserve)
    assert reserve.totals == []


def test_arrays_reserve_their_duration() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.full((2, 44_100 * 3), 0.1, np.float32))
    reserve = Reservations()
    decoded = decode_audio(AudioSource(buffer.getvalue(), sample_rate=44_100), reserve=reserve)
    assert decoded.duration == pytest.approx(3.0, abs=0.01)
    assert reserve.totals == [pytest.approx(3.0)]


def test_the_buffer_grows_in_place_and_hands_over_its_memory() -> None:
    rng = np.random.default_rng(3)
    chunks = [rng.standard_normal(n).astype(np.float32) for n in (5, 480_000, 1, 700_000, 33)]
    buffer = SampleBuffer()
    for chunk in chunks:
        buffer.append(chunk)
    assert len(buffer) == sum(map(len, chunks))

    samples = buffer.take()

    np.testing.assert_array_equal(samples, np.concatenate(chunks))
    assert samples.dtype == np.float32
    assert samples.flags.c_contiguous
    assert samples.flags.writeable
    samples[0] = 1.0


def test_an_expected_length_is_reserved_at_once_and_nothing_more_while_it_holds() -> None:
    reserve = Reservations()
    buffer = SampleBuffer(10 * SAMPLE_RATE, reserve=reserve)
    buffer.append(np.zeros(10 * SAMPLE_RATE, np.float32))
    assert reserve.totals == [10.0]
    buffer.append(np.zeros(1, np.float32))
    assert reserve.totals == [10.0, pytest.approx(10.0 + RESERVE_STEP_S, abs=0.001)]


def test_an_empty_buffer_takes_an_empty_array() -> None:
    assert SampleBuffer().take().size == 0
