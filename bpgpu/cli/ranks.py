"""``bpgpu train`` as one of several data-parallel ranks (``mpiexec -n 4 bpgpu train …``).

Each rank holds its block of the rows and trains the same network (``fit(comm=…)``); rank 0
alone prints and writes files. What the command reports over the data must then be over
every rank's rows: the metric (accuracy, R²) and the Standardizer's mean and deviation
are summed across ranks here.
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from .. import agreement, distributed
from ..backend import cuda_device_count
from ..metrics import classes
from ..scaling import Standardizer
from ..training import DivergenceError
from .errors import CLIError, one_line
from .signals import Stopped


def communicator(asked: bool):
    """MPI_COMM_WORLD when ``--distributed`` was given or an MPI launcher started several
    ranks, else None (one process, no MPI)."""
    if not (asked or distributed.launched_by_mpi()):
        return None
    try:
        comm = distributed.world()
    except ImportError as err:
        raise CLIError(f"--distributed: {err}") from None
    return comm if comm.size > 1 else None


def device(comm, backend: str) -> int | None:
    """The GPU of this rank for CuPy: its rank on this machine modulo the machine's GPUs."""
    if comm is None or backend == "numpy":
        return None
    count = cuda_device_count()
    return distributed.local_rank(comm) % count if count else None


@contextlib.contextmanager
def abort_on_failure(comm):
    """A failure on one rank ends every rank (MPI_Abort), saying which rank and why, instead of
    leaving the others waiting in a collective. Not failures of one rank: a divergence (every
    rank sees the same losses, and rank 0 must finish saving the last good weights), and an
    error raised alike on every rank (:func:`bpgpu.agreement.mark_every_rank`), which rank 0
    alone says."""
    try:
        yield
    except DivergenceError:
        raise
    except BaseException as err:
        if comm is None:
            raise
        if agreement.raised_everywhere(err):
            if comm.rank == 0:
                raise
            raise SystemExit(1) from None
        if isinstance(err, Stopped):
            why, status = f"stopped by {err} before training: nothing saved", err.status
        elif isinstance(err, KeyboardInterrupt):
            why, status = "interrupted", 130
        else:
            why, status = f"error: {one_line(err)}", 1
        print(f"bpgpu train: rank {comm.rank} of {comm.size}: {why}", file=sys.stderr, flush=True)
        comm.abort(status)


def agree_on_options(comm, args) -> None:
    """Ranks started with different options would fail in a collective (a page of MPI's
    errors) or train apart: every rank raises the same one-line error instead, naming the
    options and the ranks."""
    if comm is None:
        return
    skip = ("run", "prog", "progress_only", "command")
    with agreement.Pact(comm, "every rank must be started with the same options") as pact:
        pact.terms = {"--" + k.replace("_", "-"): v for k, v in sorted(vars(args).items()) if k not in skip}


@contextlib.contextmanager
def first_speaks(comm):
    """Rank 0's standard output as usual; every other rank's discarded (errors, on stderr, stay)."""
    if comm is None or comm.rank == 0:
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def standardizer(comm, X, backend) -> Standardizer:
    """The Standardizer of every rank's rows X (m_r, n) together: the mean, then the deviation."""
    comm.meet()  # a rank still reading its data keeps this one waiting where a signal can stop it
    host = backend.to_host(X).astype(np.float64)
    n = host.shape[1]
    sums, m = _sum(comm, np.concatenate([host.sum(axis=0), np.abs(host).sum(axis=0)]), host.shape[0])
    mean = sums[:n] / m
    # Each feature's deviations divided by a power of two near its mean |x| before squaring, as
    # Standardizer.fit divides by one near its largest: no square overflows (inputs near 1e160
    # made σ inf), and a power of two scales exactly.
    scale = np.ldexp(1.0, np.frexp(sums[n:] / m)[1])
    (squares,) = _sum(comm, (((host - mean) / scale) ** 2).sum(axis=0))
    std = np.sqrt(squares / m) * scale
    return Standardizer(mean, np.where(std > 0, std, 1.0))


def scorer(comm):
    """``score(net, X, Y, metric)`` over every rank's rows: accuracy from the summed count of
    right answers, R² from per-column sums of (y − a)², y and y² (scikit-learn's rules for
    constant columns kept)."""

    def score(net, X, Y, metric, rows=65536):
        xp, host, k = net.xp, net.backend.to_host, Y.shape[1]
        sums = np.zeros(3 * k if metric == "r2" else 1)
        for i in range(0, X.shape[0], rows):
            A, y = net.forward(X[i:i + rows, :]), Y[i:i + rows, :]
            if metric == "accuracy":
                sums[0] += int(xp.count_nonzero(classes(y, xp) == classes(A, xp)))
            else:
                sums += np.concatenate([host(xp.sum(part, axis=0)) for part in ((y - A) ** 2, y, y * y)])
        sums, m = _sum(comm, sums, X.shape[0])
        if metric == "accuracy":
            return float(sums[0] / m)
        ss_res, total, squares = sums[:k], sums[k:2 * k], sums[2 * k:]
        ss_tot = np.maximum(squares - total * total / m, 0.0)
        constant = ss_tot == 0
        return float(np.mean(np.where(constant, np.where(ss_res == 0, 1.0, 0.0),
                                      1.0 - ss_res / np.where(constant, 1.0, ss_tot))))

    return score


def rows(comm, m: int) -> int:
    """Σ over ranks of each rank's ``m`` rows."""
    return int(_sum(comm, (), m)[1])


def _sum(comm, vector, *numbers):
    """(Σ over ranks of ``vector``, then each of ``numbers`` so summed), in one collective."""
    packed = np.concatenate([np.asarray(vector, dtype=np.float64), np.asarray(numbers, dtype=np.float64)])
    comm.allreduce_sum(packed)
    n = packed.shape[0] - len(numbers)
    return (packed[:n], *packed[n:])


def announce(comm) -> str:
    """What the first line adds about the ranks ("" for one process)."""
    return "" if comm is None else f" over {comm.size} ranks"
