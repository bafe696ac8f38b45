"""Feature scaling: each input feature to mean 0 and standard deviation 1.

    scaler = bpgpu.Standardizer().fit(X_train)          # μ, σ from the training data only
    net.fit(scaler.transform(X_train), Y_train, ...)
    bpgpu.save(net, "model.npz", scaler=scaler)         # bpgpu.persistence.load_checkpoint(...).scaler

Inputs may be lists, NumPy arrays or arrays of a backend (CuPy stays on the device); the
result is an array of the same library, in the input's dtype when it is float32/float64.
"""

from __future__ import annotations

import numpy as np

from . import validation as check
from .backend import DTYPES, array_library, get_backend


class Standardizer:
    """x' = (x − μ) / σ, feature by feature.

    Attributes:
        mean: μ, a host float64 array (n,), or None before :meth:`fit`.
        std: σ, a host float64 array (n,), or None before :meth:`fit`. A constant feature
            gets σ = 1: it is centred, not divided by zero.
    """

    def __init__(self, mean=None, std=None):
        if (mean is None) != (std is None):
            raise ValueError(f"std: expected mean and std together or neither, got mean={mean!r}, std={std!r}")
        self.mean = self.std = None
        if mean is not None:
            self.mean = _vector("mean", mean)
            self.std = _vector("std", std)
            if self.std.shape != self.mean.shape:
                raise ValueError(f"std: expected shape {self.mean.shape} like mean, got {self.std.shape}")
            if not np.all(self.std > 0):
                raise ValueError(f"std: expected positive numbers, got {self.std[~(self.std > 0)][0]:g}")

    def fit(self, X) -> "Standardizer":
        """Learn μ and σ from X (m, n), m ≥ 1; returns self."""
        backend, X = _batch("X", X)
        xp = backend.xp
        # Each feature divided first by a power of two near its largest |x|, so that no square
        # overflows (inputs near 1e160 made σ inf, and every scaled input 0). A power of two
        # scales exactly: where the plain formula neither overflowed nor underflowed (σ of inputs
        # near 1e-300 came out 0), these are its very bits.
        _, exponent = np.frexp(backend.to_host(xp.max(xp.abs(X), axis=0)))  # n numbers, on the host
        scale = backend.asarray(np.ldexp(1.0, exponent), _dtype(backend, X))
        X = X / scale
        mean = xp.mean(X, axis=0)
        std = xp.sqrt(xp.mean((X - mean) ** 2, axis=0))
        self.mean = np.asarray(backend.to_host(mean * scale), dtype=np.float64)
        std = np.asarray(backend.to_host(std * scale), dtype=np.float64)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X):
        """X (m, n) scaled: (X − μ) / σ, an array of X's library and float dtype."""
        X, mean, std = self._fitted("X", X, "features")
        return (X - mean) / std

    def inverse_transform(self, Z):
        """Z (m, n) back in the units μ and σ came from: Z·σ + μ (predictions of a network
        trained on scaled targets), an array of Z's library and float dtype."""
        Z, mean, std = self._fitted("Z", Z, "columns")
        return Z * std + mean

    def _fitted(self, name: str, A, what: str):
        """(A, μ, σ): A checked to have the columns this Standardizer was fitted on, μ and σ
        as arrays of A's library and dtype."""
        if self.mean is None:
            raise ValueError("Standardizer: not fitted yet; call fit(X_train) first")
        backend, A = _batch(name, A)
        if A.shape[1] != self.mean.shape[0]:
            raise ValueError(f"{name}: expected {self.mean.shape[0]} columns (the {what} this Standardizer was "
                             f"fitted on), got shape {tuple(A.shape)}")
        dtype = _dtype(backend, A)
        return A, backend.asarray(self.mean, dtype), backend.asarray(self.std, dtype)

    def fit_transform(self, X):
        """:meth:`fit` then :meth:`transform` on the same X."""
        return self.fit(X).transform(X)

    def __repr__(self) -> str:
        return "Standardizer()" if self.mean is None else f"Standardizer(features={self.mean.shape[0]})"


def _vector(name: str, value) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim != 1 or a.shape[0] == 0 or not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected a non-empty 1-D array of finite numbers, got {value!r}")
    return a


def _dtype(backend, X) -> str:
    """X's dtype by name where it is float32/float64, else float64."""
    return next((name for name in DTYPES if X.dtype == getattr(backend.xp, name)), "float64")


def _batch(name: str, X):
    """(backend, X as a finite 2-D float array of that backend): lists and NumPy arrays are NumPy's."""
    library = "numpy" if isinstance(X, (list, tuple, np.ndarray)) else array_library(X)
    try:
        backend = get_backend(library)
    except ValueError:
        raise TypeError(f"{name}: expected a list, a NumPy array or an array of a bpgpu backend, "
                        f"got {type(X).__name__}") from None
    X = check.host_or_backend_array(name, X, backend)
    if len(X.shape) != 2 or X.shape[0] == 0:
        raise ValueError(f"{name}: expected a 2-D array (m, n) with m ≥ 1, got shape {tuple(X.shape)}")
    return backend, check.finite(name, X, backend, _dtype(backend, X))
