"""``bpgpu train`` / ``predict`` options tested by what they do, not by their error messages.

Most runs go through ``bpgpu.cli.main([...])`` in-process (fast); exit statuses that need a
real process (a closed pipe) and the installed console script run as subprocesses. Weights
are read back with the public ``bpgpu.load`` and compared with the library API doing the
same thing, so an option the command line drops or misroutes changes the numbers.

Data designs:
- ``onehot.csv``: the inputs of row i are the i-th unit vector, the target i/20; with a
  linear network without bias, a full-batch step changes weight i only when row i is
  trained on, so the weights show exactly which rows were trained on.
- ``small.csv``: 24 random rows, 3 inputs and 1 target, no header.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bpgpu

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
ENV.pop("BPGPU_DEBUG", None)


@pytest.fixture
def cli(cli, tmp_path):
    """conftest's ``cli`` (run in tmp_path), with this module's two data files there."""
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "onehot.csv", np.hstack([np.eye(20), np.arange(20)[:, None] / 20]), delimiter=",")
    np.savetxt(tmp_path / "small.csv", np.hstack([rng.standard_normal((24, 3)), rng.random((24, 1))]), delimiter=",")
    return cli


def ok(cli, *args):
    status, out, err = cli(*args)
    assert status == 0, err
    return out, err


def history(folder):
    return json.loads((Path(folder) / "history.json").read_text())


def weights(path):
    return [np.array(t) for t in bpgpu.load(path).thetas]


def small_data(tmp_path):
    table = np.loadtxt(tmp_path / "small.csv", delimiter=",")
    return table[:, :3], table[:, 3:]


ONEHOT = ["train", "--data", "onehot.csv", "--target", "-1", "--sizes", "20,1", "--no-bias", "--optimizer", "sgd",
          "--lr", "0.5", "--batch-size", "full", "--quiet", "--no-plot"]
SMALL = ["--data", "small.csv", "--target", "-1", "--sizes", "3,4,1", "--activation", "tanh", "--quiet", "--no-plot"]


# -- which rows are trained on: --validation-split, CSV without a header, --no-bias ---------

def test_validation_split_holds_out_exactly_its_fraction_and_never_trains_on_it(cli, tmp_path):
    ok(cli, *ONEHOT, "--epochs", "1", "--validation-split", "0.25", "--out", "run")
    start = bpgpu.Network([20, 1], output="identity", loss="mse", bias=False, seed=0).thetas[0][0]
    end = weights("run/model.npz")[0][0]
    assert end.shape == (20,)  # --no-bias: no bias column
    y = np.arange(20) / 20
    trained = end != start
    assert trained.sum() == 15  # 25 % of 20 rows held out, exactly
    # One full-batch SGD step on the 15 training rows: w_i − 0.5·(w_i − y_i)/15.
    np.testing.assert_allclose(end[trained], (start - 0.5 * (start - y) / 15)[trained], rtol=1e-14)
    h = history("run")
    assert h["samples"] == 15 and h["steps"] == 1
    held = ~trained
    assert h["val_loss"][0] == pytest.approx(np.sum((end[held] - y[held]) ** 2) / (2 * 5), rel=1e-14)


def test_csv_without_a_header_keeps_its_first_row(cli, tmp_path):
    out, _ = ok(cli, *ONEHOT, "--epochs", "1", "--out", "run")
    assert "on 20 examples from onehot.csv" in out
    start = bpgpu.Network([20, 1], output="identity", loss="mse", bias=False, seed=0).thetas[0][0]
    end = weights("run/model.npz")[0][0]
    y = np.arange(20) / 20
    np.testing.assert_allclose(end, start - 0.5 * (start - y) / 20, rtol=1e-14)  # row 0 trained on too
    assert history("run")["samples"] == 20


def test_csv_header_is_recognised_and_named_targets_work(cli, tmp_path):
    table = np.loadtxt(tmp_path / "small.csv", delimiter=",")
    with open(tmp_path / "named.csv", "w") as f:
        f.write("a,b,c,label\n")
        np.savetxt(f, table, delimiter=",", fmt="%.17g")
    ok(cli, "train", "--data", "named.csv", "--target", "label", "--sizes", "3,4,1", "--activation",
       "tanh", "--quiet", "--no-plot", "--epochs", "2", "--no-shuffle", "--out", "named")
    ok(cli, "train", *SMALL, "--epochs", "2", "--no-shuffle", "--out", "plain")
    assert history("named")["samples"] == history("plain")["samples"] == 48
    for a, b in zip(weights("named/model.npz"), weights("plain/model.npz")):
        np.testing.assert_array_equal(a, b)


# -- early stopping ------------------------------------------------------------------------

def test_patience_stops_and_keeps_the_best_weights(cli, tmp_path):
    """On onehot.csv the held-out rows' weights never move, so the validation loss is the
    same every epoch: the best epoch is the first, and patience 2 stops after epoch 3 with
    the weights after ONE step (not three)."""
    out, _ = ok(cli, *ONEHOT, "--epochs", "50", "--validation-split", "0.25", "--patience", "2", "--out", "run")
    h = history("run")
    assert "stopped: early_stopping" in out
    assert h["stop_reason"] == "early_stopping" and h["epochs"] == 3 and h["best_epoch"] == 0
    ok(cli, *ONEHOT, "--epochs", "1", "--validation-split", "0.25", "--out", "one")
    np.testing.assert_array_equal(weights("run/model.npz")[0], weights("one/model.npz")[0])


# -- the optimiser options reach fit --------------------------------------------------------

OPTIMISERS = {
    "sgd": (["--optimizer", "sgd", "--lr", "0.3"], lambda: bpgpu.SGD(lr=0.3)),
    "nesterov": (["--optimizer", "momentum", "--lr", "0.05", "--momentum", "0.5", "--nesterov"],
                 lambda: bpgpu.Momentum(lr=0.05, momentum=0.5, nesterov=True)),
    "momentum": (["--optimizer", "momentum", "--lr", "0.05", "--momentum", "0.5"],
                 lambda: bpgpu.Momentum(lr=0.05, momentum=0.5)),
    "adam-betas": (["--optimizer", "adam", "--lr", "0.01", "--beta1", "0.5", "--beta2", "0.9"],
                   lambda: bpgpu.Adam(lr=0.01, beta1=0.5, beta2=0.9)),
    "adam-default": ([], lambda: bpgpu.Adam(lr=0.001)),
    "lam": (["--optimizer", "sgd", "--lr", "0.3", "--lam", "0.2"], lambda: bpgpu.SGD(lr=0.3)),
}


def api_run(tmp_path, lam=0.0, bias=True, **options):
    X, Y = small_data(tmp_path)
    net = bpgpu.Network([3, 4, 1], activation="tanh", output="identity", loss="mse", lam=lam, bias=bias, seed=0)
    h = net.fit(X, Y, **options)
    return [np.array(t) for t in net.thetas], h


@pytest.mark.parametrize("name", OPTIMISERS)
def test_no_shuffle_and_optimiser_options_give_the_api_weights(cli, tmp_path, name):
    args, make_optimizer = OPTIMISERS[name]
    lam = 0.2 if name == "lam" else 0.0
    ok(cli, "train", *SMALL, *args, "--epochs", "3", "--batch-size", "5", "--no-shuffle", "--out", "run")
    expected, h = api_run(tmp_path, lam=lam, epochs=3, batch_size=5, shuffle=False, optimizer=make_optimizer())
    for got, want in zip(weights("run/model.npz"), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(history("run")["loss"], h.loss, rtol=1e-13)
    # A different order must change them, or the comparison above proves nothing.
    ok(cli, "train", *SMALL, *args, "--epochs", "3", "--batch-size", "5", "--out", "shuffled")
    assert max(np.max(np.abs(a - b)) for a, b in zip(weights("shuffled/model.npz"), expected)) > 1e-6


def test_batch_size_full_is_batch_gradient_descent(cli, tmp_path):
    ok(cli, "train", *SMALL, "--optimizer", "sgd", "--lr", "0.3", "--epochs", "4", "--batch-size", "full", "--out", "run")
    expected, _ = api_run(tmp_path, epochs=4, batch_size=None, optimizer="sgd", lr=0.3)
    assert history("run")["steps"] == 4
    for got, want in zip(weights("run/model.npz"), expected):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    # More rows than the default batch size (64): still one step an epoch.
    ok(cli, "train", "--data", "spirals", "--samples", "150", "--sizes", "2,4,3", "--epochs", "3", "--batch-size",
       "full", "--quiet", "--no-plot", "--out", "big")
    assert history("big")["steps"] == 3 and history("big")["samples"] == 450


def test_chunk_size_changes_nothing_but_rounding(cli, tmp_path):
    common = ["train", *SMALL, "--epochs", "3", "--batch-size", "12", "--optimizer", "sgd", "--lr", "0.3"]
    ok(cli, *common, "--out", "whole")
    ok(cli, *common, "--chunk-size", "5", "--out", "chunked")
    for a, b in zip(weights("whole/model.npz"), weights("chunked/model.npz")):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_no_bias_and_dtype_float32(cli, tmp_path):
    ok(cli, "train", *SMALL, "--epochs", "2", "--no-bias", "--dtype", "float32", "--out", "run")
    net = bpgpu.load("run/model.npz")
    assert net.bias is False and net.dtype == "float32"
    assert [tuple(t.shape) for t in net.thetas] == [(4, 3), (1, 4)]
    assert all(t.dtype == np.float32 for t in net.thetas)
    expected, _ = api_run(tmp_path, bias=False, epochs=2, batch_size=64, optimizer="adam", lr=0.001)
    for got, want in zip(net.thetas, expected):
        np.testing.assert_allclose(np.array(got, dtype=float), want, rtol=1e-4, atol=1e-6)


# -- stopping rules ----------------------------------------------------------------------------

def test_target_loss_stops_at_the_first_epoch_at_or_below_it(cli, tmp_path):
    ok(cli, "train", *SMALL, "--optimizer", "sgd", "--lr", "0.3", "--epochs", "30", "--out", "full")
    losses = history("full")["loss"]
    out, _ = ok(cli, "train", *SMALL, "--optimizer", "sgd", "--lr", "0.3", "--epochs", "30",
                "--target-loss", repr(losses[9]), "--out", "run")
    assert "stopped: target_loss" in out
    assert history("run")["loss"] == losses[:10]


def test_max_time_stops_early(cli, tmp_path):
    out, _ = ok(cli, "train", "--data", "spirals", "--samples", "400", "--sizes", "2,16,3", "--batch-size", "1",
                "--epochs", "100000", "--max-time", "0.5", "--quiet", "--no-plot", "--out", "run")
    h = history("run")
    assert "stopped: max_time" in out and h["stop_reason"] == "max_time"
    assert 0 < h["epochs"] < 100000 and 0.5 <= h["elapsed"] < 10


# -- data generators: --data-seed, --noise, --features -----------------------------------------

def spirals(cli, folder, *extra):
    ok(cli, "train", "--data", "spirals", "--samples", "60", "--sizes", "2,5,3", "--epochs", "2", "--quiet",
       "--no-plot", "--out", folder, *extra)
    return weights(f"{folder}/model.npz")


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_data_seed_chooses_the_data_and_defaults_to_seed(cli):
    base = spirals(cli, "a", "--seed", "1")
    assert same(base, spirals(cli, "b", "--seed", "1", "--data-seed", "1"))  # the default is --seed
    assert not same(base, spirals(cli, "c", "--seed", "1", "--data-seed", "2"))
    # The same data seed with another weight seed: the data stays, the initial weights change.
    h_a = history("a")
    assert not same(base, spirals(cli, "d", "--seed", "2", "--data-seed", "1"))
    assert history("d")["loss"] != h_a["loss"]


def test_noise_changes_the_data(cli):
    base = spirals(cli, "a", "--noise", "0.1")
    assert same(base, spirals(cli, "b", "--noise", "0.1"))
    assert not same(base, spirals(cli, "c", "--noise", "0.5"))


def test_features_sets_the_blobs_input_width(cli):
    ok(cli, "train", "--data", "blobs", "--features", "5", "--classes", "3", "--sizes", "5,4,3", "--samples", "60",
       "--epochs", "1", "--quiet", "--no-plot", "--out", "run")
    assert bpgpu.load("run/model.npz").sizes == [5, 4, 3]
    status, _, err = cli("train", "--data", "blobs", "--features", "4", "--sizes", "5,4,3", "--samples", "60",
                         "--epochs", "1", "--quiet")
    assert status == 1 and "blobs has 4 features and 3 classes" in err


# -- what is printed and written ----------------------------------------------------------------

def epoch_lines(out):
    return [line.split()[1] for line in out.splitlines() if line.startswith("epoch ") and "  loss " in line]


def test_log_every_and_quiet(cli, monkeypatch):
    from bpgpu.cli import progress

    common = ["train", "--data", "xor", "--samples", "40", "--sizes", "2,3,1", "--epochs", "6", "--no-plot"]
    out, err = ok(cli, *common, "--log-every", "2")
    assert epoch_lines(out) == ["2/6", "4/6", "6/6"] and err == ""  # stderr is no terminal: no bar
    monkeypatch.setattr(progress, "is_terminal", lambda stream: True)
    out, err = ok(cli, *common, "--log-every", "2")
    assert epoch_lines(out) == ["2/6", "4/6", "6/6"]
    assert "6/6" in err and "epoch" in err  # the progress bar, on a terminal's stderr
    out, _ = ok(cli, *common, "--log-every", "0")
    assert epoch_lines(out) == []
    out, err = ok(cli, *common, "--quiet")
    assert epoch_lines(out) == [] and err == ""
    assert "stopped: epochs" in out  # the summary stays


def test_without_out_nothing_is_written(cli, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    out, _ = ok(cli, "train", *SMALL, "--epochs", "2")
    assert "not saved: give --out DIR to keep the model" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_resume_writes_to_the_runs_own_folder(cli, tmp_path):
    ok(cli, "train", *SMALL, "--epochs", "4", "--checkpoint-every", "2", "--out", "run")
    (tmp_path / "run" / "model.npz").unlink()
    before = sorted(p.name for p in tmp_path.iterdir())
    ok(cli, "train", "--resume", "run/checkpoint.npz", "--epochs", "6")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert history("run")["epochs"] == 6 and len(history("run")["loss"]) == 6
    assert bpgpu.load("run/model.npz") is not None


# -- predict --backend ---------------------------------------------------------------------------

def test_predict_backend(cli, tmp_path):
    ok(cli, "train", *SMALL, "--epochs", "2", "--out", "run")
    X, _ = small_data(tmp_path)
    np.save(tmp_path / "X.npy", X)
    ok(cli, "predict", "run/model.npz", "--input", "X.npy", "--output", "numpy.npy", "--backend", "numpy")
    np.testing.assert_allclose(np.load(tmp_path / "numpy.npy"), bpgpu.load("run/model.npz").predict(X), rtol=1e-15)
    status, _, err = cli("predict", "run/model.npz", "--input", "X.npy", "--output", "cupy.npy", "--backend", "cupy")
    if "cupy" in bpgpu.available_backends() and not bpgpu.available_backends()["cupy"].startswith("unavailable"):
        assert status == 0, err
        np.testing.assert_allclose(np.load(tmp_path / "cupy.npy"), np.load(tmp_path / "numpy.npy"), rtol=1e-12)
    else:  # asked for a backend this machine lacks: refused, not silently run on NumPy
        assert status == 1 and "cupy" in err.lower() and not (tmp_path / "cupy.npy").exists()


# -- exit statuses, BPGPU_DEBUG, the console script -------------------------------------------------

def test_exit_statuses_0_1_2(cli):
    assert cli("train", *SMALL, "--epochs", "1")[0] == 0
    status, _, err = cli("train", "--data", "missing.csv", "--target", "-1", "--sizes", "3,1")
    assert status == 1 and err.startswith("bpgpu train: error:")
    with pytest.raises(SystemExit) as exit_:
        cli("train", "--no-such-option")
    assert exit_.value.code == 2


def test_interrupt_outside_training_is_130(cli, tmp_path, monkeypatch):
    ok(cli, "train", *SMALL, "--epochs", "1", "--out", "run")
    np.save(tmp_path / "X.npy", small_data(tmp_path)[0])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(bpgpu.Network, "forward", interrupted)  # the forward pass predict runs
    status, _, err = cli("predict", "run/model.npz", "--input", "X.npy")
    assert status == 130 and err.strip() == "bpgpu predict: interrupted"


def test_closed_pipe_is_141(tmp_path):
    subprocess.run([sys.executable, "-m", "bpgpu", "train", "--data", "xor", "--samples", "8", "--sizes", "2,2,1",
                    "--epochs", "1", "--quiet", "--no-plot", "--out", "run"], cwd=tmp_path, env=ENV, check=True,
                   capture_output=True)
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((50000, 2)))
    proc = subprocess.Popen([sys.executable, "-m", "bpgpu", "predict", "run/model.npz", "--input", "X.npy"],
                            cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"y0"
    proc.stdout.close()
    status = proc.wait(timeout=120)
    assert status == 141 and b"Traceback" not in proc.stderr.read()


def test_internal_error_is_one_line_unless_bpgpu_debug(cli, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("planted")
    monkeypatch.setattr(bpgpu.Network, "fit", broken)
    status, _, err = cli("train", *SMALL, "--epochs", "1")
    assert status == 1 and "internal error: RuntimeError: planted" in err and "BPGPU_DEBUG=1" in err
    monkeypatch.setenv("BPGPU_DEBUG", "1")
    with pytest.raises(RuntimeError, match="planted"):
        cli("train", *SMALL, "--epochs", "1")


def test_bpgpu_debug_shows_the_traceback_in_a_real_process(tmp_path):
    """An internal error from a damaged module on the path: a traceback only with BPGPU_DEBUG=1."""
    fake = tmp_path / "fake" / "matplotlib"  # (not tqdm: a stderr that is no terminal shows no bar)
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise RuntimeError('planted in matplotlib')\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), ENV["PYTHONPATH"]])}
    args = [sys.executable, "-m", "bpgpu", "train", "--data", "xor", "--samples", "8", "--sizes", "2,2,1",
            "--epochs", "1", "--out", "run"]
    plain = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert "internal error: RuntimeError: planted in matplotlib" in plain.stderr
    debug = subprocess.run(args, cwd=tmp_path, env={**env, "BPGPU_DEBUG": "1"}, capture_output=True, text=True,
                           timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "planted in matplotlib" in debug.stderr


def test_installed_console_script(tmp_path):
    exe = shutil.which("bpgpu")
    if exe is None:
        pytest.skip('the bpgpu console script is not installed here (pip install -e . puts it on PATH; CI does)')
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"bpgpu {bpgpu.__version__}"
    run = subprocess.run([exe, "train", "--data", "xor", "--samples", "16", "--sizes", "2,3,1", "--epochs", "2",
                          "--quiet", "--no-plot", "--out", "run"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert history(tmp_path / "run")["epochs"] == 2
    assert subprocess.run([exe, "train", "--bad"], capture_output=True, timeout=60).returncode == 2
