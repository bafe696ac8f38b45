"""Printing is best effort; the work is not.

``bpgpu train … | head -1`` closes the pipe after one line, a closed terminal (SIGHUP)
turns every write into EIO, ``2>&-`` starts the command with no stderr at all. None of
that may cost a run its model: while a command runs, :func:`best_effort` makes
``sys.stdout`` and ``sys.stderr`` streams whose writes never fail (the first failure sends
the rest to /dev/null and is remembered). Python already ignores SIGPIPE, so the write
fails with EPIPE instead of killing the process.

A closed standard descriptor (0, 1 or 2) is opened on /dev/null first: otherwise the next
file the command opens — a model being saved — would get its number, and anything
written to "stdout" or "stderr" (by Python, or by a C library) would land in that file.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys


class BestEffort:
    """A text stream whose writes and flushes never raise an OSError; ``lost`` is the
    first one that failed, or None (from then on, everything written is dropped)."""

    def __init__(self, stream):
        self._stream, self.lost = stream, None

    def write(self, text: str) -> int:
        if self.lost is None:
            try:
                return self._stream.write(text)
            except OSError as err:
                self._lose(err)
        return len(text)

    def flush(self) -> None:
        if self.lost is None:
            try:
                self._stream.flush()
            except OSError as err:
                self._lose(err)

    def _lose(self, err: OSError) -> None:
        self.lost = err
        # What the stream still buffers would fail again when Python exits ("Exception
        # ignored … BrokenPipeError", status 120): let it drain into /dev/null instead.
        try:
            _onto_null(self._stream.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):  # no descriptor (a test's capture)
            pass

    def __getattr__(self, name):  # isatty, encoding, fileno, …: the stream's own
        return getattr(self._stream, name)


def _onto_null(fd: int) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


def _reopen_closed_descriptors() -> None:
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            _onto_null(fd)


@contextlib.contextmanager
def best_effort():
    """``sys.stdout`` and ``sys.stderr`` as :class:`BestEffort` streams for the block;
    yields the stdout one (its ``lost``: whether, and why, output was lost)."""
    _reopen_closed_descriptors()
    saved = sys.stdout, sys.stderr
    # Python sets a stream to None when its descriptor was closed at start-up.
    sys.stdout = BestEffort(sys.stdout or open(1, "w", closefd=False))
    sys.stderr = BestEffort(sys.stderr or open(2, "w", closefd=False))
    try:
        yield sys.stdout
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved
