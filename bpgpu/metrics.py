"""How good predictions are, beside the loss: accuracy for classes, R² for numbers, and for
classes the confusion matrix with each class's precision, recall and F1.

Each takes targets Y and outputs A of one backend, shaped (m, k). accuracy and r2 return a
Python float, their reductions run on the device and only k numbers reach the host; the
confusion matrix brings the rows' class indices (m,) to the host and counts them there.
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


def confusion(Y, A, backend="numpy") -> np.ndarray:
    """The confusion matrix C (k, k) of int64 on the host: C[i, j] counts the rows whose class
    under Y is i and under A is j (:func:`classes`; k = the number of columns, 2 for one
    column of 0/1). scikit-learn's ``confusion_matrix(y, a, labels=range(k))``."""
    backend = get_backend(backend)
    k = max(2, Y.shape[1])
    true, predicted = (backend.to_host(classes(M, backend.xp)).astype(np.int64) for M in (Y, A))
    return np.bincount(true * k + predicted, minlength=k * k).reshape(k, k)


def per_class(C: np.ndarray) -> dict[str, np.ndarray]:
    """Each class's precision, recall and F1 (k,) and support (k,) from a confusion matrix
    C (k, k): precision = C[i, i] / Σ_r C[r, i], recall = C[i, i] / Σ_c C[i, c], F1 =
    2·C[i, i] / (Σ_c C[i, c] + Σ_r C[r, i]); 0 where a denominator is 0 (scikit-learn's
    ``precision_recall_fscore_support(..., zero_division=0)``)."""
    C = np.asarray(C, dtype=np.int64)
    hits, true, predicted = np.diag(C), C.sum(axis=1), C.sum(axis=0)

    def share(count, of):
        return np.where(of > 0, count / np.maximum(of, 1), 0.0)

    return {"precision": share(hits, predicted), "recall": share(hits, true), "f1": share(2 * hits, true + predicted),
            "support": true}


def outputs(net, X, rows: int = 65536, scaler=None):
    """a(L) (m, sizes[-1]), a backend array, for X (m, sizes[0]): the forward passes take
    ``rows`` rows at a time, each scaled by ``scaler`` first where given, so memory holds one
    chunk's activations, not the whole data set's."""
    m, xp = X.shape[0], net.xp
    A = xp.empty((m, net.sizes[-1]), dtype=getattr(xp, net.dtype))
    for i in range(0, m, rows):
        part = X[i:min(i + rows, m), :]
        A[i:min(i + rows, m), :] = net.forward(part if scaler is None else scaler.transform(part))
    return A


def score(net, X, Y, metric: str, rows: int = 65536) -> float:
    """``metric`` ("accuracy" or "r2") of ``net``'s outputs for X (m, sizes[0]) against
    Y (m, sizes[-1]), ``rows`` rows at a time (:func:`outputs`)."""
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {tuple(METRICS)}, got {metric!r}")
    return METRICS[metric](net.backend.asarray(Y, net.dtype), outputs(net, X, rows), net.backend)


METRICS = {"accuracy": accuracy, "r2": r2}
LABELS = {"accuracy": "accuracy", "r2": "R²"}  # how each metric is named to a reader

