"""Inverted dropout of hidden units: a(l) ← g(z(l)) ⊙ M(l), M(l) ∈ {0, 1/(1−p)} drawn per step.

Each unit of hidden layer l is kept with probability 1 − p_l and scaled by 1/(1 − p_l), so
the expected activation is unchanged and prediction uses none (as PyTorch's ``nn.Dropout``
and Keras' ``Dropout``). The backward pass multiplies d(l) by the same M(l). Masks are drawn
on the device for the whole batch (chunks take their rows of them, so a chunked step equals
the whole one), from a generator seeded by (seed, draw count, rank): the count is all the
state there is, and a :class:`~bpgpu.position.Position` carries it (``dropout_draws``).
Shapes: M(l) (m, sizes[l]) for a batch of m rows.
"""

from __future__ import annotations

import numpy as np

from .activations import dropped, dropped_prime

STREAM = 0xD80  # keeps the masks' generators apart from the other uses of the seed


def keep_mask(xp, u, p, scale):
    """u ← [u > p]·scale from u uniform in [0, 1): ceil(u − p) is 1 there and 0 (or −0) elsewhere."""
    u -= p
    xp.ceil(u, out=u)
    u *= scale


def rates(value, n_hidden: int) -> list[float]:
    """One dropout rate p ∈ [0, 1) per hidden layer, from one number or a list of them."""
    listed = value if isinstance(value, (list, tuple)) else [value] * n_hidden
    if len(listed) != n_hidden:
        raise ValueError(f"dropout: expected one rate or {n_hidden} (one per hidden layer), got {len(listed)}: {value!r}")
    for p in listed:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"dropout: expected rates in [0, 1) (the probability of dropping a unit), got {p!r}")
    return [float(p) for p in listed]


class Dropout:
    """The masks of one network: ``rates`` per hidden layer, ``sizes`` the layer sizes,
    ``draws`` the masks drawn so far."""

    def __init__(self, rates_, sizes, backend, dtype: str, seed: int):
        self.rates, self.sizes, self.backend, self.dtype, self.seed = rates_, sizes, backend, dtype, seed
        self.active = any(rates_)
        self.draws = 0
        self._keep_mask = backend.fuse(keep_mask)

    def draw(self, rows: int, rank: int = 0) -> list | None:
        """The next masks for ``rows`` rows: one (rows, sizes[l]) array per hidden layer
        (None where p = 0); None without dropout."""
        if not self.active:
            return None
        key = [self.seed, STREAM, self.draws] + ([rank] if rank else [])
        rng = self.backend.random(int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0]))
        self.draws += 1
        masks = []
        for p, size in zip(self.rates, self.sizes[1:-1]):
            if not p:
                masks.append(None)
                continue
            u = rng.random((rows, size), dtype=getattr(np, self.dtype))
            self._keep_mask(u, p, 1.0 / (1.0 - p))
            masks.append(u)
        return masks

    def check(self, masks, rows: int) -> list | None:
        """``masks`` given by the caller: one array (rows, sizes[l]) or None per hidden layer."""
        if masks is None:
            return None
        if not isinstance(masks, (list, tuple)) or len(masks) != len(self.rates):
            raise ValueError(f"masks: expected a list of {len(self.rates)} (one per hidden layer, None for none), "
                             f"got {masks!r:.80}")
        for M, size in zip(masks, self.sizes[1:-1]):
            if M is not None and tuple(M.shape) != (rows, size):
                raise ValueError(f"masks: expected arrays of shape ({rows}, {size}) for that layer, got {tuple(M.shape)}")
        return [None if M is None else self.backend.asarray(M, self.dtype) for M in masks]

    @staticmethod
    def rows(masks, start: int, stop: int) -> list | None:
        """The masks of rows start … stop − 1 (a chunk's)."""
        return masks and [None if M is None else M[start:stop, :] for M in masks]

    def layer_functions(self, fuse, activations: list, forward: dict, derivatives: dict, ops):
        """(forward, prime) per hidden layer where its rate is not 0 (else None):
        forward(z, b, M): z ← g(z + b) ⊙ M;  prime(d, a, M): d ← d ⊙ g′ ⊙ M from ã = a ⊙ M."""
        fwd, prime = [], []
        for p, g in zip(self.rates, activations):
            if not p:
                fwd.append(None), prime.append(None)
                continue
            fwd.append(fuse(dropped(forward[g])))
            if derivatives[g] is None:
                prime.append(lambda d, a, M: ops.multiply(d, M, out=d))
            else:
                fused, keep = fuse(dropped_prime(derivatives[g])), 1.0 - p
                prime.append(lambda d, a, M, fused=fused, keep=keep: fused(d, a, M, keep))
        return fwd, prime
