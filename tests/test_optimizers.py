"""Each optimiser's update against its formula written out by hand, and state round trips.

The parameters are a (2, 3) matrix and a (2,) vector (a W and a bias) in one flat vector, as
the network holds them; the gradients change every step, so the state (velocity, moments)
matters. The hand-written formulas work on lists (here of that one vector).
"""

import math

import numpy as np
import pytest

import bpgpu
from bpgpu.backend import get_backend
from bpgpu.optimizers import SGD, Adam, Momentum, make_optimizer

STEPS = 4


@pytest.fixture
def problem():
    """([theta], [[D] for each step]) as float64 NumPy vectors (8,)."""
    rng = np.random.default_rng(3)

    def flat(*arrays):
        return [np.concatenate([a.ravel() for a in arrays])]

    thetas = flat(rng.standard_normal((2, 3)), rng.standard_normal(2))
    Ds = [flat(rng.standard_normal((2, 3)), rng.standard_normal(2)) for _ in range(STEPS)]
    return thetas, Ds


def run(optimizer, thetas, Ds):
    """The thetas after one ``optimizer.step`` per D, on copies; the step count is checked."""
    thetas = [t.copy() for t in thetas]
    optimizer.bind(NUMPY, thetas[0].shape[0], "float64")
    for D in Ds:
        optimizer.step(thetas[0], D[0])
    assert optimizer.t == len(Ds)
    return thetas


def assert_close(got, expected, rtol=1e-14):
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=0)


def test_sgd(problem):
    thetas, Ds = problem
    expected = [t.copy() for t in thetas]
    for D in Ds:
        expected = [t - 0.3 * d for t, d in zip(expected, D, strict=True)]
    assert_close(run(SGD(0.3), thetas, Ds), expected)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum(problem, nesterov):
    thetas, Ds = problem
    lr, mu = 0.2, 0.7
    expected = [t.copy() for t in thetas]
    v = [np.zeros_like(t) for t in thetas]
    for D in Ds:
        v = [mu * vl - lr * d for vl, d in zip(v, D, strict=True)]
        if nesterov:  # the look-ahead form: θ ← θ + μ·v − η·D with the new v
            expected = [t + mu * vl - lr * d for t, vl, d in zip(expected, v, D, strict=True)]
        else:
            expected = [t + vl for t, vl in zip(expected, v, strict=True)]
    assert_close(run(Momentum(lr, momentum=mu, nesterov=nesterov), thetas, Ds), expected)


@pytest.mark.parametrize("eps", [1e-8, 0.5])
def test_adam_is_the_textbook_update(problem, eps):
    """Kingma & Ba, Algorithm 1, with the bias-corrected moments m̂ and v̂ spelled out."""
    thetas, Ds = problem
    lr, b1, b2 = 0.01, 0.8, 0.95
    expected = [t.copy() for t in thetas]
    m = [np.zeros_like(t) for t in thetas]
    v = [np.zeros_like(t) for t in thetas]
    for t, D in enumerate(Ds, start=1):
        m = [b1 * ml + (1 - b1) * d for ml, d in zip(m, D, strict=True)]
        v = [b2 * vl + (1 - b2) * d * d for vl, d in zip(v, D, strict=True)]
        m_hat = [ml / (1 - b1**t) for ml in m]
        v_hat = [vl / (1 - b2**t) for vl in v]
        expected = [th - lr * mh / (np.sqrt(vh) + eps) for th, mh, vh in zip(expected, m_hat, v_hat, strict=True)]
    got = run(Adam(lr, beta1=b1, beta2=b2, eps=eps), thetas, Ds)
    # The implementation folds both corrections into one scalar step: equal up to rounding.
    assert_close(got, expected, rtol=1e-12)


def test_adam_first_step_moves_each_weight_by_lr():
    """With m̂ = D and v̂ = D² on step 1, every weight moves by lr·D/(|D| + ε) ≈ ±lr."""
    theta = np.zeros(3)
    Adam(0.01).bind(NUMPY, 3, "float64").step(theta, np.array([4.0, -1e-3, 2.5]))
    np.testing.assert_allclose(theta, [-0.01, 0.01, -0.01], rtol=1e-4)


