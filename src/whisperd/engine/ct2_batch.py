"""CTranslate2 Whisper calls routed through the batching scheduler.

faster-whisper's decoding loop (prompts, timestamps, fallback, VAD chunks, word alignment) runs
unchanged in each request's own thread, but the CTranslate2 model it talks to is a
:class:`ScheduledModel`: every ``encode``, ``generate``, ``detect_language`` and ``align`` becomes
a scheduler call, and :class:`ModelCalls` merges compatible calls from many requests into one
CTranslate2 call. Encoder outputs travel as host arrays, so a batch can be split per request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import ctranslate2
import numpy as np

from whisperd.engine.window_padding import (
    WINDOW_FRAMES,
    PaddingEncoding,
    completed,
    padding_window,
    window_to_encode,
)
from whisperd.scheduler.batcher import Batcher, Call, Ticket, split_by_call


@dataclass(frozen=True, slots=True)
class PromptTokens:
    """The special token ids that decide whether two prompts can share a ``generate`` call."""

    sot: int
    no_timestamps: int

    def layout(self, prompt: Sequence[int]) -> tuple[int, int, bool]:
        """(SOT index, length up to the task tokens, timestamps off) as CTranslate2 checks them."""
        sot_index = list(prompt).index(self.sot)
        index = sot_index
        while index < len(prompt) and self.sot <= prompt[index] <= self.no_timestamps:
            index += 1
        return sot_index, index, prompt[index - 1] == self.no_timestamps


def _freeze(value: Any) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value  # type: ignore[no-any-return]


def _host(array_like: Any) -> np.ndarray[Any, Any]:
    return np.ascontiguousarray(np.asarray(array_like))


def _storage(array: np.ndarray[Any, Any]) -> ctranslate2.StorageView:
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array))


class ScheduledModel:
    """Stands in for the CTranslate2 model inside one request's faster-whisper run."""

    def __init__(
        self,
        model: ctranslate2.models.Whisper,
        batcher: Batcher,
        ticket: Ticket,
        tokens: PromptTokens,
        *,
        trim_padding: bool = False,
    ) -> None:
        """Route ``model``'s calls for the request holding ``ticket`` through ``batcher``.

        With ``trim_padding``, a window's trailing padding is cut (to whole seconds) before it
        is encoded, so a short clip costs its own length instead of 30 s; the output comes
        back completed to a whole window, and a short leftover after a decode is encoded
        whole (:func:`whisperd.engine.window_padding.window_to_encode`).
        """
        self._model = model
        self._trim = trim_padding
        self._decoded = False
        self._batcher = batcher
        self._ticket = ticket
        self._tokens = tokens
        self._last: tuple[bytes, ctranslate2.StorageView] | None = None
        """The last window encoded (its mel's digest) and its encoding, as one value: batches
        of one request may encode on two threads at once."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: Any, to_cpu: bool = False) -> ctranslate2.StorageView:
        """Encode a mel batch; the same window twice in a row (language detection, then its
        first decode) is encoded once."""
        del to_cpu  # encoder outputs always come back to the host, to be split per request
        mel = _host(features)
        digest = hashlib.blake2b(mel.tobytes(), digest_size=16).digest()
        last = self._last
        if last is not None and last[0] == digest:
            return last[1]
        if self._trim:
            mel = window_to_encode(mel, after_decode=self._decoded)
        encoded = self._submit("encode", mel.shape[-1], mel, items=mel.shape[0])
        self._last = (digest, encoded)
        return encoded

    def generate(self, features: Any, prompts: list[list[int]], **options: Any) -> Any:
        """Decode prompts over encoder outputs, batched with compatible calls of others."""
        self._decoded = True
        layouts = {self._tokens.layout(prompt) for prompt in prompts}
        encoded = _host(features)
        key = (_freeze(options), tuple(sorted(layouts)), encoded.shape[1:])
        payload = (encoded, prompts, options)
        return self._submit("generate", key, payload, items=len(prompts))

    def detect_language(self, features: Any) -> Any:
        """Language probabilities from encoder outputs."""
        encoded = _host(features)
        return self._submit("detect_language", encoded.shape[1:], encoded, items=encoded.shape[0])

    def align(
        self,
        features: Any,
        start_sequence: list[int],
        text_tokens: list[list[int]],
        num_frames: Any,
        median_filter_width: int = 7,
    ) -> Any:
        """Word alignment (one call per window; its start sequence is its own)."""
        payload = (_host(features), start_sequence, text_tokens, num_frames, median_filter_width)
        return self._submit("align", object(), payload, items=len(text_tokens))

    def _submit(self, kind: str, key: Hashable, payload: Any, *, items: int) -> Any:
        return self._batcher.submit(kind, key, payload, items=items, ticket=self._ticket)


def _generate(model: ctranslate2.models.Whisper, calls: Sequence[Call]) -> list[Any]:
    encoded = np.concatenate([call.payload[0] for call in calls])
    prompts = [prompt for call in calls for prompt in call.payload[1]]
    results = model.generate(_storage(encoded), prompts, **calls[0].payload[2])
    return split_by_call(results, calls)


def _detect(model: ctranslate2.models.Whisper, calls: Sequence[Call]) -> list[Any]:
    encoded = np.concatenate([call.payload for call in calls])
    return split_by_call(model.detect_language(_storage(encoded)), calls)


def _align(model: ctranslate2.models.Whisper, calls: Sequence[Call]) -> list[Any]:
    results = []
    for call in calls:
        encoded, start, text_tokens, num_frames, width = call.payload
        results.append(
            model.align(
                _storage(encoded), start, text_tokens, num_frames, median_filter_width=width
            )
        )
    return results


_KINDS = {"generate": _generate, "detect_language": _detect, "align": _align}


class ModelCalls:
    """Runs merged calls on one CTranslate2 Whisper model (the scheduler's batch function)."""

    def __init__(self, model: ctranslate2.models.Whisper) -> None:
        """Serve ``model``; the padding's encoding is made on the first trimmed window."""
        self._model = model
        self._padding = PaddingEncoding(lambda: self._encode(padding_window(model.n_mels)))

    def __call__(self, kind: str, calls: Sequence[Call]) -> list[Any]:
        """Run compatible calls as one CTranslate2 call; one result per call."""
        if kind == "encode":
            mel = np.concatenate([call.payload for call in calls])
            encoded = self._encode(mel)
            if mel.shape[-1] < WINDOW_FRAMES:
                encoded = completed(encoded, self._padding.get())
            return [_storage(part) for part in split_by_call(encoded, calls)]
        return _KINDS[kind](self._model, calls)

    def _encode(self, mel: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return _host(self._model.encode(_storage(mel), to_cpu=True))
