"""The ``bpgpu`` command, driven as a user drives it: a subprocess per command."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bpgpu.io import persistence

try:
    import matplotlib  # noqa: F401 — only whether the optional plot extra is here
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
       "PYTHONUNBUFFERED": "1"}
ENV.pop("BPGPU_DEBUG", None)
SMALL = ["--samples", "200", "--batch-size", "32", "--quiet", "--no-plot"]


def bpgpu(*args, cwd, env=ENV, timeout=120):
    return subprocess.run([sys.executable, "-m", "bpgpu", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def ok(*args, cwd, **kw):
    run = bpgpu(*args, cwd=cwd, **kw)
    assert run.returncode == 0, run.stderr
    return run


def same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(persistence.load(a).thetas, persistence.load(b).thetas))


# -- help and the simple commands ---------------------------------------------------------

def test_predict_argmax_thresholds_a_single_output_and_reads_the_inputs_of_an_xy_npz(tmp_path):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1.0]])
    np.savez(tmp_path / "xor.npz", X=np.repeat(X, 8, axis=0), Y=np.repeat([[0], [1], [1], [0.0]], 8, axis=0))
    ok("train", "--data", "xor.npz", "--sizes", "2,8,1", "--output", "sigmoid", "--epochs", "300", "--lr", "0.05",
       "--quiet", "--no-plot", "--out", "run", cwd=tmp_path)
    np.savez(tmp_path / "four.npz", X=X, Y=np.array([[0], [1], [1], [0.0]]))
    run = ok("predict", "run/model.npz", "--input", "four.npz", "--argmax", cwd=tmp_path)
    assert run.stdout.split() == ["class", "0", "1", "1", "0"]


def test_an_empty_header_cell_is_a_clear_error(tmp_path):
    (tmp_path / "p.csv").write_text(",x,y\n0,1,0\n1,0,1\n")
    run = bpgpu("train", "--data", "p.csv", "--sizes", "2,3,1", "--quiet", cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert "--target: name the target column(s) of p.csv" in run.stderr


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "export", "example", "info", "bench"])
def test_every_subcommand_has_help(command, tmp_path):
    run = ok(command, "--help", cwd=tmp_path)
    assert run.stdout.startswith(f"usage: bpgpu {command}")


def test_top_level_help_lists_the_commands_and_version(tmp_path):
    out = ok("--help", cwd=tmp_path).stdout
    for command in ("train", "predict", "evaluate", "export", "bench", "example", "info"):
        assert command in out
    assert ok("--version", cwd=tmp_path).stdout.startswith("bpgpu 0.")


def test_info(tmp_path):
    out = ok("info", cwd=tmp_path).stdout
    assert out.startswith("bpgpu ")
    assert f"numpy {np.__version__}" in out
    assert "backends:\n  numpy: numpy" in out and "  cupy: " in out
    assert "CUDA devices:" in out and "BLAS (numpy): " in out


def test_example_prints_the_worked_example(tmp_path):
    out = ok("example", cwd=tmp_path).stdout
    assert "page" in out.splitlines()[0] and "exact" in out.splitlines()[0]
    assert "0.907207" in out  # y of sample 1, exact: sigmoid(2.28)


# -- train --------------------------------------------------------------------------------

def test_train_spirals_writes_model_history_and_plot(tmp_path):
    run = ok("train", "--data", "spirals", "--sizes", "2,16,3", "--epochs", "30", "--samples", "300",
             "--lr", "0.02", "--batch-size", "32", "--log-every", "10", "--out", "run", cwd=tmp_path)
    assert "softmax, cross_entropy" in run.stdout.splitlines()[0]
    assert [line.split()[1] for line in run.stdout.splitlines() if line.startswith("epoch ")][:3] == ["10/30", "20/30", "30/30"]
    if HAVE_MATPLOTLIB:
        assert "saved run/model.npz, run/history.json, run/loss.png" in run.stdout
        assert (tmp_path / "run/loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:  # the plot extra is optional: one line says so, the rest is saved
        assert 'loss.png skipped: matplotlib is not installed (pip install "bpgpu[plot]")' in run.stdout
        assert "saved run/model.npz, run/history.json\n" in run.stdout
    assert run.stderr == ""  # a pipe is no terminal: no progress bar, the loss lines alone (on stdout)
    history = json.loads((tmp_path / "run/history.json").read_text())
    assert len(history["loss"]) == history["epochs"] == 30 and history["stop_reason"] == "epochs"
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    checkpoint = persistence.load_checkpoint(tmp_path / "run/model.npz")
    assert checkpoint.epoch == 30 and checkpoint.optimizer.name == "adam"
    assert checkpoint.network.config()["output"] == "softmax"


@pytest.mark.parametrize("source, sizes, head", [
    ("xor", "2,4,1", ("sigmoid", "cross_entropy")),
    ("blobs", "5,8,4", ("softmax", "cross_entropy")),
    ("teacher", "3,8,2", ("identity", "mse")),
])
def test_each_generator_trains_with_a_suitable_head(source, sizes, head, tmp_path):
    ok("train", "--data", source, "--sizes", sizes, "--epochs", "2", *SMALL, "--out", "run", cwd=tmp_path)
    config = persistence.load(tmp_path / "run/model.npz").config()
    assert (config["output"], config["loss"]) == head
    assert ",".join(map(str, config["sizes"])) == sizes


def test_validation_split_and_patience(tmp_path):
    ok("train", "--data", "teacher", "--sizes", "4,8,1", "--teacher-sizes", "4,8,1", "--epochs", "5",
       "--validation-split", "0.25", "--patience", "50", *SMALL, "--out", "run", cwd=tmp_path)
    history = json.loads((tmp_path / "run/history.json").read_text())
    assert len(history["val_loss"]) == 5 and all(v > 0 for v in history["val_loss"])


def test_csv_with_named_target_then_predict(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    label = (X[:, 0] * X[:, 1] > 0).astype(int)
    rows = "\n".join(f"{a:.6f},{b:.6f},{c}" for (a, b), c in zip(X, label))
    (tmp_path / "train.csv").write_text(f"x1,x2,label\n{rows}\n")
    ok("train", "--data", "train.csv", "--target", "label", "--one-hot", "--sizes", "2,8,2", "--epochs", "3",
       "--quiet", "--no-plot", "--out", "run", cwd=tmp_path)
    assert persistence.load(tmp_path / "run/model.npz").config()["output"] == "softmax"
    assert not (tmp_path / "run/loss.png").exists()

    ok("predict", "run/model.npz", "--input", "train.csv", "--columns", "x1,x2", "--output", "y.csv", cwd=tmp_path)
    lines = (tmp_path / "y.csv").read_text().splitlines()
    assert lines[0] == "y0,y1" and len(lines) == 61
    expected = persistence.load(tmp_path / "run/model.npz").predict(np.round(X, 6))
    np.testing.assert_allclose(np.loadtxt(tmp_path / "y.csv", delimiter=",", skiprows=1), expected, rtol=1e-9)

    stdout = ok("predict", "run/model.npz", "--input", "train.csv", "--columns", "0,1", "--argmax", cwd=tmp_path).stdout
    assert stdout.splitlines()[0] == "class"
    np.testing.assert_array_equal([int(v) for v in stdout.split()[1:]], expected.argmax(axis=1))


def test_npz_and_npy_data_and_npy_predictions(tmp_path):
    X = np.random.default_rng(1).standard_normal((40, 3))
    Y = np.stack([X.sum(axis=1), X[:, 0]], axis=1)
    np.savez(tmp_path / "xy.npz", X=X, Y=Y)
    np.save(tmp_path / "table.npy", np.hstack([X, Y]))
    ok("train", "--data", "xy.npz", "--sizes", "3,5,2", "--epochs", "2", "--quiet", "--no-plot", "--out", "a", cwd=tmp_path)
    ok("train", "--data", "table.npy", "--target=-2,-1", "--sizes", "3,5,2", "--epochs", "2", "--quiet",
       "--no-plot", "--out", "b", cwd=tmp_path)
    assert same_weights(tmp_path / "a/model.npz", tmp_path / "b/model.npz")  # the same data either way
    np.save(tmp_path / "X.npy", X)
    ok("predict", "a/model.npz", "--input", "X.npy", "--output", "Y.npy", cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), persistence.load(tmp_path / "a/model.npz").predict(X))


def test_missing_matplotlib_is_a_one_line_notice(tmp_path):
    fake = tmp_path / "fake" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), ENV["PYTHONPATH"]])}
    run = ok("train", "--data", "xor", "--sizes", "2,3,1", "--epochs", "2", "--quiet", "--out", "run", cwd=tmp_path, env=env)
    assert 'loss.png skipped: matplotlib is not installed (pip install "bpgpu[plot]")' in run.stdout
    assert sorted(os.listdir(tmp_path / "run")) == ["history.json", "model.npz"]


# -- errors: one line on stderr, a non-zero exit, never a traceback --------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_errors")
    (folder / "d.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    (folder / "bad.csv").write_text("a,b,y\n1,2,0\n3,four,1\n")
    (folder / "garbage.npz").write_bytes(b"PK\x03\x04 not really")
    np.save(folder / "X3.npy", np.ones((4, 3)))
    ok("train", "--data", "xor", "--sizes", "2,3,1", "--epochs", "2", *SMALL, "--out", "run", cwd=folder)
    return folder


ERRORS = [
    (["train", "--data", "nothing.csv", "--sizes", "2,3,1"], 1, "nothing.csv: no such file"),
    (["train", "--data", "d.csv", "--target", "z", "--sizes", "2,3,1"], 1, "--target z: no column 'z' in d.csv (its columns are a, b, y)"),
    (["train", "--data", "d.csv", "--target", "5", "--sizes", "2,3,1"], 1, "column 5 is out of range"),
    (["train", "--data", "d.csv", "--sizes", "2,3,1"], 1, "--target: name the target column(s) of d.csv"),
    (["train", "--data", "bad.csv", "--target", "y", "--sizes", "2,3,1"], 1, "bad.csv: line 3, column 'b': expected a number, got 'four'"),
    (["train", "--data", "d.csv", "--target", "y", "--sizes", "3,3,1"], 1,
     "incompatible sizes: d.csv gives 2 input columns and 1 target column, but --sizes 3,3,1 has 3 inputs and 1 output"),
    (["train", "--data", "spirals", "--sizes", "2,8,4", "--classes", "3"], 1, "incompatible sizes: spirals has 2 inputs and 3 classes"),
    (["train", "--data", "spirals", "--sizes", "2,8,3", "--backend", "tpu"], 2, "argument --backend: invalid choice: 'tpu'"),
    (["train", "--data", "spirals", "--sizes", "2,8,3", "--optimizer", "rmsprop"], 2, "argument --optimizer: invalid choice"),
    (["train", "--data", "spirals", "--sizes", "2,8,3", "--activation", "swish"], 1, "activation: expected one of"),
    (["train", "--data", "moons", "--sizes", "2,8,3"], 1, "--data moons: expected one of xor, spirals, blobs, teacher or a .csv/.tsv/.parquet/.npy/.npz file"),
    (["train", "--data", "xor", "--sizes", "2,3,1", "--patience", "3"], 1, "--patience: early stopping watches a validation loss"),
    (["train", "--data", "xor", "--sizes", "2,3,1", "--lr", "-1"], 2, "argument --lr: expected a positive float"),
    (["train", "--data", "xor", "--sizes", "2,3,1", "--output", "softmax"], 1, "output: 'softmax' expects at least 2 output units"),
    (["train", "--resume", "run/model.npz", "--sizes", "2,5,1", "--epochs", "9"], 1, "--sizes: the checkpoint's network has sizes 2,3,1"),
    (["train", "--resume", "run/model.npz", "--epochs", "2"], 1, "is already at epoch 2"),
    (["train", "--resume", "garbage.npz"], 1, "garbage.npz: not a readable bpgpu model file"),
    (["predict", "run/model.npz", "--input", "X3.npy"], 1, "incompatible sizes: run/model.npz expects 2 input columns, X3.npy has 3"),
    (["predict", "missing.npz", "--input", "X3.npy"], 1, "missing.npz: no such model file"),
    (["predict", "run/model.npz", "--input", "X3.npy", "--output", "y.txt"], 1, "y.txt: expected a .npy or .csv output file"),
    (["predict", "run/model.npz"], 2, "the following arguments are required: --input"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
]


@pytest.fixture(scope="module")
def error_runs(files):
    """Every ERRORS command, run concurrently (each is a short-lived process)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda e: bpgpu(*e[0], cwd=files), ERRORS))
    return {tuple(e[0]): run for e, run in zip(ERRORS, runs)}


