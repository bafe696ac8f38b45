"""Divergence: a non-finite loss or weight stops ``fit`` with the last good weights in
place, records where in ``History.nonfinite_at``, and warns ("stop") or raises
DivergenceError ("raise").

Where and what is restored (weights are checked at the end of every epoch):

- a non-finite loss at step k of epoch e: nonfinite_at = (e, k); the weights epoch e
  started with, or, for k = 0 (those very weights failed), the ones epoch e − 1 started with;
- weights non-finite at the end of epoch e with every loss finite (a saturated unit, or
  the last update): nonfinite_at = (e, its last step); the weights epoch e started with.

The tests keep a copy of the weights at every epoch's end (the callback) and compare
exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bpgpu
from bpgpu.optimizers import SGD
from reliability import tally

RELIABILITY = "divergence"

# NumPy's own overflow warnings are expected here; fit's RuntimeWarning is matched by message.
pytestmark = pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered")


class Poison(SGD):
    """SGD that writes ``value`` into the first weight row after global step ``after``:
    a divergence placed at an exact epoch and step."""

    def __init__(self, lr, after, value=np.nan):
        super().__init__(lr)
        self.after, self.value = after, value

    def step(self, theta, D):
        super().step(theta, D)
        if self.t - 1 == self.after:
            # The flat parameter vector starts with W(0) row-major: its first row is the
            # first 2 entries (every network poisoned here has 2 inputs).
            theta[:2] = self.value


def regression(m=8, n=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.1, 1.0, (m, n))
    return X, X.sum(axis=1, keepdims=True)


def fit_recording(net, X, Y, **options):
    """(history, weights): ``weights[e]`` is a copy of the thetas after epoch e,
    ``weights[-1]`` the thetas before training."""
    weights = {-1: [t.copy() for t in net.thetas]}

    def keep(epoch, history):
        weights[epoch] = [t.copy() for t in net.thetas]

    history = net.fit(X, Y, callback=keep, **options)
    if history.stop_reason == "nonfinite":
        tally()
    return history, weights


def last_good(weights, where):
    """The weights fit must restore for a non-finite *loss* at ``where``: those epoch e
    started with, or, at its step 0, those epoch e − 1 started with."""
    e = where["epoch"]
    return weights[e - 1] if where["step"] > 0 else weights[max(e - 2, -1)]


def assert_weights(net, expected):
    assert all(np.isfinite(t).all() for t in net.thetas)
    for got, want in zip(net.thetas, expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("optimizer, lr", [("sgd", 1e6), ("momentum", 1e6), ("adam", 1e200)],
                         ids=["sgd lr=1e6", "momentum lr=1e6", "adam lr=1e200"])
def test_huge_lr_full_batch_stops_with_the_last_good_weights(optimizer, lr):
    """A huge lr on the full batch: stop at the first non-finite loss, restore, warn"""
    net = bpgpu.Network([2, 8, 1], activation="relu", output="identity", seed=1)
    X, Y = regression()
    with pytest.warns(RuntimeWarning, match=r"diverged.*epoch \d+, step 0.*restored"):
        h, weights = fit_recording(net, X, Y, epochs=500, lr=lr, optimizer=optimizer)
    assert h.stop_reason == "nonfinite"
    where = h.nonfinite_at
    assert where["step"] == 0 and where["epoch"] == h.epochs == len(h.loss) >= 1
    assert_weights(net, last_good(weights, where))
    # full batch: the restored weights are the ones whose loss was the last recorded
    assert h.loss[-1] == pytest.approx(net.evaluate(X, Y), rel=1e-12)


@pytest.mark.parametrize("batch_size", [1, 3, 5], ids=lambda b: f"batch_size={b} of 10")
def test_huge_lr_mini_batch_stops_with_the_last_good_weights(batch_size):
    """A huge lr on mini-batches: the divergence's epoch and step are recorded, the weights restored"""
    net = bpgpu.Network([2, 8, 1], activation="relu", output="identity", seed=2)
    X, Y = regression(m=10)
    with pytest.warns(RuntimeWarning, match="diverged"):
        h, weights = fit_recording(net, X, Y, epochs=500, lr=1e5, batch_size=batch_size)
    assert h.stop_reason == "nonfinite"
    steps_per_epoch = -(-10 // batch_size)
    assert 0 <= h.nonfinite_at["step"] < steps_per_epoch
    assert h.nonfinite_at["epoch"] == h.epochs == len(h.loss)
    assert_weights(net, last_good(weights, h.nonfinite_at))


# (value written after global step `after`, steps per epoch, nonfinite_at, the epoch whose
# starting weights come back). 8 examples: 4 steps of 2, or 1 step of 8.
NONFINITE_WEIGHTS = [
    pytest.param(0, 4, {"epoch": 0, "step": 1}, 0, id="mid-epoch, first epoch"),
    pytest.param(3, 4, {"epoch": 0, "step": 3}, 0, id="last step of an epoch"),
    pytest.param(5, 4, {"epoch": 1, "step": 2}, 1, id="mid-epoch"),
    pytest.param(8, 4, {"epoch": 2, "step": 1}, 2, id="first step of a later epoch"),
    pytest.param(11, 4, {"epoch": 2, "step": 3}, 2, id="last step of a later epoch"),
    pytest.param(2, 1, {"epoch": 2, "step": 0}, 2, id="full batch"),
]
# A huge but finite weight: the epoch ends with finite weights, the next loss overflows.
OVERFLOWING_LOSS = [
    pytest.param(3, 4, {"epoch": 1, "step": 0}, 0, id="first step of an epoch"),
    pytest.param(5, 4, {"epoch": 1, "step": 2}, 1, id="mid-epoch"),
    pytest.param(2, 1, {"epoch": 3, "step": 0}, 2, id="full batch"),
]


def small_net():
    return bpgpu.Network([2, 4, 1], activation="identity", output="identity", seed=3)


def poisoned_fit(net, after, steps, value, **options):
    """(history, weights) of 20 epochs of SGD on 8 examples in ``steps`` steps an epoch,
    with ``value`` written into the weights after global step ``after``."""
    X, Y = regression(m=8)
    return fit_recording(net, X, Y, epochs=20, batch_size=8 // steps, optimizer=Poison(0.05, after, value), **options)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["to nan", "to inf", "to -inf"])
@pytest.mark.parametrize("after, steps, where, restored", NONFINITE_WEIGHTS)
def test_a_nonfinite_weight_at_an_exact_step(after, steps, where, restored, value):
    """A weight set non-finite after a known step: nonfinite_at names where it showed, the weights come back exactly"""
    with pytest.warns(RuntimeWarning, match=f"epoch {where['epoch']}, step {where['step']}"):
        h, weights = poisoned_fit(net := small_net(), after, steps, value)
    assert (h.stop_reason, h.nonfinite_at) == ("nonfinite", where)
    assert h.epochs == len(h.loss) == where["epoch"]
    assert_weights(net, weights[restored - 1])


@pytest.mark.parametrize("after, steps, where, restored", OVERFLOWING_LOSS)
def test_a_loss_overflowing_at_an_exact_step(after, steps, where, restored):
    """A weight set to 1e200 after a known step: the next loss overflows there, the weights come back exactly"""
    with pytest.warns(RuntimeWarning, match=f"epoch {where['epoch']}, step {where['step']}"):
        h, weights = poisoned_fit(net := small_net(), after, steps, 1e200)
    assert (h.stop_reason, h.nonfinite_at) == ("nonfinite", where)
    assert h.epochs == len(h.loss) == where["epoch"]
    assert_weights(net, weights[restored - 1])


@pytest.mark.parametrize("after, steps, where, restored", [NONFINITE_WEIGHTS[2], OVERFLOWING_LOSS[0]])
def test_on_nonfinite_raise(after, steps, where, restored):
    """on_nonfinite="raise": DivergenceError naming epoch and step, the weights already restored"""
    value = 1e200 if where["step"] == 0 else np.nan
    net = small_net()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="training diverged")  # raise means no warning as well
        with pytest.raises(bpgpu.DivergenceError, match=f"epoch {where['epoch']}, step {where['step']}"):
            poisoned_fit(net, after, steps, value, on_nonfinite="raise")
    tally()
    # the callback's copies went with the exception: the same SGD without the poison makes them again
    X, Y = regression(m=8)
    _, weights = fit_recording(small_net(), X, Y, epochs=max(restored, 1), batch_size=8 // steps, lr=0.05)
    assert_weights(net, weights[restored - 1])


def test_the_last_update_of_a_run_turning_nonfinite_is_caught():
    """Finite losses throughout but the run's very last update non-finite: the weights the last epoch began with"""
    net = small_net()
    X, Y = regression(m=8)
    with pytest.warns(RuntimeWarning, match="epoch 2, step 3"):
        h, weights = fit_recording(net, X, Y, epochs=3, batch_size=2, optimizer=Poison(0.05, after=11))
    assert (h.stop_reason, h.nonfinite_at) == ("nonfinite", {"epoch": 2, "step": 3})
    assert_weights(net, weights[1])


def test_training_goes_on_after_a_divergence():
    """After DivergenceError the network trains normally with a sane lr"""
    net = bpgpu.Network([2, 8, 1], activation="relu", output="identity", seed=1)
    X, Y = regression()
    with pytest.raises(bpgpu.DivergenceError):
        net.fit(X, Y, epochs=500, lr=1e6, on_nonfinite="raise")
    tally()
    start = net.evaluate(X, Y)
    h = net.fit(X, Y, epochs=200, lr=0.05)
    assert h.stop_reason == "epochs" and h.loss[-1] < start / 10


def test_finite_step_losses_whose_sum_overflows():
    """Step losses near the float64 limit: finite, so training goes on and the epoch loss is their mean"""
    net = bpgpu.Network([1, 1], output="identity", bias=False)
    net.set_thetas([[[5.48e153]]])  # each example's loss 0.5·(5.48e153)² ≈ 1.5e307
    X, Y = np.ones((15, 1)), np.zeros((15, 1))
    J = net.evaluate(X[:5], Y[:5])  # every batch's; the whole batch's sum would overflow
    h = net.fit(X, Y, epochs=1, lr=1e-300, batch_size=5, shuffle=False)
    assert h.stop_reason == "epochs" and h.loss == [pytest.approx(J)]


@pytest.mark.parametrize("activation, value", [("relu", -np.inf), ("tanh", np.inf)],
                         ids=["relu unit at -inf", "tanh unit at +inf"])
def test_a_nonfinite_weight_with_a_finite_loss_is_caught_in_its_epoch(activation, value):
    """A weight at ±inf that saturates its unit (the loss stays finite) still counts as divergence"""
    net = bpgpu.Network([2, 3, 1], activation=activation, output="identity", seed=0)
    X, Y = regression(m=8)
    initial = [t.copy() for t in net.thetas]
    with pytest.warns(RuntimeWarning, match="diverged"):
        h = net.fit(X, Y, epochs=3, batch_size=4, optimizer=Poison(0.01, after=0, value=value))
    tally()
    assert (h.stop_reason, h.nonfinite_at) == ("nonfinite", {"epoch": 0, "step": 1})
    assert_weights(net, initial)
