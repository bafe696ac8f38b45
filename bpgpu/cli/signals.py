"""Stopping signals in ``bpgpu train``: the run is saved, whoever stops it.

SIGTERM and SIGHUP are how batch systems, ``timeout``, ``docker stop``, systemd and a
closed terminal stop a program. During training they stop it after the current step,
exactly as Ctrl-C does, so the model, its history and its checkpoint are saved; the command
then exits with the shell's status for that signal (128 + its number: 130 SIGINT, 129
SIGHUP, 143 SIGTERM), so a script or scheduler still sees that the run was stopped.

Before training (while the data is read: a FIFO, a slow pipe, a big CSV) there is nothing to
save, so a stopping signal stops the command at once, as Ctrl-C does: its handler raises
:class:`Stopped`, which ends a read blocked in the kernel (the call returns EINTR and
Python runs the handler) and a parse that checks for signals.

While the files are written every stopping signal (Ctrl-C included) is only noted: the
writes are atomic, so a file is always old or new, and deferring the signal means no run
ends with a new model beside an old history. The library leaves signals to the program
that imports it (``fit`` only turns Ctrl-C into a stop request, and only where SIGINT is
Python's default), so these handlers are the command's own, installed for one run.

The first stopping signal decides the status. Python runs the handlers of signals that
arrived together in signal-number order (SIGHUP before SIGTERM, whichever came first), and
a Ctrl-C during training goes to ``fit``'s handler, not here; so the order of arrival is
read from Python's wakeup pipe, where its C-level handler writes each signal's number as it
arrives.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

STOPPING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(BaseException):
    """A stopping signal where there is nothing to save (before training; in ``predict`` or
    ``bench``, :mod:`bpgpu.cli.stopping`): the command ends now. ``str()`` is the signal's
    name. A BaseException, as KeyboardInterrupt is, so that no ``except Exception`` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def status(self) -> int:
        """The shell's exit status for the signal: 128 + its number (143 SIGTERM, 129 SIGHUP)."""
        return 128 + self.signum


class Stop:
    """The first stopping signal of a run (None until one arrives); called, as ``fit``'s
    ``stop``, it says whether training should stop after the step just taken."""

    def __init__(self):
        self.signum: int | None = None
        self.elsewhere = False  # stopped by the vote of several ranks, not by a signal noted here
        self.before_training = True  # a signal raises Stopped until training()
        self._previous: dict = {}
        self._arrivals: _Arrivals | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    def _note(self, signum, frame):
        if self.before_training:
            raise Stopped(signum)
        if self.signum is None:
            first = self._arrivals.first(STOPPING + (signal.SIGINT,)) if self._arrivals else None
            self.signum = first or signum
        # A later one is dropped: the run is already stopping, and its saving must finish.

    def training(self) -> None:
        """Training starts: from now on a stopping signal is noted, to stop after a step."""
        self.before_training = False

    @contextlib.contextmanager
    def catching(self, signals=STOPPING):
        """Note ``signals`` instead of dying of them until the block ends (main thread only:
        Python runs handlers there). A :class:`Stopped` ends the block, said in one line on
        stderr; :meth:`status` then gives the exit status."""
        main = threading.current_thread() is threading.main_thread()
        try:
            self._arrivals = _Arrivals() if main else None
            self.also(*signals)
            yield self
        except Stopped as stopped:
            self.signum = stopped.signum
            print(f"bpgpu train: stopped by {stopped} before training: nothing saved", file=sys.stderr)
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()
            if self._arrivals is not None:
                self._arrivals.close()

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


class _Arrivals:
    """The signals that reached this process, in order of arrival: Python's C-level handler
    writes each one's number into the wakeup pipe set here (for signals with a Python
    handler), before any Python handler runs."""

    def __init__(self):
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            os.set_blocking(fd, False)
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._seen = bytearray()

    def first(self, among) -> int | None:
        """The first of the signals ``among`` to have arrived so far, or None."""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self._read, 4096):
                self._seen += chunk
        return next((s for s in self._seen if s in among), None)

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous)
        os.close(self._read)
        os.close(self._write)
