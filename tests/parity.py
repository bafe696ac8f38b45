"""The one parity helper: every NumPy / array-api-strict / CuPy comparison goes through it.

Modelled on tinygrad's ``helper_test_op``: given a network configuration, weights and
data (a :class:`Case`) and a training protocol (a :class:`Training`), :func:`assert_parity`
runs, on the backend and dtype under test,

    forward(X),  (J, D) = loss_and_gradients(X, Y, chunk_size),  fit(...) for ``steps`` steps,

checks that every array is native to that backend, has its dtype and the expected shape,
and compares the values with the NumPy reference. Backends are parametrised the
scikit-learn way, by :func:`backend_dtype_combinations`.

References and tolerances. Every case's weights and data are float32 numbers, so all
runs start from exactly the same point and differ only in their arithmetic. The
reference is NumPy, *unchunked*, in float64 and — for a float32 run — also in float32
(except where that would be the run itself: NumPy float32 unchunked).
The error of an array is normwise, ``max|got − ref| / max|ref|`` (J and the History's
losses likewise), and must stay within

    float64: 1e-12   same formulas, only summation order differs (BLAS, chunks, device);
    float32: 1e-5    with TF32 off (every run builds its Network with allow_tf32=False,
                     which sets CuPy's float32 compute type whatever CUPY_TF32 says);
                     measured float32-vs-float64 gaps on these cases are ≤ 4e-7 after
                     20 steps, so 1e-5 leaves a margin of ~25×.

Comparing chunked runs with the unchunked reference makes every parity test also a
test that chunking changes nothing but rounding.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pytest

import bpgpu
from bpgpu import BackendUnavailable, get_backend

RTOL = {"float64": 1e-12, "float32": 1e-5}
DTYPES = ("float64", "float32")
BACKENDS = ("numpy", "array_api_strict", "cupy")


# -- which backends can run here -------------------------------------------------


@lru_cache(maxsize=None)
def cupy_unavailable() -> str | None:
    """Why backend "cupy" cannot run here ("CuPy not installed", "no CUDA device: …"), or None."""
    try:
        get_backend("cupy")
    except BackendUnavailable as err:
        if isinstance(err.__cause__, ImportError):
            return f"CuPy not installed ({err})"
        return f"no CUDA device: {err}"
    return None


def _marks(backend: str) -> list:
    if backend == "cupy":
        reason = cupy_unavailable()
        return [pytest.mark.cupy, pytest.mark.skipif(reason is not None, reason=reason or "")]
    if backend == "array_api_strict":
        missing = importlib.util.find_spec("array_api_strict") is None
        return [pytest.mark.skipif(missing, reason='array-api-strict not installed (pip install "bpgpu[test]")')]
    return []


def backend_dtype_combinations(backends=BACKENDS, dtypes=DTYPES) -> list:
    """``pytest.param(backend, dtype)`` for each combination, CuPy ones marked ``cupy``
    and every one that cannot run here skipped, saying why."""
    return [pytest.param(backend, dtype, id=f"{backend}-{dtype}", marks=_marks(backend))
            for backend in backends for dtype in dtypes]


# -- what is compared ----------------------------------------------------------------


def as_float32_numbers(a) -> np.ndarray:
    """``a`` rounded to float32, held in float64: exact in both dtypes."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


@dataclass(frozen=True, eq=False)  # hashed by identity, so references can be cached
class Case:
    """A network configuration (``Network`` arguments but backend and dtype), its
    weights and a batch (X (m, s0), Y (m, sL)), all float32-representable."""

    name: str
    config: dict
    thetas: list = field(repr=False)
    X: np.ndarray = field(repr=False)
    Y: np.ndarray = field(repr=False)


def targets(rng, output: str, m: int, k: int) -> np.ndarray:
    """Targets valid for every loss with ``output``: one-hot rows for softmax, else U(0, 1)."""
    if output == "softmax":
        return np.eye(k)[rng.integers(0, k, m)]
    return as_float32_numbers(rng.random((m, k)))


def make_case(name: str, m: int = 36, seed: int = 0, **config) -> Case:
    """A :class:`Case` with random biases and weights (Glorot/He scale) and N(0, 1) inputs."""
    rng = np.random.default_rng(seed)
    net = bpgpu.Network(**config, seed=seed)
    thetas = []
    for theta in net.thetas:
        theta = np.array(theta)
        if net.bias:
            theta[:, 0] = 0.3 * rng.standard_normal(theta.shape[0])
        thetas.append(as_float32_numbers(theta))
    X = as_float32_numbers(rng.standard_normal((m, net.sizes[0])))
    return Case(name, dict(config), thetas, X, targets(rng, net.output, m, net.sizes[-1]))


# Every hidden activation, output and loss, with and without bias and λ.
CASES = [
    make_case("tanh-sigmoid-mse", sizes=[5, 8, 6, 3], activation="tanh", output="sigmoid", loss="mse"),
    make_case("relu-softmax-xent-lam", sizes=[5, 8, 6, 3], activation="relu", output="softmax",
              loss="cross_entropy", lam=0.1),
    make_case("sigmoid-identity-mse-nobias", sizes=[5, 8, 3], activation="sigmoid", output="identity",
              loss="mse", bias=False),
    make_case("relu,identity-sigmoid-xent", sizes=[5, 8, 6, 2], activation=["relu", "identity"],
              output="sigmoid", loss="cross_entropy", lam=0.01),
]


