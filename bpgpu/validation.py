"""Checks at the public boundary, so the core can trust its inputs.

Every failure is a ``ValueError`` or ``TypeError`` whose message names the argument,
what was expected and what came.
"""

from __future__ import annotations

import difflib
import math
import numbers

import numpy as np

from . import activations, environment, losses, registry
from .backend import array_library

# How a foreign array gets to the host, by the library it comes from.
_TO_HOST_HINTS = {"cupy": " (move it to the host with .get(), or build the network with backend='cupy')",
                  "torch": " (convert it with .detach().cpu().numpy())",
                  "jax": " (convert it with numpy.asarray())"}


def _kind(value) -> str:
    """``value``'s type for a message: ``float``, ``torch.Tensor``, ``cupy.ndarray``."""
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__.split('.')[0]}.{t.__name__}"


def _bytes(n: float) -> str:
    if n >= 2**1000:  # a Python int beyond float's range (m=10**400): count its digits instead
        return f"about 10^{len(str(int(n))) - 1} bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024


def choice(name: str, value, options) -> str:
    if not isinstance(value, str) or value not in options:
        near = difflib.get_close_matches(value, options, n=1) if isinstance(value, str) else []
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"{name}: expected one of {tuple(options)}, got {value!r}{hint}")
    return value


def flag(name: str, value, allow_none: bool = False):
    """``value``, checked to be True or False (or None where ``allow_none``)."""
    if not isinstance(value, bool) and not (allow_none and value is None):
        raise TypeError(f"{name}: expected {'True, False or None' if allow_none else 'True or False'}, got {value!r}")
    return value


def number(name: str, value, *, low=None, low_open=False, integer=False, allow_none=False):
    """``value`` as a float (or int), checked to be finite and above ``low``."""
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise TypeError(f"{name}: expected {what}, got {value!r} ({_kind(value)})")
    if not integer:
        try:
            finite_value = math.isfinite(value)
        except OverflowError:  # an int (or Fraction) beyond float's range, 1e308
            raise ValueError(f"{name}: expected a finite number, got one too large for a float "
                             f"({_short(value)})") from None
        if not finite_value:
            raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name}: expected a number {bound}, got {value!r}")
    return int(value) if integer else float(value)


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 30 else f"{text[:12]}…{text[-6:]}, {len(text)} digits"


def network_bytes(sizes: list[int]) -> int:
    """Host bytes a network of ``sizes`` allocates at its peak while it is built, counted
    as float64 (the larger dtype): the initial weights drawn on the host, their checked
    copy, the network's flat parameter and gradient vectors, and one more copy of the
    largest layer while its bias column is joined on."""
    weights = [(a + 1) * b for a, b in zip(sizes, sizes[1:])]
    return 32 * sum(weights) + 8 * max(weights)


