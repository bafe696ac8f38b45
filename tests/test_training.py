"""fit: it learns, it is reproducible, it does exactly the steps it promises, it stops
when told, its History is true, and it stays finite where the exponentials are large."""

import math
import os
import signal

import numpy as np
import pytest

import bpgpu

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0], dtype=float)


def host(thetas):
    return [np.array(t) for t in thetas]


def assert_same(got, expected):
    for g, e in zip(host(got), host(expected), strict=True):
        np.testing.assert_array_equal(g, e)


@pytest.fixture(scope="module")
def teacher_data():
    """A 4-6-2 tanh teacher with N(0, 1) weights labels 512 training and 256 validation inputs."""
    rng = np.random.default_rng(0)
    teacher = bpgpu.Network([4, 6, 2], activation="tanh", output="identity", seed=1)
    teacher.set_thetas([rng.standard_normal(shape) for shape in teacher.theta_shapes()])
    X, X_val = rng.standard_normal((512, 4)), rng.standard_normal((256, 4))
    return X, teacher.predict(X), X_val, teacher.predict(X_val)


def small_problem(m=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, 3)), rng.random((m, 2))


# -- it learns ---------------------------------------------------------------------------


def test_xor_2_2_1_by_batch_gradient_descent():
    """The textbook 2-2-1 sigmoid net on XOR with mse (seed 1: 2-2-1 has local minima)."""
    net = bpgpu.Network([2, 2, 1], activation="sigmoid", output="sigmoid", loss="mse", seed=1)
    history = net.fit(XOR_X, XOR_Y, epochs=2000, lr=2.0)
    assert history.loss[-1] < 5e-3 < history.loss[0]
    np.testing.assert_array_equal(net.predict(XOR_X).ravel().round(), XOR_Y)


@pytest.mark.parametrize("seed", range(5))
def test_xor_2_4_1_cross_entropy_with_momentum(seed):
    net = bpgpu.Network([2, 4, 1], activation="tanh", output="sigmoid", loss="cross_entropy", seed=seed)
    history = net.fit(XOR_X, XOR_Y, epochs=2000, lr=0.1, optimizer="momentum")
    assert history.loss[-1] < 5e-3
    np.testing.assert_array_equal(net.predict(XOR_X).ravel().round(), XOR_Y)


def test_teacher_network_regression(teacher_data):
    """A 4-16-2 student fits the teacher: J from 1.28 (predicting the mean) to below 1e-3."""
    X, Y, X_val, Y_val = teacher_data
    baseline = 0.5 * np.mean(np.sum((Y - Y.mean(axis=0)) ** 2, axis=1))
    assert baseline > 1.0
    net = bpgpu.Network([4, 16, 2], activation="tanh", output="identity", seed=2)
    history = net.fit(X, Y, epochs=100, lr=0.01, batch_size=32, optimizer="adam", validation_data=(X_val, Y_val))
    assert history.loss[-1] < 1e-3 and history.val_loss[-1] < 1e-3


# -- reproducible, and exactly the promised steps ------------------------------------------


def test_seeded_runs_are_bit_identical():
    X, Y = small_problem(40)

    def train(seed):
        net = bpgpu.Network([3, 5, 2], activation="relu", seed=seed)
        history = net.fit(X, Y, epochs=5, batch_size=7, optimizer="adam", lr=0.01)
        return net.thetas, history.loss

    (thetas_a, loss_a), (thetas_b, loss_b), (thetas_c, _) = train(3), train(3), train(4)
    assert_same(thetas_a, thetas_b)
    assert loss_a == loss_b
    assert not np.array_equal(host(thetas_a)[0], host(thetas_c)[0])


def manual_sgd(net, X, Y, lr, epochs, batch_size, order=None):
    """Plain SGD through the public API: (J, D) = loss_and_gradients, Theta ← Theta − η·D.

    ``order(epoch)`` permutes the rows each epoch (None keeps them in order). Returns the
    epoch losses as the mean over examples of each step's J (taken before its update)."""
    m = X.shape[0]
    losses = []
    for epoch in range(epochs):
        perm = np.arange(m) if order is None else order(epoch)
        Xe, Ye = X[perm], Y[perm]
        total = 0.0
        for start in range(0, m, batch_size):
            xb, yb = Xe[start:start + batch_size], Ye[start:start + batch_size]
            J, D = net.loss_and_gradients(xb, yb)
            total += J * xb.shape[0]
            net.set_thetas([t - lr * d for t, d in zip(host(net.thetas), host(D), strict=True)])
        losses.append(total / m)
    return losses


