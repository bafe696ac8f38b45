"""Stopping signals in ``bpgpu train``: the run is saved, whoever stops it.

SIGTERM and SIGHUP are how batch systems, ``timeout``, ``docker stop``, systemd and a
closed terminal stop a program. Here they stop training after the current step, exactly
as Ctrl-C does, so the model, its history and its checkpoint are saved; the command then
exits with the shell's status for that signal (128 + its number: 130 SIGINT, 129 SIGHUP,
143 SIGTERM), so a script or scheduler still sees that the run was stopped.

While the files are written every stopping signal (Ctrl-C included) is only noted: the
writes are atomic, so a file is always old or new, and deferring the signal means no run
ends with a new model beside an old history. The library leaves signals to the program
that imports it (``fit`` only turns Ctrl-C into a stop request, and only where SIGINT is
Python's default), so these handlers are the command's own, installed for one run.
"""

from __future__ import annotations

import contextlib
import signal
import threading

STOPPING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stop:
    """The first stopping signal of a run (None until one arrives); called, as ``fit``'s
    ``stop``, it says whether training should stop after the step just taken."""

    def __init__(self):
        self.signum: int | None = None
        self.elsewhere = False  # stopped by the vote of several ranks, not by a signal noted here
        self._previous: dict = {}

    def __call__(self) -> bool:
        return self.signum is not None

    def _note(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        # A later one is dropped: the run is already stopping, and its saving must finish.

    @contextlib.contextmanager
    def catching(self, signals=STOPPING):
        """Note ``signals`` instead of dying of them until the block ends (main thread only:
        Python runs handlers there)."""
        try:
            self.also(*signals)
            yield self
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()

    def also(self, *signals) -> None:
        """Note these signals too, until the block of :meth:`catching` ends."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in signals:
            if signum not in self._previous:
                self._previous[signum] = signal.signal(signum, self._note)

    def saving(self, history, ranks: int = 1) -> None:
        """Training has returned: a Ctrl-C that ``fit`` itself caught counts as SIGINT, and
        from now on a Ctrl-C, too, waits until the files are written. Across ``ranks`` > 1
        an interruption this rank did not note may have come from another rank's signal
        (every rank stops at the vote): the run still stopped as by Ctrl-C."""
        if history.stop_reason == "interrupted" and self.signum is None:
            self.signum, self.elsewhere = signal.SIGINT, ranks > 1
        self.also(signal.SIGINT)

    @property
    def name(self) -> str:
        if self.elsewhere:
            return "a stopping signal to one of the ranks"
        name = signal.Signals(self.signum).name
        return f"{name} (Ctrl-C)" if self.signum == signal.SIGINT else name

    def status(self) -> int:
        """128 + the signal's number, or 0 when none stopped the run."""
        return 0 if self.signum is None else 128 + self.signum
