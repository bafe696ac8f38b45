"""``--lr-schedule``: the learning rate changed between epochs by scikit-learn's rules
(:mod:`bpgpu.schedules`), with a state that a checkpoint keeps, so a resumed run goes on
as the uninterrupted one.

- ``constant``: η stays (the default).
- ``invscaling``: after each epoch η = η0 / (t + 1)^power_t, t the training examples seen
  (every rank's), so η0 = ``--lr``.
- ``adaptive``: η stays until the training loss has not improved by more than 1e-4 for more
  than 10 epochs in a row (scikit-learn's ``tol`` and ``n_iter_no_change``), then η ← η / 5;
  a plateau once η ≤ 1e-6 ends training ("stopped: lr_schedule").
"""

from __future__ import annotations

import math

from ..schedules import SCHEDULES, Adaptive, Plateau, schedule

NAMES = tuple(SCHEDULES)


class LRSchedule:
    """The run's schedule: ``after_epoch(optimizer, epoch, loss)`` sets the optimiser's η for
    the next epoch and says whether training should stop; ``state()`` is what a checkpoint
    keeps, ``lr`` the η of every epoch of the run so far (those before --resume too).

    Args:
        name: one of NAMES.
        lr0: η0, the rate the run started with.
        power_t: invscaling's exponent.
        rows: training examples per epoch, over every rank.
        saved: the checkpoint's ``state()`` (None for a new run, or where it was not saved
            with this schedule).
        lr: the η of the checkpoint's epochs.
    """

    def __init__(self, name: str, lr0: float, power_t: float, rows: int, saved: dict | None = None,
                 lr: list | None = None):
        self.name, self.lr0, self.rows, self.lr = name, lr0, rows, list(lr or [])
        self.rule = schedule(name, lr0, power_t)
        saved = saved if saved and saved.get("name") == name else {}
        best = saved.get("best")
        self.plateau = Plateau(best=math.inf if best is None else best, stale=saved.get("stale", 0))
        self.stopped = False

    def after_epoch(self, optimizer, epoch: int, loss: float) -> bool:
        """After ``epoch`` (0-based, counting the epochs before --resume) of loss ``loss``. A
        plateau acts on the adaptive rule alone (the others would end the run there, as
        scikit-learn's do without early stopping; --patience is this command's)."""
        self.lr.append(optimizer.lr)
        self.rule.epoch_ends(optimizer, (epoch + 1) * self.rows)
        if isinstance(self.rule, Adaptive) and self.plateau.update(loss):
            self.stopped = self.rule.plateau(optimizer)
        return self.stopped

    def state(self) -> dict:
        best = self.plateau.best if math.isfinite(self.plateau.best) else None  # JSON has no inf
        return {"name": self.name, "lr0": self.lr0, "best": best, "stale": self.plateau.stale}

    def shown(self, optimizer) -> dict:
        """{"lr": η} for the progress lines where η changes, else {}."""
        return {} if self.name == "constant" else {"lr": optimizer.lr}
