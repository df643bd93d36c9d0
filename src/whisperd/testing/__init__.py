"""Tools for testing and benchmarking whisperd without downloading real weights."""

from whisperd.testing.model import ModelShape, ScriptedModel, build_test_model

__all__ = ["ModelShape", "ScriptedModel", "build_test_model"]
