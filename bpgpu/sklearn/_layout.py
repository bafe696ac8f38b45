"""Between scikit-learn's parameter layout and bpgpu's.

scikit-learn keeps ``coefs_[l]`` (s(l), s(l+1)) and ``intercepts_[l]`` (s(l+1),); bpgpu keeps
``Theta(l) = [b(l) | W(l)]`` (s(l+1), s(l) + 1), so ``coefs_[l] = W(l)ᵀ``. lbfgs sees one flat
vector in scikit-learn's order (every coef raveled, then every intercept), so that scipy runs
on the same vector scikit-learn's lbfgs does.
"""

from __future__ import annotations

import numpy as np


def initial_coefs(random_state, layer_units, activation, dtype):
    """scikit-learn's initial (coefs, intercepts): Glorot-uniform weights and intercepts,
    bound √(6/(fan_in+fan_out)) (√(2/…) for logistic), drawn from ``random_state`` in
    scikit-learn's order, so a given ``random_state`` starts where scikit-learn's MLP does."""
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coefs.append(random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False))
        intercepts.append(random_state.uniform(-bound, bound, fan_out).astype(dtype, copy=False))
    return coefs, intercepts


def to_thetas(coefs, intercepts) -> list[np.ndarray]:
    """[Theta(l)] (s(l+1), s(l) + 1) from scikit-learn's coefs (s(l), s(l+1)) and intercepts (s(l+1),)."""
    return [np.hstack([np.reshape(b, (-1, 1)), np.asarray(W).T]) for W, b in zip(coefs, intercepts)]


def from_thetas(thetas) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(coefs, intercepts) as new C-contiguous host arrays from host [Theta(l)]."""
    coefs = [np.ascontiguousarray(t[:, 1:].T) for t in thetas]
    intercepts = [np.ascontiguousarray(t[:, 0]) for t in thetas]
    return coefs, intercepts


def pack(coefs, intercepts) -> np.ndarray:
    """One flat vector: every coef raveled, then every intercept (scikit-learn's order)."""
    return np.hstack([np.ravel(a) for a in list(coefs) + list(intercepts)])


def unpack(packed, layer_units):
    """(coefs, intercepts) from :func:`pack`'s vector; ``layer_units`` = [s0, …, sL]."""
    coefs, start = [], 0
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        coefs.append(np.reshape(packed[start:start + fan_in * fan_out], (fan_in, fan_out)))
        start += fan_in * fan_out
    intercepts = []
    for fan_out in layer_units[1:]:
        intercepts.append(packed[start:start + fan_out])
        start += fan_out
    return coefs, intercepts


def pack_thetas(thetas) -> np.ndarray:
    """:func:`pack` of host [Theta(l)] (or of gradients D(l) shaped like them)."""
    return pack([t[:, 1:].T for t in thetas], [t[:, 0] for t in thetas])


def unpack_thetas(packed, layer_units) -> list[np.ndarray]:
    """[Theta(l)] from :func:`pack`'s vector."""
    return to_thetas(*unpack(packed, layer_units))
