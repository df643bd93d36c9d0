"""Fixed-size decoder steps (what CUDA graphs capture) against the eager step."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from whisperd.engine.pytorch.graphs import FixedSteps, step_sizes
from whisperd.engine.pytorch.modeling import KVCache, WhisperNet

PAD = 7


def test_sizes_cover_every_batch_up_to_the_limit() -> None:
    assert step_sizes(0) == ()
    assert step_sizes(1) == (1,)
    assert step_sizes(10) == (1, 2, 4, 8, 10)
    sizes = step_sizes(128)
    assert sizes[-1] == 128
    assert list(sizes) == sorted(set(sizes))
    assert all(later <= 2 * earlier for earlier, later in itertools.pairwise(sizes))


def _prefilled(net: WhisperNet, rows: int, prompts: list[list[int]], frames: list[int]):
    """A cache whose first rows hold ``prompts`` over audio of ``frames`` frames each."""
    dims = net.dims
    cache = KVCache.zeros(dims, rows, torch.device("cpu"), torch.float64)
    generator = torch.Generator().manual_seed(0)
    for row, (prompt, length) in enumerate(zip(prompts, frames, strict=True)):
        audio = torch.randn(1, length, dims.d_model, generator=generator, dtype=torch.float64)
        net.fill_audio(cache, torch.tensor([row]), audio)
        net.decode(
            cache,
            slice(row, row + 1),
            torch.tensor([prompt]),
            torch.arange(len(prompt))[None],
            text_len=len(prompt),
            audio_len=length,
            uniform_audio=True,
        )
    return cache


@pytest.fixture(scope="module")
def double_net(random_pair) -> WhisperNet:
    return random_pair.network().double()


def test_a_padded_step_equals_the_eager_step(double_net: WhisperNet) -> None:
    """Three rows at different positions and audio lengths, padded to a step of four."""
    prompts = [[50258, 50259, 50359], [50258, 50259, 50359, 50363, 400], [50258]]
    frames = [1500, 700, 1500]
    with torch.inference_mode():
        cache = _prefilled(double_net, 6, prompts, frames)
        reference = copy.deepcopy(cache)
        steps = FixedSteps(double_net, cache, limit=5, pad_token=PAD)
        assert steps.size_for(3) == 4
        tokens, positions = [11, 12, 13], [len(p) for p in prompts]
        ours = steps.run(tokens, positions)
        hidden = double_net.decode(
            reference,
            slice(0, 3),
            torch.tensor(tokens)[:, None],
            torch.tensor(positions)[:, None],
            text_len=max(positions) + 1,
            audio_len=1500,
            uniform_audio=False,
        )
        theirs = double_net.logits(hidden[:, 0])
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-9)
    # The live rows' keys are the eager step's; the padded row only wrote its position 0.
    torch.testing.assert_close(cache.self_k[:, :3], reference.self_k[:, :3], rtol=0, atol=1e-12)
    assert torch.equal(cache.self_k[:, 3, :, 1:], reference.self_k[:, 3, :, 1:])
    assert torch.equal(cache.self_k[:, 4:], reference.self_k[:, 4:])
    assert torch.equal(cache.audio_len, reference.audio_len)


def test_bad_sizes_are_refused(double_net: WhisperNet) -> None:
    cache = KVCache.zeros(double_net.dims, 4, torch.device("cpu"), torch.float64)
    with pytest.raises(ValueError, match="cannot run steps of 8"):
        FixedSteps(double_net, cache, limit=8, pad_token=PAD)
    steps = FixedSteps(double_net, cache, limit=4, pad_token=PAD)
    assert steps.size_for(5) is None
    with pytest.raises(ValueError, match="exceed the largest fixed step"):
        steps.run([1] * 5, [0] * 5)


@pytest.mark.gpu
def test_cuda_graphs_replay_the_eager_step(random_pair) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    net = random_pair.network().to("cuda", torch.float16)
    cuda = torch.device("cuda")
    with torch.inference_mode():
        cache = KVCache.zeros(net.dims, 16, cuda, torch.float16)
        audio = torch.randn(16, 1500, net.dims.d_model, device=cuda, dtype=torch.float16)
        net.fill_audio(cache, torch.arange(16, device=cuda), audio)
        steps = FixedSteps(net, cache, limit=16, pad_token=PAD)
        assert steps.capture()
        assert steps.captured == step_sizes(16)
        replayed = steps.run([11, 12, 13], [0, 0, 0])
        eager = FixedSteps(net, cache, limit=16, pad_token=PAD)  # nothing captured
        expected = eager.run([11, 12, 13], [0, 0, 0])
    torch.testing.assert_close(replayed, expected, rtol=1e-3, atol=1e-3)