def test_hyperparameters_are_keyword_only_with_defaults():
    """bpgpu.Adam(lr=…, beta1=…): the step size may come first, the rest by name"""
    adam = bpgpu.Adam()
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps) == (1e-3, 0.9, 0.999, 1e-8)
    assert (bpgpu.SGD().lr, bpgpu.Momentum().momentum) == (0.5, 0.9)
    with pytest.raises(TypeError):
        Momentum(0.1, 0.5)


def test_step_before_bind_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"^SGD.step: call bind\(backend, n, dtype\) first"):
        SGD(0.1).step(np.zeros(2), np.zeros(2))


def test_make_optimizer():
    assert type(make_optimizer("sgd", 0.1)) is SGD
    momentum = make_optimizer("momentum", 0.1, momentum=0.5, nesterov=True)
    assert (momentum.momentum, momentum.nesterov) == (0.5, True)
    adam = make_optimizer("adam", 0.1, beta1=0.5, beta2=0.6, eps=1e-3)
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps) == (0.1, 0.5, 0.6, 1e-3)
    assert make_optimizer(adam, 99.0) is adam


OPTIMIZERS = [lambda: SGD(0.3), lambda: Momentum(0.2, momentum=0.7), lambda: Momentum(0.2, momentum=0.7, nesterov=True),
              lambda: Adam(0.01, eps=1e-3)]
IDS = ["sgd", "momentum", "nesterov", "adam"]
NUMPY = get_backend("numpy")


def to_device(a):
    return NUMPY.asarray(a, "float64")


def _half_and_saved(make, thetas, Ds):
    """An optimiser after half the steps, the thetas then, and its state_dict."""
    optimizer = make()
    halfway = run(optimizer, thetas, Ds[:2])
    return optimizer, halfway, optimizer.state_dict(NUMPY.to_host)


@pytest.mark.parametrize("make", OPTIMIZERS, ids=IDS)
def test_state_dict_round_trip_continues_identically(problem, make):
    thetas, Ds = problem
    a, halfway, saved = _half_and_saved(make, thetas, Ds)
    assert saved["name"] == a.name and saved["t"] == 2 and saved["hyper"] == a.hyperparameters()
    b = make_optimizer(saved["name"], **saved["hyper"])
    b.load_state_dict(saved, to_device)
    assert b.t == 2
    b.bind(NUMPY, halfway[0].shape[0], "float64")
    for D in Ds[2:]:
        b.step(halfway[0], D[0])
    for got, expected in zip(halfway, run(make(), thetas, Ds), strict=True):
        np.testing.assert_array_equal(got, expected)


