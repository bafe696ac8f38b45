"""Optimisers: each turns the gradients D into an in-place update of the parameters.

All use the same D from backpropagation. :meth:`bpgpu.Network.step` hands an optimiser
its flat parameter vector and flat D (one array each), so each built-in optimiser
updates every weight with one fused element-wise function (one kernel on CuPy). State
(velocities, moments) lives on the network's device in vectors of the same layout, and
``state_dict``/``load_state_dict`` let a checkpoint resume exactly where it stopped.
"""

from __future__ import annotations

import math

import numpy as np

from . import validation as check
from .backend import backend_of

OPTIMIZERS = ("sgd", "momentum", "adam")


class Optimizer:
    """Base: ``step(params, D, xp)`` updates each array of the list ``params`` in place
    from the gradient of the same shape in ``D`` (``xp``: the array namespace).

    A subclass writes its update as a function of the arrays (see :class:`SGD`) and
    keeps per-parameter state in ``self.state[key]``, a list parallel to ``params``.
    """

    name = ""

    def __init__(self, lr: float):
        self.lr = check.number("lr", lr, low=0.0, low_open=True)
        self.t = 0  # steps taken
        self.state: dict[str, list] = {}
        self._kernels = {}
        self._work_key, self._work = None, []
        self._scalars_key, self._scalar_vector, self._scalar_views = None, None, []

    def step(self, params, D, xp) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict:
        # The fused kernels and scratch vectors are caches, remade at the next step; they
        # hold modules and closures, which cannot be pickled (joblib, GridSearchCV).
        return {**self.__dict__, "_kernels": {}, "_work_key": None, "_work": [],
                "_scalars_key": None, "_scalar_vector": None, "_scalar_views": []}

    def _fused(self, fn, xp):
        """``fn`` as the backend of ``xp`` runs it (one kernel on CuPy), made once."""
        kernel = self._kernels.get((fn, id(xp)))
        if kernel is None:
            kernel = self._kernels[(fn, id(xp))] = backend_of(xp).fuse(fn)
        return kernel

    def _scalars(self, xp, params, *values: float) -> list:
        """``values`` as 0-d views of one small vector on the parameters' device and of their
        dtype, written from the host in one copy per step. Fused bodies then read every
        scalar from device memory in the arrays' own dtype: a CUDA graph replays with the
        current values, and no arithmetic on two scalars happens inside a kernel."""
        key = (id(xp), params[0].dtype, len(values))
        if self._scalars_key != key:
            self._scalar_vector = xp.zeros(len(values), dtype=params[0].dtype)
            self._scalar_views = [self._scalar_vector[i, ...] for i in range(len(values))]
            self._scalars_key = key
        backend_of(xp).write_from_host(self._scalar_vector, values)
        return self._scalar_views

    def _zeros_like(self, key, params, xp):
        if key not in self.state:
            self.state[key] = [xp.zeros_like(p) for p in params]
        return self.state[key]

    def check_params(self, params, name: str = "optimizer") -> None:
        """Refuse state made for parameters of other shapes (another architecture), before
        any weight changes: a ValueError naming ``name``."""
        want = [tuple(p.shape) for p in params]
        for key, arrays in self.state.items():
            got = [tuple(a.shape) for a in arrays]
            if got != want:
                raise ValueError(f"{name}: this {type(self).__name__}'s state {key!r} was made for parameters "
                                 f"of shapes {got}, the network's are {want}; use a new optimiser for this network")

    def hyperparameters(self) -> dict:
        return {"lr": self.lr}

    def state_dict(self, to_host) -> dict:
        """Hyper-parameters, step count and copies of the state arrays on the host
        (``to_host`` moves one array there; a copy is taken even where it does not)."""
        return {"name": self.name, "t": self.t, "hyper": self.hyperparameters(),
                "state": {k: [np.array(to_host(a)) for a in v] for k, v in self.state.items()}}

    def load_state_dict(self, saved: dict, to_device) -> None:
        """Continue from ``saved`` (a :meth:`state_dict`); ``to_device`` moves one host array
        to the network's device. The optimiser gets copies, never the saved arrays."""
        self.t = int(saved["t"])
        self.state = {k: [to_device(np.array(a)) for a in v] for k, v in saved["state"].items()}

    def snapshot(self, copy, into: dict | None = None) -> dict:
        """The step count and device copies of the state (``copy`` copies one array).
        ``into``: an earlier snapshot, no longer needed, whose arrays are written over where
        they fit (large state is then copied, not allocated and page-faulted afresh)."""
        old = into["state"] if into else {}
        state = {}
        for key, arrays in self.state.items():
            reuse = old.get(key)
            if reuse is not None and [r.shape for r in reuse] == [a.shape for a in arrays]:
                for r, a in zip(reuse, arrays):
                    r[...] = a
                state[key] = reuse
            else:
                state[key] = [copy(a) for a in arrays]
        return {"t": self.t, "state": state}

    def restore(self, snapshot: dict) -> None:
        """Return to a :meth:`snapshot` (which stays usable: its arrays are copied in)."""
        self.t = snapshot["t"]
        for key, saved in snapshot["state"].items():
            for a, s in zip(self.state[key], saved):
                a[...] = s
        for key in set(self.state) - set(snapshot["state"]):
            del self.state[key]  # made after the snapshot: as if never made


