"""The loaded PyTorch model behind CTranslate2's ``Whisper`` interface, run by the scheduler.

:class:`TorchWhisper` owns the network on its device, the batching scheduler that runs encoder
passes (many windows from many requests per pass), language detection and word alignment, and
the :class:`ContinuousDecoder` that runs every ``generate``. :class:`RequestModel` stands in for
``ctranslate2.models.Whisper`` inside one request's faster-whisper run, so the decoding loop
(prompts, fallback, timestamps, words) is faster-whisper's own code, as in the CTranslate2
engine.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from whisperd.engine.pytorch.align import alignment_path
from whisperd.engine.pytorch.decoding import ContinuousDecoder, GenerationResult
from whisperd.engine.pytorch.options import GenerateOptions
from whisperd.engine.window_padding import (
    WINDOW_FRAMES,
    PaddingEncoding,
    padding_window,
    window_to_encode,
)
from whisperd.scheduler.batcher import split_by_call

if TYPE_CHECKING:
    from whisperd.engine.pytorch.checkpoint import DecodingConstants
    from whisperd.engine.pytorch.modeling import WhisperNet
    from whisperd.engine.pytorch.rules import Vocab
    from whisperd.scheduler.batcher import Batcher, Call, Ticket

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """Encoder outputs ``[B, S, D]`` kept on the model's device between calls."""

    hidden: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        """The outputs' shape."""
        return tuple(self.hidden.shape)

    def __len__(self) -> int:
        return int(self.hidden.shape[0])


@dataclass(frozen=True, slots=True)
class AlignmentResult:
    """One text's alignment, with the fields of CTranslate2's ``WhisperAlignmentResult``."""

    alignments: list[tuple[int, int]]
    text_token_probs: list[float]


