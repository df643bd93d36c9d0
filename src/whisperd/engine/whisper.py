"""The faster-whisper / CTranslate2 engine: the only module that imports either library."""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import ctranslate2
import faster_whisper
from faster_whisper.feature_extractor import FeatureExtractor as FeatureExtractor  # re-exported

from whisperd.engine.base import (
    SAMPLE_RATE,
    ModelInfo,
    Segment,
    SegmentCallback,
    Transcript,
    check_english_only,
)
from whisperd.engine.batched import BatchedPipeline, Fallback
from whisperd.engine.ct2_batch import ModelCalls, PromptTokens, ScheduledModel
from whisperd.engine.detection import CandidateLanguages, LanguageDetection, LanguageProbability
from whisperd.engine.prompts import BudgetedPrompt, check_room, fit_max_new_tokens
from whisperd.engine.results import to_segment
from whisperd.engine.tail_windows import SkipShortTail, until_short_tail
from whisperd.engine.token_logprobs import AlignmentRecorder, TokenLogprobReader
from whisperd.errors import InvalidOptionError, ModelUnavailableError, TranscriptionError
from whisperd.scheduler.batcher import Batcher, BatchObserver, Priority, Ticket

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    import numpy as np
    import numpy.typing as npt

    from whisperd.engine.hub import ResolvedModel
    from whisperd.engine.options import TranscribeOptions

logger = logging.getLogger(__name__)

_OUTPUT_ONLY_OPTIONS = {
    "include_tokens",
    "languages",
    "logprobs",
    "vad_parameters",
    "clip_timestamps",
    "batch_size",
    "segment_timestamps",
    "encoder_context",
    "min_tail_window_s",
}


@dataclass(frozen=True, slots=True)
class BatchingConfig:
    """How the engine's scheduler batches model calls."""

    max_batch_size: int = 8
    """Most windows in one model call."""
    max_wait_ms: float = 5.0
    """Longest wait for other active requests' windows before a batch starts."""
    observer: BatchObserver | None = None
    """Told of every model call the scheduler ran (the metrics' batch sizes and waits)."""


def resolve_device(device: str) -> str:
    """Map ``auto`` to ``cuda`` when CTranslate2 sees a GPU, else ``cpu``."""
    if device != "auto":
        return device
    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    """Map ``auto`` to int8 on CPU and float16 on CUDA; refuse types the device lacks.

    Raises:
        ModelUnavailableError: if the device does not support the compute type.
    """
    if compute_type in ("auto", "default"):
        return "float16" if device == "cuda" else "int8"
    supported = ctranslate2.get_supported_compute_types(device)
    if compute_type not in supported:
        raise ModelUnavailableError(
            f"Compute type {compute_type!r} is not supported on {device}; "
            f"choose one of {sorted(supported)} or 'auto'.",
            param="compute_type",
        )
    return compute_type


_NEAREST_ON_CPU = {
    "float16": "float32",
    "bfloat16": "float32",
    "int8_float16": "int8",
    "int8_bfloat16": "int8",
}


def nearest_supported(device: str, compute_type: str) -> tuple[str, str]:
    """The closest (device, compute type) this machine can run to the one asked for.

    CUDA asked of a machine without a GPU becomes the CPU, and a half-precision type the device
    cannot run becomes its full-precision (or int8) counterpart. Used for per-request hardware
    choices, which a client may have written for another machine.
    """
    device = resolve_device(device)
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        device = "cpu"
    if compute_type in ("auto", "default"):
        return device, compute_type
    supported = ctranslate2.get_supported_compute_types(device)
    if compute_type not in supported:
        fallback = _NEAREST_ON_CPU.get(compute_type, "auto")
        compute_type = fallback if fallback in supported else "auto"
    return device, compute_type


def batched_kwargs(
    options: TranscribeOptions, default_chunk_length: int, batch_size: int
) -> dict[str, Any]:
    """Keywords for :class:`~whisperd.engine.batched.BatchedPipeline`'s ``transcribe``.

    VAD is always on; without explicit vad_parameters the pipeline's own tuned defaults apply
    (chunks up to chunk_length, 160 ms minimum silence).

    Raises:
        InvalidOptionError: for an option batched decoding cannot honour, asked with an
            explicit ``batch_size`` above 1 (unset, such options make decoding sequential).
    """
    if sequential := options.sequential_only():
        name = sequential[0]
        raise InvalidOptionError(
            f"{name} cannot be combined with batch_size above 1: batched decoding cuts the "
            "audio at VAD pauses and decodes each chunk on its own; leave batch_size unset "
            "or set it to 1.",
            param=name,
        )
    kwargs = transcribe_kwargs(options, default_chunk_length)
    kwargs.update(batch_size=batch_size, vad_filter=True, clip_timestamps=None)
    for name in ("condition_on_previous_text", "prompt_reset_on_temperature", "prefix"):
        kwargs.pop(name, None)
    if options.vad_parameters is None:
        kwargs.pop("vad_parameters", None)
    return kwargs


