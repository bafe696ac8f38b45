"""fit's options, each tested by what it does: the weights fit reaches are compared with a
manual loop over the public ``loss_and_gradients`` and ``set_thetas``, so an option fit
ignores (nesterov, beta1, beta2, momentum, shuffle) or a stopping rule that does not stop
or restore shows up as different weights.
"""

import math

import numpy as np
import pytest

import bpgpu


def problem(seed=3, m=20, lam=0.1):
    rng = np.random.default_rng(seed)
    net = bpgpu.Network([3, 5, 2], activation="tanh", output="sigmoid", loss="mse", lam=lam, seed=seed)
    return net, rng.standard_normal((m, 3)), rng.random((m, 2))


def host(thetas):
    return [np.array(t, dtype=float) for t in thetas]


def manual(net, X, Y, epochs, batch_size, update):
    """Mini-batches in order, ``update(t, thetas, D) -> thetas`` per step (t from 1);
    returns the epoch losses (each the mean of its batch losses, weighted by batch size)."""
    m, losses, t = len(X), [], 0
    for _ in range(epochs):
        total = 0.0
        for s in range(0, m, batch_size):
            xb, yb = X[s:s + batch_size], Y[s:s + batch_size]
            J, D = net.loss_and_gradients(xb, yb)
            t += 1
            net.set_thetas(update(t, host(net.thetas), host(D)))
            total += J * len(xb) / m
        losses.append(total)
    return losses


def sgd(lr):
    return lambda t, thetas, D: [th - lr * d for th, d in zip(thetas, D)]


def momentum(lr, mu, nesterov):
    v = None

    def update(t, thetas, D):
        nonlocal v
        v = [np.zeros_like(d) for d in D] if v is None else v
        v = [mu * vl - lr * d for vl, d in zip(v, D)]
        if nesterov:
            return [th + mu * vl - lr * d for th, vl, d in zip(thetas, v, D)]
        return [th + vl for th, vl in zip(thetas, v)]
    return update


def adam(lr, b1, b2, eps=1e-8):
    state = {}

    def update(t, thetas, D):
        m = state.setdefault("m", [np.zeros_like(d) for d in D])
        v = state.setdefault("v", [np.zeros_like(d) for d in D])
        out = []
        for l, (th, d) in enumerate(zip(thetas, D)):
            m[l] = b1 * m[l] + (1 - b1) * d
            v[l] = b2 * v[l] + (1 - b2) * d * d
            m_hat, v_hat = m[l] / (1 - b1 ** t), v[l] / (1 - b2 ** t)
            out.append(th - lr * m_hat / (np.sqrt(v_hat) + eps))
        return out
    return update


