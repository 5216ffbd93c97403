"""Stopping a batch cleanly on Ctrl-C (SIGINT) or SIGTERM.

Each submission's test process runs in a session of its own, so a Ctrl-C in
the terminal never reaches it (nor the student's code below it): the grader
has to stop it. The signal handler only raises a flag (``Stop``); each
grading thread polls that flag while its test process runs, kills the
process's whole tree itself (nnkit.sandbox.backend.kill_tree) and gives the
submission up with ``Interrupted``, which leaves no result folder. The
batch then writes the gradebook of what finished (nnkit.grading.runner.grade_batch).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager


class Interrupted(Exception):
    """Grading was asked to stop before this submission finished."""


class Stop:
    """A request to stop grading, raised by a signal (``on_signals``) or by a caller (``request``)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None
        """The signal that asked to stop (None: a caller did, or nobody yet)."""
        self._armed = 0

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, signum: int | None = None) -> None:
        """Ask every grading thread to stop; the first request's signal is kept."""
        if not self._event.is_set():
            self.signum = signum
        self._event.set()

    def check(self) -> None:
        """Raise Interrupted if stopping was requested."""
        if self._event.is_set():
            raise Interrupted(self.describe())

    def describe(self) -> str:
        """"SIGINT", "SIGTERM" or "a stop request"."""
        return signal.Signals(self.signum).name if self.signum else "a stop request"

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a process stopped by it (130 for SIGINT)."""
        return 128 + (self.signum or signal.SIGINT)

    @contextmanager
    def armed(self):
        """While armed, a signal only raises the flag; otherwise it also raises KeyboardInterrupt
        in the main thread (to abandon preparations, such as computing the MNIST reference).
        Blocks may nest."""
        self._armed += 1
        try:
            yield self
        finally:
            self._armed -= 1

    def _handle(self, signum, frame) -> None:
        first = not self._event.is_set()
        self.request(signum)
        if not self._armed:
            raise KeyboardInterrupt
        if first:
            # os.write, not print: the handler may run while the progress bar is writing to stderr.
            try:
                os.write(sys.stderr.fileno(), f"\n{signal.Signals(signum).name}: stopping the test processes "
                                              "and writing the gradebook of what finished...\n".encode())
            except (OSError, ValueError, AttributeError):  # stderr closed or not a file
                pass

    @contextmanager
    def on_signals(self, signals=(signal.SIGINT, signal.SIGTERM)):
        """Handle ``signals`` with this Stop (main thread only); the previous handlers come back after."""
        previous = {s: signal.signal(s, self._handle) for s in signals}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
