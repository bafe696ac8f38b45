"""The lbfgs solver: scipy's L-BFGS-B on bpgpu's ``loss_and_gradients``.

The data is staged on the network's device once; each evaluation moves only the parameter
vector in and (J, D) out, since L-BFGS-B itself runs on the host.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from . import _layout


def objective(net, X, Y, layer_units, sample_weight=None):
    """f(packed) → (J, ∂J/∂packed) for scipy, with packed in scikit-learn's order
    (:func:`_layout.pack`). ``X`` (m, s0) and ``Y`` (m, sL) are best already on the device;
    ``sample_weight`` (m,) or None weighs the rows."""
    to_host = net.backend.to_host

    def f(packed):
        net.set_thetas(_layout.unpack_thetas(packed, layer_units))
        J, D = net.loss_and_gradients(X, Y, sample_weight=sample_weight)
        return J, _layout.pack_thetas([to_host(d) for d in D]).astype(np.float64, copy=False)

    return f


def minimize(net, X, Y, layer_units, sample_weight=None, *, max_iter, max_fun, tol, verbose):
    """Run L-BFGS-B from the network's current weights and leave the result in it.

    Returns (loss, n_iter), warning :class:`ConvergenceWarning` as scikit-learn does when
    scipy stops for any reason other than convergence.
    """
    x0 = _layout.pack_thetas([net.backend.to_host(t) for t in net.thetas]).astype(np.float64)
    result = scipy.optimize.minimize(
        objective(net, X, Y, layer_units, sample_weight), x0, method="L-BFGS-B", jac=True,
        options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol})
    # The last evaluation need not have been at the optimum scipy returns.
    net.set_thetas(_layout.unpack_thetas(result.x, layer_units))
    if verbose:
        print(f"lbfgs: {result.nit} iterations, {result.nfev} evaluations, loss = {result.fun:.8f}")
    if result.status != 0:
        message = result.message.decode("latin1") if isinstance(result.message, bytes) else result.message
        warnings.warn(f"lbfgs failed to converge after {result.nit} iteration(s) (status={result.status}):\n"
                      f"{message.upper()}.\n\nIncrease the number of iterations to improve the convergence "
                      f"(max_iter={max_iter}).\nYou might also want to scale the data as shown in:\n"
                      "    https://scikit-learn.org/stable/modules/preprocessing.html",
                      ConvergenceWarning, stacklevel=4)
    return float(result.fun), min(result.nit, max_iter)