@pytest.mark.parametrize("args, status, message", ERRORS, ids=[" ".join(e[0][:3]) for e in ERRORS])
def test_errors_are_one_clear_line(error_runs, args, status, message):
    run = error_runs[tuple(args)]
    assert run.returncode == status
    assert "Traceback" not in run.stderr + run.stdout
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert message in run.stderr


def test_unusable_cupy_is_one_line(files):
    from bpgpu.backend import BackendUnavailable, get_backend

    try:
        get_backend("cupy")
        pytest.skip("CuPy works here, so --backend cupy is no error")
    except BackendUnavailable:
        pass
    run = bpgpu("train", "--data", "xor", "--sizes", "2,3,1", "--backend", "cupy", cwd=files)
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1
    assert run.stderr.startswith("bpgpu train: error: backend='cupy'")


# -- Ctrl-C and resume -------------------------------------------------------------------------

def test_sigint_stops_saves_and_exits_cleanly(tmp_path):
    train = subprocess.Popen([sys.executable, "-m", "bpgpu", "train", "--data", "spirals", "--sizes", "2,32,3",
                              "--samples", "2000", "--epochs", "1000000", "--log-every", "1", "--no-plot", "--out", "run"],
                             cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # training has started once an epoch is logged
            if train.stdout.readline().startswith("epoch "):
                break
        train.send_signal(signal.SIGINT)
        out, err = train.communicate(timeout=60)
    finally:
        train.kill()
    assert train.returncode == 130, err
    assert "Traceback" not in err
    assert "stopped: interrupted" in out and "stopped by SIGINT (Ctrl-C) at epoch" in err and "run/model.npz" in err
    checkpoint = persistence.load_checkpoint(tmp_path / "run/model.npz")
    assert 1 <= checkpoint.epoch < 1000000 and checkpoint.history["stop_reason"] == "interrupted"
    X = np.random.default_rng(0).random((5, 2))
    prediction = checkpoint.network.predict(X)
    np.testing.assert_allclose(prediction.sum(axis=1), 1.0)
    ok("predict", "run/model.npz", "--input", _npy(tmp_path / "X.npy", X), "--output", "Y.npy", cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), prediction)


