"""Stopping signals in the commands that only compute and write (``predict``, ``bench``):
SIGTERM or SIGHUP raises :class:`Stopped` where the program is, so the write in progress
removes its temporary (:func:`bpgpu.io.atomic.atomic_write` cleans up on any exception; the
default disposition killed the process and left a temporary as large as the output) and
``bench`` can still report what it measured. ``train`` has its own handlers
(:mod:`bpgpu.cli.signals`): it stops after a step and saves the run.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from .signals import STOPPING, Stopped  # noqa: F401 — predict and bench catch it from here


@contextlib.contextmanager
def raising(signals=STOPPING, held: list | None = None):
    """Within the block, the first of ``signals`` raises :class:`Stopped`; later ones are
    ignored (the command is already saving what it has). With ``held`` (a list), nothing is
    raised: the signals' numbers are appended to it, for a write that must finish first.
    Main thread only, where Python runs signal handlers; the previous handlers come back
    when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted = [] if held is None else held

    def stop(signum, frame):
        noted.append(signum)
        if held is None and len(noted) == 1:
            raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
