"""bpgpu.Standardizer, bpgpu.metrics and what persistence keeps of them (scaler, class names)."""

import json
import zipfile

import numpy as np
import pytest

import bpgpu
from bpgpu import metrics
from bpgpu.io import persistence
from parity import backend_dtype_combinations


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    X = rng.normal([3.0, -2.0, 100.0], [0.5, 4.0, 20.0], (50, 3))
    X[:, 1] = 7.0  # a constant feature
    return X


def test_standardizer_matches_scikit_learn_and_centres_a_constant_feature(X):
    sklearn = pytest.importorskip("sklearn.preprocessing")
    scaler = bpgpu.Standardizer().fit(X)
    np.testing.assert_allclose(scaler.transform(X), sklearn.StandardScaler().fit_transform(X), atol=1e-12)
    assert scaler.std[1] == 1.0 and np.all(scaler.transform(X)[:, 1] == 0.0)


def test_standardizer_keeps_float32_and_takes_lists(X):
    scaler = bpgpu.Standardizer().fit(X.tolist())
    assert scaler.transform(X.astype(np.float32)).dtype == np.float32
    assert scaler.transform(X[:2].tolist()).dtype == np.float64


@pytest.mark.parametrize("call, error, message", [
    (lambda s, X: s.transform(X), ValueError, "not fitted yet"),
    (lambda s, X: s.fit(X).transform(X[:, :2]), ValueError, "X: expected 3 columns"),
    (lambda s, X: s.fit(X[0]), ValueError, "X: expected a 2-D array"),
    (lambda s, X: s.fit(np.where(X > 100, np.nan, X)), ValueError, "X: expected finite numbers"),
    (lambda s, X: s.fit("abc"), TypeError, "X: expected a list, a NumPy array"),
    (lambda s, X: bpgpu.Standardizer(mean=[0.0], std=[0.0]), ValueError, "std: expected positive numbers"),
])
def test_standardizer_errors_name_the_argument(X, call, error, message):
    with pytest.raises(error, match=message):
        call(bpgpu.Standardizer(), X)


def test_accuracy_and_r2_equal_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    A = rng.random((40, 3))
    Y = np.eye(3)[rng.integers(0, 3, 40)]
    assert metrics.accuracy(Y, A) == sk.accuracy_score(Y.argmax(1), A.argmax(1))
    y, a = (rng.random((40, 1)) > 0.5) * 1.0, rng.random((40, 1))
    assert metrics.accuracy(y, a) == sk.accuracy_score(y[:, 0], a[:, 0] >= 0.5)
    T, P = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    T[:, 1] = 3.0  # a constant column: scikit-learn scores it 0 unless predicted exactly
    assert metrics.r2(T, P) == pytest.approx(sk.r2_score(T, P), abs=1e-12)
    assert metrics.r2(T[:, :1], P[:, :1]) == pytest.approx(sk.r2_score(T[:, 0], P[:, 0]), abs=1e-12)


def test_score_in_chunks_equals_one_pass():
    X, Y = bpgpu.data.spirals(90, 3, seed=2)
    net = bpgpu.Network([2, 8, 3], activation="tanh", output="softmax", loss="cross_entropy")
    assert metrics.score(net, X, Y, "accuracy", rows=7) == metrics.accuracy(Y, net.forward(X))


def test_scaler_and_class_names_round_trip(tmp_path, X):
    net = bpgpu.Network([3, 4, 2], output="softmax", loss="cross_entropy")
    scaler = bpgpu.Standardizer().fit(X)
    bpgpu.save(net, tmp_path / "m.npz", scaler=scaler, classes=["no", "yes"])
    back = persistence.load_checkpoint(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.scaler.mean, scaler.mean)
    np.testing.assert_array_equal(back.scaler.std, scaler.std)
    assert back.classes == ["no", "yes"] and back.metadata["version"] == 2


def test_a_model_without_them_stays_format_1_and_loads_as_before(tmp_path):
    net = bpgpu.Network([3, 4, 1])
    bpgpu.save(net, tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        meta = json.loads(np.load(z.open("meta.npy")).tobytes())
    assert meta["version"] == 1  # readable by every earlier bpgpu
    back = persistence.load_checkpoint(tmp_path / "m.npz")
    assert back.scaler is None and back.classes is None


@pytest.mark.parametrize("options, error, message", [
    ({"scaler": bpgpu.Standardizer()}, TypeError, "scaler: expected a fitted"),
    ({"scaler": bpgpu.Standardizer([0.0, 0.0], [1.0, 1.0])}, ValueError, "scaler: expected one"),
    ({"classes": ["a", "b", "c"]}, ValueError, "classes: expected 2 distinct names"),
    ({"classes": ["a", "a"]}, ValueError, "classes: expected 2 distinct names"),
])
def test_save_refuses_a_scaler_or_classes_that_do_not_fit(tmp_path, options, error, message):
    with pytest.raises(error, match=message):
        bpgpu.save(bpgpu.Network([3, 4, 1]), tmp_path / "m.npz", **options)


@pytest.mark.parametrize("backend, dtype", backend_dtype_combinations())
def test_scaling_and_metrics_run_where_the_data_lives(backend, dtype):
    """The same numbers on every backend, the arrays never leaving it."""
    from bpgpu.backend import get_backend

    b = get_backend(backend)
    X, Y = bpgpu.data.blobs(60, 3, 4, seed=5)
    scaler = bpgpu.Standardizer().fit(b.asarray(X, dtype))
    scaled = scaler.transform(b.asarray(X, dtype))
    assert b.is_native(scaled) and scaled.dtype == b.asarray(X, dtype).dtype
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(b.to_host(scaled), bpgpu.Standardizer().fit_transform(X), rtol=rtol, atol=rtol)
    net = bpgpu.Network([4, 6, 3], activation="tanh", output="softmax", loss="cross_entropy", seed=1)
    there = net.clone(backend=b, dtype=dtype)
    assert metrics.score(there, b.asarray(X, dtype), b.asarray(Y, dtype), "accuracy", rows=25) == \
        metrics.score(net, X, Y, "accuracy")
    assert metrics.score(there, b.asarray(X, dtype), b.asarray(Y, dtype), "r2") == \
        pytest.approx(metrics.score(net, X, Y, "r2"), rel=rtol)
