"""Properties over random architectures, data and hyper-parameters (hypothesis):

- backpropagation's D agrees with central differences (gradient_check);
- fit never returns non-finite weights, and never stops on a divergence silently;
- save → load → predict gives the same numbers, bit for bit;
- a checkpoint resumed gives the weights of the uninterrupted run;
- chunked J and D equal unchunked.

Small networks and batches and a modest number of examples keep this file fast;
the examples are derandomised (tests/conftest.py), so CI runs the same ones each time.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

# Every test in this module is a hypothesis property, so skipping the module where
# hypothesis is missing skips nothing that could run.
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import bpgpu  # noqa: E402
from bpgpu.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS  # noqa: E402
from bpgpu.optimizers import make_optimizer  # noqa: E402
from bpgpu.io.persistence import load, load_checkpoint, save  # noqa: E402
from reliability import tally  # noqa: E402

RELIABILITY = "property"

HIDDEN = ("sigmoid", "tanh", "relu", "identity")


@st.composite
def problems(draw, dtype="float64"):
    """(net, X, Y): a random valid architecture and a batch its loss is defined on."""
    sizes = draw(st.lists(st.integers(1, 5), min_size=2, max_size=4))
    loss = draw(st.sampled_from(["mse", "cross_entropy"]))
    outputs = ["sigmoid", "softmax"] if loss == "cross_entropy" else [*HIDDEN, "softmax"]
    output = draw(st.sampled_from([o for o in outputs if o != "softmax" or sizes[-1] >= 2]))
    activation = draw(st.lists(st.sampled_from(HIDDEN), min_size=len(sizes) - 2, max_size=len(sizes) - 2))
    net = bpgpu.Network(sizes, activation=activation, output=output, loss=loss,
                        lam=draw(st.sampled_from([0.0, 0.01, 0.5])), bias=draw(st.booleans()),
                        dtype=dtype, seed=draw(st.integers(0, 2**16)))
    m = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = rng.uniform(-2, 2, (m, sizes[0]))
    k = sizes[-1]
    if output == "softmax" and loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(k), m)
    elif loss == "cross_entropy":
        Y = rng.uniform(0, 1, (m, k))
    else:
        Y = rng.uniform(-1, 1, (m, k))
    return net, X, Y


def relu_kink_near(net, X, eps=1e-4) -> bool:
    """Whether a relu unit's input z is within ``eps`` of 0: there D is not defined and
    central differences straddle the kink."""
    a = X
    layers = net.activations + [net.output]
    for l, (g, theta) in enumerate(zip(layers, net.thetas)):
        z = a @ theta[:, 1:].T + theta[:, 0] if net.bias else a @ theta.T
        if g == "relu" and np.any(np.abs(z) < eps):
            return True
        a = (OUTPUT_ACTIVATIONS if l == len(layers) - 1 else ACTIVATIONS)[g](z, np)
    return False


@settings(max_examples=100)
@given(problems())
def test_gradient_check_passes(problem):
    """gradient_check ≤ 1e-6 for any architecture, loss, λ and bias"""
    net, X, Y = problem
    hypothesis.assume(not relu_kink_near(net, X))
    tally()
    assert bpgpu.gradient_check(net, X, Y) <= 1e-6


@settings(max_examples=80)
@given(problems(), st.integers(-3, 300), st.sampled_from(["sgd", "momentum", "adam"]),
       st.integers(1, 8), st.integers(1, 20), st.sampled_from(["stop", "raise"]))
def test_fit_never_returns_nonfinite_weights_silently(problem, log_lr, optimizer, batch_size, epochs, on_nonfinite):
    """fit with any lr (up to 1e300) returns finite weights; a divergence always warns or raises"""
    net, X, Y = problem
    tally()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            h = net.fit(X, Y, lr=10.0**log_lr, optimizer=optimizer, batch_size=batch_size, epochs=epochs,
                        on_nonfinite=on_nonfinite)
        except bpgpu.DivergenceError:
            h = None
    assert all(np.isfinite(t).all() for t in net.thetas)
    diverged_warning = any("diverged" in str(w.message) for w in caught)
    if h is None:
        assert on_nonfinite == "raise" and not diverged_warning
    elif h.stop_reason == "nonfinite":
        assert on_nonfinite == "stop" and diverged_warning and h.nonfinite_at is not None
    else:
        assert not diverged_warning and np.all(np.isfinite(h.loss))


@settings(max_examples=40)
@given(problems(dtype="float32") | problems(dtype="float64"))
def test_save_load_predict_is_identical(problem):
    """save → load → predict gives bit-identical outputs, dtype and configuration"""
    net, X, _ = problem
    tally()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        save(net, path)
        back = load(path)
    assert back.config() == net.config()
    for a, b in zip(back.thetas, net.thetas):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(back.predict(X), net.predict(X))


@settings(max_examples=25)
@given(problems(), st.sampled_from(["sgd", "momentum", "adam"]), st.integers(1, 3), st.integers(1, 3),
       st.integers(1, 8))
def test_a_resumed_checkpoint_continues_the_same_run(problem, optimizer, first, more, batch_size):
    """Train, checkpoint, load, resume: the weights of one uninterrupted run"""
    net, X, Y = problem
    twin = net.clone()
    options = dict(lr=0.01, batch_size=batch_size)
    twin.fit(X, Y, epochs=first + more, optimizer=optimizer, **options)
    opt = make_optimizer(optimizer, 0.01)
    net.fit(X, Y, epochs=first, optimizer=opt, **options)
    tally()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.npz"
        save(net, path, optimizer=opt, epoch=first)
        checkpoint = load_checkpoint(path)
    resumed = checkpoint.network
    resumed.fit(X, Y, epochs=first + more, initial_epoch=checkpoint.epoch, optimizer=checkpoint.optimizer, **options)
    for a, b in zip(resumed.thetas, twin.thetas):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=60)
@given(problems(), st.integers(1, 8))
def test_chunked_equals_unchunked(problem, chunk_size):
    """J and D computed chunk_size rows at a time equal the whole batch's (to rounding)"""
    net, X, Y = problem
    tally()
    J, D = net.loss_and_gradients(X, Y)
    Jc, Dc = net.loss_and_gradients(X, Y, chunk_size=chunk_size)
    assert Jc == pytest.approx(J, rel=1e-12, abs=1e-300)
    for a, b in zip(Dc, D):
        assert np.max(np.abs(a - b)) <= 1e-12 * max(np.max(np.abs(b)), 1e-12)
