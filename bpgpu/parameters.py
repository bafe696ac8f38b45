"""A network's parameters: every W(l) and b(l) a view into one flat vector.

One flat vector holds W(0) … W(L−1) (each row-major) and then b(0) … b(L−1): the weights
λ regularises are one contiguous slice, so ‖W‖² is one dot product, an optimiser updates
every weight in one operation, and a data-parallel reduction is one call. The gradients D
live in a second vector of the same layout. ``thetas`` joins each layer's views into the
formulation's Theta(l) = [b(l) | W(l)].
"""

from __future__ import annotations

import functools

import numpy as np

from . import validation as check


def on_device(method):
    """Run ``method`` with the network's device current (CuPy allocates and launches there)."""
    @functools.wraps(method)
    def on_device(self, *args, **kwargs):
        with self.backend.activate():
            return method(self, *args, **kwargs)

    return on_device


class Parameters:
    """The parameter half of :class:`~bpgpu.network.Network`: its flat layout, ``params``,
    ``thetas`` and their setters. Needs ``sizes``, ``bias``, ``dtype``, ``backend``, ``xp``,
    and the views ``_theta``, ``_W``, ``_b`` that ``_flat`` makes."""

    def _flat(self):
        """A zero flat vector (n_params,) and its views [W(l)] (s(l+1), s(l)) and [b(l)]
        (s(l+1),), or [None] * L without a bias."""
        flat = self.xp.zeros(self.n_params, dtype=getattr(self.xp, self.dtype))
        views = self.split(flat)
        if self.bias:
            return flat, views[0::2], views[1::2]
        return flat, views, [None] * len(views)

    @property
    def n_weights(self) -> int:
        """Entries of all W(l): the regularised front of the flat vector."""
        return sum(n_in * n_out for n_in, n_out in zip(self.sizes, self.sizes[1:]))

    @property
    def n_params(self) -> int:
        """Entries of all Theta(l), biases included: the length of :attr:`params`."""
        return self.n_weights + (sum(self.sizes[1:]) if self.bias else 0)

    def theta_shapes(self) -> list[tuple[int, int]]:
        return [(self.sizes[l + 1], self.sizes[l] + self.bias) for l in range(len(self.sizes) - 1)]

    @property
    def params(self):
        """Every weight and bias as one flat backend vector (n_params,), live: W(0) … W(L−1)
        row-major, then b(0) … b(L−1). An optimiser updates it in place; copy it to keep."""
        return self._theta

    @on_device
    def set_params(self, flat) -> None:
        """Copy a flat vector (n_params,) laid out as :attr:`params` into the weights."""
        if tuple(flat.shape) != (self.n_params,):
            raise ValueError(f"params: expected shape ({self.n_params},), got {tuple(flat.shape)}")
        self._theta[...] = flat

    def split(self, flat) -> list:
        """Views [W(0), b(0), W(1), b(1), …] (no b without a bias) of a flat vector laid out
        as :attr:`params`, host or backend: the per-parameter order of saved optimiser state."""
        xp = self.xp if self.backend.is_native(flat) else np
        views, at_b = [], self.n_weights
        at_W = 0
        for n_in, n_out in zip(self.sizes, self.sizes[1:]):
            views.append(xp.reshape(flat[at_W:at_W + n_out * n_in], (n_out, n_in)))
            at_W += n_out * n_in
            if self.bias:
                views.append(flat[at_b:at_b + n_out])
                at_b += n_out
        return views

    def param_shapes(self) -> list[tuple]:
        """The shapes :meth:`split` returns: (s(l+1), s(l)) and (s(l+1),) per layer."""
        return [tuple(v.shape) for v in self.split(np.empty(self.n_params))]

    def _join(self, W, b):
        """Theta = [b | W] (s(l+1), s(l) + 1), or a copy of W without a bias: a new array."""
        if b is None:
            return self.backend.copy(W)
        theta = self.xp.empty((W.shape[0], W.shape[1] + 1), dtype=W.dtype)
        theta[:, 0] = b
        theta[:, 1:] = W
        return theta

    @property
    @on_device
    def thetas(self) -> list:
        """Theta(0) … Theta(L−1), new backend arrays: ``thetas[l].shape == (sizes[l+1], sizes[l] + bias)``."""
        return [self._join(W, b) for W, b in zip(self._W, self._b)]

    @on_device
    def set_thetas(self, thetas) -> None:
        """Replace every Theta(l) (lists, NumPy or backend arrays), checking each shape."""
        thetas = check.thetas(thetas, self.backend, self.dtype, self.theta_shapes())
        for t, W, b in zip(thetas, self._W, self._b):
            W[...] = t[:, 1:] if self.bias else t
            if b is not None:
                b[...] = t[:, 0]

