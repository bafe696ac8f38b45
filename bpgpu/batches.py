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

    def batches(self, X, Y, epoch: int, first: int = 0, w=None):
        """(X_k, Y_k, w_k), (m_k, n0), (m_k, sL) and the rows' weights (a
        :class:`~bpgpu.weights.RowWeights`, or None as ``w`` is), of epoch ``epoch``'s steps
        from ``first`` on."""
        X, Y, w = self.ordered(X, Y, epoch, w)
        for a, b in self.slices[first:]:
            if (a, b) == (0, self.m):
                yield X, Y, w
            else:
                yield X[a:b, :], Y[a:b, :], None if w is None else w[a:b]

    def ordered(self, X, Y, epoch: int, w=None):
        """(X, Y, w) in epoch ``epoch``'s order; rank 0 draws what a single process draws, so
        one rank trains as no comm does."""
        if not self.shuffle:
            return X, Y, w
        comm = self.comm
        seed = [self.seed, epoch] + ([comm.rank] if comm is not None and comm.rank else [])
        order = np.random.default_rng(seed).permutation(X.shape[0])
        perm, xp = self.backend.asarray(order, "int64"), self.backend.xp
        return xp.take(X, perm, axis=0), xp.take(Y, perm, axis=0), None if w is None else w.take(order, perm, xp)