def fallback_rule(options: TranscribeOptions) -> Fallback:
    """The temperature fallback of ``options``, for batched decoding."""
    return Fallback(
        temperatures=options.temperature,
        compression_ratio_threshold=options.compression_ratio_threshold,
        log_prob_threshold=options.log_prob_threshold,
        no_speech_threshold=options.no_speech_threshold,
        best_of=options.best_of,
    )


def transcribe_kwargs(options: TranscribeOptions, default_chunk_length: int) -> dict[str, Any]:
    """Translate our options into ``faster_whisper.WhisperModel.transcribe`` keywords."""
    kwargs = options.model_dump(exclude=_OUTPUT_ONLY_OPTIONS)
    # faster-whisper's feature extractor keeps the last chunk_length it was given, so every
    # call states it, or one request's chunk_length would leak into the next.
    kwargs["chunk_length"] = options.chunk_length or default_chunk_length
    kwargs["condition_on_previous_text"] = options.condition_on_previous_text is not False
    # Token log-probabilities come from the word-alignment pass (engine/token_logprobs.py).
    kwargs["word_timestamps"] = options.word_timestamps or options.logprobs
    kwargs["temperature"] = list(options.temperature)
    kwargs["suppress_tokens"] = list(options.suppress_tokens)
    # faster-whisper runs VAD only when clip_timestamps is exactly its default string "0".
    clips = options.clip_timestamps
    kwargs["clip_timestamps"] = "0" if clips == (0.0,) else list(clips)
    if options.vad_parameters is not None:
        kwargs["vad_parameters"] = options.vad_parameters.model_dump()
    return kwargs


def faster_whisper_shell(path: Path, model: Any) -> faster_whisper.WhisperModel:
    """A faster-whisper ``WhisperModel`` over a model object other than CTranslate2's.

    faster-whisper's decoding loop (prompts, timestamps, temperature fallback, VAD chunks, word
    alignment) only talks to ``model`` through ``encode``, ``generate``, ``detect_language`` and
    ``align``; the tokenizer and feature extractor come from ``path`` as faster-whisper's own
    constructor reads them.
    """
    import tokenizers

    shell = faster_whisper.WhisperModel.__new__(faster_whisper.WhisperModel)
    shell.logger = faster_whisper.utils.get_logger()
    shell.model = model
    shell.hf_tokenizer = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
    shell.feat_kwargs = shell._get_feature_kwargs(str(path))
    shell.feature_extractor = faster_whisper.feature_extractor.FeatureExtractor(**shell.feat_kwargs)
    extractor = shell.feature_extractor
    shell.input_stride = 2
    shell.num_samples_per_token = extractor.hop_length * shell.input_stride
    shell.frames_per_second = extractor.sampling_rate // extractor.hop_length
    shell.tokens_per_second = extractor.sampling_rate // shell.num_samples_per_token
    shell.time_precision = 0.02
    shell.max_length = 448
    return shell


def prompt_tokens(model: faster_whisper.WhisperModel) -> PromptTokens:
    """The special token ids of ``model``'s tokenizer that prompt layouts are checked by."""
    tokenizer = model.hf_tokenizer
    return PromptTokens(
        sot=tokenizer.token_to_id("<|startoftranscript|>"),
        no_timestamps=tokenizer.token_to_id("<|notimestamps|>"),
    )