class TorchWhisper:
    """A Whisper network on one device, serving every request's model calls."""

    def __init__(
        self,
        net: WhisperNet,
        vocab: Vocab,
        constants: DecodingConstants,
        languages: dict[int, str],
        *,
        max_rows: int,
        encode_batch: int,
        fixed_rows: int = 0,
    ) -> None:
        """Serve ``net``; ``languages`` maps language token ids to their token strings.

        The decoder holds ``max_rows`` rows and runs steps of up to ``fixed_rows`` rows at
        fixed sizes (CUDA graphs on CUDA).
        """
        self.net = net
        self.vocab = vocab
        self.constants = constants
        self.languages = languages
        self.encode_batch = encode_batch
        self._padding = PaddingEncoding(self._encode_padding)
        self.decoder = ContinuousDecoder(net, vocab, max_rows=max_rows, fixed_rows=fixed_rows)
        param = net.proj
        self.device, self.dtype = param.device, param.dtype

    # Batched calls, run on the scheduler's worker thread --------------------------------------

    def run_batch(self, kind: str, calls: Sequence[Call]) -> list[Any]:
        """Run compatible calls together; one result per call."""
        with torch.inference_mode():
            if kind == "encode":
                return self._encode(calls)
            if kind == "detect_language":
                return self._detect(calls)
            if kind == "align":
                return [self._align(*call.payload) for call in calls]
        raise ValueError(f"unknown model call {kind!r}")

    def _encode(self, calls: Sequence[Call]) -> list[EncodedAudio]:
        mel = torch.from_numpy(np.concatenate([call.payload for call in calls]))
        outputs: list[torch.Tensor] = []
        start = 0
        while start < mel.shape[0]:
            chunk = mel[start : start + self.encode_batch].to(self.device, self.dtype)
            try:
                outputs.append(self.net.encode(chunk))
            except torch.cuda.OutOfMemoryError:
                self._shrink_encoder_batch(chunk.shape[0])
                continue
            start += chunk.shape[0]
        hidden = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        if mel.shape[-1] < WINDOW_FRAMES:
            hidden = self._completed(hidden)
        return [EncodedAudio(part) for part in split_by_call(hidden, calls)]

    def _encode_padding(self) -> torch.Tensor:
        mel = torch.from_numpy(padding_window(int(self.net.dims.n_mels)))
        encoded: torch.Tensor = self.net.encode(mel.to(self.device, self.dtype))
        return encoded

    def _completed(self, hidden: torch.Tensor) -> torch.Tensor:
        """Outputs of trimmed windows ``[B, S, D]`` completed to a whole window's positions
        with the padding's own outputs after ``S`` (:mod:`whisperd.engine.window_padding`)."""
        rest = self._padding.get()[:, hidden.shape[1] :]
        return torch.cat([hidden, rest.expand(hidden.shape[0], -1, -1)], dim=1)

    def _shrink_encoder_batch(self, failed: int) -> None:
        """Halve the encoder pass after ``failed`` windows ran out of device memory (other
        work holds more of it than the plan assumed); the smaller size is kept from now on.

        Raises:
            torch.cuda.OutOfMemoryError: if a single window does not fit.
        """
        if failed <= 1:
            raise torch.cuda.OutOfMemoryError(
                "one 30 s window does not fit in the free device memory; lower "
                "WHISPERD_MAX_DECODE_ROWS or run a smaller model"
            )
        self.encode_batch = failed // 2
        logger.warning(
            "the encoder ran out of device memory on %d windows; passes now take %d",
            failed,
            self.encode_batch,
        )
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _detect(self, calls: Sequence[Call]) -> list[list[list[tuple[str, float]]]]:
        hidden = torch.cat([call.payload.hidden for call in calls])
        sot = torch.full((hidden.shape[0], 1), self.vocab.sot, device=self.device)
        logits, _ = self.net.forward_text(sot, hidden)
        ids = sorted(self.languages)
        probs = torch.softmax(logits[:, 0, ids], dim=-1).tolist()
        ranked = [
            sorted(
                ((self.languages[i], p) for i, p in zip(ids, row, strict=True)),
                key=lambda item: -item[1],
            )
            for row in probs
        ]
        return split_by_call(ranked, calls)

    def _align(
        self,
        encoded: EncodedAudio,
        start_sequence: list[int],
        text_tokens: list[list[int]],
        num_frames: int | list[int],
        median_filter_width: int,
    ) -> list[AlignmentResult]:
        """Align each text with its window: ``start + <|notimestamps|> + text + <|endoftext|>``
        runs through the decoder in one padded batch; the alignment heads' cross-attention over
        the window's frames gives the path, the logits give each text token's probability."""
        vocab, heads = self.vocab, self.constants.alignment_heads
        count = len(text_tokens)
        frames = num_frames if isinstance(num_frames, list) else [num_frames] * count
        begin = len(start_sequence)
        sequences = [[*start_sequence, vocab.no_timestamps, *t, vocab.eot] for t in text_tokens]
        width = max(len(s) for s in sequences)
        padded = [s + [vocab.eot] * (width - len(s)) for s in sequences]
        batch = torch.tensor(padded, device=self.device)
        logits, weights = self.net.forward_text(
            batch, encoded.hidden[:count], frozenset(layer for layer, _ in heads)
        )
        attention = torch.stack([weights[layer][:, head] for layer, head in heads], dim=1)
        probs = torch.softmax(logits[:, :, : vocab.eot], dim=-1)
        shared = len(set(frames)) == 1
        results = []
        for index, (text, sequence) in enumerate(zip(text_tokens, sequences, strict=True)):
            used = attention[index, :, : len(sequence), : frames[index] // 2].double()
            used = used / used.sum(dim=-1, keepdim=True)
            if shared and len(sequence) < width:
                # CTranslate2 standardizes a batch sharing one frame count over the padded
                # token axis, its padding rows being copies of each text's last row.
                tail = used[:, -1:].expand(-1, width - len(sequence), -1)
                used = torch.cat([used, tail], dim=1)
            rows = slice(begin, begin + len(text) + 1)
            path = alignment_path(used.cpu().numpy(), rows, median_filter_width)
            positions = torch.arange(begin, begin + len(text), device=self.device)
            ids = torch.tensor(text, dtype=torch.long, device=self.device)
            text_probs = probs[index, positions, ids].tolist()
            results.append(AlignmentResult(path, text_probs))
        return results


class RequestModel:
    """Stands in for ``ctranslate2.models.Whisper`` inside one request's faster-whisper run."""

    def __init__(
        self, model: TorchWhisper, batcher: Batcher, ticket: Ticket, *, trim_padding: bool
    ) -> None:
        """Route the request holding ``ticket``'s calls to ``model`` via ``batcher``."""
        self._model = model
        self._batcher = batcher
        self._ticket = ticket
        self._trim = trim_padding
        self._decoded = False
        self._last: tuple[bytes, EncodedAudio] | None = None
        self.device = "cuda" if model.device.type == "cuda" else "cpu"
        self.device_index = [model.device.index or 0]
        self.is_multilingual = bool(model.languages)
        self.n_mels = model.net.dims.n_mels

    def encode(self, features: Any, to_cpu: bool = False) -> EncodedAudio:
        """Encode a mel batch; the same window twice in a row is encoded once."""
        del to_cpu  # outputs stay on the device until this request is done with them
        mel = np.ascontiguousarray(np.asarray(features), dtype=np.float32)
        digest = hashlib.blake2b(mel.tobytes(), digest_size=16).digest()
        if self._last is not None and self._last[0] == digest:
            return self._last[1]
        if self._trim:
            mel = window_to_encode(mel, after_decode=self._decoded)
        encoded: EncodedAudio = self._batcher.submit(
            "encode", mel.shape[-1], mel, items=mel.shape[0], ticket=self._ticket
        )
        self._last = (digest, encoded)
        return encoded

    def generate(
        self, features: EncodedAudio, prompts: list[list[int]], **options: Any
    ) -> list[GenerationResult]:
        """Decode ``prompts`` in the continuous decoder, alongside every other request's."""
        self._decoded = True
        parsed = GenerateOptions.parse(options)
        return self._model.decoder.submit(features.hidden, prompts, parsed, self._ticket)

    def detect_language(self, features: EncodedAudio) -> list[list[tuple[str, float]]]:
        """Language probabilities, most likely first, for each encoded window."""
        result: list[list[tuple[str, float]]] = self._batcher.submit(
            "detect_language",
            features.hidden.shape[1],
            features,
            items=len(features),
            ticket=self._ticket,
        )
        return result

    def align(
        self,
        features: EncodedAudio,
        start_sequence: list[int],
        text_tokens: list[list[int]],
        num_frames: int | list[int],
        median_filter_width: int = 7,
    ) -> list[AlignmentResult]:
        """Word alignment of each text against its window."""
        payload = (features, start_sequence, text_tokens, num_frames, median_filter_width)
        result: list[AlignmentResult] = self._batcher.submit(
            "align", object(), payload, items=len(text_tokens), ticket=self._ticket
        )
        return result
