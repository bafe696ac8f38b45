"""State stays consistent after failure (issue 10, point 5): whatever stops training, the
network keeps usable weights and the optimiser state that belongs to them, and nothing
a caller gets back aliases the network's own arrays."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bpgpu
from bpgpu.optimizers import SGD, Adam
from bpgpu.io.persistence import load_checkpoint, save


def regression(m=16, n=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.1, 1.0, (m, n))
    return X, X.sum(axis=1, keepdims=True)


def test_early_stopping_with_a_never_finite_validation_loss_keeps_the_current_weights():
    """patience with a validation loss that is inf every epoch: the weights after the last epoch stay"""
    net = bpgpu.Network([2, 4, 1], activation="identity", output="identity", dtype="float32", seed=0)
    twin = net.clone()
    X, Y = regression()
    X_val = np.full((4, 2), 1e30)  # finite, but its squared error overflows float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        h = net.fit(X, Y, epochs=6, lr=0.01, validation_data=(X_val, np.zeros((4, 1))), patience=2)
    assert h.stop_reason == "early_stopping" and not any(np.isfinite(h.val_loss))
    twin.fit(X, Y, epochs=h.epochs, lr=0.01)
    for got, want in zip(net.thetas, twin.thetas):
        np.testing.assert_array_equal(got, want)


class PoisonedAdam(Adam):
    """Adam that writes NaN into the first weights after global step ``after``: the next
    step's gradients, hence the moments, turn NaN too."""

    def __init__(self, lr, after):
        super().__init__(lr)
        self.after = after

    def step(self, theta, D):
        super().step(theta, D)
        if self.t - 1 == self.after:
            theta[:2] = np.nan


def diverged_adam():
    """(net, adam, history, states): Adam poisoned in its third epoch; states[e] is a copy of
    the optimiser's step count and state after epoch e (states[-1]: before training)."""
    net = bpgpu.Network([2, 8, 1], activation="relu", output="identity", seed=1)
    X, Y = regression()
    opt = PoisonedAdam(0.01, after=9)  # 4 steps an epoch: epoch 2, step 1
    states = {-1: (0, {})}

    def keep(epoch, history):
        states[epoch] = (opt.t, {k: v.copy() for k, v in opt.state.items()})

    with pytest.warns(bpgpu.DivergenceWarning):
        h = net.fit(X, Y, epochs=50, batch_size=4, optimizer=opt, callback=keep, shuffle=False)
    return net, opt, h, states


def test_a_divergence_restores_the_optimiser_state_with_the_weights():
    """Adam diverging: its moments and step count go back with the weights, to the same epoch"""
    net, opt, h, states = diverged_adam()
    e, k = h.nonfinite_at["epoch"], h.nonfinite_at["step"]
    restored = e - 1 if k > 0 else e - 2  # the epoch whose end state fit went back to
    assert restored >= 1
    t, state = states[restored]
    assert opt.t == t and state
    for key, vector in state.items():
        np.testing.assert_array_equal(opt.state[key], vector)
    assert all(np.isfinite(a).all() for a in opt.state.values())


def test_a_saved_model_never_carries_nonfinite_optimiser_state(tmp_path):
    """After a divergence the saved optimiser state is finite; NaN state is refused, naming optimizer"""
    net, opt, _, _ = diverged_adam()
    path = save(net, tmp_path / "model.npz", optimizer=opt)
    loaded = load_checkpoint(path).optimizer
    assert all(np.isfinite(a).all() for a in loaded.state.values())
    opt.state["m"][0] = np.nan
    with pytest.raises(ValueError, match="optimizer"):
        save(net, tmp_path / "bad.npz", optimizer=opt)
    assert not (tmp_path / "bad.npz").exists()


def test_an_optimiser_built_for_another_architecture_is_refused_before_any_weight_changes():
    """An Optimizer with state for other shapes: a ValueError naming optimizer, weights untouched"""
    X, Y = regression()
    opt = Adam(0.01)
    bpgpu.Network([2, 8, 1], seed=0).fit(X, Y, epochs=1, optimizer=opt)
    other = bpgpu.Network([2, 3, 1], seed=0)
    before = [t.copy() for t in other.thetas]
    with pytest.raises(ValueError, match="^optimizer: "):
        other.fit(X, Y, epochs=1, optimizer=opt)
    for got, want in zip(other.thetas, before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bias", [True, False])
def test_thetas_are_copies(bias):
    """net.thetas: changing what it returns never changes the network, with or without a bias"""
    net = bpgpu.Network([3, 2, 1], bias=bias)
    before = [t.copy() for t in net.thetas]
    for t in net.thetas:
        t[...] = 7.0
    for got, want in zip(net.thetas, before):
        np.testing.assert_array_equal(got, want)


def test_config_is_a_copy():
    """net.config(): changing its lists never changes the network"""
    net = bpgpu.Network([3, 4, 4, 1], activation=["relu", "tanh"])
    config = net.config()
    config["sizes"].append(9)
    config["activation"][0] = "sigmoid"
    assert net.sizes == [3, 4, 4, 1] and net.activations == ["relu", "tanh"]
    assert net.config() == bpgpu.Network(**net.config()).config()


def test_sgd_keeps_no_state_arrays_so_any_network_may_use_it():
    """SGD keeps no arrays: any architecture may use it (nothing to refuse)"""
    X, Y = regression()
    opt = SGD(0.01)
    bpgpu.Network([2, 8, 1]).fit(X, Y, epochs=1, optimizer=opt)
    bpgpu.Network([2, 3, 1]).fit(X, Y, epochs=1, optimizer=opt)
    assert opt.t == 2
