"""The batch plan of a ``fit``: which rows each step of an epoch takes, in which order."""

from __future__ import annotations

import numpy as np

from . import distributed


class BatchPlan:
    """Step k of every epoch takes rows ``slices[k]`` = (start, stop) of this process's m rows
    (in the epoch's order), ``sizes[k]`` examples over all ranks; ``batch_size`` None: one step
    of every row. Under MPI (``comm``, every rank's row ``counts``) the batch is the global one
    (:func:`bpgpu.distributed.step_slices`). ``shuffle`` permutes the rows every epoch, seeded
    by (seed, epoch, rank), when there is more than one step; ``backend`` holds the rows."""

    def __init__(self, m: int, batch_size: int | None, shuffle: bool, seed, backend, comm=None, counts=None):
        if comm is None:
            bs = m if batch_size is None else min(int(batch_size), m)
            self.slices = [(s, min(s + bs, m)) for s in range(0, m, bs)]
            self.sizes = [b - a for a, b in self.slices]
        else:
            self.slices, self.sizes, _ = distributed.step_slices(comm.rank, counts, batch_size)
        self.m, self.seed, self.backend, self.comm = m, seed, backend, comm
        self.shuffle = shuffle and len(self.slices) > 1

    @property
    def steps(self) -> int:
        return len(self.slices)

    def batches(self, X, Y, epoch: int, first: int = 0):
        """(X_k, Y_k), (m_k, n0) and (m_k, sL), of epoch ``epoch``'s steps from ``first`` on."""
        X, Y = self.ordered(X, Y, epoch)
        for a, b in self.slices[first:]:
            yield (X, Y) if (a, b) == (0, self.m) else (X[a:b, :], Y[a:b, :])

    def ordered(self, X, Y, epoch: int):
        """(X, Y) in epoch ``epoch``'s order; rank 0 draws what a single process draws, so
        one rank trains as no comm does."""
        if not self.shuffle:
            return X, Y
        comm = self.comm
        seed = [self.seed, epoch] + ([comm.rank] if comm is not None and comm.rank else [])
        perm = self.backend.asarray(np.random.default_rng(seed).permutation(X.shape[0]), "int64")
        xp = self.backend.xp
        return xp.take(X, perm, axis=0), xp.take(Y, perm, axis=0)