@dataclass(frozen=True)
class Training:
    """How ``fit`` trains in a parity run. With m = 36 rows, batch_size 8 gives 5 steps
    an epoch (the last of 4 rows) and chunk_size 7 leaves a short last chunk too."""

    optimizer: str
    lr: float
    batch_size: int | None = None
    chunk_size: int | None = None

    @property
    def name(self) -> str:
        batches = "full" if self.batch_size is None else f"mini{self.batch_size}"
        chunks = "" if self.chunk_size is None else f"-chunk{self.chunk_size}"
        return f"{self.optimizer}-{batches}{chunks}"

    def epochs(self, m: int, steps: int) -> int:
        per_epoch = 1 if self.batch_size is None else -(-m // self.batch_size)
        assert steps % per_epoch == 0, f"{steps} steps is not a whole number of epochs of {per_epoch}"
        return steps // per_epoch


TRAININGS = [Training(optimizer, lr, batch_size, chunk_size)
             for optimizer, lr in (("sgd", 0.5), ("adam", 0.01))
             for batch_size in (None, 8)
             for chunk_size in (None, 7)]


@dataclass
class Result:
    """One run, on the host: forward output, J, D, the loss per epoch, the final thetas."""

    forward: np.ndarray
    J: float
    D: list
    loss: np.ndarray
    thetas: list


def _native(net, a, shape, what: str):
    """``a`` on the host, after checking it is a ``net.backend`` array of ``shape`` and ``net.dtype``."""
    assert net.backend.is_native(a), f"{what}: expected a {net.backend.name} array, got {type(a)}"
    assert a.dtype == getattr(net.xp, net.dtype), f"{what}: expected {net.dtype}, got {a.dtype}"
    assert tuple(a.shape) == tuple(shape), f"{what}: expected shape {shape}, got {tuple(a.shape)}"
    return np.array(net.backend.to_host(a), dtype=np.float64)


def _per_layer(net, arrays, what: str) -> list:
    """:func:`_native` for one array per layer, each shaped like ``net.thetas[l]``."""
    return [_native(net, a, shape, f"{what}[{l}]")
            for l, (a, shape) in enumerate(zip(arrays, net.theta_shapes(), strict=True))]


def run(case: Case, backend: str, dtype: str, training: Training, steps: int = 20,
        chunked: bool = True) -> Result:
    """Forward, J and D, then ``steps`` optimiser steps of ``training`` on one backend/dtype.

    ``chunked=False`` ignores ``training.chunk_size`` (how the references run)."""
    net = bpgpu.Network(**case.config, backend=backend, dtype=dtype, allow_tf32=False)
    net.set_thetas(case.thetas)
    chunk_size = training.chunk_size if chunked else None
    m = case.X.shape[0]
    A = _native(net, net.forward(case.X), (m, net.sizes[-1]), "forward")
    J, D = net.loss_and_gradients(case.X, case.Y, chunk_size=chunk_size)
    assert isinstance(J, float), f"J: expected a Python float, got {type(J)}"
    D = _per_layer(net, D, "D")
    history = net.fit(case.X, case.Y, epochs=training.epochs(m, steps), lr=training.lr,
                      batch_size=training.batch_size, optimizer=training.optimizer, chunk_size=chunk_size)
    assert history.steps == steps and history.stop_reason == "epochs", history
    return Result(A, J, D, np.array(history.loss), _per_layer(net, net.thetas, "thetas"))


@lru_cache(maxsize=None)
def reference(case: Case, dtype: str, training: Training, steps: int) -> Result:
    """NumPy, unchunked: what every other run is compared with."""
    return run(case, "numpy", dtype, training, steps, chunked=False)


def relative_error(got, ref) -> float:
    """max|got − ref| / max|ref| (0 when both are all zeros)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"shape: got {got.shape}, reference {ref.shape}"
    scale = np.max(np.abs(ref), initial=0.0)
    worst = np.max(np.abs(got - ref), initial=0.0)
    return worst / scale if scale > 0 else worst


def compare(got: Result, ref: Result, rtol: float, label: str) -> dict:
    """Every quantity's relative error, asserting each is within ``rtol``."""
    errors = {"forward": relative_error(got.forward, ref.forward), "J": relative_error(got.J, ref.J),
              "loss": relative_error(got.loss, ref.loss)}
    for name in ("D", "thetas"):
        pairs = zip(getattr(got, name), getattr(ref, name), strict=True)
        errors.update({f"{name}[{l}]": relative_error(g, r) for l, (g, r) in enumerate(pairs)})
    bad = {k: f"{v:.2e}" for k, v in errors.items() if not v <= rtol}
    assert not bad, f"{label}: relative errors above {rtol:g}: {bad}"
    return errors


def assert_parity(case: Case, backend: str, dtype: str, training: Training, steps: int = 20) -> dict:
    """Run ``case`` on ``backend``/``dtype`` and compare with NumPy float64 (and NumPy in
    ``dtype``), unchunked, within ``RTOL[dtype]``. Returns the errors against float64."""
    ref_dtypes = list(dict.fromkeys((dtype, "float64")))  # float64 last: its errors are returned
    if backend == "numpy" and training.chunk_size is None:
        ref_dtypes.remove(dtype)  # the NumPy reference in this dtype would be this very run
    if not ref_dtypes:
        raise ValueError(f"{case.name} {training.name}: numpy/{dtype} unchunked is the reference itself")
    got = run(case, backend, dtype, training, steps)
    for ref_dtype in ref_dtypes:
        errors = compare(got, reference(case, ref_dtype, training, steps), RTOL[dtype],
                         f"{case.name} {training.name} {backend}/{dtype} vs numpy/{ref_dtype}")
    return errors
