"""MLPClassifier and MLPRegressor: scikit-learn's parameters, defaults and attributes,
trained by bpgpu. Targets, labels and outputs are handled here; training in ``_base``."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._base import BaseMLP

_COMMON = """
    Parameters are scikit-learn's (``sklearn.neural_network.{name}``), with the same defaults
    and meanings, plus bpgpu's own:

    backend : {{"numpy", "cupy", "auto"}}, default="numpy"
        Where the network trains and predicts. "cupy" needs CuPy and a CUDA device; data is
        staged on the device once per ``fit`` and predictions come back as NumPy arrays.
        ("array_api_strict" is accepted for testing.)
    dtype : {{None, "float32", "float64"}}, default=None
        The network's float type. None follows ``X`` on the first fit, as scikit-learn does
        (float32 stays float32, anything else becomes float64).
    device : {{None, "cpu"}}, default=None
        Reserved: bpgpu's Network does not select a device yet, so only None (the backend's
        current device) or "cpu" (with backend="numpy") are accepted. On CuPy, choose the GPU
        with ``CUDA_VISIBLE_DEVICES`` or ``cupy.cuda.Device(n).use()``.

    Attributes are scikit-learn's (``coefs_`` (n_in, n_out) per layer, ``intercepts_``,
    ``loss_``, ``best_loss_``, ``loss_curve_``, ``validation_scores_``,
    ``best_validation_score_``, ``n_iter_``, ``t_``, ``n_layers_``, ``n_outputs_``,
    ``out_activation_``, ``n_features_in_``, ``feature_names_in_``{extra}), plus
    ``network_``: the fitted ``bpgpu.Network``.

    ``fit(X, y, sample_weight=None)`` weighs the examples as scikit-learn's does (weights < 0 are
    refused).{poisson} See docs/sklearn.md.
"""


def _init(self, params):
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(self, name, value)


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier on bpgpu: a drop-in for scikit-learn's.

    Binary and multilabel targets train a sigmoid output with cross-entropy, multiclass a
    softmax output; labels may be integers, strings or a multilabel indicator matrix.
    """

    __doc__ += _COMMON.format(name="MLPClassifier", extra=", ``classes_``", poisson="")

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="numpy", dtype=None, device=None):
        _init(self, locals())

    def fit(self, X, y, sample_weight=None):
        """Fit to X (n_samples, n_features), dense or sparse, and y: labels (n_samples,) or a
        multilabel indicator matrix (n_samples, n_classes); sample_weight (n_samples,) weighs
        each example's loss (None: all 1). Returns self."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing the weights and optimiser state. ``classes``
        (all labels there will be) is required on the first call. Returns self."""
        if _first_partial_fit(self, classes):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """Labels (n_samples,), or an indicator matrix (n_samples, n_classes) for multilabel."""
        check_is_fitted(self)
        return self._labels(self._forward(X))

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns ordered as ``classes_``."""
        check_is_fitted(self)
        y = self._forward(X)
        if self.n_outputs_ == 1:
            y = y.ravel()
        return np.vstack([1 - y, y]).T if y.ndim == 1 else y

    def predict_log_proba(self, X):
        """log of :meth:`predict_proba` (n_samples, n_classes)."""
        y = self.predict_proba(X)
        return np.log(y, out=y)

    # -- hooks for _base -----------------------------------------------------------

    def _validate_input(self, X, y, incremental, reset):
        X, y = self._validate_X_y(X, y, reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        # bool, not float: the dtype of X decides the network's (and stratified splits name classes True/False).
        return X, self._label_binarizer.transform(y).astype(bool)

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _network_loss(self):
        return "cross_entropy"

    def _labels(self, outputs):
        if self.n_outputs_ == 1:
            outputs = outputs.ravel()
        return self._label_binarizer.inverse_transform(outputs)

    def _validation_target(self, y_val):
        return self._label_binarizer.inverse_transform(y_val)

    def _score_outputs(self, outputs, y, sample_weight=None):
        return accuracy_score(y, self._labels(outputs), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor on bpgpu: a drop-in for scikit-learn's. ``loss``:
    "squared_error" (identity output, half squared error) or "poisson" (exponential output,
    half Poisson deviance, as scikit-learn's; targets must be ≥ 0)."""

    __doc__ += _COMMON.format(name="MLPRegressor", extra="", poisson="")

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, backend="numpy", dtype=None, device=None):
        _init(self, locals())

    _parameter_constraints = {**BaseMLP._parameter_constraints, "loss": [StrOptions({"squared_error", "poisson"})]}

    def fit(self, X, y, sample_weight=None):
        """Fit to X (n_samples, n_features), dense or sparse, and y (n_samples,) or
        (n_samples, n_outputs); sample_weight (n_samples,) weighs each example's loss (None:
        all 1). Returns self."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the weights and optimiser state. Returns self."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """Predictions (n_samples,), or (n_samples, n_outputs) for several targets."""
        check_is_fitted(self)
        y = self._forward(X)
        return y.ravel() if y.shape[1] == 1 else y

    # -- hooks for _base -----------------------------------------------------------

    def _validate_input(self, X, y, incremental, reset):
        X, y = self._validate_X_y(X, y, reset, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and y.size and np.min(y) < 0:
            raise ValueError(f"y: loss='poisson' expects targets >= 0 (counts or rates: a Poisson mean is positive), "
                             f"got a minimum of {np.min(y):g}")
        return X, y

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _network_loss(self):
        return "poisson" if self.loss == "poisson" else "mse"

    def _validation_target(self, y_val):
        return y_val.ravel() if y_val.shape[1] == 1 else y_val

    def _score_outputs(self, outputs, y, sample_weight=None):
        return r2_score(y, outputs.ravel() if outputs.shape[1] == 1 else outputs, sample_weight=sample_weight)


def _first_partial_fit(est, classes) -> bool:
    """True on the first partial_fit (and set ``classes_``); check ``classes`` on later ones."""
    known = getattr(est, "classes_", None)
    if known is None and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if classes is None:
        return False
    if known is not None:
        if not np.array_equal(known, unique_labels(classes)):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to partial_fit, was: {known!r}")
        return False
    est.classes_ = unique_labels(classes)
    return True