# The updates' rules (the GPU-free kernel check in tests/test_kernels.py holds them):
# - every scalar is a 0-d array of the parameters' dtype (see Optimizer._scalars), and no
#   arithmetic joins two scalars inside a body: CuPy's fusion types a scalar-with-scalar
#   operation by the smallest float that holds it (float16), so 1 − β and the bias
#   corrections are computed on the host;
# - scratch vectors ``s``, ``t`` are arrays on NumPy (which then allocates nothing per step)
#   and None on CuPy, where ``xp.f(..., out=None)`` is a value the kernel keeps in registers.

def sgd(xp, theta, D, s, lr):
    """Theta ← Theta − η·D."""
    s = xp.multiply(D, lr, out=s)
    theta -= s


def momentum(xp, theta, D, v, s, mu, lr):
    """v ← μ·v − η·D;  Theta ← Theta + v."""
    s = xp.multiply(D, lr, out=s)
    v *= mu
    v -= s
    theta += v


def nesterov(xp, theta, D, v, s, t, mu, lr):
    """v ← μ·v − η·D;  Theta ← Theta + μ·v − η·D."""
    s = xp.multiply(D, lr, out=s)
    v *= mu
    v -= s
    t = xp.multiply(v, mu, out=t)
    t -= s
    theta += t


def adam(xp, theta, D, m, v, s, t, b1, c1, b2, c2, alpha, eps_hat):
    """m ← β1·m + c1·D;  v ← β2·v + c2·D²;  Theta ← Theta − α·m / (√v + ε̂), with c = 1 − β."""
    m *= b1
    s = xp.multiply(D, c1, out=s)
    m += s
    v *= b2
    s = xp.multiply(D, D, out=s)
    s *= c2
    v += s
    s = xp.sqrt(v, out=s)
    s += eps_hat
    t = xp.multiply(m, alpha, out=t)
    t /= s
    theta -= t


class SGD(Optimizer):
    """Theta ← Theta − η·D."""

    name = "sgd"

    def step(self, params, D, xp) -> None:
        self.t += 1
        update, (lr,) = self._fused(sgd, xp), self._scalars(xp, params, self.lr)
        for theta, Dl, (s,) in zip(params, D, _work(self, params, xp, 1)):
            update(theta, Dl, s, lr)


class Momentum(Optimizer):
    """v ← μ·v − η·D; Theta ← Theta + v (Nesterov: Theta ← Theta + μ·v − η·D)."""

    name = "momentum"

    def __init__(self, lr: float, momentum: float = 0.9, nesterov: bool = False):
        super().__init__(lr)
        self.momentum = check.number("momentum", momentum, low=0.0)
        if self.momentum >= 1.0:
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
        self.nesterov = bool(nesterov)

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov}

    def step(self, params, D, xp) -> None:
        self.t += 1
        update = self._fused(nesterov if self.nesterov else momentum, xp)
        scalars = self._scalars(xp, params, self.momentum, self.lr)
        for theta, Dl, v, work in zip(params, D, self._zeros_like("v", params, xp),
                                      _work(self, params, xp, 2 if self.nesterov else 1)):
            update(theta, Dl, v, *work, *scalars)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, on the same D."""

    name = "adam"

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not (check.number(name, beta, low=0.0) < 1.0):
                raise ValueError(f"{name}: expected a number in [0, 1), got {beta!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = check.number("eps", eps, low=0.0, low_open=True)

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def step(self, params, D, xp) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # Fold both bias corrections into the step size: one scalar, no extra arrays.
        alpha = self.lr * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        scalars = self._scalars(xp, params, b1, 1.0 - b1, b2, 1.0 - b2, alpha, self._eps_hat())
        update = self._fused(adam, xp)
        for theta, Dl, m, v, (s, t) in zip(params, D, self._zeros_like("m", params, xp),
                                           self._zeros_like("v", params, xp), _work(self, params, xp, 2)):
            update(theta, Dl, m, v, s, t, *scalars)

    def _eps_hat(self) -> float:
        """ε on the uncorrected √v: ε·√(1−β2ᵗ) puts it on the bias-corrected √v̂, as Kingma
        and Ba write it (a subclass may place it elsewhere)."""
        return self.eps * math.sqrt(1.0 - self.beta2**self.t)


def _work(opt, params, xp, count: int) -> list:
    """``count`` work arrays per parameter array, kept while the parameters stay the same
    arrays (a network's flat vector), never saved; None where the backend's fused kernels
    keep temporaries in registers (CuPy)."""
    key = (count, *((id(p), tuple(p.shape)) for p in params))
    if opt._work_key != key:
        scratch = backend_of(xp).fused_scratch
        opt._work_key, opt._work = key, [[xp.empty_like(p) if scratch else None for _ in range(count)]
                                         for p in params]
    return opt._work


def make_optimizer(name, lr: float, **options) -> Optimizer:
    """An optimiser by name ("sgd", "momentum", "adam"), or ``name`` itself if it is one.

    ``options`` are the named optimiser's own (momentum, nesterov; beta1, beta2, eps).
    """
    if isinstance(name, Optimizer):
        return name
    cls = {"sgd": SGD, "momentum": Momentum, "adam": Adam}[check.choice("optimizer", name, OPTIMIZERS)]
    return cls(lr, **options)
