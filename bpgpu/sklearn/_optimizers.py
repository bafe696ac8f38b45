"""scikit-learn's update rules and the choice of learning-rate schedule, on bpgpu's Optimizer interface.

Plain SGD and (Nesterov) momentum are bpgpu's own: the same arithmetic as scikit-learn's,
rounding included. Adam is not: scikit-learn adds ε to the *uncorrected* √v while
``bpgpu.Adam`` adds it to the bias-corrected one, so :class:`ScikitAdam` carries
scikit-learn's placement. The schedules (:mod:`bpgpu.schedules`) act between epochs, as scikit-learn's do,
through the per-epoch callback of ``Network.fit``: the trainer itself knows nothing about them.
"""

from __future__ import annotations

from .. import SGD, Adam, Momentum, Optimizer, schedules


class _LearningRateName:
    """scikit-learn calls the current step size ``learning_rate``; bpgpu calls it ``lr``."""

    @property
    def learning_rate(self) -> float:
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.lr = value


class ScikitSGD(_LearningRateName, SGD):
    """Theta ← Theta − η·D (scikit-learn's sgd with momentum=0)."""


class ScikitMomentum(_LearningRateName, Momentum):
    """scikit-learn's sgd with momentum (and Nesterov): bpgpu's Momentum, same rounding."""


class ScikitAdam(_LearningRateName, Adam):
    """Adam as scikit-learn computes it:

        m ← β1·m + (1−β1)·D,   v ← β2·v + (1−β2)·D²
        Theta ← Theta − η·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε)

    ε sits on the uncorrected √v (``bpgpu.Adam`` puts it on √v̂); otherwise bpgpu's fused
    update, whose operations come in scikit-learn's order (equal rounding).
    """

    name = "sklearn_adam"

    def _eps_hat(self) -> float:
        return self.eps


def make(solver: str, *, learning_rate_init, momentum, nesterovs_momentum, beta_1, beta_2, epsilon) -> Optimizer:
    """The optimiser scikit-learn's MLP builds for ``solver`` ("sgd" or "adam")."""
    if solver == "adam":
        return ScikitAdam(learning_rate_init, beta1=beta_1, beta2=beta_2, eps=epsilon)
    if momentum == 0:
        # 0·v − η·D is exactly −η·D: plain SGD gives the same numbers with fewer operations.
        return ScikitSGD(learning_rate_init)
    if momentum >= 1:
        raise ValueError(f"momentum: bpgpu's momentum expects a number in [0, 1), got {momentum!r} "
                         "(with momentum=1 the velocity never decays and training cannot converge)")
    return ScikitMomentum(learning_rate_init, momentum=momentum, nesterov=nesterovs_momentum)


def schedule(kind: str, learning_rate_init: float, power_t: float):
    """scikit-learn's ``learning_rate`` rule as a :mod:`bpgpu.schedules` schedule, applied
    between epochs. scikit-learn applies it to sgd only; Adam always runs "constant"."""
    return schedules.schedule(kind, learning_rate_init, power_t)
