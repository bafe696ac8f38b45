"""Synthetic data sets, generated on the backend that will train on them.

Each generator draws from ``backend.random(seed)`` and computes with the backend's
``xp``, so on CuPy the data is born on the device and never crosses from the host
(array-api-strict, which has no generator, draws on the host). The same seed gives
the same data on the same backend; NumPy and CuPy draw from different streams.

Every generator returns ``(X, Y)``: backend arrays of ``dtype``, X (m, inputs) and
Y (m, outputs), one example a row.
"""

from __future__ import annotations

import math

from . import validation as check
from .backend import DTYPES, get_backend

GENERATORS = ("xor", "spirals", "blobs", "teacher")


def _setup(m, width, backend, dtype, seed):
    """Checked arguments and the generator; ``width`` numbers per example are about to be
    drawn, which must fit in the memory available before anything is allocated. Each is
    counted twice: drawn or computed in float64, then converted or combined into the
    result's ``dtype``; and one float64 more for the label or corner each row starts from."""
    m = check.number("m", m, low=1, integer=True)
    itemsize = 4 if check.choice("dtype", dtype, DTYPES) == "float32" else 8
    check.fits_in_memory("m", m * (width * (8 + itemsize) + 8), f"{m:,} examples of {width} numbers")
    backend = get_backend(backend)
    return m, backend, backend.random(check.number("seed", seed, low=0, integer=True))


def _one_hot(labels, classes, backend, dtype):
    """(m, classes) rows with a 1 in column ``labels[i]``."""
    xp = backend.xp
    return backend.asarray(labels[:, None] == xp.arange(classes)[None, :], dtype)


def _normal(rng, shape, backend, dtype):
    # Drawn in ``dtype`` itself: no float64 array to allocate and convert on the device.
    return backend.asarray(rng.standard_normal(shape, dtype=dtype), dtype)


def xor(m=4, *, noise=0.0, backend="numpy", dtype="float64", seed=0):
    """The XOR problem: X (m, 2), Y (m, 1) with y = x1 XOR x2.

    Row i is corner i mod 4 of the unit square — (0,0), (0,1), (1,0), (1,1) — so
    ``xor(4)`` is the truth table, plus Gaussian ``noise`` (standard deviation) on X.
    Y is 0 or 1: fit with ``output="sigmoid"`` and ``loss="cross_entropy"`` (or mse).
    """
    m, backend, rng = _setup(m, 3, backend, dtype, seed)
    noise = check.number("noise", noise, low=0.0)
    xp = backend.xp
    corner = xp.arange(m) % 4
    bits = xp.stack([corner // 2, corner % 2], axis=1)
    X = backend.asarray(bits, dtype)
    if noise:
        X = X + noise * _normal(rng, (m, 2), backend, dtype)
    Y = backend.asarray((corner == 1) | (corner == 2), dtype)[:, None]
    return X, Y


def spirals(m=300, classes=3, *, noise=0.2, turns=0.75, backend="numpy", dtype="float64", seed=0):
    """Interleaved spiral arms in the plane: X (m, 2), Y (m, classes) one-hot.

    Row i belongs to arm i mod ``classes`` (balanced classes); its radius r is uniform
    in [0, 1) and its angle winds ``turns`` turns along the arm, plus Gaussian ``noise``
    (in radians). Not linearly separable: it needs hidden layers.
    Fit with ``output="softmax"`` and ``loss="cross_entropy"``.
    """
    classes = check.number("classes", classes, low=2, integer=True)
    m, backend, rng = _setup(m, 2 + classes, backend, dtype, seed)
    noise = check.number("noise", noise, low=0.0)
    turns = check.number("turns", turns, low=0.0, low_open=True)
    xp = backend.xp
    labels = xp.arange(m) % classes
    r = backend.asarray(rng.random((m,), dtype=dtype), dtype)
    angle = (2 * math.pi * turns) * r + (2 * math.pi / classes) * backend.asarray(labels, dtype)
    if noise:
        angle = angle + noise * _normal(rng, (m,), backend, dtype)
    X = xp.stack([r * xp.sin(angle), r * xp.cos(angle)], axis=1)
    return X, _one_hot(labels, classes, backend, dtype)


def blobs(m=300, classes=3, features=2, *, spread=1.0, separation=4.0, backend="numpy", dtype="float64", seed=0):
    """Gaussian clusters: X (m, features), Y (m, classes) one-hot.

    Each class has a centre drawn from N(0, ``separation``²) in every feature; row i
    belongs to class i mod ``classes`` and is its centre plus N(0, ``spread``²) noise.
    Fit with ``output="softmax"`` and ``loss="cross_entropy"``.
    """
    classes = check.number("classes", classes, low=2, integer=True)
    features = check.number("features", features, low=1, integer=True)
    m, backend, rng = _setup(m, features + classes, backend, dtype, seed)
    spread = check.number("spread", spread, low=0.0)
    separation = check.number("separation", separation, low=0.0)
    xp = backend.xp
    centres = separation * _normal(rng, (classes, features), backend, dtype)
    labels = xp.arange(m) % classes
    X = xp.take(centres, labels, axis=0) + spread * _normal(rng, (m, features), backend, dtype)
    return X, _one_hot(labels, classes, backend, dtype)


def teacher(m=1000, sizes=(8, 32, 1), *, activation="tanh", output="identity", noise=0.05,
            backend="numpy", dtype="float64", seed=0):
    """A regression task a student network can learn exactly: X (m, sizes[0]), Y (m, sizes[-1]).

    X is standard normal; Y is the output of a fixed random "teacher"
    :class:`~bpgpu.Network` (``sizes``, ``activation``, ``output``, its weights seeded
    by ``seed``) plus Gaussian ``noise``. With ``output="identity"`` fit with
    ``loss="mse"`` and an identity output; the best achievable mse loss is about
    noise²/2.
    """
    from .network import Network  # the teacher is a network; imported here to keep data below it

    sizes = check.sizes(sizes)
    m, backend, rng = _setup(m, sizes[0] + sizes[-1] + max(sizes), backend, dtype, seed)
    noise = check.number("noise", noise, low=0.0)
    net = Network(sizes, activation=activation, output=output, backend=backend, dtype=dtype, seed=seed)
    X = _normal(rng, (m, net.sizes[0]), backend, dtype)
    Y = net.forward(X)
    if noise:
        Y = Y + noise * _normal(rng, (m, net.sizes[-1]), backend, dtype)
    return X, Y
