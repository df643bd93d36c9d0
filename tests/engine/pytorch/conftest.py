"""Random-weight models in both formats (same weights), and the PyTorch pieces built on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import pytest
import tokenizers
import torch

from whisperd.engine.pytorch.checkpoint import Checkpoint, load_state, read_checkpoint
from whisperd.engine.pytorch.decoding import ContinuousDecoder
from whisperd.engine.pytorch.engine import _vocab
from whisperd.engine.pytorch.modeling import WhisperNet, build_network
from whisperd.engine.pytorch.rules import Vocab
from whisperd.testing import ScriptedModel, build_test_model


@dataclass(frozen=True)
class ModelPair:
    """One set of weights as a Hugging Face checkpoint and as a CTranslate2 model."""

    hf: ScriptedModel
    ct: ScriptedModel

    @property
    def huggingface(self) -> Path:
        return self.hf.path

    @property
    def ctranslate2(self) -> Path:
        return self.ct.path

    def checkpoint(self) -> Checkpoint:
        return read_checkpoint(self.huggingface)

    def network(self) -> WhisperNet:
        checkpoint = self.checkpoint()
        state = load_state(self.huggingface)
        return build_network(checkpoint.dims, state, torch.device("cpu"), torch.float32)

    def vocab(self) -> Vocab:
        tokenizer = tokenizers.Tokenizer.from_file(str(self.huggingface / "tokenizer.json"))
        return _vocab(tokenizer, self.checkpoint())

    def ct2(self) -> ctranslate2.models.Whisper:
        return ctranslate2.models.Whisper(
            str(self.ctranslate2), device="cpu", compute_type="float32", intra_threads=1
        )


def _pair(root: Path, *, scripted: bool, multilingual: bool = True) -> ModelPair:
    common = {"n_words": 12, "scripted": scripted, "multilingual": multilingual}
    return ModelPair(
        hf=build_test_model(root / "hf", model_format="huggingface", **common),
        ct=build_test_model(root / "ct2", quantization="float32", **common),
    )


@pytest.fixture(scope="session")
def random_pair(tmp_path_factory: pytest.TempPathFactory) -> ModelPair:
    """Every weight random: the decoder attends to audio and history (no script)."""
    return _pair(tmp_path_factory.mktemp("random-pair"), scripted=False)


@pytest.fixture(scope="session")
def scripted_pair(tmp_path_factory: pytest.TempPathFactory) -> ModelPair:
    """The scripted test model in both formats."""
    return _pair(tmp_path_factory.mktemp("scripted-pair"), scripted=True)


@pytest.fixture(scope="module")
def net(random_pair: ModelPair) -> WhisperNet:
    return random_pair.network()


@pytest.fixture(scope="module")
def ct2_model(random_pair: ModelPair) -> ctranslate2.models.Whisper:
    return random_pair.ct2()


@pytest.fixture
def decoder(net: WhisperNet, random_pair: ModelPair):
    running = ContinuousDecoder(net, random_pair.vocab(), max_rows=16)
    running.start()
    yield running
    running.stop()