@pytest.mark.parametrize("batch_size", [4, 10, None], ids=["mini-batch", "batch-of-m", "full"])
def test_unshuffled_fit_is_plain_sgd_in_order(batch_size):
    """shuffle=False takes the rows in order (m = 10, batch 4: steps of 4, 4, 2 rows);
    batch_size=None is one full-batch gradient-descent step per epoch."""
    X, Y = small_problem(10)
    net = bpgpu.Network([3, 4, 2], activation="tanh", seed=5)
    twin = net.clone()
    history = net.fit(X, Y, epochs=3, lr=0.3, batch_size=batch_size, shuffle=False)
    losses = manual_sgd(twin, X, Y, lr=0.3, epochs=3, batch_size=batch_size or 10)
    assert_same(net.thetas, twin.thetas)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-14)
    assert history.steps == 3 * math.ceil(10 / (batch_size or 10))


def test_shuffled_fit_permutes_by_seed_and_epoch():
    """shuffle=True: epoch e takes the rows in np.random.default_rng([seed, e]).permutation(m)."""
    X, Y = small_problem(10)
    net = bpgpu.Network([3, 4, 2], activation="tanh", seed=5)
    twin = net.clone()
    history = net.fit(X, Y, epochs=3, lr=0.3, batch_size=4, shuffle=True)
    losses = manual_sgd(twin, X, Y, lr=0.3, epochs=3, batch_size=4,
                        order=lambda epoch: np.random.default_rng([5, epoch]).permutation(10))
    assert_same(net.thetas, twin.thetas)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-14)


def test_history_counts_and_rates():
    X, Y = small_problem(10)
    history = bpgpu.Network([3, 4, 2], seed=0).fit(X, Y, epochs=4, batch_size=3)
    assert (history.epochs, history.steps, history.samples) == (4, 16, 40)
    assert len(history.loss) == 4 and history.val_loss == [] and history.best_epoch is None
    assert history.stop_reason == "epochs" and history.nonfinite_at is None
    assert history.elapsed > 0 and history.samples_per_s > 0
    record = history.to_dict()
    assert record["loss"] == history.loss and record["samples_per_s"] == history.samples_per_s


# -- stopping rules --------------------------------------------------------------------


def test_stops_at_target_loss():
    net = bpgpu.Network([2, 4, 1], activation="tanh", output="sigmoid", loss="cross_entropy", seed=0)
    history = net.fit(XOR_X, XOR_Y, epochs=5000, lr=0.1, optimizer="momentum", target_loss=0.1)
    assert history.stop_reason == "target_loss" and history.epochs < 5000
    assert history.loss[-1] <= 0.1 < min(history.loss[:-1])


def test_stops_at_max_time():
    """A deadline of 1 µs has passed by the first step's end: one step, a part epoch, no whole one."""
    X, Y = small_problem(50)
    history = bpgpu.Network([3, 4, 2], seed=0).fit(X, Y, epochs=10**6, batch_size=1, max_time=1e-6)
    assert history.stop_reason == "max_time"
    assert (history.epochs, history.steps, history.samples, history.loss) == (0, 1, 1, [])
    assert {k: history.part[k] for k in ("epoch", "steps", "samples")} == {"epoch": 0, "steps": 1, "samples": 1}
    assert (history.position.epoch, history.position.step) == (0, 1)


def test_callback_sees_each_epoch_and_can_stop():
    X, Y = small_problem(10)
    seen = []

    def callback(epoch, history):
        seen.append((epoch, len(history.loss)))
        return epoch == 4

    history = bpgpu.Network([3, 4, 2], seed=0).fit(X, Y, epochs=100, callback=callback, initial_epoch=2)
    assert seen == [(2, 1), (3, 2), (4, 3)]
    assert history.stop_reason == "callback" and history.epochs == 3


def test_stop_is_asked_after_every_step_and_stops_as_ctrl_c_does():
    """The hook a program handling its own signals uses (the CLI's SIGTERM): step-granular, like Ctrl-C."""
    X, Y = small_problem(10)
    asked = []
    history = bpgpu.Network([3, 4, 2], seed=0).fit(X, Y, epochs=100, batch_size=2,
                                                   stop=lambda: asked.append(1) or len(asked) == 7)
    assert history.stop_reason == "interrupted" and (history.epochs, history.steps) == (1, 7)
    assert (history.part["epoch"], history.part["steps"], history.part["samples"]) == (1, 2, 4)
    with pytest.raises(TypeError, match="stop: expected a function"):
        bpgpu.Network([3, 4, 2]).fit(X, Y, stop=True)


