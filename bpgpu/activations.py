"""Activations g and derivatives g′: string-keyed tables of in-place element-wise functions.

Each takes the array namespace ``xp`` first and writes into its arguments; ``Backend.fuse``
makes it one kernel on CuPy and runs it as written elsewhere. g′ is written in terms of
a = g(z), which the forward pass kept. Shapes: ``z``, ``a``, ``d`` (m, n); ``b`` (n,) or None.
"""

from __future__ import annotations


def _add_bias(z, b):
    if b is not None:
        z += b


# -- forward: z ← g(z + b), in place ---------------------------------------------------

def sigmoid(xp, z, b):
    # 0.5·(1 + tanh(z/2)) equals 1/(1 + e^−z) but never overflows for large |z|.
    _add_bias(z, b)
    z *= 0.5
    xp.tanh(z, out=z)
    z *= 0.5
    z += 0.5


def tanh(xp, z, b):
    _add_bias(z, b)
    xp.tanh(z, out=z)


def relu(xp, z, b):
    _add_bias(z, b)
    xp.maximum(z, 0.0, out=z)


def identity(xp, z, b):
    _add_bias(z, b)


def softmax(xp, z, b):
    """Row-wise softmax of ``z`` (m, k), in place; shifting by the row maximum avoids
    overflow. Reductions, so plain array operations rather than one fused kernel."""
    _add_bias(z, b)
    z -= xp.max(z, axis=1, keepdims=True)
    xp.exp(z, out=z)
    z /= xp.sum(z, axis=1, keepdims=True)


# In place: z ← g(z + b).
FORWARD = {"sigmoid": sigmoid, "tanh": tanh, "relu": relu, "identity": identity, "softmax": softmax}


def _value(g):
    def value(z, xp):
        """g(z) as a new array: the same definition run on a copy, with ``xp`` a namespace
        whose functions take ``out=`` (NumPy, CuPy)."""
        a = xp.asarray(z, copy=True)
        g(xp, a, None)
        return a

    value.__name__ = g.__name__
    return value


# As values, a = g(z, xp): for readers and references that want the plain function.
ACTIVATIONS = {name: _value(FORWARD[name]) for name in ("sigmoid", "tanh", "relu", "identity")}
OUTPUT_ACTIVATIONS = {**ACTIVATIONS, "softmax": _value(softmax)}

# -- backward: d ← d ⊙ g′(z), from a = g(z) -----------------------------------------------
# Each may overwrite ``a``: the backward pass calls it last for its layer.


def sigmoid_prime(xp, d, a):
    d *= a * (1.0 - a)


def tanh_prime(xp, d, a):
    d *= 1.0 - a * a


def relu_prime(xp, d, a):
    """Overwrites ``a`` with the mask [a > 0] (the backward pass is done with it): a ≥ 0,
    so ceil(min(a, 1)) is 1 where the unit was active and 0 elsewhere, computed in
    place, without the boolean array and cast buffer that d·(a > 0) costs NumPy."""
    xp.minimum(a, 1.0, out=a)
    xp.ceil(a, out=a)
    d *= a


# None: g′ = 1, nothing to multiply.
DERIVATIVES = {"sigmoid": sigmoid_prime, "tanh": tanh_prime, "relu": relu_prime, "identity": None}


def below_one_unit(g_prime):
    """d(l) = (d(l+1)·W(l)) ⊙ g′ where layer l+1 has one unit: d(l+1) (m, 1) times W(l) (1, n)
    is an outer product, exact by broadcasting, so it joins the derivative in one kernel."""
    def below(xp, d_below, d, W, a):
        xp.multiply(d, W, out=d_below)
        g_prime(xp, d_below, a)

    below.__name__ = f"outer_{g_prime.__name__}"
    return below

HIDDEN = ("sigmoid", "tanh", "relu", "identity")
OUTPUTS = HIDDEN + ("softmax",)
