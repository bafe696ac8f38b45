"""bpgpu.data: shapes, determinism, the values each generator promises, on every backend here."""

import numpy as np
import pytest

import bpgpu
from bpgpu import data
from bpgpu.backend import BackendUnavailable, get_backend


def _unavailable(name):
    try:
        get_backend(name)
    except BackendUnavailable as err:
        return str(err)
    return ""


BACKENDS = [
    "numpy",
    pytest.param("array_api_strict", marks=pytest.mark.skipif(
        bool(_unavailable("array_api_strict")), reason=_unavailable("array_api_strict"))),
    pytest.param("cupy", marks=[pytest.mark.cupy, pytest.mark.skipif(
        bool(_unavailable("cupy")), reason=f"needs CuPy and a CUDA device: {_unavailable('cupy')}")]),
]


CASES = [
    (data.xor, dict(m=10, noise=0.1), (10, 2), (10, 1)),
    (data.spirals, dict(m=11, classes=4), (11, 2), (11, 4)),
    (data.blobs, dict(m=9, classes=3, features=5), (9, 5), (9, 3)),
    (data.teacher, dict(m=7, sizes=[4, 6, 2]), (7, 4), (7, 2)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("generate, kwargs, x_shape, y_shape", CASES, ids=lambda c: getattr(c, "__name__", None))
def test_shapes_dtype_and_device(generate, kwargs, x_shape, y_shape, backend, dtype):
    b = get_backend(backend)
    X, Y = generate(**kwargs, backend=backend, dtype=dtype, seed=3)
    assert b.is_native(X) and b.is_native(Y)
    assert tuple(X.shape) == x_shape and tuple(Y.shape) == y_shape
    assert X.dtype == getattr(b.xp, dtype) and Y.dtype == getattr(b.xp, dtype)
    assert np.all(np.isfinite(b.to_host(X))) and np.all(np.isfinite(b.to_host(Y)))


@pytest.mark.parametrize("generate, kwargs, x_shape, y_shape", CASES, ids=lambda c: getattr(c, "__name__", None))
def test_seeded_and_deterministic(generate, kwargs, x_shape, y_shape):
    X1, Y1 = generate(**kwargs, seed=5)
    X2, Y2 = generate(**kwargs, seed=5)
    X3, _ = generate(**kwargs, seed=6)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(Y1, Y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.skipif(bool(_unavailable("array_api_strict")), reason="array_api_strict is not installed")
@pytest.mark.parametrize("generate, kwargs, x_shape, y_shape", CASES, ids=lambda c: getattr(c, "__name__", None))
def test_strict_backend_draws_the_numpy_stream(generate, kwargs, x_shape, y_shape):
    """array-api-strict draws on the host with NumPy's generator: the same data as NumPy."""
    strict = get_backend("array_api_strict")
    Xs, Ys = generate(**kwargs, backend="array_api_strict", seed=2)
    Xn, Yn = generate(**kwargs, backend="numpy", seed=2)
    np.testing.assert_allclose(strict.to_host(Xs), Xn, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(strict.to_host(Ys), Yn, rtol=1e-12, atol=1e-15)


def test_xor_without_noise_is_the_truth_table():
    X, Y = data.xor(8)
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]] * 2)
    np.testing.assert_array_equal(Y[:, 0], [0, 1, 1, 0] * 2)


def test_spirals_are_balanced_one_hot_arms_inside_the_unit_disc():
    X, Y = data.spirals(300, 3, noise=0.0)
    np.testing.assert_array_equal(Y.sum(axis=1), 1.0)
    np.testing.assert_array_equal(Y.sum(axis=0), [100, 100, 100])
    np.testing.assert_array_equal(Y.argmax(axis=1), np.arange(300) % 3)
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.max() < 1.0
    # Without noise each arm is the curve angle = 2π·turns·r + 2πk/3 exactly.
    angle = np.arctan2(X[:, 0], X[:, 1])
    expected = 2 * np.pi * 0.75 * r + 2 * np.pi * (np.arange(300) % 3) / 3
    np.testing.assert_allclose(np.cos(angle - expected), 1.0, atol=1e-9)


def test_blobs_cluster_round_their_centres():
    X, Y = data.blobs(3000, classes=4, features=3, spread=0.5, separation=10.0, seed=1)
    labels = Y.argmax(axis=1)
    centres = np.stack([X[labels == k].mean(axis=0) for k in range(4)])
    spread = np.sqrt(np.mean((X - centres[labels]) ** 2))
    assert abs(spread - 0.5) < 0.02
    nearest = np.argmin(((X[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    assert np.mean(nearest == labels) > 0.99


def test_teacher_targets_are_the_teacher_network_plus_noise():
    sizes = [5, 8, 2]
    X, Y = data.teacher(4000, sizes, noise=0.1, seed=4)
    net = bpgpu.Network(sizes, activation="tanh", output="identity", seed=4)
    residual = Y - net.predict(X)
    assert abs(residual.std() - 0.1) < 0.005
    assert abs(residual.mean()) < 0.005
    X0, Y0 = data.teacher(10, sizes, noise=0.0, seed=4)
    np.testing.assert_allclose(Y0, net.predict(X0), rtol=1e-12)


def test_spirals_are_learnable():
    X, Y = data.spirals(300, 3, seed=0)
    net = bpgpu.Network([2, 32, 32, 3], activation="tanh", output="softmax", loss="cross_entropy", seed=0)
    net.fit(X, Y, epochs=300, optimizer="adam", lr=0.02)
    accuracy = np.mean(net.predict(X).argmax(axis=1) == Y.argmax(axis=1))
    assert accuracy > 0.95


@pytest.mark.parametrize("call, match", [
    (lambda: data.xor(0), "m: expected a number >= 1"),
    (lambda: data.spirals(10, classes=1), "classes"),
    (lambda: data.blobs(10, features=0), "features"),
    (lambda: data.xor(4, dtype="int8"), "dtype"),
    (lambda: data.xor(4, backend="tpu"), "backend"),
    (lambda: data.spirals(10, noise=-1.0), "noise"),
])
def test_bad_arguments_name_themselves(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_generators_are_reachable_from_the_package_as_the_readme_shows():
    import bpgpu

    X, Y = bpgpu.data.xor(4)
    np.testing.assert_array_equal(np.asarray(Y)[:, 0], [0, 1, 1, 0])
    assert X.shape == (4, 2)
