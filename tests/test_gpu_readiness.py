"""GPU readiness that a machine without a GPU can check (issue 11, point 3): the CuPy probe
needs cuBLAS too, TF32 is left alone unless asked for, data is staged C-ordered, and
``device=`` is checked where it cannot apply."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import bpgpu
from bpgpu.backend import BackendUnavailable, NumpyBackend, _cupy_backend, get_backend


@pytest.fixture
def fresh_cupy_lookup():
    _cupy_backend.cache_clear()
    yield
    _cupy_backend.cache_clear()


class _Device:
    def __init__(self, index):
        self.index = index

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _NoCublas:
    """An array whose kernels run but whose matrix product fails, as without cuBLAS."""

    def sum(self):
        return types.SimpleNamespace(item=lambda: 4.0)

    def __matmul__(self, other):
        raise RuntimeError("CUBLAS_STATUS_NOT_INITIALIZED")


def test_a_cupy_whose_matrix_products_fail_is_unavailable(monkeypatch, fresh_cupy_lookup):
    """The CuPy probe runs a matrix product: without cuBLAS, backend='cupy' is unavailable and 'auto' is NumPy"""
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1)
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime, Device=_Device), float32="float32",
                                 zeros=lambda *a, **k: _NoCublas(), ones=lambda *a, **k: _NoCublas(),
                                 __version__="0.fake")
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(BackendUnavailable, match="CUBLAS_STATUS_NOT_INITIALIZED"):
        get_backend("cupy")
    assert get_backend("auto").name == "numpy"


class _Recording(NumpyBackend):
    def __init__(self):
        self.calls = []

    def set_tf32(self, allowed):
        self.calls.append(allowed)


def test_tf32_is_left_alone_unless_asked_for(tmp_path):
    """Network(), clone() and load() leave the process-wide TF32 setting alone; allow_tf32 sets it"""
    backend = _Recording()
    net = bpgpu.Network([2, 3, 1], backend=backend)
    net.clone()
    bpgpu.io.persistence.save(net, tmp_path / "m.npz")
    bpgpu.Network(**bpgpu.load(tmp_path / "m.npz").config(), backend=backend)
    assert backend.calls == []
    bpgpu.Network([2, 3, 1], backend=backend, allow_tf32=True).clone()
    assert backend.calls == [True, True]


def test_data_is_staged_in_c_order():
    """Fortran-ordered inputs are staged C-ordered, so every mini-batch is a contiguous matrix"""
    net = bpgpu.Network([3, 2, 2])
    X = np.asfortranarray(np.arange(12.0).reshape(4, 3))
    Y = np.asfortranarray(np.ones((4, 2)))
    Xs, Ys = net.batch(X, Y)
    assert Xs.flags.c_contiguous and Ys.flags.c_contiguous
    np.testing.assert_array_equal(Xs, X)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_a_device_for_a_backend_without_one_is_refused(backend):
    """device= on NumPy (or array-api-strict) is a ValueError naming device; fit refuses another device"""
    pytest.importorskip(backend)
    with pytest.raises(ValueError, match="^device: "):
        bpgpu.Network([2, 1], backend=backend, device=1)
    with pytest.raises(TypeError, match="^device: "):
        bpgpu.Network([2, 1], device="0")
    net = bpgpu.Network([2, 1])
    with pytest.raises(ValueError, match="^device: "):
        net.fit(np.ones((2, 2)), np.ones((2, 1)), epochs=1, device=1)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_generators_draw_float32_directly(backend):
    """A float32 generator draws float32 numbers (no float64 array made and converted)"""
    pytest.importorskip(backend)
    X, _ = bpgpu.data.teacher(m=7, sizes=[4, 6, 2], backend=backend, dtype="float32", seed=3)
    want = np.random.default_rng(3).standard_normal((7, 4), dtype=np.float32)
    np.testing.assert_array_equal(get_backend(backend).to_host(X), want)


def test_per_step_scalars_are_read_from_one_device_vector_that_each_step_rewrites(monkeypatch):
    """Adam's scalars reach its fused update as the same 0-d arrays every step (a captured CUDA
    graph would read them there), holding this step's β, 1 − β, α and ε̂ in the network's dtype"""
    from bpgpu.optimizers import Adam

    calls = []
    plain = NumpyBackend.fuse

    def recording(self, fn):
        run = plain(self, fn)
        if fn.__name__ != "adam":
            return run
        return lambda *args: (calls.append((fn.__name__, args[-6:], [float(a) for a in args[-6:]])), run(*args))

    monkeypatch.setattr(NumpyBackend, "fuse", recording)
    net = bpgpu.Network([2, 3, 1], dtype="float32")
    X, Y = net.batch(np.ones((4, 2)), np.ones((4, 1)))
    opt = Adam(0.01, beta1=0.8, beta2=0.9, eps=1e-6)
    net.step(X, Y, opt)
    net.step(X, Y, opt)
    (_, first, _), (name, second, values) = calls
    assert name == "adam" and all(a is b for a, b in zip(first, second))
    assert all(a.shape == () and a.dtype == np.float32 for a in second)
    alpha = 0.01 * np.sqrt(1 - 0.9**2) / (1 - 0.8**2)
    want = np.array([0.8, 1 - 0.8, 0.9, 1 - 0.9, alpha, 1e-6 * np.sqrt(1 - 0.9**2)], dtype=np.float32)
    np.testing.assert_array_equal(np.array(values, dtype=np.float32), want)


def test_cupy_work_runs_on_the_backends_own_stream_on_its_device():
    """activate() makes the device current, then the backend's own (blocking) stream, made on
    that device once; synchronize waits for that stream"""
    from bpgpu.backend import CupyBackend

    events = []

    class Context:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            events.append(("enter", self.name))

        def __exit__(self, *exc):
            events.append(("exit", self.name))

    class Stream(Context):
        def __init__(self, non_blocking):
            super().__init__(f"stream(non_blocking={non_blocking}) made on {events[-1][1]}")

        def synchronize(self):
            events.append(("synchronize", self.name))

    cuda = types.SimpleNamespace(Device=lambda d: Context(f"device {d}"), Stream=Stream,
                                 memory=types.SimpleNamespace(OutOfMemoryError=MemoryError))
    backend = CupyBackend(types.SimpleNamespace(cuda=cuda), device=1)
    with backend.activate():
        pass
    with backend.activate():
        backend.synchronize()
    stream = "stream(non_blocking=False) made on device 1"
    assert events == [("enter", "device 1"),
                      ("enter", "device 1"), ("exit", "device 1"),  # the stream is made on its device, once
                      ("enter", stream), ("exit", stream), ("exit", "device 1"),
                      ("enter", "device 1"), ("enter", stream), ("synchronize", stream),
                      ("exit", stream), ("exit", "device 1")]
