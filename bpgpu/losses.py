"""Losses: their value summed over examples and the output-layer delta d(L).

Sums rather than means, so that a batch split into chunks adds up exactly; the
network divides by the batch size m once. Cross-entropy is computed from the
output's pre-activation z, never from log(a), so it cannot produce log(0).

Shapes: ``z``, ``a``, ``y`` are (m, k); sums are 0-d arrays; deltas are (m, k).
"""

from __future__ import annotations

from .activations import DERIVATIVES

LOSSES = ("mse", "cross_entropy")
# Cross-entropy is a likelihood of outputs in (0, 1): only these outputs define it.
CROSS_ENTROPY_OUTPUTS = ("sigmoid", "softmax")


def _softplus(z, xp):
    """log(1 + e^z) without overflow."""
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))


def _cross_entropy_sum(output, z, y, xp):
    if output == "sigmoid":
        # −[y·log σ(z) + (1−y)·log(1−σ(z))] = softplus(z) − y·z
        return xp.sum(_softplus(z, xp) - y * z)
    # −Σ_k y_k·log softmax(z)_k = Σ_k y_k·(logsumexp(z) − z_k)
    zmax = xp.max(z, axis=1, keepdims=True)
    lse = zmax + xp.log(xp.sum(xp.exp(z - zmax), axis=1, keepdims=True))
    return xp.sum(y * (lse - z))


def loss_sum(loss, output, z, a, y, xp):
    """Σ over examples of the unregularised loss (0-d array)."""
    if loss == "cross_entropy":
        return _cross_entropy_sum(output, z, y, xp)
    e = a - y
    return 0.5 * xp.sum(e * e)


def loss_and_delta(loss, output, z, a, y, xp):
    """(Σ loss, d(L)) for one batch: d(L) = ∂(Σ loss)/∂z(L), shape (m, k)."""
    e = a - y
    if loss == "cross_entropy":
        # With a sigmoid or softmax output (targets of a softmax row summing to 1) the
        # output's derivative cancels against the loss's: d = a − y.
        return _cross_entropy_sum(output, z, y, xp), e
    J = 0.5 * xp.sum(e * e)
    if output == "softmax":
        # softmax's g' is a Jacobian: d = a ⊙ (e − rowsum(e ⊙ a)).
        return J, a * (e - xp.sum(e * a, axis=1, keepdims=True))
    g_prime = DERIVATIVES[output]
    return J, e if g_prime is None else e * g_prime(a, xp)
