"""What each streaming choice costs in words: stream WER per policy against the batch route.

In process, on the real Whisper tiny.en (CTranslate2 int8, CPU), a stream session is fed the
corpus of bench/stream_accuracy.py in 32 ms frames and, after each frame, waits until every due
decode is done: an infinitely fast server, so every partial due is decoded and the result does
not depend on the machine's speed. The batch route transcribes the same files in the same run.

Policies compared:

- ``stable partials, held back N``: ``WHISPERD_STREAM_STABLE_PARTIALS=true``, partials every
  0.5 s of audio; the newest partial's last N words are never made stable
  (``whisperd.streaming.stabilizer.HELD_BACK_WORDS``);
- ``stable at finals, context S s`` (the default policy): words become stable with their final,
  so partials do not change the finals and are left off here; finals decoded over S seconds of
  the previous finals' audio, decoded again unforced (``WHISPERD_STREAM_FINAL_CONTEXT_S``);
  the CPU time of the process over the corpus (all threads) is reported as a ratio to the
  first context policy's;
- with ``--silent-tails``, each context policy also with the leftover after a final's words
  decoded as a window of its own (``WHISPERD_STREAM_SKIP_SILENT_TAILS=false``, run first);
- with ``--encoder-context window audio``, each context policy with finals encoded each way
  (``WHISPERD_STREAM_FINAL_ENCODER_CONTEXT``; default: the setting's default alone).

    python bench/stream_policies.py [--minutes 1 1] [--held-back 1 2 4] [--context 0 5]
        [--silent-tails] [--encoder-context window audio] [--write docs/benchmarks.md]

``--held-back`` with no value leaves the stable-partials policies out.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from common import machine, write_section
from stream_accuracy import Spoken, corpus, weighted_wer
from whisperd.audio.decode import AudioSource
from whisperd.config import Settings
from whisperd.engine.options import TranscribeOptions
from whisperd.service import TranscriptionRequest, TranscriptionService
from whisperd.streaming import stabilizer
from whisperd.streaming.session import Event, Result, StreamConfig
from whisperd.testing.speech import real_model_path

FRAME = 512


def service(
    context_s: float = 5.0,
    *,
    stable_partials: bool = False,
    skip_silent_tails: bool = True,
    encoder_context: str | None = None,
) -> TranscriptionService:
    """A service on the real tiny.en whose stream finals use ``context_s`` of context (and
    ``encoder_context``, None: the setting's default)."""
    settings = Settings(
        _env_file=None,
        model=str(real_model_path()),
        device="cpu",
        compute_type="int8",
        offline=True,
        stream_final_context_s=context_s,
        stream_final_latency_target_s=0.0,  # an infinitely fast server never sheds context
        stream_stable_partials=stable_partials,
        stream_skip_silent_tails=skip_silent_tails,
    )
    if encoder_context is not None:
        settings = settings.model_copy(update={"stream_final_encoder_context": encoder_context})
    return TranscriptionService.create(settings)


async def stream_text(server: TranscriptionService, samples: Any, config: StreamConfig) -> str:
    """The stream's finals, joined, with every due decode run before the next frame."""
    finals: list[str] = []

    async def emit(event: Event) -> None:
        if isinstance(event, Result) and event.is_final:
            finals.append(event.transcript.text)

    session = await server.stream_session(config, emit)
    session.start()
    for offset in range(0, len(samples), FRAME):
        await session.feed(samples[offset : offset + FRAME])
        await session.wait_idle()
    await session.end_audio()
    await session.close()
    return " ".join(finals)


async def streamed(server: TranscriptionService, files: list[Spoken], partials: bool) -> float:
    """Stream WER over ``files``."""
    config = StreamConfig(language="en", partials=partials)
    pairs = [(s.speech.text, await stream_text(server, s.speech.samples, config)) for s in files]
    return weighted_wer(pairs)


async def run(
    files: list[Spoken],
    held_back: list[int],
    contexts: list[float],
    *,
    silent_tails: bool,
    encoder_contexts: list[str | None],
) -> list[str]:
    """One table row per policy, the batch route's first."""
    server = service(stable_partials=True)
    try:
        batch = []
        for spoken in files:
            request = TranscriptionRequest(
                AudioSource(spoken.speech.wav_bytes()), TranscribeOptions()
            )
            batch.append((spoken.speech.text, (await server.transcribe(request)).text))
        baseline = weighted_wer(batch)
        rows = [f"| batch route (baseline) | {baseline:.1%} | 1.00x | |"]
        default = stabilizer.HELD_BACK_WORDS
        for words in held_back:
            stabilizer.HELD_BACK_WORDS = words
            rate = await streamed(server, files, partials=True)
            rows.append(
                f"| stable partials, held back {words} | {rate:.1%} | {rate / baseline:.2f}x | |"
            )
        stabilizer.HELD_BACK_WORDS = default
    finally:
        server.close()
    first_cost = None
    for seconds in contexts:
        for encoding in encoder_contexts:
            for skip in (False, True) if silent_tails else (True,):
                server = service(seconds, skip_silent_tails=skip, encoder_context=encoding)
                try:
                    began = time.process_time()
                    rate = await streamed(server, files, partials=False)
                    cost = time.process_time() - began
                finally:
                    server.close()
                first_cost = first_cost or cost
                tails = (", silent tails decoded" if not skip else ", silent tails skipped") * (
                    silent_tails
                )
                encoded = f", encoder context {encoding}" if encoding else ""
                rows.append(
                    f"| stable at finals, context {seconds:g} s{encoded}{tails} | {rate:.1%} | "
                    f"{rate / baseline:.2f}x | {cost / first_cost:.2f}x |"
                )
    return rows


def main() -> None:
    """Run every policy, print the table, optionally write it to a markdown file."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 1])
    parser.add_argument("--held-back", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--context", type=float, nargs="+", default=[0, 5])
    parser.add_argument(
        "--silent-tails",
        action="store_true",
        help="run every context also with the leftover after a final's words decoded "
        "(WHISPERD_STREAM_SKIP_SILENT_TAILS=false), first",
    )
    parser.add_argument(
        "--encoder-context",
        nargs="+",
        choices=["window", "audio"],
        default=None,
        help="run every context with finals encoded each way "
        "(WHISPERD_STREAM_FINAL_ENCODER_CONTEXT), in this order",
    )
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    files = corpus(args.minutes, seed=1)
    rows = asyncio.run(
        run(
            files,
            args.held_back,
            args.context,
            silent_tails=args.silent_tails,
            encoder_contexts=args.encoder_context or [None],
        )
    )
    words = sum(len(s.speech.text.split()) for s in files)
    body = "\n".join(
        [
            "`python bench/stream_policies.py --minutes "
            + " ".join(f"{m:g}" for m in args.minutes)
            + " --held-back "
            + " ".join(map(str, args.held_back))
            + " --context "
            + " ".join(f"{c:g}" for c in args.context)
            + " --silent-tails" * args.silent_tails
            + (" --encoder-context " + " ".join(args.encoder_context)) * bool(args.encoder_context)
            + "`",
            "",
            f"Real Whisper tiny.en (CTranslate2 int8, CPU), in process, every due decode run "
            f"(an infinitely fast server); corpus: {len(files)} files, {words} words, of "
            f"bench/stream_accuracy.py (seed 1). Machine: {machine()}.",
            "",
            "| policy | stream WER | ratio to batch | CPU time (ratio) |",
            "| --- | --- | --- | --- |",
            *rows,
        ]
    )
    write_section(args.write, "Streaming policies (real tiny.en, in process)", body)


if __name__ == "__main__":
    main()
