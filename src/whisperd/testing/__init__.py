"""Tools for testing and benchmarking whisperd without downloading real weights."""

from whisperd.testing.fake import FakeEngine, fake_loader
from whisperd.testing.model import ModelShape, ScriptedModel, build_test_model

__all__ = ["FakeEngine", "ModelShape", "ScriptedModel", "build_test_model", "fake_loader"]
