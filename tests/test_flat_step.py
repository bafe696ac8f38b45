"""The flat, fused, in-place step computes what the plain formulation does (issue 11:
float64 results equal to ≤ 1e-12 relative).

The reference below is the formulation as the code wrote it before flat buffers and
fusion: separate W(l) and b(l), each expression allocating its result, the optimisers'
updates as single expressions. Training both from the same weights on the same batches
must end at the same weights and losses.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import bpgpu
from bpgpu.optimizers import SGD, Adam, Momentum

RTOL = 1e-12

G = {"sigmoid": lambda z: 0.5 * np.tanh(0.5 * z) + 0.5, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0),
     "identity": lambda z: z}
G_PRIME = {"sigmoid": lambda a: a * (1.0 - a), "tanh": lambda a: 1.0 - a * a, "relu": lambda a: (a > 0) * 1.0,
           "identity": lambda a: 1.0}


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def reference_gradients(net, Ws, bs, X, Y):
    """(J, [D_W(l)], [D_b(l)]) by the plain formulation."""
    m, A, a = X.shape[0], [X], X
    for l, (W, b) in enumerate(zip(Ws, bs)):
        z = a @ W.T + (0.0 if b is None else b)
        g = net.activations[l] if l < len(Ws) - 1 else net.output
        a = softmax(z) if g == "softmax" else G[g](z)
        A.append(a)
    e = a - Y
    if net.loss == "cross_entropy":
        if net.output == "sigmoid":
            J = np.sum(np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))) - Y * z)
        else:
            zmax = z.max(axis=1, keepdims=True)
            J = np.sum(Y * (zmax + np.log(np.exp(z - zmax).sum(axis=1, keepdims=True)) - z))
        d = e
    else:
        J = 0.5 * np.sum(e * e)
        d = a * (e - np.sum(e * a, axis=1, keepdims=True)) if net.output == "softmax" else e * G_PRIME[net.output](a)
    d = d / m
    DW, Db = [None] * len(Ws), [None] * len(Ws)
    for l in range(len(Ws) - 1, -1, -1):
        DW[l], Db[l] = d.T @ A[l] + net.lam / m * Ws[l], d.sum(axis=0)
        if l > 0:
            d = (d @ Ws[l]) * G_PRIME[net.activations[l - 1]](A[l])
    J = J / m + 0.5 * net.lam / m * sum(np.sum(W * W) for W in Ws)
    return J, DW, Db


def reference_fit(net, X, Y, kind, lr, epochs, batch_size):
    """Weights and per-step losses after plain mini-batch training (no shuffling)."""
    thetas = [np.asarray(t) for t in net.thetas]
    Ws = [t[:, 1:].copy() if net.bias else t.copy() for t in thetas]
    bs = [t[:, 0].copy() if net.bias else None for t in thetas]
    params = [p for W, b in zip(Ws, bs) for p in (W, b) if p is not None]
    state = {k: [np.zeros_like(p) for p in params] for k in ("m", "v")}
    losses, t = [], 0
    for _ in range(epochs):
        for s in range(0, X.shape[0], batch_size):
            J, DW, Db = reference_gradients(net, Ws, bs, X[s:s + batch_size], Y[s:s + batch_size])
            D = [g for gW, gb in zip(DW, Db) for g in (gW, gb if net.bias else None) if g is not None]
            losses.append(J)
            t += 1
            for p, g, m_, v in zip(params, D, state["m"], state["v"]):
                if kind == "sgd":
                    p -= lr * g
                elif kind in ("momentum", "nesterov"):
                    v *= 0.9
                    v -= lr * g
                    p += 0.9 * v - lr * g if kind == "nesterov" else v
                else:
                    alpha = lr * math.sqrt(1.0 - 0.999**t) / (1.0 - 0.9**t)
                    m_ *= 0.9
                    m_ += 0.1 * g
                    v *= 0.999
                    v += (1.0 - 0.999) * (g * g)
                    p -= alpha * m_ / (np.sqrt(v) + 1e-8 * math.sqrt(1.0 - 0.999**t))
    return Ws, bs, losses


CONFIGS = [
    dict(sizes=[5, 7, 6, 3], activation=["relu", "tanh"], output="softmax", loss="cross_entropy"),
    dict(sizes=[5, 7, 1], activation="sigmoid", output="sigmoid", loss="cross_entropy", lam=0.3),
    dict(sizes=[5, 7, 6, 3], activation="tanh", output="softmax", loss="mse", bias=False),
    dict(sizes=[5, 8, 8, 2], activation="relu", output="identity", loss="mse", lam=0.1),
    dict(sizes=[5, 6, 2], activation="identity", output="tanh", loss="mse"),
]
MAKERS = {"sgd": lambda: SGD(0.05), "momentum": lambda: Momentum(0.05), "nesterov": lambda: Momentum(0.05, nesterov=True),
          "adam": lambda: Adam(0.01)}


def targets(config, rng, m):
    k = config["sizes"][-1]
    if config["output"] == "softmax":
        return np.eye(k)[rng.integers(0, k, m)]
    return rng.uniform(0.05, 0.95, (m, k))


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['output']}-{c['loss']}-lam{c.get('lam', 0)}")
@pytest.mark.parametrize("chunk_size", [None, 3])
def test_fit_equals_the_plain_formulation_in_float64(config, kind, chunk_size):
    """fit through Network.step (flat buffers, fused updates, chunks) ends at the plain formulation's weights"""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((12, config["sizes"][0]))
    Y = targets(config, rng, 12)
    net = bpgpu.Network(**config, seed=3)
    Ws, bs, losses = reference_fit(net, X, Y, kind, MAKERS[kind]().lr, epochs=4, batch_size=5)
    opt = MAKERS[kind]()
    h = net.fit(X, Y, epochs=4, batch_size=5, optimizer=opt, shuffle=False, chunk_size=chunk_size)
    step_sizes = [5, 5, 2]
    expected = [sum(J * n / 12 for J, n in zip(losses[e * 3:e * 3 + 3], step_sizes)) for e in range(4)]
    np.testing.assert_allclose(h.loss, expected, rtol=RTOL, atol=0)
    for theta, W, b in zip(net.thetas, Ws, bs):
        want = np.hstack([b[:, None], W]) if b is not None else W
        np.testing.assert_allclose(theta, want, rtol=RTOL, atol=RTOL * np.abs(want).max())
