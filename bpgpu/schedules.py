"""Learning-rate schedules: rules that change an optimiser's ``lr`` between epochs.

They act through ``fit``'s per-epoch callback, so the trainer knows nothing about them::

    opt, schedule = bpgpu.SGD(0.1), bpgpu.schedules.InvScaling(0.1, power_t=0.5)
    seen = 0
    def after_epoch(epoch, history):
        global seen
        seen += len(X)
        schedule.epoch_ends(opt, seen)
    net.fit(X, Y, optimizer=opt, callback=after_epoch)

``epoch_ends`` runs after every epoch; ``plateau`` when the watched loss stopped improving
(:class:`Plateau` says when), and returns True where training should stop. These are
scikit-learn's ``learning_rate`` rules ("constant", "invscaling", "adaptive");
:mod:`bpgpu.sklearn` runs them, and ``bpgpu train --lr-schedule``.
"""

from __future__ import annotations

import math

from . import validation as check


class Constant:
    """η stays; a plateau ends training."""

    def epoch_ends(self, opt, samples_seen: int) -> None:
        pass

    def plateau(self, opt) -> bool:
        return True


class InvScaling(Constant):
    """η = η0 / (t + 1)^power_t, t the training examples seen so far."""

    def __init__(self, lr0: float, power_t: float = 0.5):
        self.lr0 = check.number("lr0", lr0, low=0.0, low_open=True)
        self.power_t = check.number("power_t", power_t, low=0.0)  # scikit-learn refuses a negative one too

    def epoch_ends(self, opt, samples_seen: int) -> None:
        opt.lr = self.lr0 / (samples_seen + 1) ** self.power_t


class Adaptive(Constant):
    """η stays until a plateau, which divides it by ``factor``; a plateau once η ≤ ``min_lr``
    ends training."""

    def __init__(self, factor: float = 5.0, min_lr: float = 1e-6):
        self.factor = check.number("factor", factor, low=1.0, low_open=True)
        self.min_lr = check.number("min_lr", min_lr, low=0.0)

    def plateau(self, opt) -> bool:
        if opt.lr <= self.min_lr:
            return True
        opt.lr /= self.factor
        return False


class Plateau:
    """Whether a loss stopped improving, by scikit-learn's rule: an epoch whose loss is not
    below the best so far by more than ``tol`` is stale; ``update(loss)`` is True once more
    than ``patience`` epochs in a row were (scikit-learn's ``n_iter_no_change``), and the
    count starts again. ``best`` and ``stale`` are its whole state (to resume it)."""

    def __init__(self, tol: float = 1e-4, patience: int = 10, best: float = math.inf, stale: int = 0):
        self.tol = check.number("tol", tol, low=0.0)
        self.patience = check.number("patience", patience, low=0, integer=True)
        self.best, self.stale = float(best), int(stale)

    def update(self, loss: float) -> bool:
        self.stale = self.stale + 1 if loss > self.best - self.tol else 0
        self.best = min(self.best, loss)
        if self.stale <= self.patience:
            return False
        self.stale = 0
        return True


SCHEDULES = {"constant": Constant, "invscaling": InvScaling, "adaptive": Adaptive}


def schedule(kind: str, lr0: float, power_t: float = 0.5) -> Constant:
    """scikit-learn's ``learning_rate`` rule ``kind`` ("constant", "invscaling", "adaptive")
    for a run starting at ``lr0`` (invscaling's η0; the others keep the optimiser's η)."""
    return InvScaling(lr0, power_t) if kind == "invscaling" else SCHEDULES[kind]()
