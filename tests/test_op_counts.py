"""Operation budgets of one training step (issue 11), counted with ``tests/opcount.py``.

The counts approximate the kernels a GPU would launch (a fused function is one); they
are deterministic, so they are budgets, not timings. BENCHMARKS.md ("Operations per step") records them
against the code before flat buffers and fusion (W1-like SGD: 53 operations and 35
allocations a step; Adam: 133 and 83).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import bpgpu
from bpgpu.optimizers import SGD, Adam, Momentum
from opcount import CountingBackend, Counted

W1_LIKE = [64, 64, 64, 64, 1]  # relu, identity output, mse, batch 256 (issue 11's W1-like)
OPTIMIZERS = {"sgd": (lambda: SGD(1e-3), 24), "momentum": (lambda: Momentum(1e-3), 24),
              "nesterov": (lambda: Momentum(1e-3, nesterov=True), 24), "adam": (lambda: Adam(1e-3), 24)}


def w1_like(backend, m=256, dtype="float32"):
    net = bpgpu.Network(W1_LIKE, activation="relu", output="identity", backend=backend, dtype=dtype)
    rng = np.random.default_rng(0)
    X, Y = net.batch(rng.standard_normal((m, W1_LIKE[0])), rng.standard_normal((m, 1)))
    return net, X, Y


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_w1_like_step_stays_within_its_operation_budget_and_allocates_nothing(name):
    """W1-like step: ≤ 24 launches as CuPy counts them (a vector·vector matmul is 3 and a
    temporary), whatever the optimiser; no new arrays but J's 0-d parts"""
    make, budget = OPTIMIZERS[name]
    backend = CountingBackend()
    net, X, Y = w1_like(backend)
    opt = make()
    for _ in range(2):  # the first steps make the buffers and the optimiser's state
        net.step(X, Y, opt)
    with backend.counting() as tally:
        net.step(X, Y, opt)
    assert tally.ops <= budget, dict(tally.names)
    assert tally.allocations == 0, dict(tally.names)
    assert tally.scalars <= 2  # J's dot product and its scaling


def test_weights_add_two_operations_to_a_step_and_allocate_nothing():
    """sample_weight on the W1-like step: d(L)'s rows times √s twice (J from ½‖d‖² between),
    nothing allocated; the unweighted step keeps its budget above"""
    backend = CountingBackend()
    net, X, Y = w1_like(backend)
    w = net.row_weights(np.linspace(0.0, 2.0, X.shape[0]), X.shape[0])
    opt = SGD(1e-3)
    counts = {}
    for weights in (None, w):
        for _ in range(2):
            net.step(X, Y, opt, sample_weight=weights)
        with backend.counting() as tally:
            net.step(X, Y, opt, sample_weight=weights)
        counts[weights is None] = tally.ops
        assert tally.allocations == 0, dict(tally.names)
    assert counts[False] - counts[True] == 2


def test_fit_adds_no_operations_per_step():
    """fit: an epoch of 8 W1-like steps costs 8 steps' operations plus a few per epoch"""
    backend = CountingBackend()
    net, X, Y = w1_like(backend, m=8 * 256)
    net.fit(X, Y, epochs=1, lr=1e-3, batch_size=256, shuffle=False)
    with backend.counting() as tally:
        net.fit(X, Y, epochs=1, lr=1e-3, batch_size=256, shuffle=False)
    assert tally.ops <= 8 * 24 + 12, dict(tally.names)


def test_regularisation_costs_three_operations():
    """λ > 0: ‖W‖² is one dot product and λ/m·W one fused update of D, plus J's sum"""
    counts = {}
    for lam in (0.0, 0.1):
        backend = CountingBackend()
        net = bpgpu.Network(W1_LIKE, activation="relu", output="identity", lam=lam, backend=backend)
        X, Y = net.batch(np.ones((16, 64)), np.ones((16, 1)))
        opt = SGD(1e-3)
        net.step(X, Y, opt)
        with backend.counting() as tally:
            net.step(X, Y, opt)
        counts[lam] = tally.ops
    assert counts[0.1] - counts[0.0] <= 4


def test_a_numpy_step_in_steady_state_allocates_nothing_batch_sized():
    """NumPy, traced: steps neither grow memory nor make batch-sized temporaries (NumPy's
    own iteration buffers, a few KiB, are all a step's peak)"""
    for opt in (SGD(1e-3), Adam(1e-3)):
        net, X, Y = w1_like("numpy", m=4096)
        for _ in range(3):
            net.step(X, Y, opt)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            for _ in range(5):
                net.step(X, Y, opt)
            now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert now - base < 4096
        # 128 KiB: an eighth of one activation buffer (4096 × 64 float32 = 1 MiB)
        assert peak - base < 4 * np.getbufsize() * 4


def test_the_counter_counts_operators_calls_and_fused_functions():
    """The utility itself: an operator, an out= call and a fused function are one operation each"""
    backend = CountingBackend()
    a = backend.asarray(np.ones((3, 3)), "float64")
    assert isinstance(a, Counted)

    def twice(xp, x):
        x *= 2.0
        xp.add(x, 1.0, out=x)

    fused = backend.fuse(twice)
    with backend.counting() as tally:
        b = a + a                          # allocates
        backend.xp.multiply(a, b, out=a)   # in place
        fused(a)                           # one, whatever it does inside
    assert (tally.ops, tally.allocations) == (3, 1)
    assert tally.names["fused:twice"] == 1


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_a_softmax_cross_entropy_step_allocates_nothing(name):
    """W2-like (softmax + cross-entropy): the row maximum and sum reuse their columns; no new arrays"""
    backend = CountingBackend()
    net = bpgpu.Network([20, 32, 32, 10], activation="relu", output="softmax", loss="cross_entropy",
                        backend=backend, dtype="float32")
    rng = np.random.default_rng(0)
    X, Y = net.batch(rng.standard_normal((64, 20)), np.eye(10)[rng.integers(0, 10, 64)])
    opt = OPTIMIZERS[name][0]()
    for _ in range(2):
        net.step(X, Y, opt)
    with backend.counting() as tally:
        net.step(X, Y, opt)
    assert tally.ops <= 30 and tally.allocations == 0, dict(tally.names)