def _npy(path, a):
    np.save(path, a)
    return path.name


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_reaches_the_weights_of_an_uninterrupted_run(optimizer, tmp_path):
    common = ["--data", "spirals", "--sizes", "2,8,3", "--samples", "150", "--batch-size", "16",
              "--optimizer", optimizer, "--lam", "0.001", "--seed", "3", "--quiet", "--no-plot"]
    # Straight: 6 epochs, checkpointing every 3.
    ok("train", *common, "--epochs", "6", "--checkpoint-every", "3", "--out", "straight", cwd=tmp_path)
    assert persistence.load_checkpoint(tmp_path / "straight/checkpoint.npz").epoch == 6
    # Half, then resumed from its model.npz with nothing but the new epoch count.
    ok("train", *common, "--epochs", "3", "--out", "half", cwd=tmp_path)
    ok("train", "--resume", "half/model.npz", "--epochs", "6", "--out", "resumed", "--no-plot", cwd=tmp_path)
    assert same_weights(tmp_path / "straight/model.npz", tmp_path / "resumed/model.npz")
    straight = json.loads((tmp_path / "straight/history.json").read_text())
    resumed = json.loads((tmp_path / "resumed/history.json").read_text())
    assert resumed["loss"] == straight["loss"] and resumed["epochs"] == 6
    # From a checkpoint written mid-run (epoch 3 of 5), continued to 6.
    ok("train", *common, "--epochs", "5", "--checkpoint-every", "3", "--out", "mid", cwd=tmp_path)
    assert persistence.load_checkpoint(tmp_path / "mid/checkpoint.npz").epoch == 3
    ok("train", "--resume", "mid/checkpoint.npz", "--epochs", "6", "--out", "from_mid", "--no-plot", cwd=tmp_path)
    assert same_weights(tmp_path / "straight/model.npz", tmp_path / "from_mid/model.npz")
    # And the half run differs, so the comparison above is not vacuous.
    assert not same_weights(tmp_path / "straight/model.npz", tmp_path / "half/model.npz")


