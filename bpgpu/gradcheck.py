"""Backpropagation checked against central differences."""

from __future__ import annotations

import numpy as np

from . import validation as check


def gradient_check(net, X, Y, eps: float = 1e-6, sample_weight=None) -> float:
    """The largest error of D against central differences, relative to the largest gradient.

    Computed in float64 on a copy of ``net`` (same backend), so a float32 network is
    checked for its formulas, not its rounding:

        N_ij = (J(Theta_ij + eps) − J(Theta_ij − eps)) / (2·eps)
        error = max_ij |D_ij − N_ij| / max(max_ij |N_ij|, 1e-12)

    One pair of forward passes per weight: meant for small networks. ``sample_weight`` (m,):
    the weighted J and its D are checked. With dropout, one draw of masks is held fixed for D
    and every J.
    """
    eps = check.number("eps", eps, low=0.0, low_open=True)
    twin = net.clone(dtype="float64")
    X, Y = twin.batch(X, Y)
    w = twin.row_weights(sample_weight, X.shape[0])
    masks = twin.dropout_masks(X.shape[0])
    _, D = twin.loss_and_gradients(X, Y, sample_weight=sample_weight, masks=masks)
    D = [twin.backend.to_host(Dl) for Dl in D]
    thetas = [twin.backend.to_host(t).copy() for t in twin.thetas]

    def J(host_thetas):
        twin.set_thetas(host_thetas)
        return float(twin.loss_of(X, Y, sample_weight=w, masks=masks))

    worst, scale = 0.0, 0.0
    for l, theta in enumerate(thetas):
        for index in np.ndindex(theta.shape):
            original = theta[index]
            theta[index] = original + eps
            up = J(thetas)
            theta[index] = original - eps
            down = J(thetas)
            theta[index] = original
            numeric = (up - down) / (2 * eps)
            worst = max(worst, abs(D[l][index] - numeric))
            scale = max(scale, abs(numeric))
    return worst / max(scale, 1e-12)
