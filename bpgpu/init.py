"""Initial weights: drawn on the host from the seed, so every backend starts from the same Theta."""

from __future__ import annotations

import math

import numpy as np


def initial_thetas(sizes: list[int], activations: list[str], bias: bool, seed: int) -> list[np.ndarray]:
    """Theta(0) … Theta(L−1) (s(l+1), s(l) + bias), float64: Glorot-uniform weights (He-normal
    into a relu layer), zero biases. ``activations`` names each layer's g, output included."""
    rng = np.random.default_rng(seed)
    thetas = []
    for l, g in enumerate(activations):
        fan_in, fan_out = sizes[l], sizes[l + 1]
        if g == "relu":
            W = rng.standard_normal((fan_out, fan_in)) * math.sqrt(2.0 / fan_in)
        else:
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-limit, limit, (fan_out, fan_in))
        thetas.append(np.hstack([np.zeros((fan_out, 1)), W]) if bias else W)
    return thetas
