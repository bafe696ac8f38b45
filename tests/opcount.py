"""Counting the array operations a training step performs (issue 11: counted, not guessed).

A NumPy backend whose every array is a :class:`Counted` view: NumPy hands each ufunc
call (operators included) to ``__array_ufunc__`` and each other array function to
``__array_function__``, where one operation is counted, and calls through the backend's
namespace are counted likewise. A function made by ``backend.fuse`` counts as one
operation, whatever it does inside: on CuPy it is one kernel. So the count approximates
the kernel launches the step would make on a GPU. A matrix product whose result is one
number counts as CuPy runs it: three launches and a temporary (see ``_record``);
``backend.dot`` (cuBLAS's dot on CuPy) counts as one.

An operation *allocates* when it returns a new array instead of writing into ``out=``
or returning a view; 0-d results (J and its parts) are counted apart as ``scalars``.

    backend = CountingBackend()
    net = bpgpu.Network(..., backend=backend)
    with backend.counting() as tally:
        net.step(X, Y, optimizer)
    tally.ops, tally.allocations, tally.scalars, tally.names
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from bpgpu.backend import NumpyBackend

# Namespace calls that make views or uninitialised memory: no kernel on a GPU.
NO_KERNEL = {"reshape", "empty", "empty_like", "asarray", "ascontiguousarray"}


@dataclass
class Tally:
    ops: int = 0
    allocations: int = 0
    scalars: int = 0
    names: Counter = field(default_factory=Counter)


class _State:
    depth = 0
    tally: Tally | None = None


def _plain(a):
    if isinstance(a, (list, tuple)):
        return type(a)(_plain(v) for v in a)
    return a.view(np.ndarray) if isinstance(a, Counted) else a


def _plain_all(values):
    return tuple(_plain(v) for v in values)


def _record(name: str, result, allocating: bool) -> None:
    tally = _State.tally
    if tally is None or _State.depth > 0:
        return
    if name == "matmul" and np.size(result) == 1:
        # CuPy computes a product whose result is one number (vector·vector, or a vector
        # times a one-column matrix) as (x*y).sum(): a multiply into a temporary the size
        # of x, then a two-pass CUB reduction.
        tally.ops += 3
        tally.allocations += 1
        tally.names["matmul (vector·vector)"] += 1
        return
    tally.ops += 1
    tally.names[name] += 1
    for r in result if isinstance(result, tuple) else (result,):
        if isinstance(r, np.generic) or (isinstance(r, np.ndarray) and r.ndim == 0):
            tally.scalars += 1
        elif allocating and isinstance(r, np.ndarray) and r.base is None:
            tally.allocations += 1


def _wrap(result):
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    if isinstance(result, np.generic):
        return np.asarray(result).view(Counted)
    if isinstance(result, np.ndarray) and not isinstance(result, Counted):
        return result.view(Counted)
    return result


@contextlib.contextmanager
def _inside():
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1


class Counted(np.ndarray):
    """A NumPy array whose operations are counted (views of it stay counted)."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if out is not None:
            kwargs["out"] = _plain_all(out)
        with _inside():
            result = getattr(ufunc, method)(*_plain_all(inputs), **kwargs)
        _record(ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}", result, out is None)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        with _inside():
            result = func(*_plain_all(args), **{k: _plain(v) for k, v in kwargs.items()})
        if func.__name__ not in NO_KERNEL:
            _record(func.__name__, result, kwargs.get("out") is None)
        return _wrap(result)


class CountingNamespace:
    """NumPy, with every function call counted and every array result :class:`Counted`."""

    def __getattr__(self, name):
        attr = getattr(np, name)
        if not callable(attr) or isinstance(attr, type):
            return attr

        @functools.wraps(attr)
        def counted(*args, **kwargs):
            with _inside():
                result = attr(*_plain_all(args), **{k: _plain(v) for k, v in kwargs.items()})
            if name not in NO_KERNEL:
                _record(name, result, kwargs.get("out") is None)
            return _wrap(result) if kwargs.get("out") is None else kwargs["out"]

        return counted


class CountingBackend(NumpyBackend):
    """The NumPy backend, counted (see the module docstring). Fused functions run as plain
    NumPy here (counted once each), so they get scratch vectors, as without the compiled loops."""

    name = "numpy"
    fused_scratch = True

    def __init__(self):
        self.xp = CountingNamespace()

    @property
    def ops(self):
        return self.xp

    def fuse(self, fn):
        run = functools.partial(fn, self.xp)

        @functools.wraps(fn)
        def fused(*args):
            with _inside():
                result = run(*args)
            _record(f"fused:{fn.__name__}", result, allocating=False)
            return result

        return fused

    def is_native(self, a) -> bool:
        return isinstance(a, np.ndarray)

    def asarray(self, a, dtype: str):
        return np.asarray(_plain(a), dtype=dtype, order="C").view(Counted)

    def copy(self, a):
        result = np.array(_plain(a))
        _record("copy", result, allocating=True)
        return result.view(Counted)

    def total(self, arrays):
        return sum(np.add.reduce(a, axis=None) for a in arrays)

    def dot(self, x, y, out=None):
        """One operation: on CuPy one cuBLAS dot into device memory."""
        with _inside():
            result = np.matmul(_plain(x), _plain(y), out=_plain(out))
        _record("dot", result, allocating=False)
        return out if out is not None else _wrap(result)

    @contextlib.contextmanager
    def counting(self):
        """Count what runs inside the block into the :class:`Tally` it yields."""
        _State.tally = tally = Tally()
        try:
            yield tally
        finally:
            _State.tally = None
