"""Optimisers: each turns the gradients D into an in-place update of the thetas.

All use the same D from backpropagation. State (velocities, moments) lives on the
network's device, and ``state_dict``/``load_state_dict`` let a checkpoint resume
exactly where it stopped.
"""

from __future__ import annotations

import math

import numpy as np

from . import validation as check

OPTIMIZERS = ("sgd", "momentum", "adam")


class Optimizer:
    """Base: ``step(thetas, D, xp)`` updates each Theta(l) in place (``xp``: the array namespace)."""

    name = ""

    def __init__(self, lr: float):
        self.lr = check.number("lr", lr, low=0.0, low_open=True)
        self.t = 0  # steps taken
        self.state: dict[str, list] = {}

    def step(self, thetas, D, xp) -> None:
        raise NotImplementedError

    def _zeros_like(self, key, thetas, xp):
        if key not in self.state:
            self.state[key] = [xp.zeros_like(t) for t in thetas]
        return self.state[key]

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


class SGD(Optimizer):
    """Theta ← Theta − η·D."""

    name = "sgd"

    def step(self, thetas, D, xp) -> None:
        self.t += 1
        for theta, Dl in zip(thetas, D):
            theta -= self.lr * Dl


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

    def step(self, thetas, D, xp) -> None:
        self.t += 1
        for theta, Dl, v in zip(thetas, D, self._zeros_like("v", thetas, xp)):
            v *= self.momentum
            v -= self.lr * Dl
            theta += self.momentum * v - self.lr * Dl if self.nesterov else v


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

    def step(self, thetas, D, xp) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # Fold both bias corrections into the step size: one scalar, no extra arrays.
        alpha = self.lr * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        eps_hat = self.eps * math.sqrt(1.0 - b2**self.t)
        for theta, Dl, m, v in zip(thetas, D, self._zeros_like("m", thetas, xp), self._zeros_like("v", thetas, xp)):
            m *= b1
            m += (1.0 - b1) * Dl
            v *= b2
            v += (1.0 - b2) * (Dl * Dl)
            theta -= alpha * m / (xp.sqrt(v) + eps_hat)


def make_optimizer(name, lr: float, **options) -> Optimizer:
    """An optimiser by name ("sgd", "momentum", "adam"), or ``name`` itself if it is one.

    ``options`` are the named optimiser's own (momentum, nesterov; beta1, beta2, eps).
    """
    if isinstance(name, Optimizer):
        return name
    cls = {"sgd": SGD, "momentum": Momentum, "adam": Adam}[check.choice("optimizer", name, OPTIMIZERS)]
    return cls(lr, **options)
