"""Bad input at the public boundary: each case raises a ValueError or TypeError whose
message names the argument, what was expected and what came, and leaves the network
and the folder it was given exactly as they were.

A case is (id, call, error, words): ``call(ctx)`` must raise ``error`` with every
one of ``words`` in its message (case-insensitive).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import bpgpu

RELIABILITY = "bad_input"

N = bpgpu.Network


class CupyLikeArray:
    """Stands in for a CuPy array where CuPy is not installed: what bpgpu sees of one."""

    shape, dtype = (4, 2), np.dtype("float64")


CupyLikeArray.__module__ = "cupy"


@dataclass
class Ctx:
    net: bpgpu.Network  # [2, 3, 1], sigmoid, mse
    X: np.ndarray       # (4, 2)
    Y: np.ndarray       # (4, 1)
    tmp: Path


def fit(ctx, **options):
    return ctx.net.fit(ctx.X, ctx.Y, **{"epochs": 1, **options})


def with_nan(a, where=(1, 0), value=np.nan):
    a = np.array(a, dtype=float)
    a[where] = value
    return a


def torch_tensor(shape):
    torch = pytest.importorskip("torch")
    return torch.zeros(shape, dtype=torch.float64)


def strict_array(shape):
    xp = pytest.importorskip("array_api_strict")
    return xp.zeros(shape)


def ce_net(output="sigmoid", k=1):
    return N([2, 3, k], output=output, loss="cross_entropy")


CASES = [
    # -- the architecture --------------------------------------------------------------
    ("sizes with one layer", lambda c: N([3]), ValueError, ["sizes", "at least 2", "[3]"]),
    ("sizes with a zero-width layer", lambda c: N([2, 0, 1]), ValueError, ["sizes[1]", ">= 1", "got 0"]),
    ("sizes with a fraction", lambda c: N([2, 2.5, 1]), TypeError, ["sizes[1]", "integer", "2.5"]),
    ("sizes as a string", lambda c: N("321"), TypeError, ["sizes", "sequence", "'321'"]),
    ("sizes needing terabytes", lambda c: N([10**7, 10**7, 1]), ValueError,
     ["sizes", "fit in this machine's memory", "TiB"]),
    ("sizes needing exabytes", lambda c: N([10**10, 10**10]), ValueError, ["sizes", "memory", "EiB"]),
    ("unknown activation", lambda c: N([2, 3, 1], activation="sigmod"), ValueError,
     ["activation", "'relu'", "'sigmod'", "did you mean 'sigmoid'"]),
    ("one activation too many", lambda c: N([2, 3, 1], activation=["relu", "tanh"]), ValueError,
     ["activation", "one per hidden layer", "got 2"]),
    ("activation not a name", lambda c: N([2, 3, 1], activation=None), TypeError, ["activation", "name", "None"]),
    ("unknown output", lambda c: N([2, 3, 1], output="softplus"), ValueError, ["output", "'softmax'", "'softplus'"]),
    ("unknown loss", lambda c: N([2, 3, 1], loss="hinge"), ValueError, ["loss", "'cross_entropy'", "'hinge'"]),
    ("cross_entropy with a relu output", lambda c: N([2, 3, 1], output="relu", loss="cross_entropy"), ValueError,
     ["output", "'sigmoid', 'softmax'", "'relu'"]),
    ("softmax over one unit", lambda c: N([2, 3, 1], output="softmax"), ValueError, ["output", "at least 2", "= 1"]),
    ("negative lam", lambda c: N([2, 3, 1], lam=-0.1), ValueError, ["lam", ">= 0", "-0.1"]),
    ("NaN lam", lambda c: N([2, 3, 1], lam=float("nan")), ValueError, ["lam", "finite", "nan"]),
    ("unknown dtype", lambda c: N([2, 3, 1], dtype="float16"), ValueError, ["dtype", "'float32'", "'float16'"]),
    ("unknown backend", lambda c: N([2, 3, 1], backend="tpu"), ValueError, ["backend", "'cupy'", "'tpu'"]),
    ("bias not a bool", lambda c: N([2, 3, 1], bias=1), TypeError, ["bias", "True or False", "1"]),
    ("negative seed", lambda c: N([2, 3, 1], seed=-1), ValueError, ["seed", ">= 0", "-1"]),
    # -- the data ------------------------------------------------------------------------
    ("X with too many columns", lambda c: c.net.forward(np.zeros((4, 3))), ValueError,
     ["X", "2 columns", "(4, 3)"]),
    ("X with three axes", lambda c: c.net.forward(np.zeros((4, 2, 1))), ValueError, ["X", "2-D", "(4, 2, 1)"]),
    ("X empty", lambda c: c.net.fit(np.zeros((0, 2)), np.zeros((0, 1))), ValueError,
     ["X", "at least one example", "(0, 2)"]),
    ("X with a NaN", lambda c: c.net.fit(with_nan(c.X), c.Y), ValueError,
     ["X", "finite", "row 1, column 0: nan"]),
    ("X with an inf", lambda c: c.net.predict(with_nan(c.X, (3, 1), -np.inf)), ValueError,
     ["X", "finite", "row 3, column 1: -inf"]),
    ("X overflowing float32", lambda c: N([2, 1], dtype="float32").forward([[1e300, 0.0]]), ValueError,
     ["X", "1e+300", "overflows float32", "row 0, column 0"]),
    ("X ragged", lambda c: c.net.forward([[1.0, 2.0], [3.0]]), ValueError, ["X", "rectangular", "ragged"]),
    ("X of strings", lambda c: c.net.forward([["a", "b"]]), ValueError, ["X", "numbers", "non-numeric"]),
    ("X a NumPy array of strings", lambda c: c.net.forward(np.array([["1", "2"]])), TypeError,
     ["X", "real numbers", "<U1"]),
    ("X complex", lambda c: c.net.forward(np.ones((4, 2), complex)), TypeError, ["X", "real numbers", "complex128"]),
    ("X a dict", lambda c: c.net.forward({"x": [1, 2]}), TypeError, ["X", "a list or a NumPy array", "got dict"]),
    ("X a CuPy array on a NumPy network", lambda c: c.net.forward(CupyLikeArray()), TypeError,
     ["X", "NumPy array", "cupy.CupyLikeArray", ".get()", "backend='cupy'"]),
    ("X a torch tensor", lambda c: c.net.forward(torch_tensor((4, 2))), TypeError,
     ["X", "NumPy array", "torch.Tensor", ".numpy()"]),
    ("X an array_api_strict array on NumPy", lambda c: c.net.forward(strict_array((4, 2))), TypeError,
     ["X", "NumPy array", "array_api_strict.Array"]),
    ("Y with fewer rows than X", lambda c: c.net.fit(c.X, c.Y[:3]), ValueError, ["Y", "4 rows", "got 3"]),
    ("Y with too many columns", lambda c: c.net.loss_and_gradients(c.X, np.zeros((4, 2))), ValueError,
     ["Y", "1 columns", "(4, 2)"]),
    ("Y with an inf", lambda c: c.net.evaluate(c.X, with_nan(c.Y, (2, 0), np.inf)), ValueError,
     ["Y", "finite", "row 2, column 0: inf"]),
    ("cross_entropy target above 1", lambda c: ce_net().fit(c.X, c.Y + 2.0), ValueError, ["Y", "[0, 1]", "[2, 3]"]),
    ("cross_entropy target below 0", lambda c: ce_net().fit(c.X, c.Y - 0.5), ValueError, ["Y", "[0, 1]", "-0.5"]),
    ("softmax targets not summing to 1", lambda c: ce_net("softmax", 3).fit(c.X, np.full((4, 3), 0.5)),
     ValueError, ["Y", "sum to 1", "row 0 summing to 1.5"]),
    ("softmax targets as class labels", lambda c: ce_net("softmax", 3).fit(c.X, np.array([[0, 2, 1]] * 4)),
     ValueError, ["Y", "[0, 1]", "[0, 2]"]),
    ("validation inputs with a NaN", lambda c: fit(c, validation_data=(with_nan(c.X), c.Y)), ValueError,
     ["validation_data[0]", "finite", "nan"]),
    ("validation data not a pair", lambda c: fit(c, validation_data=c.X), TypeError,
     ["validation_data", "pair", "ndarray"]),
    # -- hyper-parameters -------------------------------------------------------------------
    ("negative lr", lambda c: fit(c, lr=-0.5), ValueError, ["lr", "> 0", "-0.5"]),
    ("zero lr", lambda c: fit(c, lr=0), ValueError, ["lr", "> 0", "got 0"]),
    ("lr as a string", lambda c: fit(c, lr="0.1"), TypeError, ["lr", "a number", "'0.1'"]),
    ("infinite lr", lambda c: fit(c, lr=float("inf")), ValueError, ["lr", "finite", "inf"]),
    ("zero epochs", lambda c: fit(c, epochs=0), ValueError, ["epochs", ">= 1", "got 0"]),
    ("fractional epochs", lambda c: fit(c, epochs=2.5), TypeError, ["epochs", "integer", "2.5"]),
    ("zero batch_size", lambda c: fit(c, batch_size=0), ValueError, ["batch_size", ">= 1", "got 0"]),
    ("unknown optimizer", lambda c: fit(c, optimizer="adamw"), ValueError, ["optimizer", "'adam'", "'adamw'"]),
    ("momentum of 1", lambda c: fit(c, optimizer="momentum", momentum=1.0), ValueError,
     ["momentum", "[0, 1)", "1.0"]),
    ("beta2 above 1", lambda c: fit(c, optimizer="adam", beta2=1.5), ValueError, ["beta2", "[0, 1)", "1.5"]),
    ("negative adam eps", lambda c: fit(c, optimizer="adam", eps=-1e-8), ValueError, ["eps", "> 0", "-1e-08"]),
    ("unknown on_nonfinite", lambda c: fit(c, on_nonfinite="ignore"), ValueError,
     ["on_nonfinite", "'raise'", "'ignore'"]),
    ("patience without validation data", lambda c: fit(c, patience=3), ValueError, ["patience", "validation_data"]),
    ("negative max_time", lambda c: fit(c, max_time=-1), ValueError, ["max_time", "> 0", "-1"]),
    ("negative initial_epoch", lambda c: fit(c, initial_epoch=-1), ValueError, ["initial_epoch", ">= 0", "-1"]),
    ("zero chunk_size", lambda c: c.net.loss_and_gradients(c.X, c.Y, chunk_size=0), ValueError,
     ["chunk_size", ">= 1", "got 0"]),
    ("negative memory_budget", lambda c: fit(c, memory_budget=-4096), ValueError,
     ["memory_budget", ">= 1", "-4096"]),
    ("memory_budget as a string", lambda c: c.net.loss_and_gradients(c.X, c.Y, memory_budget="1GB"), TypeError,
     ["memory_budget", "integer", "'1GB'"]),
    # -- weights -------------------------------------------------------------------------------
    ("theta of the wrong shape", lambda c: c.net.set_thetas([np.zeros((3, 2)), np.zeros((1, 4))]), ValueError,
     ["thetas[0]", "(3, 3)", "(3, 2)"]),
    ("one theta too few", lambda c: c.net.set_thetas([np.zeros((3, 3))]), ValueError,
     ["thetas", "2 matrices", "got 1"]),
    ("theta with a NaN", lambda c: c.net.set_thetas([np.zeros((3, 3)), with_nan(np.zeros((1, 4)), (0, 2))]),
     ValueError, ["thetas[1]", "finite", "nan"]),
    ("theta a CuPy array on a NumPy network", lambda c: c.net.set_thetas([CupyLikeArray(), np.zeros((1, 4))]),
     TypeError, ["thetas[0]", "NumPy array", "cupy"]),
]


@pytest.fixture
def ctx(tmp_path):
    net = N([2, 3, 1], seed=3)
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return Ctx(net, X, np.array([[0.0], [1.0], [1.0], [0.0]]), tmp_path)


def folder_state(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


@pytest.mark.parametrize("call, error, words", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_refused_clearly(ctx, call, error, words):
    """A bad input raises a clear error and changes nothing"""
    before = [t.copy() for t in ctx.net.thetas]
    on_disk = folder_state(ctx.tmp)
    with pytest.raises(error) as raised:
        call(ctx)
    assert type(raised.value) is error
    message = str(raised.value).lower()
    missing = [w for w in words if w.lower() not in message]
    assert not missing, f"message {str(raised.value)!r} lacks {missing}"
    assert all(np.array_equal(a, b) for a, b in zip(before, ctx.net.thetas))
    assert folder_state(ctx.tmp) == on_disk
