"""The GPU-free kernel check: every function bpgpu hands to ``backend.fuse``, with the argument
kinds real training passes, traced by CuPy's fusion and compiled by NVRTC for sm_80 and sm_90.

Proves, without a GPU: each fused function is one kernel, it compiles, and every operation in
it runs in the arrays' own dtype (no float16, no float64 in a float32 kernel). Only a GPU run
proves the numbers (docs/testing.md). The argument kinds are recorded from real steps on NumPy
over a matrix of networks, not listed by hand; see tests/kernel_check.py for the method.
"""

from __future__ import annotations

import functools
import itertools
import re

import numpy as np
import pytest

import bpgpu
from bpgpu import activations, losses, network, optimizers
from bpgpu.backend import NumpyBackend

import kernel_check as kc
from custom_functions import register_examples

pytestmark = pytest.mark.kernels

register_examples()  # a registered activation and loss are fused as the built-ins are
HEADS = ([("mse", out) for out in activations.OUTPUTS] + [("cross_entropy", out) for out in losses.CROSS_ENTROPY_OUTPUTS]
         + [("poisson", "exp"), ("mse", "my_softplus"), ("my_huber", "identity"), ("my_huber", "sigmoid"), ("my_huber", "softmax")])


def _optimizers():
    made = {"sgd": lambda: optimizers.SGD(0.1), "momentum": lambda: optimizers.Momentum(0.1),
            "nesterov": lambda: optimizers.Momentum(0.1, nesterov=True), "adam": lambda: optimizers.Adam(0.01)}
    try:
        from bpgpu.sklearn import ScikitAdam
    except ImportError:  # scikit-learn missing: its Adam fuses the same function as bpgpu's
        pass
    else:
        made["sklearn_adam"] = lambda: ScikitAdam(0.01)
    return made


def _configs():
    """One axis varied at a time from a base network, plus each head with and without bias."""
    base = dict(activation="relu", output="identity", loss="mse", lam=0.0, bias=True, dtype="float32",
                optimizer="sgd", chunk_size=None, outputs=1, dropout=0.0)
    yield base
    for dtype, (hidden, bias) in itertools.product(("float32", "float64"),
                                                   itertools.product(activations.hidden(), (True, False))):
        yield {**base, "dtype": dtype, "activation": hidden, "bias": bias}
        yield {**base, "dtype": dtype, "activation": hidden, "bias": bias, "dropout": 0.25, "chunk_size": 2}
    for dtype, ((loss, output), bias) in itertools.product(("float32", "float64"),
                                                           itertools.product(HEADS, (True, False))):
        yield {**base, "dtype": dtype, "loss": loss, "output": output, "bias": bias,
               "outputs": 3 if output == "softmax" else 1}
        yield {**base, "dtype": dtype, "loss": loss, "output": output, "bias": bias, "weighted": True,
               "outputs": 3 if output == "softmax" else 1, "chunk_size": 2}
    for dtype, name in itertools.product(("float32", "float64"), _optimizers()):
        for lam, chunk in ((0.0, None), (0.1, None), (0.1, 2)):
            yield {**base, "dtype": dtype, "optimizer": name, "lam": lam, "chunk_size": chunk}


def _train(cfg) -> None:
    net = bpgpu.Network([3, 4, 5, cfg["outputs"]], activation=cfg["activation"], output=cfg["output"],
                        loss=cfg["loss"], lam=cfg["lam"], bias=cfg["bias"], dtype=cfg["dtype"], seed=1,
                        dropout=cfg["dropout"])
    rng = np.random.default_rng(0)
    Y = np.eye(cfg["outputs"])[rng.integers(0, cfg["outputs"], 5)] if cfg["outputs"] > 1 else rng.random((5, 1))
    X, Y = net.batch(rng.standard_normal((5, 3)), Y)
    opt = _optimizers()[cfg["optimizer"]]()
    s = rng.uniform(size=5) if cfg.get("weighted") else None
    for _ in range(2):
        net.step(X, Y, opt, chunk_size=cfg["chunk_size"], sample_weight=net.row_weights(s, 5))
    net.loss_and_gradients(X, Y, chunk_size=cfg["chunk_size"], sample_weight=s)
    net.evaluate(X, Y)
    net.predict(X)