def assert_same(a, b, tol=1e-10):
    for x, y in zip(host(a), host(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


def differ(a, b, by=1e-6):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(host(a), host(b))) > by


# fit's optimiser and a factory of the matching manual update (fresh state for each test).
CASES = {
    "sgd": (lambda: bpgpu.SGD(lr=0.3), lambda: sgd(0.3)),
    "momentum": (lambda: bpgpu.Momentum(lr=0.05, momentum=0.7), lambda: momentum(0.05, 0.7, False)),
    "nesterov": (lambda: bpgpu.Momentum(lr=0.05, momentum=0.7, nesterov=True), lambda: momentum(0.05, 0.7, True)),
    "adam-betas": (lambda: bpgpu.Adam(lr=0.01, beta1=0.5, beta2=0.9), lambda: adam(0.01, 0.5, 0.9)),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("batch_size", [None, 6])
def test_unshuffled_fit_equals_the_manual_loop(name, batch_size):
    make_optimizer, make_update = CASES[name]
    net, X, Y = problem()
    twin = net.clone()
    history = net.fit(X, Y, epochs=4, batch_size=batch_size, shuffle=False, optimizer=make_optimizer())
    losses = manual(twin, X, Y, 4, batch_size or len(X), make_update())
    assert_same(net.thetas, twin.thetas)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-12)
    assert history.steps == 4 * (1 if batch_size is None else math.ceil(20 / batch_size))


@pytest.mark.parametrize("changed", [dict(nesterov=True), dict(beta1=0.5), dict(beta2=0.9), dict(momentum=0.3)])
def test_each_hyperparameter_changes_the_weights(changed):
    """The manual loop above pins the values; here each option alone must matter."""
    optimizer = bpgpu.Adam if set(changed) & {"beta1", "beta2"} else bpgpu.Momentum
    runs = []
    for options in ({}, changed):
        net, X, Y = problem()
        net.fit(X, Y, epochs=3, batch_size=5, shuffle=False, optimizer=optimizer(lr=0.05, **options))
        runs.append(net.thetas)
    assert differ(*runs)


def test_shuffle_false_keeps_the_order_and_shuffle_true_does_not():
    net, X, Y = problem()
    twin, shuffled = net.clone(), net.clone()
    net.fit(X, Y, epochs=3, batch_size=6, shuffle=False, optimizer="sgd", lr=0.3)
    manual(twin, X, Y, 3, 6, sgd(0.3))
    shuffled.fit(X, Y, epochs=3, batch_size=6, optimizer="sgd", lr=0.3)
    assert_same(net.thetas, twin.thetas)
    assert differ(shuffled.thetas, twin.thetas)


def test_full_batch_ignores_shuffle():
    runs = []
    for shuffle in (True, False):
        net, X, Y = problem()
        net.fit(X, Y, epochs=3, batch_size=None, shuffle=shuffle, optimizer="sgd", lr=0.3)
        runs.append(host(net.thetas))
    assert_same(*runs, tol=0)


def test_chunk_size_gives_the_unchunked_weights():
    runs = []
    for chunk_size in (None, 3):
        net, X, Y = problem()
        history = net.fit(X, Y, epochs=3, batch_size=8, chunk_size=chunk_size, optimizer="adam", lr=0.01)
        runs.append((host(net.thetas), history.loss))
    assert_same(runs[0][0], runs[1][0], tol=1e-12)
    np.testing.assert_allclose(runs[0][1], runs[1][1], rtol=1e-12)


def drifting_validation():
    """One linear unit learning y = 2x from w = 0, validated on y = x: the validation loss
    falls while w < 1 and rises after it, so early stopping has a definite best epoch."""
    net = bpgpu.Network([1, 1], output="identity", loss="mse", bias=False)
    net.set_thetas([[[0.0]]])
    X = np.linspace(-1, 1, 11)[:, None]
    return net, X, 2 * X, (X, X.copy())


def test_patience_stops_and_restores_the_best_weights():
    net, X, Y, validation = drifting_validation()
    seen = []
    history = net.fit(X, Y, epochs=200, lr=0.1, optimizer="sgd", validation_data=validation, patience=3,
                      callback=lambda epoch, h: seen.append(float(np.array(net.thetas[0])[0, 0])))
    best = int(np.argmin(history.val_loss))
    assert history.stop_reason == "early_stopping"
    assert history.best_epoch == best and 0 < best < 199
    assert history.epochs == best + 1 + 3  # three epochs without improvement, then stop
    assert all(v > history.val_loss[best] for v in history.val_loss[best + 1:])
    w = float(np.array(net.thetas[0])[0, 0])
    assert w == seen[best] != seen[-1]
    assert net.evaluate(*validation) == history.val_loss[best]


def test_without_patience_the_validation_loss_is_only_recorded():
    net, X, Y, validation = drifting_validation()
    history = net.fit(X, Y, epochs=60, lr=0.1, optimizer="sgd", validation_data=validation)
    assert history.stop_reason == "epochs" and history.epochs == 60 and len(history.val_loss) == 60
    assert history.val_loss[-1] > min(history.val_loss)


def test_target_loss_stops_at_the_first_epoch_at_or_below_it():
    net, X, Y, _ = drifting_validation()
    full = net.clone().fit(X, Y, epochs=100, lr=0.1, optimizer="sgd").loss
    target = full[20]
    history = net.fit(X, Y, epochs=100, lr=0.1, optimizer="sgd", target_loss=target)
    assert history.stop_reason == "target_loss"
    assert history.loss == full[:21]


def test_max_time_stops_early():
    rng = np.random.default_rng(0)
    net = bpgpu.Network([8, 32, 1], seed=0)
    X, Y = rng.standard_normal((200, 8)), rng.random((200, 1))
    history = net.fit(X, Y, epochs=10**6, batch_size=1, max_time=0.3)
    assert history.stop_reason == "max_time"
    assert 0.3 <= history.elapsed < 5 and 0 < history.epochs < 10**6


def test_the_callback_sees_the_best_epoch_so_far():
    """history.best_epoch is the epoch of the lowest validation loss yet, in every callback
    (a checkpoint written there records it), not only once fit returns."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    Y = 1 / (1 + np.exp(-X[:, :1]))
    seen = []
    history = bpgpu.Network([2, 3, 1], seed=1).fit(X, Y, epochs=6, lr=1.0, validation_data=(X[:10], Y[:10]),
                                                    callback=lambda epoch, h: seen.append(h.best_epoch))
    assert seen == [int(np.argmin(history.val_loss[:e + 1])) for e in range(6)]
    assert len(set(seen)) > 1  # the best moved during the run
