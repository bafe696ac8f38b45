"""The compiled loops of bpgpu/compiled.py against the fused functions run as written.

Every function bpgpu fuses, with the argument kinds real training passes (recorded as
tests/test_kernels.py records them), compiled and run on the same numbers as the plain NumPy
run: bit for bit where the body uses only + − × ÷ √, max, min, ceil and |·|, within
:data:`EPS_BOUND` where it calls tanh, exp or log1p (the C library's, not
NumPy's SIMD code). Skipped without Numba.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import bpgpu
from bpgpu import compiled, network, optimizers, threads
from bpgpu.backend import get_backend
from bpgpu.optimizers import SGD, Adam, Momentum

from test_kernels import recorded

pytest.importorskip("numba", reason="the compiled loops need Numba (bpgpu's default install has it)")

# Largest difference allowed where a body calls tanh, exp or log1p, as |compiled − plain| in
# units of the dtype's ε·max(1, |plain|): the C library's functions and NumPy's SIMD ones differ
# by about an ulp, which sigmoid's 0.5·(1 + tanh) and the softplus carry on unchanged in size.
EPS_BOUND = 2.0
TRANSCENDENTAL = ("tanh", "exp", "log", "log1p")


def _arguments(kinds, low, seed=0):
    """Arguments of ``kinds``: arrays uniform in [low, 2) (low > 0: no NaN from √ or log)."""
    rng = np.random.default_rng(seed)
    made = []
    for k in kinds:
        if k.kind == "array":
            made.append(np.asarray(rng.uniform(low, 2.0, k.shape), dtype=k.dtype))
        else:
            made.append({"none": None, "float": 0.375, "int": 2, "bool": True}[k.kind])
    return made


def _error(got, want) -> float:
    """max |got − want| / (ε·max(1, |want|)); positions NaN in both count 0."""
    both_nan = np.isnan(got) & np.isnan(want)
    scale = np.finfo(want.dtype).eps * np.maximum(np.abs(want.astype(np.float64)), 1.0)
    gap = np.abs(got.astype(np.float64) - want.astype(np.float64)) / scale
    return float(np.max(np.where(both_nan, 0.0, gap), initial=0.0))


def _uses_transcendental(fn, kinds) -> bool:
    text, _ = compiled.source(fn, compiled._signature(_arguments(kinds, 1.0)))
    return any(f"np.{name}(" in text for name in TRANSCENDENTAL)


@pytest.fixture
def every_size(monkeypatch):
    """Compile even the recorded (small) calls."""
    monkeypatch.setattr(compiled, "MIN_ELEMENTS", 0)


@pytest.mark.parametrize("case", recorded(), ids=lambda c: c[0].__name__ + str(len(c[1])))
@pytest.mark.parametrize("low", [-2.0, 0.01])
@pytest.mark.filterwarnings("ignore:invalid value")
def test_each_fused_function_compiles_and_gives_the_plain_numbers(case, low, every_size):
    """Compiled and plain on the same arguments: equal, or within ULPS where tanh/exp/log1p"""
    fn, kinds = case
    loop = compiled.fuse(fn)
    assert isinstance(loop, compiled.Loop)
    fast, slow = _arguments(kinds, low), _arguments(kinds, low)
    loop(*fast)
    loop.plain(*slow)
    assert loop.compiled_signatures, f"{fn.__name__} did not compile for {kinds}"
    bound = EPS_BOUND if _uses_transcendental(fn, kinds) else 0.0
    for got, want in zip(fast, slow):
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype
            assert _error(got, want) <= bound, fn.__name__


# -- whole steps, threads, and when the plain function runs instead -------------------------

def _trained(name, compile_loops, monkeypatch, steps=3):
    """The thetas after ``steps`` steps of a network large enough for every kernel to compile
    (``compile_loops`` None: as compiled.available says)."""
    if compile_loops is not None:
        monkeypatch.setattr(compiled, "available", lambda: compile_loops)
    net = bpgpu.Network([40, 500, 60, 1], activation="relu", output="identity", lam=0.01, seed=3, dtype="float32")
    rng = np.random.default_rng(0)
    X, Y = net.batch(rng.standard_normal((128, 40)), rng.standard_normal((128, 1)))
    opt = {"sgd": SGD(0.01), "momentum": Momentum(0.01), "nesterov": Momentum(0.01, nesterov=True),
           "adam": Adam(0.001)}[name]
    for _ in range(steps):
        net.step(X, Y, opt)
    return [np.array(t) for t in net.thetas]


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_steps_with_compiled_loops_give_the_plain_weights_bit_for_bit(name, monkeypatch):
    """relu hidden layers, mse, λ > 0 (no tanh or exp): every weight equal after three steps"""
    fast = _trained(name, True, monkeypatch)
    slow = _trained(name, False, monkeypatch)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


def test_the_numbers_do_not_depend_on_the_thread_count():
    """An Adam update over a million elements, serial on one thread and parallel on every core: equal"""
    loop, n = compiled.fuse(optimizers.adam), 1 << 20
    assert n >= compiled.PARALLEL_ELEMENTS
    results = []
    for count in (1, max(2, threads.cores())):
        rng = np.random.default_rng(0)
        theta, D, m, v = (rng.uniform(0.01, 1.0, n).astype(np.float32) for _ in range(4))
        scalars = np.array([0.9, 0.1, 0.999, 0.001, 0.01, 1e-8], np.float32)
        with threads.limited(count):
            loop(theta, D, m, v, None, None, *(scalars[i, ...] for i in range(6)))
        results.append(theta)
    assert loop.compiled_signatures
    np.testing.assert_array_equal(results[0], results[1])


def test_a_written_argument_overlapping_another_runs_the_plain_function(every_size):
    """y ← y + c·x with x a shifted view of y: whole-array semantics, as NumPy gives them"""
    loop = compiled.fuse(network.add_scaled)
    base = np.arange(20.0)
    want = np.arange(20.0)
    network.add_scaled(np, want[1:], want[:-1].copy(), 2.0)
    loop(base[1:], base[:-1], 2.0)
    np.testing.assert_array_equal(base, want)


def test_a_body_that_is_not_element_wise_runs_as_written(every_size):
    """A reduction does not trace: the plain function runs, nothing compiles"""
    def centre(xp, z):
        z -= xp.mean(z)

    loop = compiled.fuse(centre)
    z = np.arange(6.0)
    loop(z)
    np.testing.assert_array_equal(z, np.arange(6.0) - 2.5)
    assert loop.compiled_signatures == []


def test_without_numba_fused_functions_are_the_plain_functions(monkeypatch):
    """Numba missing (import refused): fuse gives the plain function, NumPy gets scratch
    vectors, and training gives the same weights"""
    available = compiled.available
    monkeypatch.setitem(sys.modules, "numba", None)
    available.cache_clear()
    try:
        assert not compiled.available()
        assert not isinstance(compiled.fuse(optimizers.adam), compiled.Loop)
        assert get_backend("numpy").fused_scratch is True
        without = _trained("adam", None, monkeypatch)
    finally:
        monkeypatch.undo()
        available.cache_clear()
    np.testing.assert_array_equal(without[0], _trained("adam", True, monkeypatch)[0])


def test_small_calls_run_the_plain_function():
    """Under MIN_ELEMENTS elements nothing is compiled (one NumPy pass is cheaper)"""
    loop = compiled.fuse(network.add_scaled)
    y = np.ones(compiled.MIN_ELEMENTS - 1)
    loop(y, np.ones_like(y), 0.5)
    assert loop.compiled_signatures == [] and y[0] == 1.5
