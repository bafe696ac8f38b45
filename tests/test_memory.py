"""Memory limits: a batch trained through chunked Delta accumulation gives the same
result as unchunked, whether the chunk comes from a configured ``memory_budget`` or
from the fallback that halves the chunk when the device runs out of memory.

Delta is a plain sum over examples, so chunking changes only the order of the
additions: float64 results agree to ~1e-12, not exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bpgpu
from reliability import tally

RELIABILITY = "memory"
RTOL = 1e-12


def problem(m=60, sizes=(5, 16, 8, 3), seed=0, **config):
    net = bpgpu.Network(list(sizes), activation="tanh", output="softmax", loss="cross_entropy", seed=seed, **config)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    return net, X, Y


def budget_for(net, rows):
    """A memory budget that :meth:`Network.chunk_size_for` turns into ``rows`` rows."""
    itemsize = 4 if net.dtype == "float32" else 8
    return rows * itemsize * (sum(net.sizes) + 3 * max(net.sizes))


def assert_close(got, want, rtol=RTOL):
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert np.max(np.abs(g - w)) <= rtol * max(np.max(np.abs(w)), 1e-300)


def test_chunk_size_for_a_budget():
    """chunk_size_for: rows of activations and deltas that fit, at least 1, growing with the budget"""
    net, _, _ = problem()
    per_row = 8 * (sum(net.sizes) + 3 * max(net.sizes))
    assert net.chunk_size_for(per_row * 7) == 7
    assert net.chunk_size_for(per_row * 7 + per_row - 1) == 7
    assert net.chunk_size_for(1) == 1
    assert net.clone(dtype="float32").chunk_size_for(per_row * 7) == 14


@pytest.mark.parametrize("rows", [1, 7, 59, 60, 1000], ids=lambda r: f"{r} rows of 60 at once")
@pytest.mark.parametrize("lam", [0.0, 0.3], ids=lambda lam: f"lam={lam}")
def test_loss_and_gradients_within_a_budget_equal_unchunked(rows, lam):
    """loss_and_gradients(memory_budget=…) equals the unchunked J and D"""
    net, X, Y = problem(lam=lam)
    J, D = net.loss_and_gradients(X, Y)
    Jc, Dc = net.loss_and_gradients(X, Y, memory_budget=budget_for(net, rows))
    tally()
    assert Jc == pytest.approx(J, rel=RTOL)
    assert_close(Dc, D)


@pytest.mark.parametrize("batch_size", [None, 16], ids=["full batch", "batches of 16"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_within_a_budget_equals_unchunked(batch_size, optimizer):
    """fit(memory_budget=…) ends with the weights and losses of an unchunked fit"""
    net, X, Y = problem()
    twin = net.clone()
    options = dict(epochs=15, batch_size=batch_size, optimizer=optimizer, lr=0.05)
    h = net.fit(X, Y, **options)
    hc = twin.fit(X, Y, memory_budget=budget_for(twin, 5), **options)
    tally()
    assert hc.loss == pytest.approx(h.loss, rel=1e-10)
    assert_close(twin.thetas, net.thetas, rtol=1e-10)


def test_evaluate_in_chunks_equals_whole():
    """evaluate(chunk_size=…) equals the whole-batch loss"""
    net, X, Y = problem(lam=0.1)
    tally()
    assert net.evaluate(X, Y, chunk_size=7) == pytest.approx(net.evaluate(X, Y), rel=RTOL)


class FakeOutOfMemory(Exception):
    """A device's own out-of-memory error (CuPy's OutOfMemoryError, say)."""


def limit_rows(monkeypatch, net, rows, error=MemoryError):
    """Make ``net.step`` raise ``error`` whenever it would hold more than ``rows`` rows at
    once; returns the list of chunk sizes it was called with."""
    calls = []
    real = net.step

    def step(X, Y, optimizer, chunk_size=None, comm=None, sample_weight=None):
        calls.append(chunk_size)
        if min(chunk_size or X.shape[0], X.shape[0]) > rows:
            raise error(f"out of memory holding {X.shape[0]} rows")
        return real(X, Y, optimizer, chunk_size, comm, sample_weight)

    monkeypatch.setattr(net, "step", step)
    return calls


def chunk_sizes(warnings_caught) -> list[str]:
    """The chunk size each fallback warning names."""
    return [str(w.message).split("chunk_size=")[1].split()[0] for w in warnings_caught]


def test_out_of_memory_halves_the_chunk_and_gives_the_same_result(monkeypatch):
    """Out of memory: the chunk halves until it fits (a warning names each size), same weights as unchunked"""
    net, X, Y = problem(m=64)
    twin = net.clone()
    reference = twin.fit(X, Y, epochs=5, lr=0.1)
    calls = limit_rows(monkeypatch, net, rows=10)
    with pytest.warns(RuntimeWarning) as caught:
        h = net.fit(X, Y, epochs=5, lr=0.1)
    tally()
    assert chunk_sizes(caught) == ["32", "16", "8"]
    assert all("batch of 64" in str(w.message) for w in caught)
    # the size that worked is kept: one retry sequence, then every step at chunk 8
    assert calls == [None, 32, 16, 8] + [8] * 4
    assert h.loss == pytest.approx(reference.loss, rel=1e-10)
    assert_close(net.thetas, twin.thetas, rtol=1e-10)


def test_out_of_memory_in_mini_batches(monkeypatch):
    """Mini-batches bigger than memory allows are chunked too, with the same result"""
    net, X, Y = problem(m=60)
    twin = net.clone()
    reference = twin.fit(X, Y, epochs=4, lr=0.1, batch_size=25)
    limit_rows(monkeypatch, net, rows=7)
    with pytest.warns(RuntimeWarning) as caught:
        h = net.fit(X, Y, epochs=4, lr=0.1, batch_size=25)
    tally()
    assert chunk_sizes(caught) == ["12", "6"]
    assert h.loss == pytest.approx(reference.loss, rel=1e-10)
    assert_close(net.thetas, twin.thetas, rtol=1e-10)


def test_the_backends_own_out_of_memory_error_is_caught(monkeypatch):
    """The fallback catches whatever the backend calls out-of-memory, and releases cached memory first"""
    net, X, Y = problem(m=32)
    released = []
    monkeypatch.setattr(net.backend, "out_of_memory", (FakeOutOfMemory,))
    monkeypatch.setattr(net.backend, "release_memory", lambda: released.append(True))
    limit_rows(monkeypatch, net, rows=8, error=FakeOutOfMemory)
    with pytest.warns(RuntimeWarning) as caught:
        net.fit(X, Y, epochs=2, lr=0.1)
    assert chunk_sizes(caught) == ["16", "8"]
    assert len(released) == 2


def test_out_of_memory_even_one_row_at_a_time_is_raised(monkeypatch):
    """When not even one row fits, the error reaches the caller and the weights are untouched"""
    net, X, Y = problem(m=16)
    before = [t.copy() for t in net.thetas]
    limit_rows(monkeypatch, net, rows=0)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(MemoryError):
        warnings.simplefilter("always")
        net.fit(X, Y, epochs=2, lr=0.1)
    assert chunk_sizes(caught) == ["8", "4", "2", "1"]
    assert all(np.array_equal(a, b) for a, b in zip(before, net.thetas))


@pytest.mark.cupy
def test_a_real_cupy_out_of_memory_is_survived():
    """CuPy: a memory pool capped below one batch's activations; fit falls back to chunks, same weights"""
    import parity
    reason = parity.cupy_unavailable()
    if reason:
        pytest.skip(f"needs CuPy and a CUDA device: {reason}")
    import cupy

    net, X, Y = problem(m=16384, sizes=(64, 2048, 2048, 10), backend="cupy", dtype="float32")
    twin = net.clone(backend="numpy", dtype="float64")
    reference = twin.fit(X, Y, epochs=2, lr=0.1)
    X, Y = net.batch(X, Y)  # staged before the cap
    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    weights = sum(t.nbytes for t in net.thetas)
    # room for the weights' copies (two snapshots, D, temporaries) and 192 MiB of work;
    # the whole batch's activations alone are 16384 × 2048 × 4 bytes = 128 MiB a layer
    pool.set_limit(size=pool.used_bytes() + 4 * weights + 192 * 2**20)
    try:
        with pytest.warns(RuntimeWarning, match="out of device memory") as caught:
            h = net.fit(X, Y, epochs=2, lr=0.1)
    finally:
        pool.set_limit(size=0)  # 0: no limit
    tally()
    assert chunk_sizes(caught)[0] == "8192"
    assert h.loss == pytest.approx(reference.loss, rel=1e-4)
    assert_close([net.backend.to_host(t) for t in net.thetas], twin.thetas, rtol=1e-4)
