"""Where a training run stands between two steps (:class:`Position`), the copies of weights
and optimiser state it may go back to (:class:`State`, :class:`Rollback`), and the
early-stopping watch: what a stopped ``fit`` needs to continue exactly as if it had never
stopped (docs/architecture.md, "Training").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


class State:
    """A copy of the weights (a flat vector, the layout of ``net.params``) and of the
    optimiser's state (:meth:`~bpgpu.optimizers.Optimizer.snapshot`), to go back to."""

    def __init__(self, params, optimizer: dict):
        self.params, self.optimizer = params, optimizer

    @classmethod
    def of(cls, net, opt, reuse: "State | None" = None) -> "State":
        """The state now; ``reuse``, a state no longer needed, lends its arrays (written over)."""
        copy = net.backend.copy
        if reuse is None:
            return cls(copy(net.params), opt.snapshot(copy))
        reuse.params[...] = net.params
        return cls(reuse.params, opt.snapshot(copy, into=reuse.optimizer))

    def restore(self, net, opt) -> None:
        net.set_params(self.params)
        opt.restore(self.optimizer)


class Rollback:
    """The weights and optimiser state at the start of this epoch and of the one before
    (each checked finite at the end of the epoch before it), to go back to on divergence."""

    def __init__(self):
        self.now: State | None = None
        self.before: State | None = None

    def keep(self, net, opt) -> None:
        """At an epoch's start: the state two epochs back is no longer needed, and its
        arrays take this one's copy."""
        self.before, self.now = self.now, State.of(net, opt, reuse=self.before)

    def restore(self, net, opt, nonfinite: tuple[str, int]) -> None:
        """Go back to the last good state: this epoch's start, or the one before when the
        loss was already non-finite at the epoch's first step (``nonfinite`` = ("loss",
        0)), which condemns the weights this epoch started with."""
        before_this_epoch = nonfinite == ("loss", 0) and self.before is not None
        (self.before if before_this_epoch else self.now).restore(net, opt)


@dataclass
class Position:
    """Where a run stands: ``epoch`` whole epochs done, then ``step`` steps of the next
    one (a part epoch; 0 at an epoch's start) over ``samples`` examples, whose J were
    ``losses`` (host floats, one a step); and the early-stopping state: ``best_loss``
    (inf before any finite validation loss), ``best_epoch``, ``wait`` (epochs since it)
    and, where patience is watched, ``best``: the :class:`State` of the best epoch; and
    ``dropout_draws``, the network's dropout generator state (:mod:`bpgpu.dropout`).

    ``fit(..., resume=history.position)`` (or a checkpoint's ``position``) continues from it.
    """

    epoch: int = 0
    step: int = 0
    samples: int = 0
    losses: list = field(default_factory=list)
    best_loss: float = math.inf
    best_epoch: int | None = None
    wait: int = 0
    best: State | None = field(default=None, repr=False)
    dropout_draws: int = 0

    @classmethod
    def starting(cls, initial_epoch: int, resume: "Position | None", epochs: int, step_sizes: list) -> "Position":
        """Where a fit starts: ``resume`` (checked against this run's batches) or the start
        of epoch ``initial_epoch``; refused when no epoch is left to train."""
        if resume is not None:
            if not isinstance(resume, Position):
                raise TypeError(f"resume: expected a bpgpu.position.Position (a History's or a checkpoint's "
                                f".position), got {type(resume).__name__}")
            if initial_epoch not in (0, resume.epoch):
                raise ValueError(f"initial_epoch: resume starts at epoch {resume.epoch}, got initial_epoch={initial_epoch}")
            start = resume.check(step_sizes)
        else:
            start = cls(epoch=initial_epoch)
        if start.epoch >= epochs:
            raise ValueError(f"epochs: expected more than the {start.epoch} epochs already done (initial_epoch), "
                             f"got epochs={epochs}: epochs counts the epochs before a resume too")
        return start

    def check(self, step_sizes: list) -> "Position":
        """Refuse a part epoch that does not fit this run's batches (another batch size or
        row count): a ValueError naming ``resume``. ``step_sizes``: examples in each step."""
        if self.step and (self.step >= len(step_sizes) or sum(step_sizes[:self.step]) != self.samples
                          or len(self.losses) != self.step):
            raise ValueError(f"resume: the run stopped after {self.step} steps ({self.samples} examples) of epoch "
                             f"{self.epoch}, which this run's batches ({len(step_sizes)} steps of "
                             f"{sum(step_sizes)} examples an epoch) cannot continue; resume with the same data "
                             "and batch size")
        return self

    def meta(self) -> dict:
        """The JSON-able fields (``best`` aside; inf as None)."""
        return {"epoch": self.epoch, "step": self.step, "samples": self.samples, "losses": list(self.losses),
                "best_loss": None if math.isinf(self.best_loss) else self.best_loss,
                "best_epoch": self.best_epoch, "wait": self.wait, "dropout_draws": self.dropout_draws}

    @classmethod
    def from_meta(cls, meta: dict, best: State | None = None) -> "Position":
        best_loss = meta.get("best_loss")
        return cls(epoch=meta["epoch"], step=meta["step"], samples=meta["samples"], losses=list(meta["losses"]),
                   best_loss=math.inf if best_loss is None else best_loss, best_epoch=meta["best_epoch"],
                   wait=meta["wait"], best=best, dropout_draws=meta.get("dropout_draws", 0))


class EarlyStopping:
    """Tracks the best validation loss, a copy of its weights and optimiser state (with
    ``patience`` only: only early stopping goes back to the best epoch), and the epochs
    since; ``start`` (a :class:`Position`) carries a resumed run's."""

    def __init__(self, patience, start: Position, net):
        self.patience = patience
        self.best_loss, self.best_epoch, self.wait = start.best_loss, start.best_epoch, start.wait
        self.best = start.best if patience is not None else None
        self._own = False  # a resumed run's best belongs to its Position: copied, never written over
        self._net = net  # whose dropout_draws each Position records

    def improved(self, epoch: int, val_loss: float, net, opt) -> None:
        """Watch epoch ``epoch``'s validation loss: the best so far, or one more epoch since it."""
        if val_loss < self.best_loss:
            self.wait, self.best_loss, self.best_epoch = 0, val_loss, epoch
            if self.patience is not None:
                self.best = State.of(net, opt, reuse=self.best if self._own else None)
                self._own = True
        else:
            self.wait += 1

    @property
    def exhausted(self) -> bool:
        return self.patience is not None and self.wait >= self.patience

    def position(self, epoch: int, part: tuple = (0, 0, [])) -> Position:
        """The :class:`Position` after ``epoch`` whole epochs and ``part`` = (steps,
        samples, losses) of the next."""
        step, samples, losses = part
        return Position(epoch, step, samples, list(losses), self.best_loss, self.best_epoch, self.wait, self.best,
                        self._net.dropout_draws)