@functools.lru_cache(maxsize=None)
def recorded() -> list:
    """(function, argument kinds) of every fused call made by the training runs of _configs."""
    seen: dict = {}
    plain = NumpyBackend.fuse

    def recording(self, fn):
        run = plain(self, fn)

        @functools.wraps(fn)
        def fused(*args):
            seen.setdefault((fn, tuple(kc.Kind.of(a) for a in args)), None)
            return run(*args)

        return fused

    # As on CuPy: fused functions get no scratch vectors (their temporaries are registers there).
    NumpyBackend.fuse, NumpyBackend.fused_scratch = recording, False
    try:
        for cfg in _configs():
            _train(cfg)
    finally:
        NumpyBackend.fuse, NumpyBackend.fused_scratch = plain, True
    return list(seen)


def _id(case) -> str:
    fn, kinds = case
    args = ",".join(f"f{k.dtype[5:]}[{'x'.join(map(str, k.shape))}]" if k.kind == "array" else k.kind for k in kinds)
    return f"{fn.__name__}({args})"


def _dtype(kinds) -> str:
    dtypes = {k.dtype for k in kinds if k.kind == "array"}
    assert len(dtypes) == 1, f"a fused function was given arrays of several dtypes: {sorted(dtypes)}"
    return dtypes.pop()


@functools.lru_cache(maxsize=None)
def _compiled(src: str, arch: str) -> bytes:
    return kc.compile_for(src, arch)


def test_the_recording_reaches_every_fused_function():
    """The training matrix fuses every activation, derivative, loss head and optimiser update"""
    names = {fn.__name__ for fn, _ in recorded()}
    want = ({f.__name__ for f in activations.FORWARD.values() if f is not activations.softmax}
            | {activations.DERIVATIVES[g].__name__ for g in activations.hidden() if activations.DERIVATIVES[g]}
            | {"error", "sigmoid_cross_entropy", "sigmoid_prime_and_scale", "tanh_prime_and_scale",
               "relu_prime_and_scale", network.add_scaled.__name__, "sgd", "momentum", "adam",
               "poisson_deviance", "exp_prime_and_scale", "softplus_prime_and_scale", "huber", "huber_prime",
               "keep_mask", "dropout_identity", "dropout_softplus", "dropout_softplus_prime",
               "dropout_relu", "dropout_relu_prime", "dropout_sigmoid_prime", "dropout_tanh_prime"})
    assert want <= names, sorted(want - names)


@pytest.mark.parametrize("case", recorded(), ids=_id)
def test_each_fused_function_is_one_kernel_that_compiles_in_its_own_dtype(case):
    """Traced by cupy.fuse on host-memory arrays: one kernel; NVRTC compiles it for sm_80 and
    sm_90; every operation in the arrays' dtype"""
    pytest.importorskip("cupy", reason="the kernel check needs CuPy (pip install \"bpgpu[kernel-check]\")")
    fn, kinds = case
    kernels = kc.trace(fn, kinds)
    assert len(kernels) == 1, f"{fn.__name__}: {len(kernels)} kernels, expected one"
    src = kc.source(*kernels[0])
    for arch in kc.ARCHS:
        _compiled(src, arch)
    assert kc.wrong_types(src, _dtype(kinds)) == [], src


# -- the check itself can fail -------------------------------------------------------------

def _tanh(xp, z):
    xp.tanh(z, out=z)


def _scalar_with_scalar(xp, z, beta):
    z *= 1.0 - beta


def test_the_check_finds_a_kernel_named_like_a_cuda_function():
    """A kernel named ``tanh`` (as CuPy names it after the Python function) does not compile"""
    pytest.importorskip("cupy", reason="the kernel check needs CuPy")
    from cupy.cuda.compiler import CompileException

    (kernel, args), = kc.trace(_tanh, (kc.Kind("array", "float32", (4,)),))
    src = re.sub(r'(extern "C" __global__ void )\w+\(', r"\1tanh(", kc.source(kernel, args))
    kc.compile_for(kc.source(kernel, args), "90")  # as bpgpu names it: compiles
    with pytest.raises(CompileException, match='more than one instance of overloaded function "tanh"'):
        kc.compile_for(src, "90")


def test_the_check_finds_arithmetic_between_two_scalars_in_half_precision():
    """``1.0 - beta`` on two Python scalars inside a fused body runs in float16 (CuPy's weak scalars)"""
    pytest.importorskip("cupy", reason="the kernel check needs CuPy")
    (kernel, args), = kc.trace(_scalar_with_scalar, (kc.Kind("array", "float32", (4,)), kc.Kind("float")))
    src = kc.source(kernel, args)
    assert any("float16" in w for w in kc.wrong_types(src, "float32")), src
