"""Activation functions and their derivatives, as small string-keyed tables.

Each derivative is written in terms of the activation's *output* ``a = g(z)``, so the
backward pass needs only the activations kept from the forward pass. ``None`` marks
a derivative that is 1 everywhere (nothing to multiply). Every function takes the
array namespace ``xp`` and works on arrays of any shape.
"""

from __future__ import annotations


def sigmoid(z, xp):
    # 0.5·(1 + tanh(z/2)) equals 1/(1 + e^−z) but never overflows for large |z|.
    return 0.5 * xp.tanh(0.5 * z) + 0.5


def softmax(z, xp):
    """Row-wise softmax of ``z`` (m, k); shifting by the row maximum avoids overflow."""
    e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


ACTIVATIONS = {
    "sigmoid": sigmoid,
    "tanh": lambda z, xp: xp.tanh(z),
    "relu": lambda z, xp: xp.maximum(z, 0.0),
    "identity": lambda z, xp: z,
}

# g'(z) from a = g(z). relu: sign(a) is 1 where a > 0 and 0 elsewhere, as a float.
DERIVATIVES = {
    "sigmoid": lambda a, xp: a * (1.0 - a),
    "tanh": lambda a, xp: 1.0 - a * a,
    "relu": lambda a, xp: xp.sign(a),
    "identity": None,
}

HIDDEN = tuple(ACTIVATIONS)
OUTPUTS = HIDDEN + ("softmax",)
OUTPUT_ACTIVATIONS = {**ACTIVATIONS, "softmax": softmax}
