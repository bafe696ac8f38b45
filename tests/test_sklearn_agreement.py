"""bpgpu.sklearn computes scikit-learn's numbers: from the same weights, the same weights.

Two ways in. ``partial_fit``: both estimators are handed the same (random) coefs_ and
intercepts_, as scikit-learn's own test_fit does, and trained epoch by epoch, which also
carries the optimiser state (velocities, Adam moments) across calls. ``fit``: both start from
the same ``random_state`` (bpgpu.sklearn draws scikit-learn's initial weights) without
shuffling, which also checks the initialisation and the per-epoch rules (schedules, early
stopping). float64 throughout; 1e-12 is a few hundred roundings.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="bpgpu.sklearn needs scikit-learn (pip install 'bpgpu[sklearn]')")
pytest.importorskip("scipy", reason="bpgpu.sklearn needs scipy (pip install 'bpgpu[sklearn]')")

from sklearn import neural_network as skl  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from bpgpu import sklearn as bps  # noqa: E402

TOL = 1e-12
M, N_FEATURES, HIDDEN = 40, 5, (6, 4)
SOLVERS = {
    "sgd": dict(solver="sgd", momentum=0.0, learning_rate_init=0.1),
    "momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False, learning_rate_init=0.05),
    "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True, learning_rate_init=0.05),
    "adam": dict(solver="adam", learning_rate_init=0.01),
}
TARGETS = ("binary", "multiclass", "multilabel", "regression", "regression3")


def data(target):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((M, N_FEATURES))
    if target == "binary":
        y = (X[:, 0] + X[:, 1] > 0).astype(int)
    elif target == "multiclass":
        y = np.digitize(X[:, 0], [-0.5, 0.5])
    elif target == "multilabel":
        y = (X[:, :3] > 0).astype(int)
    elif target == "regression":
        y = X @ rng.standard_normal(N_FEATURES)
    else:
        y = X @ rng.standard_normal((N_FEATURES, 3))
    return X, y


def pair(target, **params):
    """(scikit-learn's estimator, bpgpu's) with the same parameters."""
    kind = "MLPRegressor" if target.startswith("regression") else "MLPClassifier"
    return getattr(skl, kind)(**params), getattr(bps, kind)(**params)


def assert_same_weights(a, b, tol=TOL):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_allclose(q, p, rtol=tol, atol=tol)


def start_from(est, X, y, target, seed=1):
    """Hand ``est`` the weights of a fitted MLP's attributes, as scikit-learn's test_fit does."""
    n_out = 1 if target in ("binary", "regression") else 3
    units = [X.shape[1], *HIDDEN, n_out]
    rng = np.random.default_rng(seed)
    est.coefs_ = [rng.uniform(-0.5, 0.5, (a, b)) for a, b in zip(units[:-1], units[1:])]
    est.intercepts_ = [rng.uniform(-0.5, 0.5, b) for b in units[1:]]
    est.n_features_in_, est.n_outputs_, est.n_layers_ = X.shape[1], n_out, len(units)
    est.out_activation_ = {"multiclass": "softmax", "regression": "identity",
                           "regression3": "identity"}.get(target, "logistic")
    est.n_iter_, est.t_, est.loss_curve_, est.best_loss_, est._no_improvement_count = 0, 0, [], np.inf, 0


@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("target", TARGETS)
def test_partial_fit_from_equal_weights(target, solver, activation, alpha):
    X, y = data(target)
    params = dict(hidden_layer_sizes=HIDDEN, activation=activation, alpha=alpha, batch_size=8,
                  shuffle=False, **SOLVERS[solver])
    ours_and_theirs = pair(target, **params)
    for est in ours_and_theirs:
        start_from(est, X, y, target)
    classes = {"binary": [0, 1], "multiclass": [0, 1, 2], "multilabel": [0, 1, 2]}.get(target)
    for _ in range(10):  # 10 epochs of 5 steps
        for est in ours_and_theirs:
            if classes is None:
                est.partial_fit(X, y)
            else:
                est.partial_fit(X, y, classes=classes)
        theirs, ours = ours_and_theirs
        assert_same_weights(theirs, ours)
        if target != "regression3":  # scikit-learn reports the squared error averaged over outputs
            assert ours.loss_ == pytest.approx(theirs.loss_, rel=TOL, abs=TOL)
    assert ours.t_ == theirs.t_ == 10 * M


FIT_CASES = {
    "adam": dict(solver="adam"),
    "nesterov-invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.2),
    "momentum-adaptive": dict(solver="sgd", nesterovs_momentum=False, learning_rate="adaptive", tol=0.5,
                              n_iter_no_change=2, learning_rate_init=0.05),
    "adam-early-stopping": dict(solver="adam", early_stopping=True, learning_rate_init=0.01),
}


@pytest.mark.parametrize("case", list(FIT_CASES))
@pytest.mark.parametrize("target", ["multiclass", "regression"])
def test_fit_from_equal_random_state(target, case):
    X, y = data(target)
    theirs, ours = pair(target, hidden_layer_sizes=HIDDEN, activation="tanh", alpha=0.1, batch_size=16,
                        max_iter=25, shuffle=False, random_state=0, **FIT_CASES[case])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
        ours.fit(X, y)
    assert_same_weights(theirs, ours)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=TOL, atol=TOL)
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate_init
                                                          if ours.solver == "adam" else
                                                          theirs._optimizer.learning_rate, rel=TOL)
    if ours.early_stopping:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=TOL)


@pytest.mark.parametrize("target", ["binary", "multiclass", "regression3"])
def test_lbfgs_from_equal_random_state(target):
    # L-BFGS-B's line search amplifies rounding differences in the gradient, hence 1e-9.
    X, y = data(target)
    theirs, ours = pair(target, solver="lbfgs", hidden_layer_sizes=HIDDEN, activation="tanh", alpha=0.1,
                        max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
        ours.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    if target != "regression3":  # scikit-learn's lbfgs objective averages the squared error over outputs
        assert_same_weights(theirs, ours, tol=1e-9)
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)


def test_the_regularised_loss_is_scikit_learns():
    """alpha/(2·n_samples)·Σ‖W‖² on the coefficients only, and the per-sample mean data loss."""
    X, y = data("multiclass")
    theirs, ours = pair("multiclass", hidden_layer_sizes=HIDDEN, alpha=0.7, solver="lbfgs", max_iter=1)
    for est in (theirs, ours):
        start_from(est, X, y, "multiclass")
    Y = np.eye(3)[y]
    packed = np.hstack([a.ravel() for a in ours.coefs_ + ours.intercepts_])
    J_ours, g_ours = ours._loss_grad_lbfgs(packed, X, Y)
    units = [N_FEATURES, *HIDDEN, 3]
    theirs._coef_indptr, theirs._intercept_indptr, start = [], [], 0
    for a, b in zip(units[:-1], units[1:]):
        theirs._coef_indptr.append((start, start + a * b, (a, b)))
        start += a * b
    for b in units[1:]:
        theirs._intercept_indptr.append((start, start + b))
        start += b
    acts = [X] + [None] * (len(units) - 1)
    J_theirs, g_theirs = theirs._loss_grad_lbfgs(packed, X, Y, None, acts, [None] * (len(units) - 1),
                                                 [None] * (len(units) - 1), [None] * (len(units) - 1))
    assert J_ours == pytest.approx(J_theirs, rel=1e-13)
    np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", ["adam", "nesterov-invscaling", "adam-early-stopping", "lbfgs"])
@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel", "regression"])
def test_weighted_fit_from_equal_random_state(target, case):
    """fit(X, y, sample_weight) with some weights 0: scikit-learn's weights, loss curve and
    (weighted) validation scores, the weights split with their rows for early stopping"""
    X, y = data(target)
    s = np.random.default_rng(3).uniform(0.0, 2.0, M)
    s[::7] = 0.0
    params = dict(FIT_CASES.get(case, {"solver": "lbfgs"}))
    theirs, ours = pair(target, hidden_layer_sizes=HIDDEN, activation="tanh", alpha=0.1, batch_size=16,
                        max_iter=25, shuffle=False, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y, sample_weight=s)
        ours.fit(X, y, sample_weight=s)
    tol = 1e-9 if case == "lbfgs" else TOL  # a line search amplifies rounding (docs/sklearn.md)
    assert_same_weights(theirs, ours, tol)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=tol)
    if case != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=TOL)
    if case == "adam-early-stopping":
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=TOL)