def test_resume_continues_the_same_run_from_any_folder(tmp_path):
    """--resume reads the run's data and writes to the run's folder wherever it is started from, and says so"""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a/d.csv").write_text("x0,x1,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n")
    ok("train", "--data", "d.csv", "--target", "y", "--sizes", "2,3,1", "--epochs", "2", "--checkpoint-every", "1",
       "--quiet", "--no-plot", "--out", "run", cwd=tmp_path / "a")
    resumed = ok("train", "--resume", "../a/run/checkpoint.npz", "--epochs", "4", "--quiet", "--no-plot",
                 cwd=tmp_path / "b")
    said = [line for line in resumed.stdout.splitlines() if line.startswith("resuming")]
    assert said == [f"resuming ../a/run/checkpoint.npz at epoch 2: data {tmp_path / 'a/d.csv'} (the run's), "
                    "saving to ../a/run (the run's)"]
    assert persistence.load_checkpoint(tmp_path / "a/run/model.npz").epoch == 4
    assert list((tmp_path / "b").iterdir()) == []
    # An explicit --out (or --data) still decides.
    ok("train", "--resume", "../a/run/model.npz", "--epochs", "5", "--quiet", "--no-plot", "--out", "here",
       cwd=tmp_path / "b")
    assert persistence.load_checkpoint(tmp_path / "b/here/model.npz").epoch == 5
