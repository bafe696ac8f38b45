"""bpgpu.sklearn as scikit-learn users meet it: check_estimator, the inputs they have
(labels, DataFrames, sparse, float32), pipelines and searches, pickling, bpgpu's own
parameters, and an ``import bpgpu`` that stays free of scikit-learn."""

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="bpgpu.sklearn needs scikit-learn (pip install 'bpgpu[sklearn]')")
pytest.importorskip("scipy", reason="bpgpu.sklearn needs scipy (pip install 'bpgpu[sklearn]')")

import scipy.sparse as sp  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import bpgpu  # noqa: E402
from bpgpu.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_check_estimator(estimator, check):
    check(estimator)


def test_import_bpgpu_does_not_import_sklearn():
    code = "import bpgpu, sys; assert 'sklearn' not in sys.modules and 'scipy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0, 0], [3, 3, 0, 0], [0, 3, 3, 0]])
    y = rng.integers(0, 3, 150)
    return centres[y] + 0.5 * rng.standard_normal((150, 4)), y


@pytest.mark.parametrize("labels", [np.array([3, 7, 11]), np.array(["ant", "bee", "cat"], dtype=object),
                                    np.array(["ant", "bee", "cat"])])
def test_labels_come_back_as_given(blobs, labels):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=100, random_state=0).fit(X, labels[y])
    np.testing.assert_array_equal(clf.classes_, labels)
    predicted = clf.predict(X)
    assert predicted.dtype == clf.classes_.dtype and (predicted == labels[y]).mean() > 0.8
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))


def test_binary_and_multilabel_targets(blobs):
    X, y = blobs
    binary = MLPClassifier(hidden_layer_sizes=(8,), max_iter=100, random_state=0).fit(X, y == 1)
    assert binary.out_activation_ == "logistic" and binary.n_outputs_ == 1
    assert binary.predict_proba(X).shape == (150, 2) and binary.predict(X).dtype == bool
    Y = np.stack([y == 0, y == 1, X[:, 0] > 1], axis=1).astype(int)
    multi = MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, random_state=0).fit(X, Y)
    assert multi.out_activation_ == "logistic" and multi.predict(X).shape == (150, 3)
    assert multi.score(X, Y) > 0.8


def test_pandas_feature_names_are_kept(blobs):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0, early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "X does not have valid feature names"
        clf.fit(frame, pd.Series(y))
        clf.predict(frame)
    np.testing.assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_equals_dense(blobs, solver, fmt):
    X, y = blobs
    X = np.where(np.abs(X) > 1, X, 0.0)
    dense = MLPClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=30, random_state=0).fit(X, y)
    sparse = MLPClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=30, random_state=0)
    sparse.fit(sp.csr_matrix(X).asformat(fmt), y)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X).asformat(fmt)), dense.predict_proba(X),
                               rtol=1e-12)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_float32_input_trains_float32_and_dtype_forces(blobs, Estimator):
    X, y = blobs
    est = Estimator(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X.astype(np.float32), y)
    assert est.network_.dtype == "float32" and all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    forced = Estimator(hidden_layer_sizes=(8,), max_iter=20, random_state=0, dtype="float64")
    forced.fit(X.astype(np.float32), y)
    assert forced.network_.dtype == "float64" and forced.coefs_[0].dtype == np.float64


def test_network_is_the_fitted_model(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(8, 5), max_iter=20, random_state=0).fit(X, y)
    net = clf.network_
    assert isinstance(net, bpgpu.Network) and net.sizes == [4, 8, 5, 3] and net.output == "softmax"
    np.testing.assert_allclose(net.predict(X), clf.predict_proba(X))
    np.testing.assert_allclose(net.thetas[1][:, 1:], clf.coefs_[1].T)
    np.testing.assert_allclose(net.thetas[1][:, 0], clf.intercepts_[1])
    # Replacing coefs_ (as scikit-learn's tests do) changes what predicts.
    clf.coefs_ = [np.zeros_like(c) for c in clf.coefs_]
    np.testing.assert_allclose(clf.predict_proba(X), np.tile(clf.predict_proba(X[:1]), (150, 1)))


