"""Drop-in scikit-learn estimators trained by bpgpu: change one import, keep the code.

    from bpgpu.sklearn import MLPClassifier      # instead of sklearn.neural_network
    clf = MLPClassifier(hidden_layer_sizes=(64,), backend="cupy").fit(X, y)

Needs scikit-learn and scipy (``pip install "bpgpu[sklearn]"``); ``import bpgpu`` alone
imports neither. See docs/sklearn.md for what matches scikit-learn and what differs.
"""

try:
    import scipy.optimize  # noqa: F401  (lbfgs)
    import sklearn  # noqa: F401
except ImportError as err:  # pragma: no cover — depends on the installation
    raise ImportError('bpgpu.sklearn needs scikit-learn and scipy: pip install "bpgpu[sklearn]"') from err

from ._estimators import MLPClassifier, MLPRegressor
from ._optimizers import ScikitAdam

__all__ = ["MLPClassifier", "MLPRegressor", "ScikitAdam"]
