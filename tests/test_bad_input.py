"""Bad input at the public boundary: each case raises a ValueError or TypeError whose
message names the argument, what was expected and what came, and leaves the network
and the folder it was given exactly as they were.

A case is (id, call, error, words): ``call(ctx)`` must raise ``error`` with every
one of ``words`` in its message (case-insensitive).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def torch_tensor(shape, requires_grad=False):
    torch = pytest.importorskip("torch")
    return torch.zeros(shape, dtype=torch.float64, requires_grad=requires_grad)


def ce_net(output="sigmoid", k=1):
    return N([2, 3, k], output=output, loss="cross_entropy")


CASES = [
    # -- the architecture --------------------------------------------------------------
    ("sizes with one layer", lambda c: N([3]), ValueError, ["sizes", "at least 2", "[3]"]),
    ("sizes with a zero-width layer", lambda c: N([2, 0, 1]), ValueError, ["sizes[1]", ">= 1", "got 0"]),
    ("sizes with a fraction", lambda c: N([2, 2.5, 1]), TypeError, ["sizes[1]", "integer", "2.5"]),
    ("sizes as a string", lambda c: N("321"), TypeError, ["sizes", "sequence", "'321'"]),
    ("sizes needing terabytes", lambda c: N([10**7, 10**7, 1]), ValueError,
     ["sizes", "fits in the memory available", "[10000000, 10000000, 1]", "100,000,020,000,001 weights", "3.55 PiB"]),
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
    ("X holding an integer too large for a float", lambda c: c.net.forward([[10**400, 0.0]]), ValueError,
     ["X", "finite", "too large for a float"]),
    ("X ragged", lambda c: c.net.forward([[1.0, 2.0], [3.0]]), ValueError, ["X", "rectangular", "ragged"]),
    ("X of strings", lambda c: c.net.forward([["a", "b"]]), ValueError, ["X", "numbers", "non-numeric"]),
    ("X a NumPy array of strings", lambda c: c.net.forward(np.array([["1", "2"]])), TypeError,
     ["X", "real numbers", "<U1"]),
    ("X complex", lambda c: c.net.forward(np.ones((4, 2), complex)), TypeError, ["X", "real numbers", "complex128"]),
    ("X a dict", lambda c: c.net.forward({"x": [1, 2]}), TypeError,
     ["X", "a list, a NumPy array, a pandas object or a DLPack array", "got dict", ".to_numpy()"]),
    ("X a CuPy array on a NumPy network", lambda c: c.net.forward(CupyLikeArray()), TypeError,
     ["X", "NumPy array", "cupy.CupyLikeArray", ".get()", "backend='cupy'"]),
    ("X a torch tensor that needs its gradient", lambda c: c.net.forward(torch_tensor((4, 2), requires_grad=True)),
     TypeError, ["X", "DLPack", "torch.Tensor", "require gradient", ".detach().cpu().numpy()"]),
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
    ("momentum of 1", lambda c: fit(c, optimizer=bpgpu.Momentum(lr=0.1, momentum=1.0)), ValueError,
     ["momentum", "[0, 1)", "1.0"]),
    ("beta2 above 1", lambda c: fit(c, optimizer=bpgpu.Adam(lr=0.1, beta2=1.5)), ValueError, ["beta2", "[0, 1)", "1.5"]),
    ("negative adam eps", lambda c: fit(c, optimizer=bpgpu.Adam(lr=0.1, eps=-1e-8)), ValueError, ["eps", "> 0", "-1e-08"]),
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
    ("zero chunk_size to evaluate", lambda c: c.net.evaluate(c.X, c.Y, chunk_size=0), ValueError,
     ["chunk_size", ">= 1", "got 0"]),
    ("negative chunk_size to evaluate", lambda c: c.net.evaluate(c.X, c.Y, chunk_size=-2), ValueError,
     ["chunk_size", ">= 1", "-2"]),
    ("fractional chunk_size to evaluate", lambda c: c.net.evaluate(c.X, c.Y, chunk_size=1.5), TypeError,
     ["chunk_size", "integer", "1.5"]),
    ("lr an integer too large for a float", lambda c: fit(c, lr=10**400), ValueError,
     ["lr", "finite", "too large for a float", "401 digits"]),
    ("lam an integer too large for a float", lambda c: N([2, 3, 1], lam=-(10**309)), ValueError,
     ["lam", "too large for a float"]),
    ("target_loss an integer too large for a float", lambda c: fit(c, target_loss=10**400), ValueError,
     ["target_loss", "too large for a float"]),
    ("callback not callable", lambda c: fit(c, callback="print"), TypeError,
     ["callback", "function", "'print'"]),
    # -- weights -------------------------------------------------------------------------------
    ("theta of the wrong shape", lambda c: c.net.set_thetas([np.zeros((3, 2)), np.zeros((1, 4))]), ValueError,
     ["thetas[0]", "(3, 3)", "(3, 2)"]),
    ("one theta too few", lambda c: c.net.set_thetas([np.zeros((3, 3))]), ValueError,
     ["thetas", "2 matrices", "got 1"]),
    ("theta with a NaN", lambda c: c.net.set_thetas([np.zeros((3, 3)), with_nan(np.zeros((1, 4)), (0, 2))]),
     ValueError, ["thetas[1]", "finite", "nan"]),
    ("theta a CuPy array on a NumPy network", lambda c: c.net.set_thetas([CupyLikeArray(), np.zeros((1, 4))]),
     TypeError, ["thetas[0]", "NumPy array", "cupy"]),
    ("theta holding an integer too large for a float", lambda c: c.net.set_thetas([[[10**400] * 3] * 3, np.zeros((1, 4))]),
     ValueError, ["thetas[0]", "too large for a float"]),
    ("thetas not a list", lambda c: c.net.set_thetas(None), TypeError, ["thetas", "list of 2 matrices", "NoneType"]),
    ("theta with an inf, located", lambda c: c.net.set_thetas([np.zeros((3, 3)), with_nan(np.zeros((1, 4)), (0, 3), np.inf)]),
     ValueError, ["thetas[1]", "finite", "row 0, column 3: inf"]),
    ("save with a negative epoch", lambda c: bpgpu.io.persistence.save(c.net, c.tmp / "m.npz", epoch=-1), ValueError,
     ["epoch", ">= 0", "-1"]),
    ("save with extra a list", lambda c: bpgpu.io.persistence.save(c.net, c.tmp / "m.npz", extra=["note"]), TypeError,
     ["extra", "dict", "list"]),
    ("save with history a list", lambda c: bpgpu.io.persistence.save(c.net, c.tmp / "m.npz", history=[0.5]), TypeError,
     ["history", "History", "list"]),
    ("m an integer too large for a float", lambda c: bpgpu.data.xor(10**400), ValueError,
     ["m", "memory available", "about 10^401 bytes"]),
    ("classes an integer too large for a float", lambda c: bpgpu.data.spirals(10, classes=10**400), ValueError,
     ["m", "memory available", "bytes"]),
    ("gradient_check with eps 0", lambda c: bpgpu.gradient_check(c.net, c.X, c.Y, eps=0), ValueError,
     ["eps", "> 0", "got 0"]),
]


@pytest.fixture
def ctx(tmp_path):
    net = N([2, 3, 1], seed=3)
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return Ctx(net, X, np.array([[0.0], [1.0], [1.0], [0.0]]), tmp_path)


def folder_state(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


@pytest.mark.parametrize("call, error, words", [pytest.param(*case[1:4], id=case[0], marks=case[4:]) for case in CASES])
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


# -- the command line -------------------------------------------------------------------------
#
# (id, argv, exit status, words): one line on stderr naming the option or file, what was
# expected and what came; no traceback; no file written. Run in a folder holding the
# files that ``cli_folder`` makes.

DIVERGING = "train --data teacher --sizes 8,16,1 --optimizer sgd --lr 1e10 --epochs 50 --quiet --out run"

CLI_CASES = [
    ("unknown command", "fly", 2, ["invalid choice", "'fly'", "'train'"]),
    ("unknown option", "train --learning-rate 0.1", 2, ["unrecognized arguments", "--learning-rate"]),
    ("--sizes not integers", "train --data xor --sizes 2,x,1", 2, ["--sizes", "integers", "'2,x,1'"]),
    ("--sizes with a zero", "train --data xor --sizes 2,0,1", 2, ["--sizes", "positive sizes", "'2,0,1'"]),
    ("--sizes needing terabytes", "train --data spirals --sizes 2,10000000,10000000,3", 1,
     ["sizes", "fits in the memory available", "3.55 PiB"]),
    ("--samples needing terabytes", "train --data teacher --sizes 100000,1 --samples 100000000", 1,
     ["m:", "fits in the memory available", "100,000,000 examples", "TiB"]),
    ("negative --lr", "train --data xor --sizes 2,4,1 --lr -1", 2, ["--lr", "positive float", "'-1'"]),
    ("zero --epochs", "train --data xor --sizes 2,4,1 --epochs 0", 2, ["--epochs", "positive int", "'0'"]),
    ("zero --batch-size", "train --data xor --sizes 2,4,1 --batch-size 0", 2, ["--batch-size", "positive", "'0'"]),
    ("--validation-split above 1", "train --data xor --sizes 2,4,1 --validation-split 1.5", 2,
     ["--validation-split", "(0, 1)", "'1.5'"]),
    ("unknown --dtype", "train --data xor --sizes 2,4,1 --dtype float16", 2, ["--dtype", "'float32'", "'float16'"]),
    ("unknown --optimizer", "train --data xor --sizes 2,4,1 --optimizer rmsprop", 2,
     ["--optimizer", "'adam'", "'rmsprop'"]),
    ("unknown --activation", "train --data xor --sizes 2,4,1 --activation gelu", 1, ["activation", "'relu'", "'gelu'"]),
    ("negative --lam", "train --data xor --sizes 2,4,1 --lam -1", 1, ["lam", ">= 0", "-1"]),
    ("--momentum above 1", "train --data xor --sizes 2,4,1 --optimizer momentum --momentum 1.5", 1,
     ["momentum", "[0, 1)", "1.5"]),
    ("negative --noise", "train --data xor --sizes 2,4,1 --noise -1", 1, ["noise", ">= 0", "-1"]),
    ("--sizes not fitting the generator", "train --data xor --sizes 2,3", 1,
     ["incompatible sizes", "xor has 2 inputs and 1 output", "--sizes 2,3", "3 outputs"]),
    ("--data file missing", "train --data nothere.csv --sizes 2,4,1", 1, ["nothere.csv", "no such file"]),
    ("--data of an unknown kind", "train --data data.txt --sizes 2,4,1", 1, ["--data data.txt", ".csv/.tsv/.parquet/.npy/.npz", "xor"]),
    ("CSV with a NaN", "train --data nan.csv --sizes 2,4,1 --target y", 1, ["nan.csv", "row 2", "finite", "nan"]),
    ("CSV ragged", "train --data ragged.csv --sizes 2,4,1 --target y", 1, ["ragged.csv", "line 3", "2 columns", "expected 3"]),
    ("CSV not numeric", "train --data text.csv --sizes 2,4,1 --target y", 1, ["text.csv", "expected a number", "'abc'"]),
    ("unknown --target column", "train --data data.csv --sizes 2,4,1 --target z", 1,
     ["--target z", "no column 'z'", "x0, x1, y"]),
    ("--one-hot labels out of range", "train --data labels.csv --sizes 2,4,3 --target y --one-hot", 1,
     ["--one-hot", "0..2", "got 5"]),
    ("cross_entropy targets out of range", "train --data ce.csv --sizes 2,4,1 --target y --output sigmoid "
     "--loss cross_entropy", 1, ["Y", "[0, 1]", "3"]),
    ("data columns not fitting --sizes", "train --data data.csv --sizes 3,4,1", 1,
     ["incompatible sizes", "data.csv", "2 input columns", "3 inputs"]),
    ("--checkpoint-every without --out", "train --data xor --sizes 2,4,1 --checkpoint-every 2", 1,
     ["--checkpoint-every", "--out"]),
    ("--patience without validation", "train --data xor --sizes 2,4,1 --patience 3", 1,
     ["--patience", "--validation-split"]),
    ("--resume a missing file", "train --data xor --resume nothere.npz", 1, ["nothere.npz", "no such model file"]),
    ("--resume a truncated checkpoint", "train --data xor --resume truncated.npz", 1,
     ["truncated.npz", "truncated or corrupt"]),
    ("--resume a CSV", "train --data xor --resume data.csv", 1, ["data.csv", "not a bpgpu model file"]),
    ("--resume with another architecture", "train --data xor --sizes 2,8,1 --resume checkpoint.npz", 1,
     ["--sizes", "checkpoint's network has sizes 2,4,1", "cannot change its architecture"]),
    ("--resume with another optimizer", "train --data xor --resume checkpoint.npz --optimizer sgd", 1,
     ["--optimizer sgd", "trained with adam"]),
    ("--resume past --epochs", "train --data xor --resume checkpoint.npz --epochs 2", 1,
     ["--epochs 2", "already at epoch 2"]),
    ("--momentum with adam", "train --data xor --sizes 2,4,1 --momentum 0.5", 1,
     ["--momentum", "--optimizer momentum only", "adam"]),
    ("--beta1 with sgd", "train --data xor --sizes 2,4,1 --optimizer sgd --beta1 0.5", 1,
     ["--beta1", "--optimizer adam only", "sgd"]),
    ("--target with a generator", "train --data spirals --sizes 2,4,3 --target y", 1,
     ["--target", "data from a file only", "generator spirals"]),
    ("--noise with a file", "train --data data.csv --target y --sizes 2,4,1 --noise 0.1", 1,
     ["--noise", "generated data only", "a file (data.csv)"]),
    ("--noise that overflows the inputs", "train --data spirals --sizes 2,4,3 --noise 1e308", 1,
     ["--noise 1e+308", "overflow to inf or NaN", "smaller --noise"]),
    ("--momentum with a resumed adam run", "train --resume checkpoint.npz --data xor --epochs 4 --momentum 0.5", 1,
     ["--momentum", "adam"]),
    ("predict with a truncated model", "predict truncated.npz --input data.csv", 1,
     ["truncated.npz", "truncated or corrupt"]),
    ("predict inputs of the wrong width", "predict checkpoint.npz --input wide.csv", 1,
     ["incompatible sizes", "expects 2 input columns", "wide.csv has 3"]),
    ("bench --min-time inf", "bench --min-time inf", 2, ["--min-time", "finite", "'inf'"]),
    ("bench --json into a missing folder", "bench --smoke --json nowhere/b.json", 1,
     ["nowhere/b.json", "folder nowhere does not exist"]),
    ("predict to an unknown file kind", "predict checkpoint.npz --input data.csv --columns x0,x1 --output out.txt", 1,
     ["out.txt", ".npy or .csv", "'.txt'"]),
]


@pytest.fixture
def cli_folder(tmp_path, monkeypatch):
    """A working folder with the input files the command-line cases name."""
    from bpgpu.io import persistence
    from bpgpu.optimizers import make_optimizer

    files = {"data.csv": "x0,x1,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n", "nan.csv": "x0,x1,y\n0,0,0\n0,nan,1\n",
             "ragged.csv": "x0,x1,y\n0,0,0\n0,1\n", "text.csv": "x0,x1,y\n0,abc,0\n", "data.txt": "0 0 0\n",
             "labels.csv": "x0,x1,y\n0,0,0\n0,1,5\n", "ce.csv": "x0,x1,y\n0,0,0\n0,1,3\n", "wide.csv": "x0,x1,x2\n0,0,0\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    net = N([2, 4, 1], activation="tanh", output="sigmoid", loss="cross_entropy")
    persistence.save(net, tmp_path / "checkpoint.npz", optimizer=make_optimizer("adam", 0.01), epoch=2)
    whole = (tmp_path / "checkpoint.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr) of ``bpgpu argv`` run in this process."""
    from bpgpu.cli import main

    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse's usage errors
        status = exit.code
    return status, capsys.readouterr().err


