"""Optimisers: Theta ← update(Theta, D) in place, one fused element-wise kernel a step.

``opt.bind(backend, n, dtype)`` readies the kernel, scratch and per-step scalar vector for
flat vectors of n entries; ``opt.step(theta, D)`` then updates. State is the step count
``t`` plus named slot vectors of the parameters' layout (Momentum's ``velocity``, Adam's
``m`` and ``v``): saving, snapshotting and restoring copy the slots. docs/architecture.md
has the rules every update follows.
"""

from __future__ import annotations

import math

import numpy as np

from . import validation as check

OPTIMIZERS = ("sgd", "momentum", "adam")


# The update rules, each one fused kernel (tests/test_kernels.py compiles them): every scalar
# is a 0-d view of the optimiser's scalar vector, no arithmetic joins two scalars in a body,
# and the scratch vectors ``s``, ``u`` are arrays on NumPy and None on CuPy (registers).

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


def nesterov(xp, theta, D, v, s, u, mu, lr):
    """v ← μ·v − η·D;  Theta ← Theta + μ·v − η·D."""
    s = xp.multiply(D, lr, out=s)
    v *= mu
    v -= s
    u = xp.multiply(v, mu, out=u)
    u -= s
    theta += u


def adam(xp, theta, D, m, v, s, u, b1, c1, b2, c2, alpha, eps_hat):
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
    u = xp.multiply(m, alpha, out=u)
    u /= s
    theta -= u


class Optimizer:
    """Base: a subclass names its ``slots``, its fused ``rule()`` (theta, D, *slots,
    *scratch, *scalars), its number of ``scratch`` vectors and its per-step ``scalars()``."""

    name = ""
    slots: tuple[str, ...] = ()
    scratch = 1
    renamed: dict[str, str] = {}  # slot names of older checkpoints → today's
    _CACHES = ("_bound", "_update", "_scratch", "_scalar_vector", "_scalar_views")

    def __init__(self, lr: float):
        self.lr = check.number("lr", lr, low=0.0, low_open=True)
        self.t = 0  # steps taken
        self.state: dict = {}  # slot name → flat vector (n,), made at the first step
        self.__dict__.update(dict.fromkeys(self._CACHES))

    def rule(self):
        raise NotImplementedError

    def scalars(self) -> tuple[float, ...]:
        raise NotImplementedError

    def hyperparameters(self) -> dict:
        return {"lr": self.lr}

    def bind(self, backend, n: int, dtype: str) -> "Optimizer":
        """Ready to step flat vectors of ``n`` entries of ``dtype`` on ``backend``: the fused
        update and the scratch vectors, made once (again only for another backend, size or
        dtype). Returns the optimiser."""
        key = (backend, n, dtype)
        if self._bound != key:
            xp = backend.xp
            self._update = backend.fuse(self.rule())
            self._scratch = [xp.empty(n, dtype=getattr(xp, dtype)) if backend.fused_scratch else None
                             for _ in range(self.scratch)]
            self._bound, self._scalar_vector = key, None
        return self

    def step(self, theta, D) -> None:
        """Theta ← update(Theta, D) in place, for flat vectors ``theta``, ``D`` (n,) as bound."""
        if self._bound is None:
            raise RuntimeError(f"{type(self).__name__}.step: call bind(backend, n, dtype) first")
        self.t += 1
        scalars = self._write_scalars(self.scalars())
        self._update(theta, D, *[self._slot(name, theta) for name in self.slots], *self._scratch, *scalars)

    def _write_scalars(self, values) -> list:
        """``values`` as 0-d views of one small vector on the device, in the bound dtype, written
        from the host in one copy a step: a CUDA graph replays with the current values, and no
        arithmetic joins two scalars inside a kernel."""
        backend, _, dtype = self._bound
        if self._scalar_vector is None:
            self._scalar_vector = backend.xp.zeros(len(values), dtype=getattr(backend.xp, dtype))
            self._scalar_views = [self._scalar_vector[i, ...] for i in range(len(values))]
        backend.copy_from_host(np.asarray(values, dtype=dtype), self._scalar_vector)
        return self._scalar_views

    def __getstate__(self) -> dict:
        # The kernel and scratch are remade at the next bind: they hold modules and closures
        # (unpicklable: joblib, GridSearchCV) and vectors as big as the network.
        return {**self.__dict__, **dict.fromkeys(self._CACHES)}

    def _slot(self, name: str, theta):
        if name not in self.state:
            self.state[name] = self._bound[0].xp.zeros_like(theta)
        return self.state[name]

    # -- state: the step count and the slots ----------------------------------------

    def check_params(self, theta, name: str = "optimizer") -> None:
        """Refuse slots made for a parameter vector of another shape (another architecture),
        before any weight changes: a ValueError naming ``name``."""
        for key, slot in self.state.items():
            if tuple(slot.shape) != tuple(theta.shape):
                raise ValueError(f"{name}: this {type(self).__name__}'s state {key!r} was made for parameters of "
                                 f"shape {tuple(slot.shape)}, the network's are {tuple(theta.shape)}; use a new "
                                 "optimiser for this network")

    def state_dict(self, to_host) -> dict:
        """Name, step count, hyper-parameters and host copies of the slots (``to_host``
        moves one array there; a copy is taken even where it does not)."""
        return {"name": self.name, "t": self.t, "hyper": self.hyperparameters(),
                "state": {k: np.array(to_host(v)) for k, v in self.state.items()}}

    def load_state_dict(self, saved: dict, to_device) -> None:
        """Continue from ``saved`` (a :meth:`state_dict`); ``to_device`` moves one host array
        to the network's device, and the slots are copies. Older state loads too: a slot
        as a list holding its flat vector, under its old name (Momentum's "v")."""
        self.t = int(saved["t"])
        self.state = {self.renamed.get(k, k): to_device(np.concatenate([np.ravel(a) for a in v]) if
                                                      isinstance(v, (list, tuple)) else np.array(v))
                      for k, v in saved["state"].items()}

    def snapshot(self, copy, into: dict | None = None) -> dict:
        """The step count and device copies of the slots (``copy`` copies one array);
        ``into``, an earlier snapshot no longer needed, lends its vectors where they fit."""
        old = into["state"] if into else {}
        state = {}
        for key, slot in self.state.items():
            reuse = old.get(key)
            if reuse is not None and reuse.shape == slot.shape:
                reuse[...] = slot
                state[key] = reuse
            else:
                state[key] = copy(slot)
        return {"t": self.t, "state": state}

    def restore(self, snapshot: dict) -> None:
        """Return to a :meth:`snapshot` (which stays usable: its vectors are copied in);
        slots made after it are dropped, as if never made."""
        self.t = snapshot["t"]
        saved = {self.renamed.get(k, k): v for k, v in snapshot["state"].items()}
        self.state = {key: self.state[key] for key in saved}
        for key, vector in saved.items():
            self.state[key][...] = vector


