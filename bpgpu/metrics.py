"""How good predictions are, beside the loss: accuracy for classes, R² for numbers.

Both take targets Y and outputs A of one backend, shaped (m, k), and return a Python float;
the reductions run on the device and only k numbers reach the host.
"""

from __future__ import annotations

import numpy as np

from .backend import get_backend


def classes(A, xp):
    """Each row's class (m,): the largest output's index, or for one output ``a ≥ 0.5``
    (a probability of class 1)."""
    if A.shape[1] == 1:
        return A[:, 0] >= 0.5
    return xp.argmax(A, axis=1)


def accuracy(Y, A, backend="numpy") -> float:
    """The share of rows whose class under A equals the class under Y (one-hot rows, or one
    column of 0/1 labels): scikit-learn's ``accuracy_score`` of the two class vectors."""
    xp = get_backend(backend).xp
    return int(xp.count_nonzero(classes(Y, xp) == classes(A, xp))) / Y.shape[0]


def r2(Y, A, backend="numpy") -> float:
    """The coefficient of determination 1 − Σ(y − a)² / Σ(y − ȳ)², per output column and
    averaged over the columns: scikit-learn's ``r2_score`` (uniform average). A constant
    column scores 1 when predicted exactly, else 0, as scikit-learn does."""
    backend = get_backend(backend)
    xp = backend.xp
    ss_res = backend.to_host(xp.sum((Y - A) ** 2, axis=0)).astype(np.float64)
    ss_tot = backend.to_host(xp.sum((Y - xp.mean(Y, axis=0)) ** 2, axis=0)).astype(np.float64)
    constant = ss_tot == 0
    score = np.where(constant, np.where(ss_res == 0, 1.0, 0.0), 1.0 - ss_res / np.where(constant, 1.0, ss_tot))
    return float(np.mean(score))


def score(net, X, Y, metric: str, rows: int = 65536) -> float:
    """``metric`` ("accuracy" or "r2") of ``net``'s outputs for X (m, sizes[0]) against
    Y (m, sizes[-1]); the forward passes take ``rows`` rows at a time, so memory holds one
    chunk's activations, not the whole data set's."""
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {tuple(METRICS)}, got {metric!r}")
    xp, m = net.xp, X.shape[0]
    parts = [net.forward(X[i:min(i + rows, m), :]) for i in range(0, m, rows)]
    concat = getattr(xp, "concat", None) or xp.concatenate
    A = parts[0] if len(parts) == 1 else concat(parts, axis=0)
    return METRICS[metric](net.backend.asarray(Y, net.dtype), A, net.backend)


METRICS = {"accuracy": accuracy, "r2": r2}
