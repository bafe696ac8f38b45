"""Losses: the output delta d(L) and a chunk's share of J, together in place, by (loss, output).

    mse:            J = 1/(2m)·Σ (a − y)²                                  d(L) = (a − y) ⊙ g′(z(L))
    cross_entropy:  J = −1/m·Σ y·log a (+ (1−y)·log(1−a) for a sigmoid)    d(L) = a − y
    poisson:        J = 1/m·Σ y·log(y/a) − y + a,  a = e^z                 d(L) = a − y
    registered:     J = 1/m·Σ ℓ(a, y)                                      d(L) = ∂ℓ/∂a ⊙ g′(z(L))

All come out times ``scale`` (1/m on one process) and, with example weights ``w``
(:class:`~bpgpu.weights.RowWeights`), row i times sᵢ. Cross-entropy is computed from z, never
log(a). Poisson is scikit-learn's half Poisson deviance (zero where a = y; y·log y read as 0
at y = 0), with the log link: its output is "exp". Shapes: ``z``, ``y``, ``d`` (r, k); ``b``
(k,) or None; J shares 0-d. :func:`register` adds a loss of your own.
"""

from __future__ import annotations

from . import registry
from .activations import DERIVATIVES, FORWARD, softmax

LOSSES = ("mse", "cross_entropy", "poisson")
# Cross-entropy is a likelihood of outputs in (0, 1): only these outputs define it.
CROSS_ENTROPY_OUTPUTS = ("sigmoid", "softmax")
# The outputs each built-in loss is defined for (None: any).
LOSS_OUTPUTS = {"mse": None, "cross_entropy": CROSS_ENTROPY_OUTPUTS, "poisson": ("exp",)}
# y·log y is taken as y·log max(y, TINY): 0 at y = 0 (0·log 0 = 0), exact for y ≥ TINY.
TINY = 1e-30


def error(xp, z, b, y, d, scale):
    """d ← (z + b − y)·scale: the identity output's whole delta in one pass."""
    if b is not None:
        z += b
    xp.subtract(z, y, out=d)
    d *= scale


def sigmoid_cross_entropy(xp, z, b, y, d, scale):
    """d ← (σ(z + b) − y)·scale and z ← softplus(z + b) − y·(z + b), the loss per entry:
    −[y·log σ(z) + (1−y)·log(1−σ(z))] = softplus(z) − y·z."""
    if b is not None:
        z += b
    d[...] = z
    FORWARD["sigmoid"](xp, d, None)
    d -= y
    d *= scale
    yz = y * z
    positive = xp.maximum(z, 0.0)
    xp.abs(z, out=z)
    z *= -1.0
    xp.exp(z, out=z)
    xp.log1p(z, out=z)  # softplus(z) = max(z, 0) + log(1 + e^−|z|), without overflow
    z += positive
    z -= yz


def poisson_deviance(xp, z, b, y, d, scale):
    """d ← (e^(z+b) − y)·scale and z ← y·(log y − (z + b)) + e^(z+b) − y, the half Poisson
    deviance per entry, y·log(y/a) − y + a with log a = z + b (never log of a)."""
    if b is not None:
        z += b
    xp.exp(z, out=d)
    d -= y
    z[...] = y * (xp.log(xp.maximum(y, TINY)) - z) + d
    d *= scale


def _prime_and_scale(g_prime):
    def prime_and_scale(xp, d, a, scale):
        """d ← d ⊙ g′(a)·scale."""
        g_prime(xp, d, a)
        d *= scale

    prime_and_scale.__name__ = f"{g_prime.__name__}_and_scale"
    return prime_and_scale


def _weigh(w, *arrays):
    """Each of ``arrays`` (r, k) ← row i times sᵢ (exact for sᵢ = 1); nothing without weights."""
    if w is not None:
        for a in arrays:
            a *= w.s


def _weigh_residual(w, d):
    """d ← row i times √sᵢ: ½‖d‖² is then Σᵢ sᵢ·½‖eᵢ‖², and a second call makes d's rows sᵢ·eᵢ."""
    if w is not None:
        d *= w.root


def _sigmoid_cross_entropy(head, z, b, y, ws, scale, w):
    head.sigmoid_ce(z, b, y, ws.d[-1], scale)
    _weigh(w, ws.d[-1], z)
    return head.ops.sum(z) * scale


def _softmax_cross_entropy(head, z, b, y, ws, scale, w):
    """The row maximum and sum serve both a = softmax(z) and J = Σ_k y_k·(logsumexp(z) − z_k)."""
    ops, d, (zmax, total) = head.ops, ws.d[-1], ws.rows
    if b is not None:
        z += b
    ops.max(z, axis=1, keepdims=True, out=zmax)
    ops.subtract(z, zmax, out=d)
    ops.exp(d, out=d)
    ops.sum(d, axis=1, keepdims=True, out=total)
    d /= total
    ops.log(total, out=total)
    total += zmax  # logsumexp = zmax + log Σ
    ops.subtract(total, z, out=z)
    z *= y
    head.error(d, None, y, d, scale)
    _weigh(w, d, z)
    return ops.sum(z) * scale


def _poisson(head, z, b, y, ws, scale, w):
    head.poisson(z, b, y, ws.d[-1], scale)
    _weigh(w, ws.d[-1], z)
    return head.ops.sum(z) * scale


def _mse_identity(head, z, b, y, ws, scale, w):
    head.error(z, b, y, ws.d[-1], scale)
    _weigh_residual(w, ws.d[-1])
    J = head.dot(ws.flat_d, ws.flat_d) * (0.5 / scale)  # d = e·scale: ½·Σe²·scale = ½·‖d‖² / scale
    _weigh_residual(w, ws.d[-1])
    return J