def files_in(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_one_clear_line(stderr: str, words) -> None:
    assert "Traceback" not in stderr and "internal error" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    missing = [w for w in words if w.lower() not in lines[0].lower()]
    assert not missing, f"stderr {lines[0]!r} lacks {missing}"


@pytest.mark.parametrize("argv, status, words", [pytest.param(*case[1:4], id=case[0], marks=case[4:])
                                                 for case in CLI_CASES])
def test_cli_refuses_bad_input_in_one_line(cli_folder, capsys, argv, status, words):
    """The command line refuses bad input: one stderr line, a non-zero exit, nothing written"""
    before = files_in(cli_folder)
    got, stderr = run_cli(argv.split(), capsys)
    assert got == status
    assert_one_clear_line(stderr, words)
    assert files_in(cli_folder) == before


def test_cli_divergence_saves_the_last_good_weights(cli_folder, capsys):
    """A diverging run fails in one line, but keeps its last good (finite) weights"""
    got, stderr = run_cli(DIVERGING.split(), capsys)
    assert got == 1
    assert_one_clear_line(stderr, ["training diverged", "epoch 0", "restored", "run/model.npz", "--lr"])
    net = bpgpu.load(cli_folder / "run" / "model.npz")
    assert all(np.isfinite(t).all() for t in net.thetas)
    history = json.loads((cli_folder / "run" / "history.json").read_text())
    assert history["stop_reason"] == "nonfinite" and history["nonfinite_at"]["epoch"] == 0


@pytest.mark.parametrize("case", [c for c in CLI_CASES if c[0] in (
    "unknown option", "--resume a truncated checkpoint", "--resume with another architecture", "CSV with a NaN")],
    ids=lambda c: c[0])
def test_cli_refuses_bad_input_as_a_real_process(cli_folder, case):
    """The same, through `python -m bpgpu` in a process of its own"""
    _, argv, status, words = case
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    before = files_in(cli_folder)
    done = subprocess.run([sys.executable, "-m", "bpgpu", *argv.split()], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == status
    assert_one_clear_line(done.stderr, words)
    assert files_in(cli_folder) == before
