"""Class labels as users hold them — integers 0..k−1, as PyTorch's cross-entropy takes them,
or text, as scikit-learn does — turned into the rows a softmax or sigmoid output trains on.
"""

from __future__ import annotations

import numpy as np

from .validation import fits_in_memory, is_pandas


CLASS_OUTPUTS = ("softmax", "sigmoid")


def class_targets(name: str, value, output: str, outputs: int, classes, backend):
    """(Y, classes): class labels (m,) — integers 0..outputs−1 as PyTorch's cross-entropy takes
    them, or text as scikit-learn does — as the rows a softmax or sigmoid output trains on
    (one-hot (m, outputs); for text on one sigmoid unit, the 0/1 column of "is the second
    class"), with the classes they stand for; any other ``value`` as it is, and None.

    ``classes``: those of a fitted network, which text labels must be among; None derives
    them (sorted). Integers on one output unit stay numbers (0/1 targets)."""
    labels = _class_labels(value, backend) if output in CLASS_OUTPUTS else None
    if labels is None or (labels.dtype.kind in "iu" and outputs == 1):
        return value, None
    if labels.dtype.kind in "iu":
        bad = (labels < 0) | (labels >= outputs)
        if bad.any():
            raise ValueError(f"{name}: expected class labels 0..{outputs - 1}, one per output unit, "
                             f"got {labels[bad][0]}")
        codes, classes = labels, list(range(outputs))
    else:
        codes, classes = _codes(name, labels, outputs, classes)
    return class_rows(codes, outputs, name), classes


def class_rows(codes: np.ndarray, outputs: int, where: str) -> np.ndarray:
    """The rows class indices ``codes`` (m,) train on: one-hot (m, outputs), or on one output
    unit the 0/1 column (m, 1) of "is the second class"."""
    return codes[:, None].astype(np.float64) if outputs == 1 else one_hot(codes, outputs, where)


def one_hot(codes: np.ndarray, outputs: int, where: str) -> np.ndarray:
    """Rows (m, outputs) with a 1 in column codes[i] of row i; refused (naming ``where``) before
    allocating when they would not fit in memory (a huge class count)."""
    fits_in_memory(where, len(codes) * outputs * 8, f"{len(codes):,} rows of {outputs:,} classes")
    rows = np.zeros((len(codes), outputs))
    rows[np.arange(len(codes)), codes] = 1.0
    return rows


def _class_labels(value, backend) -> np.ndarray | None:
    """``value`` as (m,) host labels if it is one column of integers or text, else None."""
    if is_pandas(value):
        value = None if hasattr(value, "columns") else value.to_numpy()
    elif isinstance(value, (list, tuple)):
        try:
            value = np.asarray(value)
        except (ValueError, TypeError):
            return None
    elif getattr(value, "ndim", None) != 1 or isinstance(value, np.ndarray):
        pass
    elif backend.is_native(value):
        value = backend.to_host(value) if np.dtype(value.dtype).kind in "iu" else None
    elif hasattr(value, "__dlpack__"):
        try:
            value = np.from_dlpack(value)
        except (BufferError, RuntimeError, TypeError, ValueError):
            return None
    if not isinstance(value, np.ndarray) or value.ndim != 1:
        return None
    if value.dtype.kind == "O" and all(isinstance(v, str) for v in value):
        value = value.astype(str)
    return value if value.dtype.kind in "iuU" else None


def _codes(name: str, labels: np.ndarray, outputs: int, classes):
    """(the class index of each text label, the classes)."""
    names, inverse = np.unique(labels, return_inverse=True)
    classes = list(classes) if classes is not None else [str(n) for n in names]
    wanted = 2 if outputs == 1 else outputs
    if len(classes) != wanted:
        raise ValueError(f"{name}: expected {wanted} classes, one per output unit{' (two on one sigmoid unit)' if outputs == 1 else ''}, "
                         f"got {len(classes)}: {', '.join(classes[:10])}{', …' if len(classes) > 10 else ''}")
    index = {str(c): k for k, c in enumerate(classes)}
    unknown = [str(n) for n in names if str(n) not in index]
    if unknown:
        raise ValueError(f"{name}: label {unknown[0]!r} is not one of the network's classes ({', '.join(map(str, classes))})")
    return np.array([index[str(n)] for n in names], dtype=np.intp)[inverse], classes