def _mse_softmax(head, z, b, y, ws, scale, w):
    J = _mse_error(head, z, b, y, ws, scale, w)
    _softmax_jacobian(head, ws.d[-1], z, scale)
    _weigh_residual(w, ws.d[-1])
    return J


def _softmax_jacobian(head, d, a, scale):
    """g′ is a Jacobian for a softmax: d ← a ⊙ (e − rowsum(e ⊙ a))·scale from e = ∂J/∂a in d."""
    d -= head.ops.sum(d * a, axis=1, keepdims=True)
    d *= a
    d *= scale


def _mse_elementwise(head, z, b, y, ws, scale, w):
    J = _mse_error(head, z, b, y, ws, scale, w)
    head.prime_and_scale(ws.d[-1], z, scale)
    _weigh_residual(w, ws.d[-1])
    return J


def _mse_error(head, z, b, y, ws, scale, w):
    """z ← a(L), d ← e = a − y (rows times √sᵢ with weights); returns ½·Σ‖d‖²·scale."""
    head.activate(z, b)
    head.error(z, None, y, ws.d[-1], 1.0)
    _weigh_residual(w, ws.d[-1])
    return head.dot(ws.flat_d, ws.flat_d) * (0.5 * scale)


def _registered(head, z, b, y, ws, scale, w):
    """A registered loss: z ← a(L), J from ℓ(a, y) summed, then d = ∂ℓ/∂a ⊙ g′·scale."""
    d = ws.d[-1]
    head.activate(z, b)
    head.value(z, y, d)
    _weigh(w, d)
    J = head.ops.sum(d) * scale
    head.derivative(z, y, d)
    if head.output == "softmax":
        _softmax_jacobian(head, d, z, scale)
    elif head.prime_and_scale is not None:
        head.prime_and_scale(d, z, scale)
    else:
        d *= scale
    _weigh(w, d)
    return J


# d(L)·scale into ws.d[-1] and the chunk's share of J, by (loss, output); each weighs its
# rows by ``w`` (the loss per entry and d(L) by sᵢ, or a squared residual by √sᵢ twice);
# pairs not listed (a registered loss or activation) are found by delta_for.
OUTPUT_DELTA = {("cross_entropy", "sigmoid"): _sigmoid_cross_entropy,
                ("cross_entropy", "softmax"): _softmax_cross_entropy,
                ("poisson", "exp"): _poisson,
                ("mse", "identity"): _mse_identity,
                ("mse", "softmax"): _mse_softmax,
                **{("mse", g): _mse_elementwise for g in ("sigmoid", "tanh", "relu", "exp")}}
REGISTERED: dict[str, tuple] = {}  # name → (loss, derivative), by register()


def names() -> tuple[str, ...]:
    """Every loss a network may use: the built-ins, then those registered."""
    return LOSSES + tuple(REGISTERED)


def delta_for(loss: str, output: str):
    """The OUTPUT_DELTA function of (loss, output): mse with a registered activation is the
    element-wise rule, a registered loss its own."""
    if loss in REGISTERED:
        return _registered
    return OUTPUT_DELTA.get((loss, output), _mse_elementwise)


def register(name: str, loss, derivative) -> None:
    """Add a loss of your own, by ``name``, for any output activation.

    Args:
        name: what ``Network(loss=name)`` calls it; not a built-in's.
        loss: ``loss(xp, a, y, out)``: out ← ℓ(a, y), the loss of each entry, for the output
            a = a(L) and target y, all (r, k); element-wise, writing into ``out`` (one fused
            kernel, as the built-ins; no arithmetic between two scalars inside).
        derivative: ``derivative(xp, a, y, d)``: d ← ∂ℓ/∂a, element-wise, into ``d``.

    J = 1/m·Σ ℓ(a, y) + the L2 term, and d(L) = ∂ℓ/∂a ⊙ g′(z(L)) (the softmax's Jacobian for
    a softmax output). The derivative is checked against central differences of ``loss``
    here (a ValueError says where they disagree). Registering a name again replaces it.
    """
    registry.check_name("loss", name, LOSSES)
    registry.check_loss(name, loss, derivative)
    REGISTERED[name] = (loss, derivative)


class Head:
    """The output layer's loss and delta for one (loss, output) pair, bound to a backend.

    ``Head(...)(z, b, y, ws, scale, w)``: z is the output's pre-activation *without* its
    bias (overwritten); ``w`` the rows' :class:`~bpgpu.weights.RowWeights` or None; the workspace ``ws`` gives d(L) its buffer ``ws.d[-1]`` (and
    ``ws.flat_d``, the same as a vector) and the row reductions two columns ``ws.rows``.
    Returns the chunk's share of J (0-d). ``activate(z, b)`` turns z into a(L) in place
    (prediction).
    """

    def __init__(self, loss: str, output: str, backend):
        self.output, self.ops, self.dot = output, backend.ops, backend.dot
        self._activate = (lambda z, b: softmax(self.ops, z, b)) if output == "softmax" else \
            backend.fuse(FORWARD[output])
        self.error = backend.fuse(error)
        self.sigmoid_ce = backend.fuse(sigmoid_cross_entropy)
        self.poisson = backend.fuse(poisson_deviance)
        g_prime = DERIVATIVES.get(output)
        self.prime_and_scale = backend.fuse(_prime_and_scale(g_prime)) if g_prime else None
        if loss in REGISTERED:
            self.value, self.derivative = (backend.fuse(f) for f in REGISTERED[loss])
        self._delta = delta_for(loss, output)

    def activate(self, z, b):
        """z ← a(L) = g(z + b), in place (no kernel where there is nothing to do)."""
        if self.output != "identity" or b is not None:
            self._activate(z, b)

    def __call__(self, z, b, y, ws, scale, w=None):
        return self._delta(self, z, b, y, ws, scale, w)