def sizes(value) -> list[int]:
    """Layer sizes s0 … sL, each ≥ 1, of a network that can be built in the memory
    available (see :func:`network_bytes`): one that cannot fails here, at once, rather
    than in an allocation that swaps or is killed.
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"sizes: expected a sequence of layer sizes like [3, 2, 1], got {value!r}")
    try:
        out = list(value)
    except TypeError:
        raise TypeError(f"sizes: expected a sequence of layer sizes like [3, 2, 1], got {value!r}") from None
    if len(out) < 2:
        raise ValueError(f"sizes: expected at least 2 layer sizes (input and output), got {out!r}")
    for i, s in enumerate(out):
        number(f"sizes[{i}]", s, low=1, integer=True)
    out = [int(s) for s in out]
    weights = sum((a + 1) * b for a, b in zip(out, out[1:]))
    fits_in_memory("sizes", network_bytes(out), f"{out} ({weights:,} weights)")
    return out


def fits_in_memory(name: str, need: int, got: str) -> None:
    """Refuse what needs ``need`` bytes when less memory is available, before anything
    tries to allocate it; ``got`` says what it is."""
    have = environment.available_memory()
    if have is not None and need > have:
        raise ValueError(f"{name}: expected what fits in the memory available ({_bytes(have)}), "
                         f"got {got}, needing {_bytes(need)}")


def per_hidden_layer(name: str, value, n_hidden: int, options) -> list[str]:
    """One activation name for every hidden layer, from one name or a list of them."""
    try:
        names = [value] * n_hidden if isinstance(value, str) else list(value)
    except TypeError:
        raise TypeError(f"{name}: expected a name from {tuple(options)} or a list of {n_hidden}, got {value!r}") from None
    if len(names) != n_hidden:
        raise ValueError(f"{name}: expected one name or {n_hidden} (one per hidden layer), got {len(names)}: {value!r}")
    return [choice(name, v, options) for v in names]


def host_or_backend_array(name: str, value, backend):
    """``value`` as an array of ``backend`` or a NumPy array of numbers: a list, a NumPy or
    backend array as it is, a pandas DataFrame or Series by ``.to_numpy()``, any other DLPack
    array (torch, JAX, CuPy) shared without a copy where its device is the backend's. Another
    type or a non-numeric dtype is a TypeError."""
    if isinstance(value, (list, tuple)):
        try:
            return np.asarray(value, dtype=float)
        except OverflowError:
            raise ValueError(f"{name}: expected finite numbers, got an integer too large for a float") from None
        except (ValueError, TypeError) as err:
            raise ValueError(f"{name}: expected a rectangular array of numbers, got a ragged or non-numeric list ({err})") from None
    if is_pandas(value):
        value = _from_pandas(name, value)
    elif not (backend.is_native(value) or isinstance(value, np.ndarray)):
        value = _from_dlpack(name, value, backend)
    dtype = getattr(value, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {dtype}")
    return value


def is_pandas(value) -> bool:
    """Whether ``value`` is a pandas DataFrame or Series, told without importing pandas."""
    return array_library(value) == "pandas" and hasattr(value, "to_numpy")


def column_names(value, name: str | None = None) -> list[str] | None:
    """The column names of a pandas DataFrame, as strings; None for anything else. With
    ``name`` (the argument's), a name used twice is refused: columns are matched by name."""
    names = [str(c) for c in value.columns] if is_pandas(value) and hasattr(value, "columns") else None
    first = {}
    for j, column in enumerate(names if name and names else ()):
        if first.setdefault(column, j) != j:
            raise ValueError(f"{name}: the column name {column!r} is used twice (columns {first[column]} and {j}); "
                             "columns are matched by name, rename one")
    return names


def _from_pandas(name: str, value) -> np.ndarray:
    """A DataFrame's or Series' values; a column that is not numbers is named."""
    kinds = list(value.dtypes) if hasattr(value, "columns") else [value.dtype]
    plain = [getattr(kind, "numpy_dtype", kind) for kind in kinds]  # pandas' nullable Int64, boolean…: their NumPy dtype
    for column, kind, dtype in zip(column_names(value) or [getattr(value, "name", None)], kinds, plain):
        if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected columns of real numbers, got column {column!r} of dtype {kind}")
    if plain == kinds:
        return value.to_numpy(dtype=np.result_type(*kinds))  # a bool column beside floats: 0/1, not objects
    # A nullable column's missing values become NaN, which the finiteness check then names.
    return value.to_numpy(dtype=np.result_type(*plain, np.float64), na_value=np.nan)


def _from_dlpack(name: str, value, backend):
    """``value`` through DLPack as an array of ``backend`` (sharing its memory where the
    device allows), else on the host; neither is a TypeError that says how to convert it."""
    library = array_library(value)
    hint = _TO_HOST_HINTS.get(library, " (convert it with numpy.asarray() or .to_numpy())")
    accepted = "a list, a NumPy array, a pandas object or a DLPack array" + \
        ("" if backend.name == "numpy" else f" (a {backend.name} array shares its memory)")
    if not hasattr(value, "__dlpack__"):
        raise TypeError(f"{name}: expected {accepted}, got {_kind(value)}{hint}")
    errors = []
    for from_dlpack in dict.fromkeys(f for f in (getattr(backend.xp, "from_dlpack", None), np.from_dlpack) if f):
        try:
            return from_dlpack(value)
        except (BufferError, RuntimeError, TypeError, ValueError) as err:  # another device, a tensor needing grad
            errors.append(" ".join(str(err).split()))
    raise TypeError(f"{name}: expected an array DLPack can share with {backend.name}, got {_kind(value)} "
                    f"({errors[-1]}){hint}")


def same_columns(name: str, value, fitted: list[str] | None) -> None:
    """Refuse a DataFrame whose column names are not ``fitted`` (those the network was fitted
    on), in that order, naming the unseen, the missing or the reordered ones."""
    got = column_names(value)
    if fitted is None or got is None or got == fitted:
        return
    unseen, missing = [c for c in got if c not in fitted], [c for c in fitted if c not in got]
    if unseen or missing:
        raise ValueError(f"{name}: expected the columns the network was fitted on ({', '.join(fitted)}), got "
                         + "; ".join(f"{what}: {', '.join(cols)}" for what, cols in (("unseen", unseen), ("missing", missing))
                                     if cols))
    raise ValueError(f"{name}: expected the columns in the order the network was fitted on ({', '.join(fitted)}), "
                     f"got ({', '.join(got)})")


def finite(name: str, a, backend, dtype: str):
    """``a`` (host or backend array) as a backend array of ``dtype``, checked finite.

    The error names the first bad entry, and says so when a finite number overflowed
    ``dtype`` (1e300 into float32).
    """
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, with where
        out = backend.asarray(a, dtype)
    xp = backend.xp
    if bool(xp.all(xp.isfinite(out))):
        return out
    host = backend.to_host(out)
    given = a if isinstance(a, np.ndarray) else host
    bad = ~np.isfinite(host)
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    at = f"row {where[0]}, column {where[1]}" if len(where) == 2 else f"index {where}"
    was = given[where]
    why = f"{float(was):g}, which overflows {dtype}" if np.isfinite(was) else f"{float(was)}"
    raise ValueError(f"{name}: expected finite numbers, got {int(bad.sum())} non-finite value(s), the first at {at}: {why}")


def batch(name: str, value, backend, dtype: str, columns: int):
    """``value`` as a (m, columns) array of ``backend``, m ≥ 1, all finite.

    A 1-D array is taken as one column when ``columns == 1``.
    """
    a = host_or_backend_array(name, value, backend)
    if len(a.shape) == 1 and columns == 1:
        a = a[:, None]
    if len(a.shape) != 2:
        raise ValueError(f"{name}: expected a 2-D array (m, {columns}), got shape {tuple(a.shape)}")
    if a.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one example (row), got shape {tuple(a.shape)}")
    if a.shape[1] != columns:
        raise ValueError(f"{name}: expected {columns} columns, got shape {tuple(a.shape)}")
    return finite(name, a, backend, dtype)


def thetas(value, backend, dtype: str, shapes, name: str = "thetas") -> list:
    """``value`` as backend arrays Theta(0) … Theta(L−1) of ``dtype``, one per shape in
    ``shapes``, all finite. They may share memory with ``value``: copy to keep."""
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{name}: expected a list of {len(shapes)} matrices, got {_kind(value)}") from None
    if len(items) != len(shapes):
        raise ValueError(f"{name}: expected {len(shapes)} matrices, got {len(items)}")
    out = []
    for l, (t, shape) in enumerate(zip(items, shapes)):
        t = host_or_backend_array(f"{name}[{l}]", t, backend)
        if tuple(t.shape) != tuple(shape):
            raise ValueError(f"{name}[{l}]: expected shape {tuple(shape)}, got {tuple(t.shape)}")
        out.append(finite(f"{name}[{l}]", t, backend, dtype))
    return out


def targets(Y, loss: str, output: str, xp, name: str = "Y") -> None:
    """Targets that the loss is defined for: cross-entropy needs y in [0, 1], and rows
    summing to 1 for a softmax output; Poisson needs y ≥ 0."""
    if loss == "poisson":
        lo = float(xp.min(Y)) if Y.shape[0] else 0.0
        if lo < 0.0:
            raise ValueError(f"{name}: loss='poisson' expects targets ≥ 0 (counts or rates: a Poisson mean "
                             f"is positive), got a minimum of {lo:g}")
    if loss != "cross_entropy":
        return
    lo, hi = float(xp.min(Y)), float(xp.max(Y))
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name}: cross_entropy expects targets in [0, 1], got values in [{lo:g}, {hi:g}]")
    if output == "softmax":
        off = xp.abs(xp.sum(Y, axis=1) - 1.0)
        if float(xp.max(off)) > 1e-3:
            row = int(xp.argmax(off))
            raise ValueError(f"{name}: cross_entropy with a softmax output expects each row to sum to 1 "
                             f"(one-hot or probabilities), got row {row} summing to {float(xp.sum(Y[row, :])):g}")


def same_rows(X, Y, names=("X", "Y")) -> int:
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{names[1]}: expected {X.shape[0]} rows, one per row of {names[0]}, got {Y.shape[0]}")
    return int(X.shape[0])


def functions(activation, output, loss, hidden: int) -> tuple[list[str], str, str]:
    """(one activation per hidden layer, output, loss), each a built-in or registered name, the
    loss defined for the output; an unknown name says how to register one of one's own."""
    try:
        per_layer = per_hidden_layer("activation", activation, hidden, activations.hidden())
        output = choice("output", output, activations.outputs())
    except ValueError as err:
        raise registry.unregistered(err, "bpgpu.activations.register") from None
    try:
        loss = choice("loss", loss, losses.names())
    except ValueError as err:
        raise registry.unregistered(err, "bpgpu.losses.register") from None
    suited = losses.LOSS_OUTPUTS.get(loss)
    if suited is not None and output not in suited:
        raise ValueError(f"output: loss={loss!r} expects an output in {suited}, got {output!r}")
    return per_layer, output, loss