class FasterWhisperEngine:
    """faster-whisper's decoding loop over a scheduled model: the part every engine shares.

    Subclasses load the weights and say how a request's model calls reach them
    (:meth:`_stand_in`); transcription, option checks and per-request isolation live here.
    """

    def __init__(self, model: faster_whisper.WhisperModel, info: ModelInfo, batcher: Batcher):
        """Drive ``model`` (whose ``model`` attribute the subclass set) for requests."""
        self._model = model
        self._info = info
        self.batcher = batcher
        self._chunk_length = int(model.feature_extractor.chunk_length)

    def _stand_in(self, ticket: Ticket, *, trim: bool) -> Any:
        """The model object one request's faster-whisper run calls."""
        raise NotImplementedError

    @property
    def info(self) -> ModelInfo:
        """What this model is and can do."""
        return self._info

    def check(self, options: TranscribeOptions) -> None:
        """Refuse options this model cannot honour.

        Raises:
            InvalidOptionError: on translation, multilingual decoding or a non-English
                language asked of an English-only model; on a prefix that leaves the decoder
                no room (:func:`~whisperd.engine.prompts.check_room`).
        """
        if not self._info.multilingual:
            self._check_english(options)
        check_room(int(self._model.max_length), **self._prompt_shape(options))

    def _fitted(self, options: TranscribeOptions) -> TranscribeOptions:
        """``options`` with ``max_new_tokens`` lowered to what fits next to the prompt
        (:func:`~whisperd.engine.prompts.fit_max_new_tokens`)."""
        fitted = fit_max_new_tokens(int(self._model.max_length), **self._prompt_shape(options))
        if fitted == options.max_new_tokens:
            return options
        return options.model_copy(update={"max_new_tokens": fitted})

    def _prompt_shape(self, options: TranscribeOptions) -> dict[str, Any]:
        """What of a window's prompt is fixed, and the decoder's cap, for the room checks."""
        return {
            "sot_length": 3 if self._info.multilingual else 1,
            "without_timestamps": options.without_timestamps,
            "prefix_tokens": self._prefix_tokens(options.prefix),
            "max_new_tokens": options.max_new_tokens,
        }

    def _prefix_tokens(self, prefix: str | None) -> int:
        """How many tokens faster-whisper's prompt gives ``prefix`` (0 without one)."""
        if not prefix:
            return 0
        encoded = self._model.hf_tokenizer.encode(" " + prefix.strip(), add_special_tokens=False)
        return len(encoded.ids)

    def _check_english(self, options: TranscribeOptions) -> None:
        """Refuse what an English-only model cannot do."""
        check_english_only(self._info.name, options)

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        options: TranscribeOptions,
        on_segment: SegmentCallback | None = None,
        *,
        priority: Priority = Priority.INTERACTIVE,
        cancel: threading.Event | None = None,
    ) -> Transcript:
        """Transcribe 16 kHz mono float32 audio. Blocking; run it on a request thread.

        The decoding loop runs in the calling thread; every model call it makes goes through
        the engine's scheduler, batched with the calls of other requests. Setting ``cancel``
        drops the remaining windows.

        Raises:
            InvalidOptionError: if the options do not suit this model.
            TranscriptionError: if decoding fails.
            CancelledError: if ``cancel`` was set before the last window.
        """
        self.check(options)
        options = self._fitted(options)
        try:
            with self.batcher.request(priority, cancel) as ticket:
                view = self._request_model(ticket, options)
                logprobs = self._logprob_reader(view) if options.logprobs else None
                raw_segments, info = self._start(view, audio, options)
                segments = self._collect(raw_segments, float(info.duration), on_segment, logprobs)
        except (RuntimeError, MemoryError) as exc:
            raise TranscriptionError(f"Transcription failed: {exc}") from exc
        except ValueError as exc:
            raise InvalidOptionError(f"Invalid decoding options: {exc}") from exc
        return Transcript(
            segments=segments,
            language=str(info.language),
            language_probability=float(info.language_probability),
            duration=float(info.duration),
            task=options.task,
            duration_after_vad=float(info.duration_after_vad),
            model=self._info.name,
        )

    def _request_model(
        self, ticket: Ticket, options: TranscribeOptions
    ) -> faster_whisper.WhisperModel:
        """A per-request view of the model: its own feature extractor (faster-whisper mutates
        it per call), a CTranslate2 stand-in that routes calls through the scheduler, and
        window prompts that leave the decoder room (:mod:`whisperd.engine.prompts`)."""
        view = copy.copy(self._model)
        view.feature_extractor = copy.copy(self._model.feature_extractor)
        view.model = self._stand_in(ticket, trim=options.encoder_context == "audio")
        if options.languages and options.language is None:
            view.model = CandidateLanguages(view.model, options.languages)
        view.get_prompt = BudgetedPrompt(int(view.max_length), options.max_new_tokens)
        return view

    def detect_language(
        self,
        audio: npt.NDArray[np.float32],
        options: TranscribeOptions,
        *,
        priority: Priority = Priority.INTERACTIVE,
        cancel: threading.Event | None = None,
    ) -> LanguageDetection:
        """Detect the spoken language: faster-whisper's ``detect_language`` (VAD as the
        options say, then one scheduled encoder pass and language call per window), only
        ``options.languages`` considered when given. Blocking.

        Raises:
            InvalidOptionError: if the options do not suit this model.
            TranscriptionError: if a model call fails.
            CancelledError: if ``cancel`` was set before it ran.
        """
        self.check(options)
        duration = len(audio) / SAMPLE_RATE
        if not self._info.multilingual:
            return LanguageDetection.certain("en", duration=duration, model=self._info.name)
        try:
            with self.batcher.request(priority, cancel) as ticket:
                view = self._request_model(ticket, options)
                language, probability, ranking = view.detect_language(
                    audio=audio,
                    vad_filter=options.vad_filter,
                    vad_parameters=faster_whisper.vad.VadOptions(
                        **(options.vad_parameters.model_dump() if options.vad_parameters else {})
                    ),
                    language_detection_segments=options.language_detection_segments,
                    language_detection_threshold=options.language_detection_threshold,
                )
        except (RuntimeError, MemoryError, ValueError) as exc:
            raise TranscriptionError(f"Language detection failed: {exc}") from exc
        return LanguageDetection(
            language=str(language),
            probability=float(probability),
            candidates=tuple(LanguageProbability(str(c), float(p)) for c, p in ranking),
            duration=duration,
            model=self._info.name,
        )

    def _start(
        self, view: faster_whisper.WhisperModel, audio: Any, options: TranscribeOptions
    ) -> tuple[Iterable[Any], Any]:
        duration_s = len(audio) / SAMPLE_RATE
        batch_size = options.chunk_batch_size(self.batcher.max_batch_size, duration_s)
        if batch_size > 1:
            sentences = options.segment_timestamps and not options.without_timestamps
            pipeline = BatchedPipeline(
                view,
                fallback_rule(options),
                sentence_segments=sentences,
                parallel_batches=self.batcher.workers,
            )
            kwargs = batched_kwargs(options, self._chunk_length, batch_size)
            started = pipeline.transcribe(audio, **kwargs)
        else:
            if options.min_tail_window_s:
                tail_frames = round(options.min_tail_window_s * view.frames_per_second)
                view.model = SkipShortTail(view.model, tail_frames)
            started = view.transcribe(audio, **transcribe_kwargs(options, self._chunk_length))
        segments, info = started
        return until_short_tail(segments), info

    @staticmethod
    def _logprob_reader(view: faster_whisper.WhisperModel) -> TokenLogprobReader:
        """Record ``view``'s alignments from now on, to read its segments' token logprobs."""
        recorder = AlignmentRecorder(view.model)
        view.model = recorder
        return TokenLogprobReader(recorder, view.hf_tokenizer)

    @staticmethod
    def _collect(
        raw_segments: Iterable[Any],
        duration: float,
        on_segment: SegmentCallback | None,
        logprobs: TokenLogprobReader | None = None,
    ) -> tuple[Segment, ...]:
        """Convert each segment (its times clamped into the audio and after the segment before,
        :func:`to_segment`), with its token logprobs when ``logprobs`` reads them, calling
        ``on_segment`` with it."""
        segments: list[Segment] = []
        for raw in raw_segments:
            segment = to_segment(raw, duration, segments[-1].end if segments else 0.0)
            if logprobs is not None:
                segment = replace(segment, logprobs=logprobs.segment(segment.tokens))
            segments.append(segment)
            if on_segment is not None:
                on_segment(segment)
        return tuple(segments)

    def close(self) -> None:
        """Stop the scheduler and release the model's memory."""
        self.batcher.stop()