def test_a_ctrl_c_after_stop_is_a_first_ctrl_c():
    """stop() (the CLI's SIGTERM) then Ctrl-C before fit returns: a stop as usual, not the second Ctrl-C's abort"""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("fit handles Ctrl-C only where SIGINT has Python's default handler")
    X, Y = small_problem(10)
    history = bpgpu.Network([3, 4, 2], seed=0).fit(
        X, Y, epochs=100, stop=lambda: True, callback=lambda epoch, h: os.kill(os.getpid(), signal.SIGINT))
    assert history.stop_reason == "interrupted" and history.epochs == 1


@pytest.mark.parametrize("rule", [dict(target_loss=1e9), dict(epochs=3), dict(max_time=1e-6)])
def test_callback_also_sees_the_epoch_that_stops_training(rule):
    """The last epoch is reported too, whatever rule ends the run (the CLI's progress and checkpoints rely on it)."""
    X, Y = small_problem(10)
    seen = []
    options = dict(epochs=100, callback=lambda epoch, history: seen.append(epoch))
    history = bpgpu.Network([3, 4, 2], seed=0).fit(X, Y, **{**options, **rule})
    assert seen == list(range(history.epochs)) and history.epochs >= 1


def test_validation_loss_is_recorded_every_epoch(teacher_data):
    X, Y, X_val, Y_val = teacher_data
    net = bpgpu.Network([4, 8, 2], activation="tanh", output="identity", seed=0)
    evaluated = []
    history = net.fit(X, Y, epochs=5, batch_size=64, optimizer="adam", lr=0.01, validation_data=(X_val, Y_val),
                      callback=lambda epoch, h: evaluated.append(net.evaluate(X_val, Y_val)))
    assert history.val_loss == evaluated and len(history.loss) == 5
    assert history.val_loss[-1] < history.val_loss[0]


def test_early_stopping_restores_the_best_weights(teacher_data):
    """Validating against half the teacher's targets: the student, starting near 0,
    passes them on its way to the full targets, so the validation loss falls (for 3
    epochs here), then rises; early stopping must trigger and roll back."""
    X, Y, X_val, Y_val = teacher_data
    net = bpgpu.Network([4, 8, 2], activation="tanh", output="identity", seed=0)
    weights = {}

    def keep(epoch, history):
        weights[epoch] = host(net.thetas)

    patience = 3
    history = net.fit(X, Y, epochs=200, batch_size=64, optimizer="adam", lr=0.01,
                      validation_data=(X_val, 0.5 * Y_val), patience=patience, callback=keep)
    val = history.val_loss
    assert history.stop_reason == "early_stopping"
    assert history.best_epoch == int(np.argmin(val)) > 0 and len(val) == history.best_epoch + patience + 1
    assert_same(net.thetas, weights[history.best_epoch])
    assert net.evaluate(X_val, 0.5 * Y_val) == min(val) < val[-1]


# -- numerically safe where exponentials are large --------------------------------------


SATURATING = [("sigmoid", "cross_entropy"), ("sigmoid", "mse"), ("softmax", "cross_entropy"), ("softmax", "mse")]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("output, loss", SATURATING)
def test_outputs_and_losses_stay_finite_for_huge_z(output, loss, dtype):
    """|z(L)| up to 2e3 (e^2000 overflows both dtypes): outputs saturate to 0/1 without
    overflow, and cross-entropy of confidently wrong outputs is large but finite (no log 0)."""
    net = bpgpu.Network([2, 3], output=output, loss=loss, dtype=dtype, seed=0)
    net.set_thetas([[[0.0, 1e3, -1e3], [0.0, -1e3, 1e3], [5.0, 0.0, 0.0]]])
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 1.0]])
    Y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # mostly wrong
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        A = net.predict(X)
        J, D = net.loss_and_gradients(X, Y)
        history = net.fit(X, Y, epochs=3, lr=0.01)
    assert np.all(np.isfinite(A)) and np.all((A >= 0) & (A <= 1))
    if output == "softmax":
        np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-6)
    assert math.isfinite(J) and all(np.all(np.isfinite(np.array(Dl))) for Dl in D)
    if loss == "cross_entropy":
        assert J > 100  # the wrong rows cost ~|z| each, not inf
    assert history.stop_reason == "epochs" and all(math.isfinite(v) for v in history.loss)
