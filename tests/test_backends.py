"""The core on array-api-strict equals NumPy, and backend selection says what it chose and why.

array-api-strict implements the array API standard and nothing more; the same code
running on it unchanged is CI's evidence that it runs on CuPy. CuPy being missing or
broken is simulated here, so those messages are tested on every machine.
"""

import sys
import types

import numpy as np
import pytest

import bpgpu
import parity
from bpgpu import BackendUnavailable, get_backend
from bpgpu.backend import _cupy_backend
from parity import CASES, RTOL, TRAININGS, assert_parity, backend_dtype_combinations, relative_error

@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("training", TRAININGS, ids=lambda t: t.name)
@pytest.mark.parametrize("backend, dtype", backend_dtype_combinations(["array_api_strict"]))
def test_core_on_array_api_strict_equals_numpy(case, training, backend, dtype):
    errors = assert_parity(case, backend, dtype, training)
    if dtype == "float64":
        assert max(errors.values()) <= RTOL["float64"]


@pytest.fixture
def strict():
    return pytest.importorskip("array_api_strict")


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((10, 3)), rng.random((10, 2))


@pytest.mark.parametrize("call", [
    pytest.param(lambda net, X, Y: net.loss_and_gradients(X, Y, chunk_size=3), id="loss_and_gradients-chunk3"),
    pytest.param(lambda net, X, Y: net.loss_and_gradients(X, Y, chunk_size=20), id="loss_and_gradients-chunk20"),
    pytest.param(lambda net, X, Y: (net.evaluate(X, Y, chunk_size=4), []), id="evaluate-chunk4"),
    pytest.param(lambda net, X, Y: (net.fit(X, Y, epochs=2, batch_size=4).loss[-1], net.thetas), id="fit-batch4"),
])
def test_short_last_slice_on_array_api_strict(strict, data, call):
    """A short last chunk or mini-batch (m = 10 rows split by 3, 4 or 20): the standard
    refuses a slice whose stop lies past the end of the axis."""
    X, Y = data
    results = {}
    for backend in ("numpy", "array_api_strict"):
        net = bpgpu.Network([3, 4, 2], activation="tanh", backend=backend, seed=1)
        J, arrays = call(net, X, Y)
        results[backend] = J, [net.backend.to_host(a) for a in arrays]
    (J_np, A_np), (J_st, A_st) = results["numpy"], results["array_api_strict"]
    assert relative_error(J_st, J_np) <= 1e-12
    assert all(relative_error(a, b) <= 1e-12 for a, b in zip(A_st, A_np, strict=True))


def test_array_api_strict_takes_its_own_arrays(strict, data):
    X, Y = data
    net = bpgpu.Network([3, 4, 2], activation="relu", output="softmax", loss="cross_entropy",
                        backend="array_api_strict", seed=2)
    Y = np.eye(2)[(Y[:, 0] > 0.5).astype(int)]
    J_host, D_host = net.loss_and_gradients(X, Y)
    J_dev, D_dev = net.loss_and_gradients(strict.asarray(X), strict.asarray(Y))
    assert J_dev == J_host
    for a, b in zip(D_dev, D_host, strict=True):
        assert isinstance(a, type(strict.asarray(0.0)))
        np.testing.assert_array_equal(np.from_dlpack(a), np.from_dlpack(b))
    predicted = net.predict(strict.asarray(X))
    assert isinstance(predicted, np.ndarray) and predicted.shape == (10, 2)


# -- backend selection ---------------------------------------------------------------


def test_numpy_backend():
    backend = get_backend("numpy")
    assert backend.name == "numpy" and backend.xp is np
    assert get_backend(backend) is backend
    assert bpgpu.Network([2, 1]).backend is backend


def test_auto_picks_cupy_only_where_it_works():
    expected = "numpy" if parity.cupy_unavailable() else "cupy"
    assert get_backend("auto").name == expected
    assert bpgpu.Network([2, 1], backend="auto").backend.name == expected


@pytest.fixture
def fresh_cupy_lookup():
    """Forget the cached CuPy probe before and after, so a simulated CuPy is probed afresh
    and never leaks into other tests."""
    for cached in (_cupy_backend, parity.cupy_unavailable):
        cached.cache_clear()
    yield
    for cached in (_cupy_backend, parity.cupy_unavailable):
        cached.cache_clear()


def _fake_cupy(device_count):
    """A module that imports like CuPy; ``device_count`` returns a count or raises."""
    runtime = types.SimpleNamespace(getDeviceCount=device_count)
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime), __version__="0.fake")


def _falls_back_to_numpy():
    assert get_backend("auto").name == "numpy"
    assert bpgpu.Network([2, 1], backend="auto").backend.name == "numpy"
    with pytest.raises(BackendUnavailable):
        bpgpu.Network([2, 1], backend="cupy")


def test_cupy_missing(monkeypatch, fresh_cupy_lookup):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    with pytest.raises(BackendUnavailable, match="not installed") as err:
        get_backend("cupy")
    assert 'pip install "bpgpu[cuda12]"' in str(err.value)
    assert isinstance(err.value.__cause__, ImportError)
    _falls_back_to_numpy()
    assert bpgpu.available_backends()["cupy"].startswith("unavailable: ")


def test_cupy_without_a_working_device(monkeypatch, fresh_cupy_lookup):
    def no_driver():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(no_driver))
    with pytest.raises(BackendUnavailable, match="no CUDA device works") as err:
        get_backend("cupy")
    assert "cudaErrorInsufficientDriver" in str(err.value) and "nvidia-smi" in str(err.value)
    _falls_back_to_numpy()


def test_cupy_with_no_device(monkeypatch, fresh_cupy_lookup):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 0))
    with pytest.raises(BackendUnavailable, match="no CUDA device found"):
        get_backend("cupy")
    _falls_back_to_numpy()
