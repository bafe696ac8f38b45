"""Data parallelism: the communicator, and how the ranks' rows form each step's batch.

Delta is a plain sum over examples, so P processes ("ranks"), each holding its own rows,
compute the Delta sums of their rows, add them in one all-reduce per step, and all apply
the same update: the result is one process's on all rows, to rounding.

A :class:`Communicator` is the small interface training needs: ``rank``, ``size``,
``allreduce_sum`` of a flat host buffer and ``barrier``. :class:`MPICommunicator` wraps an
mpi4py communicator; :class:`SingleProcess` is the trivial one. mpi4py is imported only
when an MPI communicator is made, so ``import bpgpu`` never loads it.

Determinism: MPI's Allreduce with SUM on floating point is not promised to give every rank
the same bits. ``allreduce_sum`` is therefore a reduce-scatter (MPI_Reduce_scatter_block:
each rank sums one block of the vector) followed by an all-gather of the blocks: every
entry is summed on exactly one rank and copied to the others, so every rank holds the same
bytes and the weights stay identical, bit for bit, whatever algorithm the MPI library
picks. It moves the bytes of a ring all-reduce, 2·(P−1)/P × the vector per rank, and
measured as fast as MPI_Allreduce here; reducing to rank 0 and broadcasting took twice as
long (docs/scaling.md).
"""

from __future__ import annotations

import os
import stat
import sys
import time

import numpy as np

from .agreement import share_failure

INSTALL_HINT = 'data-parallel training needs mpi4py and an MPI library: pip install "bpgpu[mpi]"'
SHARED_BYTES = 8192  # each rank's part of a shared text (settings, an error): room to spare


