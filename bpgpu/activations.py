"""Activations g and derivatives g′: string-keyed tables of in-place element-wise functions.

Each takes the array namespace ``xp`` first and writes into its arguments; ``Backend.fuse``
makes it one kernel on CuPy and runs it as written elsewhere. g′ is written in terms of
a = g(z), which the forward pass kept. Shapes: ``z``, ``a``, ``d`` (m, n); ``b`` (n,) or None.
:func:`register` adds one of your own, written the same way.
"""

from __future__ import annotations

from . import registry


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


def exp(xp, z, b):
    """The log link's inverse (a Poisson output): a = e^z."""
    _add_bias(z, b)
    xp.exp(z, out=z)


def softmax(xp, z, b):
    """Row-wise softmax of ``z`` (m, k), in place; shifting by the row maximum avoids
    overflow. Reductions, so plain array operations rather than one fused kernel."""
    _add_bias(z, b)
    z -= xp.max(z, axis=1, keepdims=True)
    xp.exp(z, out=z)
    z /= xp.sum(z, axis=1, keepdims=True)


# In place: z ← g(z + b).
FORWARD = {"sigmoid": sigmoid, "tanh": tanh, "relu": relu, "identity": identity, "softmax": softmax, "exp": exp}


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
OUTPUT_ACTIVATIONS = {**ACTIVATIONS, "softmax": _value(softmax), "exp": _value(exp)}

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


def exp_prime(xp, d, a):
    d *= a


# None: g′ = 1, nothing to multiply.
DERIVATIVES = {"sigmoid": sigmoid_prime, "tanh": tanh_prime, "relu": relu_prime, "identity": None,
               "exp": exp_prime}


def below_one_unit(g_prime):
    """d(l) = (d(l+1)·W(l)) ⊙ g′ where layer l+1 has one unit: d(l+1) (m, 1) times W(l) (1, n)
    is an outer product, exact by broadcasting, so it joins the derivative in one kernel."""
    def below(xp, d_below, d, W, a):
        xp.multiply(d, W, out=d_below)
        g_prime(xp, d_below, a)

    below.__name__ = f"outer_{g_prime.__name__}"
    return below

def dropped(g):
    """a(l) = g(z + b) ⊙ M: the activation and its inverted-dropout mask M ∈ {0, 1/(1−p)}
    in one kernel."""
    def forward(xp, z, b, M):
        g(xp, z, b)
        z *= M

    forward.__name__ = f"dropout_{g.__name__}"
    return forward


def dropped_prime(g_prime):
    """d(l) ⊙ g′ ⊙ M from ã = a ⊙ M, the activation the forward pass kept: where the unit
    was kept a = ã·keep (keep = 1 − p); where it was dropped M = 0 masks whatever g′ gives."""
    def prime(xp, d, a, M, keep):
        a *= keep
        g_prime(xp, d, a)
        d *= M

    prime.__name__ = f"dropout_{g_prime.__name__}"
    return prime


HIDDEN = ("sigmoid", "tanh", "relu", "identity")
OUTPUTS = HIDDEN + ("softmax", "exp")
REGISTERED: dict[str, tuple] = {}  # name → (forward, derivative), by register()


def hidden() -> tuple[str, ...]:
    """Every activation a hidden layer may use: the built-ins, then those registered."""
    return HIDDEN + tuple(REGISTERED)


def outputs() -> tuple[str, ...]:
    """Every output activation: the built-ins, then those registered."""
    return OUTPUTS + tuple(REGISTERED)


def register(name: str, forward, derivative) -> None:
    """Add an activation of your own, for hidden layers and the output, by ``name``.

    Args:
        name: what ``Network(activation=name)`` (or ``output=``) calls it; not a built-in's.
        forward: ``forward(xp, z, b)``: z ← g(z + b) in place, as :func:`sigmoid` (``b`` (n,)
            or None; element-wise, no reductions: it becomes one fused kernel).
        derivative: ``derivative(xp, d, a)``: d ← d ⊙ g′(z), written from a = g(z) (the forward
            pass keeps a, not z), as :func:`sigmoid_prime`; it may overwrite ``a``.

    The derivative is checked against central differences of ``forward`` here (a ValueError
    says where they disagree). Registering a name again replaces it. A model saved with it
    records the name; loading it needs the same registration first.
    """
    registry.check_name("activation", name, OUTPUTS)
    registry.check_activation(name, forward, derivative)
    FORWARD[name], DERIVATIVES[name] = forward, derivative
    ACTIVATIONS[name] = OUTPUT_ACTIVATIONS[name] = _value(forward)
    REGISTERED[name] = (forward, derivative)
