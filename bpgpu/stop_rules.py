"""Why a ``fit`` stops: one ordered list of rules, and one vote over the ranks under MPI."""

from __future__ import annotations

import signal
import threading
import time


class Interrupt:
    """Turns the first Ctrl-C into a request to stop after the current step.

    Installed only in the main thread and only over Python's default handler, so a
    program's own SIGINT handling is left alone. A second Ctrl-C interrupts at once.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class StopRules:
    """The reasons to stop, checked in this order after every whole epoch: the run's own
    rules first (``target_loss`` reached, patience exhausted), so a stop from outside that
    falls on the same epoch ends the run as the uninterrupted one ends and a resume does not
    go on; then Ctrl-C or ``stop()``, ``max_time`` (seconds from now), the callback. Within
    an epoch a single process also stops after the step where Ctrl-C, ``stop()`` or the
    clock says so; ranks (``comm``) must take the same steps, so they wait for the epoch's
    end and stop together on one vote. ``with rules:`` catches Ctrl-C."""

    def __init__(self, *, target_loss=None, max_time=None, stop=None, comm=None):
        self.target_loss, self.stop, self.comm = target_loss, stop, comm
        self.interrupt, self.stopping = Interrupt(), False
        self.t0 = time.perf_counter()
        self.deadline = None if max_time is None else self.t0 + max_time

    def __enter__(self) -> "StopRules":
        self.interrupt.__enter__()
        return self

    def __exit__(self, *exc):
        self.interrupt.__exit__(*exc)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def _late(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    def _interrupted(self) -> bool:
        return self.stopping or self.interrupt.requested

    def after_step(self) -> bool:
        """Whether to stop after this step, within the epoch (never under MPI)."""
        # Kept apart from interrupt.requested, so that a Ctrl-C after stop() is a first one.
        self.stopping = self.stopping or self.interrupt.requested or (self.stop is not None and bool(self.stop()))
        return self.comm is None and (self.stopping or self._late())

    def within_epoch(self) -> str:
        """Why an epoch stopped before its last step."""
        return "interrupted" if self._interrupted() else "max_time"

    def after_epoch(self, loss: float, exhausted: bool, asked: bool) -> str:
        """Why training stops after an epoch of loss ``loss`` ("" to go on); ``exhausted``:
        patience ran out; ``asked``: the callback said stop."""
        interrupted, late = self._interrupted(), self._late()
        if self.comm is not None:
            interrupted, late, asked = self.comm.vote(interrupted, late, asked)
        reasons = (("target_loss", self.target_loss is not None and loss <= self.target_loss),
                   ("early_stopping", exhausted), ("interrupted", interrupted), ("max_time", late),
                   ("callback", asked))
        return next((reason for reason, applies in reasons if applies), "")