# On the CPU, Backend.to_host and Backend.asarray may return the very array they are given,
# so state_dict and load_state_dict must copy: a state_dict kept in memory (a "best so far"
# checkpoint) must not change with later steps of either optimiser.
@pytest.mark.parametrize("make", OPTIMIZERS[1:], ids=IDS[1:])
def test_state_dict_is_a_snapshot(problem, make):
    thetas, Ds = problem
    a, halfway, saved = _half_and_saved(make, thetas, Ds)
    before = {k: v.copy() for k, v in saved["state"].items()}
    b = make_optimizer(saved["name"], **saved["hyper"])
    b.load_state_dict(saved, to_device)
    a.step(halfway[0].copy(), Ds[2][0])
    b.bind(NUMPY, halfway[0].shape[0], "float64").step(halfway[0].copy(), Ds[3][0])
    for key, vector in saved["state"].items():
        np.testing.assert_array_equal(vector, before[key])


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_fit_resumes_from_optimizer_state(optimizer):
    """3 epochs, state_dict, a fresh optimizer and network, 3 more from initial_epoch=3:
    bit-identical to 6 epochs in one go (shuffled mini-batches included)."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, 3)), rng.random((20, 2))
    options = dict(batch_size=6, lr=0.05)

    whole = bpgpu.Network([3, 5, 2], activation="tanh", seed=4)
    whole.fit(X, Y, epochs=6, optimizer=make_optimizer(optimizer, 0.05), **options)

    first = bpgpu.Network([3, 5, 2], activation="tanh", seed=4)
    opt = make_optimizer(optimizer, 0.05)
    first.fit(X, Y, epochs=3, optimizer=opt, **options)
    saved = opt.state_dict(first.backend.to_host)
    resumed = first.clone()
    opt2 = make_optimizer(saved["name"], **saved["hyper"])
    opt2.load_state_dict(saved, lambda a: resumed.backend.asarray(np.array(a), resumed.dtype))
    history = resumed.fit(X, Y, epochs=6, initial_epoch=3, optimizer=opt2, **options)
    assert history.epochs == 3 and opt2.t == 6 * math.ceil(20 / 6)
    for got, expected in zip(resumed.thetas, whole.thetas, strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_a_pickled_optimizer_continues_exactly(optimizer):
    """An optimiser that has stepped (its fused kernels cached) pickles, and its copy
    continues bit-identically to the original (joblib and GridSearchCV pickle them)."""
    import pickle

    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((12, 3)), rng.random((12, 2))
    net = bpgpu.Network([3, 4, 2], seed=2)
    opt = make_optimizer(optimizer, 0.05)
    net.fit(X, Y, epochs=2, optimizer=opt)
    twin, opt2 = net.clone(), pickle.loads(pickle.dumps(opt))
    net.fit(X, Y, epochs=2, optimizer=opt)
    twin.fit(X, Y, epochs=2, optimizer=opt2)
    assert opt2.t == opt.t == 4
    for got, expected in zip(twin.thetas, net.thetas, strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_warm_start_continues_the_last_fits_optimizer(optimizer):
    """Two full-batch fits of 3 epochs with warm_start=True equal one fit of 6 epochs
    bit for bit (velocity, Adam moments and step count carried over); without it the
    second fit restarts its optimiser and ends elsewhere."""
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((10, 3)), rng.random((10, 2))
    whole, warm, cold = (bpgpu.Network([3, 4, 2], seed=5) for _ in range(3))
    whole.fit(X, Y, epochs=6, optimizer=optimizer, lr=0.05)
    for net, again in ((warm, True), (cold, False)):
        net.fit(X, Y, epochs=3, optimizer=optimizer, lr=0.05)
        net.fit(X, Y, epochs=3, optimizer=optimizer, lr=0.05, warm_start=again)
    assert warm.optimizer.t == 6 and cold.optimizer.t == 3
    for got, expected, restarted in zip(warm.thetas, whole.thetas, cold.thetas, strict=True):
        np.testing.assert_array_equal(got, expected)
        assert np.abs(restarted - expected).max() > 1e-6


def test_warm_start_refuses_another_optimizer():
    net = bpgpu.Network([2, 3, 1])
    net.fit([[0.0, 1.0]], [[0.5]], epochs=1, optimizer="adam")
    with pytest.raises(ValueError, match="warm_start: the last fit used optimizer 'adam', got optimizer='sgd'"):
        net.fit([[0.0, 1.0]], [[0.5]], epochs=1, optimizer="sgd", warm_start=True)
    with pytest.raises(TypeError, match="warm_start"):
        net.fit([[0.0, 1.0]], [[0.5]], epochs=1, warm_start="yes")


def test_warm_start_takes_a_new_lr_and_keeps_the_state():
    """lr given with warm_start=True replaces the continued optimiser's step size (it was
    silently ignored); its velocity and step count carry on."""
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((6, 2)), rng.random((6, 1))
    net = bpgpu.Network([2, 3, 1], seed=1)
    net.fit(X, Y, epochs=2, optimizer="momentum", lr=0.1)
    velocity = net.optimizer.state["velocity"].copy()
    net.fit(X, Y, epochs=1, optimizer="momentum", lr=0.02, warm_start=True)
    assert net.optimizer.lr == 0.02 and net.optimizer.t == 3
    assert np.abs(net.optimizer.state["velocity"] - velocity).max() > 0
    net.fit(X, Y, epochs=1, optimizer="momentum", warm_start=True)
    assert net.optimizer.lr == 0.02 and net.optimizer.t == 4
