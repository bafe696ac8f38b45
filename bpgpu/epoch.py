"""One epoch of ``fit``: its steps over the batch plan, then its loss, checked finite."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass


class Epochs:
    """Steps ``net`` with ``opt`` over (X, Y) as ``plan`` (a :class:`~bpgpu.batches.BatchPlan`)
    says, ``chunk_size`` rows at a time (None: whole batches), D summed over ranks (``comm``),
    the rows weighted by ``w`` (a :class:`~bpgpu.weights.RowWeights`, or None)."""

    def __init__(self, net, opt, X, Y, plan, chunk_size=None, comm=None, w=None):
        self.net, self.opt, self.X, self.Y, self.plan = net, opt, X, Y, plan
        self.chunk_size, self.comm, self.w = chunk_size, comm, w

    def run(self, epoch: int, first: int, rules) -> list:
        """Epoch ``epoch`` from step ``first`` on: the J of each step taken (0-d device
        arrays, nothing brought to the host), fewer than planned when ``rules`` (a
        :class:`~bpgpu.stop_rules.StopRules`) stop it within."""
        losses = []
        for X, Y, w in self.plan.batches(self.X, self.Y, epoch, first, self.w):
            losses.append(self.step(X, Y, w))
            if rules.after_step():
                break
        return losses

    def step(self, X, Y, w=None):
        """J of one step (``net.step``), retried in ever smaller chunks if the device runs
        out of memory; the chunk size that worked is kept for the steps after. A step that
        runs out of memory fails before its update (and before its all-reduce), so the
        weights are untouched."""
        net = self.net
        while True:
            try:
                return net.step(X, Y, self.opt, self.chunk_size, self.comm, w)
            except net.backend.out_of_memory:
                m = X.shape[0]
                smaller = max(1, (self.chunk_size or m) // 2)
                if smaller == self.chunk_size or m == 1:
                    raise
            # Outside the except block, which still holds the failed attempt's arrays.
            net.release_buffers()
            net.backend.release_memory()
            warnings.warn(f"out of device memory for a batch of {m}; retrying with chunk_size={smaller} "
                          "(the same D, computed in parts)", RuntimeWarning, stacklevel=5)
            self.chunk_size = smaller


@dataclass
class EpochLoss:
    """An epoch's ``loss`` (None when not finite), ``nonfinite`` = (what, k) where step k's
    loss (what = "loss") or, by the epoch's end, the weights (what = "weights", k = the last
    step) are not finite, and ``steps``: the J of every step of the epoch (host floats)."""

    loss: float | None
    nonfinite: tuple[str, int] | None
    steps: list[float]


def epoch_loss(earlier, losses, params, step_sizes, backend) -> EpochLoss:
    """The :class:`EpochLoss` of an epoch whose steps before a resume had J ``earlier`` (host
    floats) and since ``losses`` (0-d device arrays); ``step_sizes``: the examples in each
    step taken, as Python ints.

    One transfer to the host per epoch: the step losses J together with Σ of every weight,
    finite when all weights are; only when it is not are the weights looked at one by one
    (a huge but finite sum is not a divergence). A weight can turn ±inf while the loss stays
    finite (a saturated unit).
    """
    xp = backend.xp
    weights = backend.total(params)
    if len(losses) == 1:  # full batch: plain floats, no host arrays
        step_losses, weight_sum = [float(losses[0])], float(weights)
    else:
        host = backend.to_host(xp.stack(losses + [weights]))
        step_losses, weight_sum = host[:-1].tolist(), float(host[-1])
    step_losses = list(earlier) + step_losses
    for k, J in enumerate(step_losses):
        if not math.isfinite(J):
            return EpochLoss(None, ("loss", k), step_losses)
    if not math.isfinite(weight_sum) and not all(bool(xp.all(xp.isfinite(p))) for p in params):
        return EpochLoss(None, ("weights", len(step_losses) - 1), step_losses)
    # Weighted by each step's share of the examples, so large finite losses cannot overflow.
    seen = sum(step_sizes)
    return EpochLoss(sum(J * (n / seen) for J, n in zip(step_losses, step_sizes)), None, step_losses)
