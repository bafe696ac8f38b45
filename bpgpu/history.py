"""What one ``fit`` did (:class:`History`), and how a diverging run says so."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field, fields

from .position import Position


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or weight; the last good weights are in place."""


class DivergenceWarning(RuntimeWarning):
    """``fit(on_nonfinite="stop")`` stopped a diverging run; the last good weights are in place."""


@dataclass
class History:
    """What one ``fit`` did.

    loss[e] is epoch e's training loss: the mean over its examples of the mini-batch
    losses J computed during the epoch (each before its own update). ``epochs`` counts
    whole epochs; an epoch stopped within (Ctrl-C, ``stop``, ``max_time``) is ``part``,
    {"epoch", "steps", "samples", "loss"} (its steps' mean J), in ``steps`` and ``samples``
    but not in ``loss`` or ``epochs``. ``position`` is where the run stands, for
    ``fit(resume=...)``.
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epochs: int = 0
    steps: int = 0
    samples: int = 0
    elapsed: float = 0.0
    stop_reason: str = ""
    best_epoch: int | None = None
    nonfinite_at: dict | None = None  # {"epoch": e, "step": k} of the first non-finite loss
    part: dict | None = None
    position: Position | None = field(default=None, repr=False, compare=False)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict:
        """The JSON-able record (``position`` aside: it holds arrays)."""
        record = {f.name: deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "position"}
        return {**record, "samples_per_s": self.samples_per_s}

    def divergence_message(self) -> str:
        """What a run that stopped on a non-finite loss or weight says about it."""
        where = self.nonfinite_at
        return (f"training diverged: non-finite loss or weights at epoch {where['epoch']}, step {where['step']}; "
                "the last good weights were restored")
