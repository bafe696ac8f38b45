"""Checks at the public boundary, so the core can trust its inputs.

Every failure is a ``ValueError`` or ``TypeError`` whose message names the argument,
what was expected and what came.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .backend import array_library


def choice(name: str, value, options) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}: expected one of {tuple(options)}, got {value!r}")
    return value


def number(name: str, value, *, low=None, low_open=False, integer=False, allow_none=False):
    """``value`` as a float (or int), checked to be finite and above ``low``."""
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise TypeError(f"{name}: expected {what}, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name}: expected a number {bound}, got {value!r}")
    return int(value) if integer else float(value)


def sizes(value) -> list[int]:
    try:
        out = list(value)
    except TypeError:
        raise TypeError(f"sizes: expected a sequence of layer sizes like [3, 2, 1], got {value!r}") from None
    if len(out) < 2:
        raise ValueError(f"sizes: expected at least 2 layer sizes (input and output), got {out!r}")
    for i, s in enumerate(out):
        number(f"sizes[{i}]", s, low=1, integer=True)
    return [int(s) for s in out]


def per_hidden_layer(name: str, value, n_hidden: int, options) -> list[str]:
    """One activation name for every hidden layer, from one name or a list of them."""
    names = [value] * n_hidden if isinstance(value, str) else list(value)
    if len(names) != n_hidden:
        raise ValueError(f"{name}: expected one name or {n_hidden} (one per hidden layer), got {len(names)}: {value!r}")
    return [choice(name, v, options) for v in names]


def host_or_backend_array(name: str, value, backend):
    """``value`` as an array of ``backend`` or a NumPy array; a foreign array type is a TypeError."""
    if backend.is_native(value) or isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        try:
            return np.asarray(value, dtype=float)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{name}: expected a rectangular array of numbers, got a ragged or non-numeric list ({err})") from None
    library = array_library(value)
    hint = " (move it to the host with .get() or use backend='cupy')" if library == "cupy" else ""
    raise TypeError(
        f"{name}: expected a list, a NumPy array or a {backend.name} array, "
        f"got {type(value).__module__}.{type(value).__name__}{hint}"
    )


def batch(name: str, value, backend, dtype: str, columns: int):
    """``value`` as a (m, columns) array of ``backend``, m ≥ 1, all finite.

    A 1-D array is taken as one column when ``columns == 1``.
    """
    a = host_or_backend_array(name, value, backend)
    if isinstance(a, np.ndarray) and a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numbers, got an array of dtype {a.dtype}")
    if len(a.shape) == 1 and columns == 1:
        a = a[:, None]
    if len(a.shape) != 2:
        raise ValueError(f"{name}: expected a 2-D array (m, {columns}), got shape {tuple(a.shape)}")
    if a.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one example (row), got shape {tuple(a.shape)}")
    if a.shape[1] != columns:
        raise ValueError(f"{name}: expected {columns} columns, got shape {tuple(a.shape)}")
    a = backend.asarray(a, dtype)
    xp = backend.xp
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"{name}: expected finite numbers, got NaN or inf")
    return a


def targets(Y, loss: str, output: str, xp) -> None:
    """Targets that the loss is defined for: cross-entropy needs y in [0, 1], and rows
    summing to 1 for a softmax output."""
    if loss != "cross_entropy":
        return
    lo, hi = float(xp.min(Y)), float(xp.max(Y))
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"Y: cross_entropy expects targets in [0, 1], got values in [{lo:g}, {hi:g}]")
    if output == "softmax":
        rows = xp.sum(Y, axis=1)
        worst = float(xp.max(xp.abs(rows - 1.0)))
        if worst > 1e-3:
            raise ValueError(f"Y: cross_entropy with a softmax output expects each row to sum to 1 (one-hot or probabilities), got a row off by {worst:g}")


def same_rows(X, Y, names=("X", "Y")) -> int:
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{names[1]}: expected {X.shape[0]} rows, one per row of {names[0]}, got {Y.shape[0]}")
    return int(X.shape[0])