def test_pipeline_grid_search_and_cross_validation(blobs):
    X, y = blobs
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=50, random_state=0))
    search = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.9
    assert cross_val_score(MLPRegressor(max_iter=100, random_state=0), X, X[:, 0] - X[:, 1], cv=3).mean() > 0.5


def test_pickle_round_trip_continues_training(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", max_iter=10, random_state=0).fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    clf.partial_fit(X, y)
    copy.partial_fit(X, y)  # the momentum velocities travelled with the pickle
    np.testing.assert_array_equal(copy.coefs_[0], clf.coefs_[0])


def test_partial_fit_keeps_the_optimiser_and_fit_restarts_it(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    adam = clf._optimizer
    clf.partial_fit(X, y)
    assert clf._optimizer is adam and adam.t == 2  # one full batch (150 ≤ 200) per call
    clf.set_params(warm_start=True, max_iter=3).fit(X, y)
    assert clf._optimizer is not adam and clf._optimizer.t == 3


def test_array_api_strict_backend(blobs):
    pytest.importorskip("array_api_strict", reason="array-api-strict stands in for a GPU library")
    X, y = blobs
    params = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0, shuffle=False)
    on_numpy = MLPClassifier(**params).fit(X, y)
    strict = MLPClassifier(backend="array_api_strict", **params).fit(X, y)
    assert strict.network_.backend.name == "array_api_strict"
    np.testing.assert_allclose(strict.predict_proba(X), on_numpy.predict_proba(X), rtol=1e-10)
    assert isinstance(strict.predict_proba(X), np.ndarray)


def test_bpgpu_parameters_are_validated():
    X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 1, 0, 1]
    with pytest.raises(ValueError, match="device"):
        MLPClassifier(device="cuda:0").fit(X, y)
    with pytest.raises(ValueError, match="device: 'cpu' runs on backend='numpy'"):
        MLPClassifier(device="cpu", backend="auto").fit(X, y)
    with pytest.raises(ValueError, match="dtype"):
        MLPClassifier(dtype="float16").fit(X, y)
    with pytest.raises(ValueError, match="loss"):
        MLPRegressor(loss="absolute_error").fit(X, y)
    with pytest.raises(ValueError, match="momentum"):
        MLPClassifier(solver="sgd", momentum=1.0).fit(X, y)


def test_divergence_is_reported_as_scikit_learn_does():
    X = np.full((10, 2), np.finfo(np.float64).max / 4)
    y = np.arange(10.0)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            MLPRegressor().fit(X, y)


def test_the_comparison_benchmark_runs(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "sklearn_vs_bpgpu.py"
    root = str(script.parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, str(script), "--quick", "--repeats", "1", "--backends", "numpy",
                    "--out", str(tmp_path)], check=True, capture_output=True, text=True, env=env)
    report = json.loads((tmp_path / "sklearn_vs_bpgpu.json").read_text())
    assert [r["workload"] for r in report["rows"]] == ["digits", "W1", "W2"]
    assert all(r["speedup_numpy"] > 0 for r in report["rows"])


@pytest.mark.parametrize("early_stopping", [False, True])
def test_arrays_of_the_backend_stay_on_it(blobs, early_stopping):
    """array-api-strict stands in for CuPy: X of the estimator's backend is trained on and
    predicted from where it is (no conversion to NumPy), labels come back to the host."""
    xp = pytest.importorskip("array_api_strict", reason="array-api-strict stands in for a GPU library")
    X, y = blobs
    params = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0, early_stopping=early_stopping)
    on_numpy = MLPClassifier(**params).fit(X, y)
    on_device = MLPClassifier(backend="array_api_strict", **params).fit(xp.asarray(X), xp.asarray(y))
    assert on_device.n_features_in_ == 4 and not hasattr(on_device, "feature_names_in_")
    np.testing.assert_allclose(on_device.predict_proba(xp.asarray(X)), on_numpy.predict_proba(X), rtol=1e-10)
    np.testing.assert_array_equal(on_device.predict(xp.asarray(X)), on_numpy.predict(X))
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 4"):
        on_device.predict(xp.asarray(X[:, :3]))
    with pytest.raises(TypeError, match="array of backend='numpy'"):
        on_numpy.predict(xp.asarray(X))
