"""The ``"array_api_strict"`` backend: the Python array API standard and nothing more, for
tests only. The core running unchanged on it is CI's stand-in for a GPU library: it refuses
the implicit host conversions that break GPU code."""

from __future__ import annotations

import importlib
from functools import lru_cache

import numpy as np

from .backend import Backend, BackendUnavailable


class StrictBackend(Backend):
    """The array API standard and nothing more; random numbers come from the host."""

    name = "array_api_strict"

    def __init__(self, module):
        self.xp = module
        self._ops = OutAdapter(module)
        self._array_type = type(module.asarray(0.0))  # the module does not export its Array class

    @property
    def ops(self):
        return self._ops

    def is_native(self, a) -> bool:
        return isinstance(a, self._array_type)

    def asarray(self, a, dtype: str):
        if not self.is_native(a):
            a = np.ascontiguousarray(a)
        return self.xp.asarray(a, dtype=getattr(self.xp, dtype))

    def to_host(self, a) -> np.ndarray:
        return np.from_dlpack(a)

    def random(self, seed):
        return _HostRandom(self, seed)

    def describe(self) -> str:
        return f"array_api_strict {self.xp.__version__} (CPU, tests only)"


class OutAdapter:
    """A namespace whose functions take ``out=`` for one that has none (the array API
    standard): ``f(*args, out=o)`` computes ``f(*args)`` and assigns it to ``o[...]``, so
    the portable path runs the very functions the fast paths run."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        f = getattr(self._xp, name)
        if not callable(f):
            return f

        def into(*args, out=None, **kwargs):
            if out is None:
                return f(*args, **kwargs)
            out[...] = f(*args, **kwargs)
            return out

        return into


class _HostRandom:
    """NumPy's generator, with each result moved to a backend that has none of its own."""

    def __init__(self, backend: Backend, seed):
        self._backend, self._rng = backend, np.random.default_rng(seed)

    def __getattr__(self, method):
        draw = getattr(self._rng, method)

        def on_device(*args, **kwargs):
            host = np.asarray(draw(*args, **kwargs))
            dtype = host.dtype.name if host.dtype.kind == "f" else "int64"
            return self._backend.asarray(host, dtype)

        return on_device


@lru_cache(maxsize=None)
def strict_backend() -> StrictBackend:
    try:
        return StrictBackend(importlib.import_module("array_api_strict"))
    except ImportError as err:
        raise BackendUnavailable(
            "backend='array_api_strict' needs array-api-strict: pip install \"bpgpu[test]\""
        ) from err
