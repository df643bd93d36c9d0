"""Ctrl-C and SIGTERM during ``whisperd transcribe``: stop at the next window, then exit.

The first SIGINT or SIGTERM cancels the run: the file being transcribed stops at its next
window and nothing is written for it, no further file starts, the model and threads are
released, and the command exits with 128 + the signal's number (130 for Ctrl-C, 143 for
SIGTERM), as a shell reports a process the signal ended. A second signal quits at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console

    from whisperd.service import Cancellation

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """Turns SIGINT and SIGTERM into a :class:`~whisperd.service.Cancellation` of the run."""

    def __init__(self, cancel: Cancellation, console: Console) -> None:
        """Cancel ``cancel`` on the first signal; tell the user on ``console``."""
        self.received: signal.Signals | None = None
        """The first signal received, if any."""
        self._cancel = cancel
        self._console = console

    @property
    def exit_code(self) -> int:
        """The exit status for the signal received (128 + its number; 130 if none was)."""
        return 128 + (self.received or signal.SIGINT)

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Handle the signals on the running event loop while the block runs.

        Outside the main thread, or where the loop cannot handle signals (Windows), nothing is
        installed and the signals keep their usual effect.
        """
        loop = asyncio.get_running_loop()
        installed = []
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                try:
                    loop.add_signal_handler(sig, self._on_signal, sig)
                except NotImplementedError:
                    break
                installed.append(sig)
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.received is not None:
            self._quit_now(sig)
        self.received = sig
        self._cancel.cancel()
        if sig == signal.SIGINT:
            what, again = "Interrupted", "press Ctrl-C again to quit at once"
        else:
            what, again = "Terminated", "a second SIGTERM quits at once"
        self._console.print(f"[yellow]{what}[/yellow]: stopping at the next window ({again}).")

    def _quit_now(self, sig: signal.Signals) -> None:
        """Exit without waiting for the model: restore the terminal, then end the process."""
        self._console.show_cursor(True)
        self._console.print("[red]Quit.[/red]")
        self._console.file.flush()
        os._exit(128 + sig)