class WhisperEngine(FasterWhisperEngine):
    """A Whisper model loaded with faster-whisper on CTranslate2."""

    def __init__(
        self,
        model: ResolvedModel,
        *,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 0,
        num_workers: int = 1,
        batching: BatchingConfig | None = None,
    ) -> None:
        """Load ``model`` on ``device`` with ``compute_type`` (both may be ``auto``).

        ``batching`` configures the scheduler that owns every model call of this engine.

        Raises:
            ModelUnavailableError: if the weights cannot be loaded.
        """
        device = resolve_device(device)
        compute_type = resolve_compute_type(compute_type, device)
        try:
            loaded = faster_whisper.WhisperModel(
                str(model.path),
                device=device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=num_workers,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelUnavailableError(
                f"Model {model.name!r} could not be loaded from {model.path} on {device} "
                f"({compute_type}): {exc}."
            ) from exc
        self._tokens = prompt_tokens(loaded)
        batching = batching or BatchingConfig()
        ct2_model = loaded.model
        batcher = Batcher(
            ModelCalls(ct2_model),
            max_batch_size=batching.max_batch_size,
            max_wait_s=batching.max_wait_ms / 1000,
            workers=num_workers,
            observer=batching.observer,
            merge_across_levels=device != "cpu",
        )
        info = ModelInfo(
            name=model.name,
            path=str(model.path),
            multilingual=bool(ct2_model.is_multilingual),
            languages=tuple(loaded.supported_languages),
            device=device,
            compute_type=compute_type,
            n_mels=int(loaded.feature_extractor.mel_filters.shape[0]),
            extra={"engine": "ctranslate2"},
        )
        super().__init__(loaded, info, batcher)
        batcher.start()
        logger.info(
            "loaded model %s from %s on %s (%s)", model.name, model.path, device, compute_type
        )

    def _stand_in(self, ticket: Ticket, *, trim: bool) -> ScheduledModel:
        return ScheduledModel(
            self._model.model, self.batcher, ticket, self._tokens, trim_padding=trim
        )

    def close(self) -> None:
        """Stop the scheduler and release the model's memory."""
        super().close()
        self._model.model.unload_model()
