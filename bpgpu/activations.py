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

OUTPUT_ACTIVATIONS = {**ACTIVATIONS, "softmax": softmax}

# g'(z) from a = g(z). relu: sign(a) is 1 where a > 0 and 0 elsewhere, as a float.
DERIVATIVES = {
    "sigmoid": lambda a, xp: a * (1.0 - a),
    "tanh": lambda a, xp: 1.0 - a * a,
    "relu": lambda a, xp: xp.sign(a),
    "identity": None,
}

# NumPy fast paths, measured to pay (bpgpu bench W1): NumPy's maximum and sign are
# NaN-aware and slow, while a boolean mask multiplies at full speed. Not array-API code
# (bool·float promotion), so only the "numpy" backend takes them; tests/test_backends.py
# checks them against the portable versions, which array-api-strict runs.
FAST = {
    "numpy": (
        {"relu": lambda z, xp: z * (z > 0)},
        {"relu": lambda a, xp: a > 0},
    ),
}


def for_backend(backend_name: str, hidden: list[str], output: str):
    """(g for every layer, g′ for every hidden layer), fast paths first where the backend has them."""
    fast_g, fast_g_prime = FAST.get(backend_name, ({}, {}))
    g = [fast_g.get(name, ACTIVATIONS[name]) for name in hidden]
    g.append(fast_g.get(output, OUTPUT_ACTIVATIONS[output]))
    g_prime = [fast_g_prime.get(name, DERIVATIVES[name]) for name in hidden]
    return g, g_prime


HIDDEN = tuple(ACTIVATIONS)
OUTPUTS = HIDDEN + ("softmax",)