class Communicator:
    """The collective operations training needs. ``rank`` ∈ [0, size)."""

    rank = 0
    size = 1

    def allreduce_sum(self, buf: np.ndarray) -> None:
        """buf ← Σ over ranks of buf, in place (a C-contiguous host vector); every rank
        gets the same bits."""

    def barrier(self) -> None:
        """Return once every rank has called it."""

    def meet(self) -> None:
        """:meth:`barrier`, waited for as :meth:`share` waits: signal handlers run meanwhile."""

    def abort(self, status: int) -> None:
        """End every rank's process now, with ``status`` (one rank's failure would otherwise
        leave the others waiting in a collective for ever)."""
        raise SystemExit(status)

    def buffer(self, n: int, dtype, backend=None) -> np.ndarray:
        """A host vector of ``dtype`` kept for reuse by the per-step reduction: n entries
        padded with zeros to a multiple of ``size`` (so it splits into equal blocks); made
        by ``backend.host_buffer`` where given (page-locked for a GPU's copies)."""
        padded = -(-n // self.size) * self.size
        kept = getattr(self, "_buffer", None)
        if kept is None or kept.shape != (padded,) or kept.dtype != dtype:
            kept = self._buffer = np.zeros(padded, dtype) if backend is None else backend.host_buffer(padded, dtype)
        return kept

    failure: BaseException | None = None  # an error held back until the next vote (see held_back)

    def vote(self, *wishes: bool) -> list[bool]:
        """For each wish, whether any rank has it: one collective, so one rank's reason to
        stop stops every rank at the same step. A :attr:`failure` held back on any rank is
        raised on every rank instead."""
        flags = np.array([*wishes, self.failure is not None], dtype=np.float64)
        self.allreduce_sum(flags)
        if flags[-1] > 0:
            failure, self.failure = self.failure, None
            share_failure(self, failure)
        return [bool(f > 0) for f in flags[:-1]]

    def share(self, text: str) -> list[str]:
        """Every rank's ``text`` (at most SHARED_BYTES of UTF-8), in rank order: one
        collective."""
        return [text]

class SingleProcess(Communicator):
    """One rank: every collective is the identity."""


class MPICommunicator(Communicator):
    """An mpi4py communicator (``MPI.COMM_WORLD`` or a sub-communicator)."""

    def __init__(self, comm):
        self.comm, self._sum = comm, _mpi().SUM
        self._blocks = {}  # (entries, dtype): this rank's block of a reduction, kept for the next of that size
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def allreduce_sum(self, buf: np.ndarray) -> None:
        if self.size == 1:
            return
        n = buf.shape[0]
        whole = buf if n % self.size == 0 else np.concatenate([buf, np.zeros(-n % self.size, buf.dtype)])
        key = (whole.shape[0] // self.size, buf.dtype)
        block = self._blocks.get(key)
        if block is None:
            block = self._blocks[key] = np.empty(key[0], dtype=buf.dtype)
        self.comm.Reduce_scatter_block(whole, block, op=self._sum)
        self.comm.Allgather(block, whole)
        if whole is not buf:
            buf[...] = whole[:n]

    def barrier(self) -> None:
        self.comm.Barrier()

    def share(self, text: str) -> list[str]:
        """One all-gather of fixed-size blocks, started without blocking and waited for in
        short sleeps: while a rank waits for a slow one (still reading its data, say), its
        signal handlers run and its CPU rests, where MPI's own wait would spin in C."""
        mine = np.zeros(SHARED_BYTES, dtype=np.uint8)
        raw = text.encode()
        if len(raw) > SHARED_BYTES:
            raise ValueError(f"share: at most {SHARED_BYTES} bytes, got {len(raw)}")
        mine[:len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        every = np.empty(SHARED_BYTES * self.size, dtype=np.uint8)
        _wait(self.comm.Iallgather(mine, every))
        return [bytes(b).rstrip(b"\0").decode() for b in every.reshape(self.size, SHARED_BYTES)]

    def meet(self) -> None:
        _wait(self.comm.Ibarrier())

    def abort(self, status: int) -> None:
        """MPI_Abort, once what this rank wrote to its standard output and error has left
        for the launcher: MPICH's launcher kills every rank on an abort without reading the
        pipes further, and lost the rank's last words in 1 run in 9 here."""
        for fd in (1, 2):
            _drained(fd)
        self.comm.Abort(status)


def _wait(request) -> None:
    """Wait for a non-blocking MPI request in ever longer sleeps (up to 50 ms): Python runs
    signal handlers between them, where MPI's own wait would spin in C, deaf to them."""
    pause = 1e-4
    while not request.Test():
        time.sleep(pause)
        pause = min(2 * pause, 0.05)


def _drained(fd: int, limit: float = 2.0) -> None:
    """Return once the pipe at ``fd`` holds no unread bytes, or after ``limit`` seconds (a
    launcher that stopped reading); at once where ``fd`` is not a pipe (a terminal or a file
    keeps what it was given)."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
        deadline = time.monotonic() + limit
        while _unread(fd) and time.monotonic() < deadline:
            time.sleep(1e-3)
    except (OSError, ImportError):  # ImportError: no fcntl (Windows)
        return


def _unread(fd: int) -> int:
    """The bytes waiting in the pipe at ``fd`` (either end), by Linux's FIONREAD."""
    import fcntl
    import termios
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, bytes(4)), sys.byteorder, signed=True)


def _mpi():
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as err:  # RuntimeError: mpi4py found no MPI library to load
        raise ImportError(f"{INSTALL_HINT} ({type(err).__name__}: {err})" if isinstance(err, RuntimeError)
                          else INSTALL_HINT) from err
    return MPI


def world() -> MPICommunicator:
    """MPI_COMM_WORLD as a :class:`Communicator` (ImportError naming the extra without mpi4py)."""
    return MPICommunicator(_mpi().COMM_WORLD)


def communicator(comm) -> Communicator | None:
    """``comm`` as a :class:`Communicator`: None stays None (no data parallelism), a
    Communicator is itself, "world" is MPI_COMM_WORLD, an mpi4py communicator is wrapped."""
    if comm is None or isinstance(comm, Communicator):
        return comm
    if isinstance(comm, str) and comm == "world":
        return world()
    if hasattr(comm, "Get_rank") and hasattr(comm, "Reduce"):
        return MPICommunicator(comm)
    raise TypeError(f"comm: expected an mpi4py communicator, a bpgpu Communicator, 'world' or None, got {comm!r}")


def launched_by_mpi(environ=os.environ) -> bool:
    """True when an MPI launcher (mpiexec/mpirun of MPICH or Open MPI, Slurm's srun with
    PMI) started this process as one of several ranks."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"):
        if environ.get(name, "1").strip() not in ("", "0", "1"):
            return True
    return False


def local_rank(comm: Communicator, environ=os.environ) -> int:
    """This rank's index among the ranks on its machine (the launcher's, else the rank)."""
    for name in ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "PMIX_LOCAL_RANK"):
        if environ.get(name, "").isdigit():
            return int(environ[name])
    return comm.rank


# -- which rows form each step ---------------------------------------------------------


def interleaved_order(counts) -> tuple[np.ndarray, np.ndarray]:
    """(rank, j) of each global row, in the global order the steps walk through.

    Rank r holds ``counts[r]`` rows; its local row j sits at the float64 position
    (j + ½) / counts[r] ∈ (0, 1), and the global order sorts every row by that position,
    ties going to the lower rank. Equal shards interleave round-robin (row 0 of ranks
    0 … P−1, then row 1 of each, …); unequal shards are spread evenly. Each rank's rows
    keep their own order, so every step takes a contiguous block of each rank's rows.
    """
    ranks = np.concatenate([np.full(c, r) for r, c in enumerate(counts)]).astype(np.int64)
    local = np.concatenate([np.arange(c) for c in counts]).astype(np.int64)
    position = (local + 0.5) / np.asarray(counts, dtype=np.float64)[ranks]
    order = np.lexsort((ranks, position))
    return ranks[order], local[order]


def step_slices(rank: int, counts: list[int], batch_size: int | None):
    """(local slices, global step sizes, global m): the rows ``rank`` contributes to each
    step, as (start, stop) of its own rows, and each step's example count over all ranks
    (rank r holds ``counts[r]`` rows).

    ``batch_size`` is the global batch (None: every row, one step). With the ranks' rows
    in :func:`interleaved_order`, step k is global rows k·B … (k+1)·B − 1: one process
    given the rows in that order and ``batch_size=B`` takes exactly the same steps, and
    each rank's share of a step is in proportion to its rows (within one row).
    """
    total = sum(counts)
    if batch_size is None or batch_size >= total:
        return [(0, counts[rank])], [total], total
    ranks, _ = interleaved_order(counts)
    mine = np.concatenate([[0], np.cumsum(ranks == rank)])
    starts = range(0, total, batch_size)
    ends = [min(s + batch_size, total) for s in starts]
    slices = [(int(mine[s]), int(mine[e])) for s, e in zip(starts, ends)]
    return slices, [e - s for s, e in zip(starts, ends)], total


def shard(n: int, rank: int, size: int) -> tuple[int, int]:
    """(start, stop): rank's block of n rows split into ``size`` contiguous blocks whose
    lengths differ by at most one (the first n mod size blocks one longer)."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def sum_over_ranks(comm: Communicator, backend, flat, *numbers) -> list[float]:
    """flat ← Σ over ranks of ``flat`` (a backend vector, or None), in place, and the
    sums of ``numbers`` (0-d arrays or Python numbers), in ONE collective: they travel
    packed at the end of the flat vector. Device vectors are copied through one kept host
    buffer, page-locked on CuPy, both ways (CUDA-aware MPI and NCCL are not used): no new
    array per step.

    The packed numbers share the vector's dtype: example counts are exact below 2**24
    rows per step in float32, 2**53 in float64.
    """
    if flat is None:  # a few numbers (a validation loss and its count): the kept buffer stays the steps'
        buf = np.array([float(x) for x in numbers])
        comm.allreduce_sum(buf)
        return buf.tolist()
    n = flat.shape[0]
    buf = comm.buffer(n + len(numbers), np.dtype(str(flat.dtype).rpartition(".")[2]), backend)
    backend.copy_to_host(flat, buf[:n])
    buf[n:n + len(numbers)] = [float(x) for x in numbers]
    comm.allreduce_sum(buf)
    backend.copy_from_host(buf[:n], flat)
    return buf[n:n + len(numbers)].tolist()

