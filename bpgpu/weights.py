"""Example weights sᵢ ≥ 0 (scikit-learn's objective): checked, staged, sliced with their rows.

    J = (Σᵢ sᵢ·lossᵢ + ½λ‖W‖²) / Σᵢ sᵢ,   Delta(l) = Σᵢ sᵢ·d(l+1)ᵢ·[1 | a(l)ᵢ]ᵀ,
    D(l) = (Delta(l) + λ·[0 | W(l)]) / Σᵢ sᵢ          (Σ over one step's rows)

Σᵢ sᵢ of a step is summed from a host copy, so a step learns it without a transfer.
``class_weight`` ("balanced" or {class: weight}) becomes one weight per row.
"""

from __future__ import annotations

import functools

import numpy as np

from . import validation as check


class RowWeights:
    """The weights of r rows: ``s`` and ``root`` = √s, (r, 1) backend arrays of the network's
    dtype (the losses weigh d(L) by s, a residual by √s); ``host`` (r,) float64, the same values;
    ``total`` = Σ s. ``w[a:b]`` and ``w.take(perm, perm_on_device)`` follow their rows."""

    def __init__(self, host: np.ndarray, s, root):
        self.host, self.s, self.root = host, s, root

    @classmethod
    def stage(cls, host: np.ndarray, backend, dtype: str) -> "RowWeights":
        """Weights (m,) from the host onto ``backend``; ``host`` keeps what ``dtype`` holds."""
        host = host.astype(dtype).astype(np.float64)
        column = host[:, None]
        return cls(host, backend.asarray(column, dtype), backend.asarray(np.sqrt(column), dtype))

    @functools.cached_property
    def total(self) -> float:
        return float(np.sum(self.host))

    def __getitem__(self, rows: slice) -> "RowWeights":
        return RowWeights(self.host[rows], self.s[rows, :], self.root[rows, :])

    def take(self, perm: np.ndarray, on_device, xp) -> "RowWeights":
        """The rows in the order ``perm`` (host), ``on_device`` (the same in ``xp``)."""
        return RowWeights(self.host[perm], xp.take(self.s, on_device, axis=0), xp.take(self.root, on_device, axis=0))


def checked(value, m: int, backend, name: str = "sample_weight") -> np.ndarray | None:
    """``value`` (m,) as host float64 weights, checked finite and ≥ 0; None stays None."""
    if value is None:
        return None
    a = check.host_or_backend_array(name, value, backend)
    if not isinstance(a, np.ndarray):
        a = backend.to_host(a)
    if a.shape != (m,):
        raise ValueError(f"{name}: expected one weight per row, shape ({m},), got shape {tuple(a.shape)}")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a) | (a < 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name}: expected finite weights >= 0, got {float(a[row])!r} at row {row}")
    return a


class Pending:
    """Weights checked on every rank, staged by :meth:`stage` once the ranks agree: ``given``
    (m,) host sample weights or None; ``class_weight`` and each row's class ``codes``."""

    def __init__(self, sample_weight, class_weight, Y, net):
        self.given = checked(sample_weight, Y.shape[0], net.backend)
        self.class_weight, self.codes, self.k = class_weight, None, 0
        if class_weight is not None:
            self.codes, self.k = _class_codes(Y, net.output, net.backend)
            self.per_class = _per_class(class_weight, self.k, net.classes)

    def stage(self, backend, dtype: str, comm=None) -> RowWeights | None:
        """sample_weight × class_weight as :class:`RowWeights` (None when both are None); under
        MPI (``comm``) "balanced" counts every rank's rows (one collective)."""
        host = self.given
        if self.class_weight is not None:
            per_class = self.per_class
            if per_class is None:  # "balanced": the counts of every rank's rows
                counts = np.bincount(self.codes, minlength=self.k).astype(np.float64)
                if comm is not None:
                    comm.allreduce_sum(counts)
                per_class = _balanced(counts)
            host = per_class[self.codes] if host is None else host * per_class[self.codes]
        return None if host is None else RowWeights.stage(host, backend, dtype)


def _class_codes(Y, output: str, backend):
    """(each row's class index (m,), the class count k) of ``Y``: one-hot rows of a softmax
    output, or the 0/1 column of one sigmoid unit (two classes)."""
    if not (output == "softmax" or (output == "sigmoid" and Y.shape[1] == 1)):
        raise ValueError(f"class_weight: expected a softmax output or one sigmoid unit (one class per row), "
                         f"got output {output!r} with {Y.shape[1]} units")
    host = backend.to_host(Y)
    if host.shape[1] > 1:
        return np.argmax(host, axis=1), host.shape[1]
    if not np.isin(host[:, 0], (0.0, 1.0)).all():
        raise ValueError("class_weight: expected 0/1 targets on one sigmoid unit, got other values")
    return host[:, 0].astype(np.intp), 2


def _balanced(counts: np.ndarray) -> np.ndarray:
    """scikit-learn's "balanced": m / (k·count(c)) for each of the k classes present."""
    present = counts > 0
    return np.where(present, counts.sum() / (present.sum() * np.maximum(counts, 1)), 1.0)


def _per_class(value, k: int, classes) -> np.ndarray | None:
    """(k,) the weight of each class index from {class index or name: weight} (None for
    "balanced", which needs the counts)."""
    if isinstance(value, str):
        check.choice("class_weight", value, ("balanced",))
        return None
    if not isinstance(value, dict):
        raise TypeError(f"class_weight: expected 'balanced' or a dict {{class: weight}}, got {value!r}")
    names = [str(c) for c in (classes if classes is not None else range(k))]
    out = np.ones(k)
    for key, weight in value.items():
        is_index = isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < k
        if not is_index and str(key) not in names:
            raise ValueError(f"class_weight: expected classes among {', '.join(names)} (or indices 0..{k - 1}), "
                             f"got {key!r}")
        out[key if is_index else names.index(str(key))] = check.number(f"class_weight[{key!r}]", weight, low=0.0)
    return out


def reciprocal(total: float) -> float:
    """1 / Σᵢ sᵢ of a step; a step whose weights sum to 0 is refused (scikit-learn's MLPs raise
    there too: np.average's ZeroDivisionError)."""
    if total == 0:
        raise ValueError("sample_weight: the weights of a batch's rows sum to 0, which leaves J and D "
                         "undefined; give some of its rows a weight > 0 (or use larger batches)")
    return 1.0 / total