class SGD(Optimizer):
    """Theta ← Theta − η·D."""

    name = "sgd"

    def __init__(self, lr: float = 0.5):
        super().__init__(lr)

    def rule(self):
        return sgd

    def scalars(self):
        return (self.lr,)


class Momentum(Optimizer):
    """v ← μ·v − η·D; Theta ← Theta + v (Nesterov: Theta ← Theta + μ·v − η·D); v is ``velocity``."""

    name = "momentum"
    slots = ("velocity",)
    renamed = {"v": "velocity"}

    def __init__(self, lr: float = 0.1, *, momentum: float = 0.9, nesterov: bool = False):
        super().__init__(lr)
        self.momentum = check.number("momentum", momentum, low=0.0)
        if self.momentum >= 1.0:
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
        self.nesterov = bool(nesterov)

    @property
    def scratch(self):
        return 2 if self.nesterov else 1

    def rule(self):
        return nesterov if self.nesterov else momentum

    def scalars(self):
        return self.momentum, self.lr

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, on the same D; moments ``m`` and ``v``."""

    name = "adam"
    slots = ("m", "v")
    scratch = 2

    def __init__(self, lr: float = 1e-3, *, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not (check.number(name, beta, low=0.0) < 1.0):
                raise ValueError(f"{name}: expected a number in [0, 1), got {beta!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = check.number("eps", eps, low=0.0, low_open=True)

    def rule(self):
        return adam

    def scalars(self):
        b1, b2 = self.beta1, self.beta2
        # Both bias corrections folded into the step size: one scalar, no extra arrays.
        alpha = self.lr * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        return b1, 1.0 - b1, b2, 1.0 - b2, alpha, self._eps_hat()

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _eps_hat(self) -> float:
        """ε on the uncorrected √v: ε·√(1−β2ᵗ) puts it on the bias-corrected √v̂, as Kingma
        and Ba write it (a subclass may place it elsewhere)."""
        return self.eps * math.sqrt(1.0 - self.beta2**self.t)


CLASSES = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name, lr: float | None = None, **options) -> Optimizer:
    """An optimiser by name ("sgd", "momentum", "adam"), or ``name`` itself if it is one.

    ``lr`` None takes the class's default; ``options`` are the named optimiser's own
    (momentum, nesterov; beta1, beta2, eps).
    """
    if isinstance(name, Optimizer):
        return name
    cls = CLASSES[check.choice("optimizer", name, OPTIMIZERS)]
    return cls(**options) if lr is None else cls(lr, **options)
