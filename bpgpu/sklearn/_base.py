"""What MLPClassifier and MLPRegressor share: parameters, validation, the network, fit.

The fitted truth is scikit-learn's: ``coefs_`` and ``intercepts_`` (host NumPy, scikit-learn's
layout), refreshed at the end of every fit. ``network_`` is the bpgpu ``Network`` that trains
and predicts; it is built from (and reloaded from) ``coefs_``/``intercepts_`` whenever those
lists or their arrays were replaced, so code that assigns them, as scikit-learn's own tests
do, keeps working. Training is ``Network.fit`` (sgd, adam) or scipy's L-BFGS-B on
``Network.loss_and_gradients`` (lbfgs): there is no second training loop here.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

# bpgpu's public API only: the core's internals are free to change under us.
from .. import DivergenceError, Network, get_backend
from . import _layout, _lbfgs, _optimizers
from ._epochs import EpochRules

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6: the same function was a method
    def validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

STOCHASTIC_SOLVERS = ("sgd", "adam")
# scikit-learn's activation names → bpgpu's.
HIDDEN = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
OUTPUT = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax", "exp": "exp"}
PREDICT_ROWS = 4096  # sparse inputs are densified this many rows at a time when predicting
NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large values "
              "and need to be preprocessed.")


class BaseMLP(BaseEstimator):
    """Shared by both estimators; subclasses define ``_validate_input``, ``_output_activation``,
    ``_network_loss`` and ``_score_outputs``."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        # bpgpu's own
        "backend": [StrOptions({"numpy", "cupy", "auto", "array_api_strict"})],
        "dtype": [None, StrOptions({"float32", "float64"})],
        "device": [None, StrOptions({"cpu"})],
    }

    # -- fit ----------------------------------------------------------------------

    def _fit(self, X, y, incremental: bool, sample_weight=None):
        """fit (``incremental=False``: max_iter epochs, or lbfgs) and partial_fit (one epoch).

        X: (n_samples, n_features), dense, sparse or on the backend's device; y: labels,
        indicators or targets as the subclass's ``_validate_input`` accepts them;
        sample_weight: (n_samples,) or None, as scikit-learn's (bpgpu refuses weights < 0).
        """
        self._validate_params()
        if self.device == "cpu" and self.backend != "numpy":
            raise ValueError(f"device: 'cpu' runs on backend='numpy', got backend={self.backend!r}")
        hidden = list(self.hidden_layer_sizes) if hasattr(self.hidden_layer_sizes, "__iter__") \
            else [self.hidden_layer_sizes]
        if np.any(np.array(hidden) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)

        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if sp.issparse(X):
            X = X.toarray()  # once per fit; the network trains on dense batches
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, self.dtype or _float_name(X))

        net = self._network()
        X = net.backend.asarray(X, net.dtype)  # staged on the device once, for every solver
        if self.solver in STOCHASTIC_SOLVERS:
            self._fit_stochastic(net, X, y, incremental, sample_weight)
        else:
            self._fit_lbfgs(net, X, y, layer_units, sample_weight)
        self._keep_weights_of(net)
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError(NON_FINITE)
        return self

    def _initialize(self, y, layer_units, dtype):
        """First fit: scikit-learn's initial weights and bookkeeping attributes."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        self.coefs_, self.intercepts_ = _layout.initial_coefs(self._random_state, layer_units,
                                                              self.activation, dtype)
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [i.copy() for i in self.intercepts_]
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
            else:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf

    def _fit_stochastic(self, net, X, y, incremental, sample_weight):
        """sgd/adam: ``Network.fit`` with scikit-learn's optimiser, its batches and, after every
        epoch, its rules (:class:`EpochRules`). X (m, n_features) on the device, y (m, n_outputs),
        sample_weight (m,) or None."""
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = _optimizers.make(
                self.solver, learning_rate_init=self.learning_rate_init, momentum=self.momentum,
                nesterovs_momentum=self.nesterovs_momentum, beta_1=self.beta_1, beta_2=self.beta_2,
                epsilon=self.epsilon)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, y, sample_weight, validation = self._split_validation(net, X, y, sample_weight) \
            if self.early_stopping else (X, y, sample_weight, None)
        n_samples = X.shape[0]
        batch_size = self._batch_size(n_samples)
        schedule = _optimizers.schedule(self.learning_rate if self.solver == "sgd" else "constant",
                                        self.learning_rate_init, self.power_t)
        rules = EpochRules(self, net, self._optimizer, schedule, n_samples, validation, incremental)
        # bpgpu shuffles with (seed, epoch): draw the seed from random_state, so a fixed
        # random_state gives the same batches on every run, as in scikit-learn.
        net.seed = int(self._random_state.randint(np.iinfo(np.int32).max))
        self.n_iter_ = 0
        try:
            net.fit(X, y.astype(net.dtype), epochs=1 if incremental else self.max_iter, batch_size=batch_size,
                    optimizer=self._optimizer, shuffle=self.shuffle, callback=rules, on_nonfinite="raise",
                    sample_weight=sample_weight)
        except DivergenceError:
            rules.diverged()
            if not self.early_stopping:
                raise ValueError(NON_FINITE) from None
        if self.early_stopping:
            net.set_thetas(_layout.to_thetas(self._best_coefs, self._best_intercepts))

    def _split_validation(self, net, X, y, sample_weight):
        """(X_train, y_train, sample_weight_train, (X_val, y_val as scored, sample_weight_val)):
        scikit-learn's early-stopping split, the weights split with their rows (and the
        validation score weighted by them, as scikit-learn's)."""
        # scikit-learn stratifies single-output classification only (not multiclass: its y is one-hot).
        stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
        # Split row indices, not X: the same split as train_test_split(X, y), with X left on the device.
        train, val = train_test_split(np.arange(X.shape[0]), random_state=self._random_state,
                                      test_size=self.validation_fraction, stratify=stratify)
        if val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        X_train, X_val = (net.xp.take(X, net.backend.asarray(i, "int64"), axis=0) for i in (train, val))
        train_weight, val_weight = (None, None) if sample_weight is None else (sample_weight[train], sample_weight[val])
        return X_train, y[train], train_weight, (X_val, self._validation_target(y[val]), val_weight)

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    def _fit_lbfgs(self, net, X, y, layer_units, sample_weight):
        """lbfgs: scipy's L-BFGS-B over all of (X, y) at once; sets ``loss_`` and ``n_iter_``."""
        Y = net.backend.asarray(y.astype(net.dtype), net.dtype)
        self.loss_, self.n_iter_ = _lbfgs.minimize(net, X, Y, layer_units, sample_weight, max_iter=self.max_iter,
                                                   max_fun=self.max_fun, tol=self.tol, verbose=self.verbose)

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight=None, *unused):
        """(J, ∂J/∂packed) at ``packed_coef_inter``, which also becomes ``coefs_``/``intercepts_``:
        scikit-learn's private objective, with its signature, kept because its tests call it."""
        units = [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]
        coefs, intercepts = _layout.unpack(np.asarray(packed_coef_inter), units)
        self.coefs_, self.intercepts_ = [c.copy() for c in coefs], [i.copy() for i in intercepts]
        net = self._network()
        Y = np.asarray(y, dtype=net.dtype).reshape(np.shape(X)[0], -1)
        J, D = net.loss_and_gradients(X, Y, sample_weight=sample_weight)
        return J, _layout.pack_thetas([net.backend.to_host(d) for d in D])

    # -- the network --------------------------------------------------------------

    def _network(self) -> Network:
        """The Network holding ``coefs_``/``intercepts_``: the cached one when those are the
        very lists and arrays it was last loaded from, else (re)built and reloaded."""
        source = [self.coefs_, self.intercepts_, *self.coefs_, *self.intercepts_]
        net = getattr(self, "_net", None)
        seen = getattr(self, "_net_source", None)
        if net is not None and seen is not None and len(seen) == len(source) \
                and all(a is b for a, b in zip(seen, source)) and self._net_config == self._config():
            return net
        if net is None or self._net_config != self._config():
            sizes, activation, output, alpha, backend, dtype = self._net_config = self._config()
            net = self._net = Network(sizes, activation=activation, output=output, loss=self._network_loss(),
                                      lam=alpha, bias=True, backend=backend, dtype=dtype)
        net.set_thetas(_layout.to_thetas(self.coefs_, self.intercepts_))
        self._net_source = source
        return net

    def _config(self):
        """What the network is built from: (sizes, hidden activation, output, λ, backend, dtype)."""
        sizes = [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]
        dtype = self.dtype or ("float32" if np.asarray(self.coefs_[0]).dtype == np.float32 else "float64")
        return (sizes, HIDDEN[self.activation], OUTPUT[self.out_activation_], float(self.alpha),
                self.backend, dtype)

    def _keep_weights_of(self, net):
        """``coefs_``/``intercepts_`` := host copies of the network's weights."""
        self.coefs_, self.intercepts_ = _layout.from_thetas([net.backend.to_host(t) for t in net.thetas])
        self._net_source = [self.coefs_, self.intercepts_, *self.coefs_, *self.intercepts_]

    @property
    def network_(self) -> Network:
        """The fitted bpgpu ``Network`` (its weights are ``coefs_`` and ``intercepts_``)."""
        check_is_fitted(self)
        return self._network()

    def _forward(self, X, check_input=True) -> np.ndarray:
        """The network's output (m, n_outputs_) on the host; sparse X densified in row blocks."""
        if check_input:
            if self._device_backend(X) is None:
                X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
            else:
                self._check_device_X(X, reset=False)
        net = self._network()
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            return np.vstack([net.predict(X[i:i + PREDICT_ROWS].toarray())
                              for i in range(0, X.shape[0], PREDICT_ROWS)])
        return net.predict(X)

    # -- input validation ---------------------------------------------------------

    def _validate_X_y(self, X, y, reset, **y_options):
        """(X, y) checked as scikit-learn's MLPs check them. An X of the estimator's own
        non-NumPy backend (a CuPy array) stays on its device: its shape is checked here, its
        values by the network; y (labels or targets) is brought to the host."""
        backend = self._device_backend(X)
        if backend is None:
            return validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                                 dtype=(np.float64, np.float32), reset=reset, **y_options)
        if y is not None and backend.is_native(y):
            y = backend.to_host(y)
        y = validate_data(self, "no_validation", y, multi_output=True, reset=reset, **y_options)
        self._check_device_X(X, reset)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"Found input variables with inconsistent numbers of samples: [{X.shape[0]}, {y.shape[0]}]")
        return X, y

    def _device_backend(self, X):
        """The estimator's backend when ``X`` is one of its arrays other than NumPy's, else None."""
        if isinstance(X, np.ndarray) or sp.issparse(X):
            return None
        backend = get_backend(self.backend)
        if backend.name != "numpy" and backend.is_native(X):
            return backend
        if hasattr(X, "__array_namespace__") or hasattr(X, "__cuda_array_interface__"):
            raise TypeError(f"X: expected a NumPy array or an array of backend={self.backend!r}, "
                            f"got a {type(X).__module__}.{type(X).__name__}")
        return None  # lists, DataFrames, …: scikit-learn's validation converts them

    def _check_device_X(self, X, reset):
        if X.ndim != 2 or X.shape[0] < 1:
            raise ValueError(f"X: expected a 2-D array with at least one row, got shape {tuple(X.shape)}")
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input.")

    # -- scikit-learn plumbing ----------------------------------------------------

    def _check_solver(self):
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    def __getstate__(self):
        # A Network holds modules and closures (not picklable); coefs_ rebuild it on demand.
        state = super().__getstate__()
        state = dict(state)
        state.pop("_net", None)
        state.pop("_net_source", None)
        state.pop("_net_config", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _float_name(X) -> str:
    """scikit-learn's rule for the parameters' dtype: float32 stays float32, anything else is float64."""
    return "float32" if str(X.dtype).endswith("float32") else "float64"
