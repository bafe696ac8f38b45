"""An activation and a loss of one's own, written as docs/custom.md shows: softplus and Huber.

Registered by the tests that use them (``register_examples()``), so the kernel check and the
compiled-loop check fuse them with everything bpgpu fuses.
"""

from __future__ import annotations

import bpgpu

DELTA = 1.0  # Huber's δ: quadratic within |a − y| ≤ δ, linear beyond


def softplus(xp, z, b):
    """z ← log(1 + e^(z + b)) = max(z, 0) + log1p(e^−|z|), without overflow."""
    if b is not None:
        z += b
    positive = xp.maximum(z, 0.0)
    xp.abs(z, out=z)
    z *= -1.0
    xp.exp(z, out=z)
    xp.log1p(z, out=z)
    z += positive


def softplus_prime(xp, d, a):
    """g′(z) = σ(z) = 1 − e^−a, from a = softplus(z)."""
    d *= 1.0 - xp.exp(-a)


def huber(xp, a, y, out):
    """out ← c·(e − c/2), e = a − y, c = e clipped to [−δ, δ]: ½e² within δ, δ(|e| − δ/2) beyond."""
    xp.subtract(a, y, out=out)
    c = xp.minimum(xp.maximum(out, -DELTA), DELTA)
    out -= 0.5 * c
    out *= c


def huber_prime(xp, a, y, d):
    """d ← ∂ℓ/∂a = e clipped to [−δ, δ]."""
    xp.subtract(a, y, out=d)
    xp.maximum(d, -DELTA, out=d)
    xp.minimum(d, DELTA, out=d)


def register_examples() -> None:
    """As "my_softplus" and "my_huber": names no other test expects to be unknown."""
    bpgpu.activations.register("my_softplus", softplus, softplus_prime)
    bpgpu.losses.register("my_huber", huber, huber_prime)
