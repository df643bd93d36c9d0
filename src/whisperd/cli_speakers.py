"""Speaker flags of ``whisperd transcribe``: ``--diarize``, ``--multichannel``,
``--num-speakers`` or ``--min-speakers``/``--max-speakers``, and ``--known-speaker NAME=FILE``.

``--known-speaker`` gives a known speaker's name and a 2-10 s clip of their voice (any audio
file), as OpenAI's ``known_speaker_names[]``/``known_speaker_references[]`` do; with
``--multichannel`` it is just ``NAME`` and names the channels in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from whisperd.audio.decode import AudioSource
from whisperd.diarization import DiarizationOptions
from whisperd.diarization.options import (
    MAX_SPEAKERS,
    by_voice,
    per_channel,
)
from whisperd.errors import InvalidOptionError

__all__ = ["diarization_from_flags", "speaker_params"]

_FLAGS = {
    "num_speakers": "--num-speakers",
    "min_speakers": "--min-speakers",
    "max_speakers": "--max-speakers",
    "known_speaker_names[]": "--known-speaker",
    "known_speaker_references[]": "--known-speaker",
}


def speaker_params() -> list[click.Option]:
    """The speaker flags."""
    count = click.IntRange(1, MAX_SPEAKERS)
    return [
        click.Option(
            ["--diarize"],
            is_flag=True,
            default=False,
            help="Label who speaks (A, B, ...) with the speaker model (pip install "
            "'whisperd[diarize]'); the labels show in every output format.",
        ),
        click.Option(
            ["--multichannel"],
            is_flag=True,
            default=False,
            help="Transcribe each channel on its own; the speaker is the channel (no model).",
        ),
        click.Option(["--num-speakers"], type=count, default=None, help="Exactly N speakers."),
        click.Option(["--min-speakers"], type=count, default=None, help="At least N speakers."),
        click.Option(["--max-speakers"], type=count, default=None, help="At most N speakers."),
        click.Option(
            ["--known-speaker"],
            multiple=True,
            default=(),
            metavar="NAME=FILE",
            help="A known speaker and a 2-10 s clip of their voice (repeat, at most 4); with "
            "--multichannel just NAME, naming the channels in order.",
        ),
    ]


def diarization_from_flags(
    params: dict[str, Any],
) -> tuple[DiarizationOptions | None, tuple[tuple[str, AudioSource], ...]]:
    """The diarization the flags ask for (None: none) and the known speakers' clips, for a
    local run and for ``--server`` alike (which sends them as the job's fields).

    Raises:
        click.UsageError: naming the flag, on known speakers or counts without
            ``--diarize``/``--multichannel``, a clip that is not a file, or more than 4.
    """
    wanted = params["diarize"] or params["multichannel"]
    counts = {name: params[name] for name in ("num_speakers", "min_speakers", "max_speakers")}
    if not wanted:
        given = [_FLAGS[name] for name, value in counts.items() if value is not None]
        if params.get("known_speaker"):
            given.append("--known-speaker")
        if given:
            raise click.UsageError(f"{given[0]} needs --diarize (or --multichannel).")
        return None, ()
    known = [_known(item, params["multichannel"]) for item in params.get("known_speaker", ())]
    try:
        if params["multichannel"]:
            return per_channel([name for name, _ in known], counts), ()
        options = by_voice(counts)
        if len(known) > 4:
            raise InvalidOptionError("At most 4 known speakers.", param="known_speaker_names[]")
    except InvalidOptionError as exc:
        raise click.UsageError(
            f"{_FLAGS.get(exc.param or '', '--diarize')}: {exc.message}"
        ) from None
    return options, tuple((name, AudioSource(path)) for name, path in known if path is not None)


def _known(item: str, multichannel: bool) -> tuple[str, Path | None]:
    name, equals, file = item.partition("=")
    if multichannel:
        return name.strip(), None
    path = Path(file)
    if not (equals and name.strip() and path.is_file()):
        raise click.UsageError(
            f"--known-speaker {item!r}: give NAME=FILE, FILE a 2-10 s clip of the voice."
        )
    return name.strip(), path
