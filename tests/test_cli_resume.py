"""``bpgpu train --resume`` continues exactly: from a stop within an epoch (a real SIGTERM
after a chosen step), with or without --patience or an --lr-schedule, from a checkpoint the library wrote,
and after checkpoint writes that failed on a full disk. In-process, so that a step can be
chosen and a write made to fail."""

import errno
import json
import os
import signal
import threading

import numpy as np
import pytest

from bpgpu.io import persistence
from bpgpu.cli import train
from bpgpu.cli.signals import Stop

RELIABILITY = "resume"

# 150 spirals in batches of 16: 10 steps an epoch.
COMMON = ["--data", "spirals", "--sizes", "2,8,3", "--samples", "150", "--batch-size", "16", "--lam", "0.001",
          "--seed", "3", "--quiet", "--no-plot"]
OPTIMIZERS = {"sgd": ["--optimizer", "sgd", "--lr", "0.3"], "nesterov": ["--optimizer", "momentum", "--nesterov"],
              "adam": ["--optimizer", "adam", "--lr", "0.01"]}
# Each with its steps an epoch (120 rows to train on after a validation split of 0.2).
WATCHES = {"plain": ([], 10), "patience": (["--validation-split", "0.2", "--patience", "1"], 8),
           "schedule": (["--lr-schedule", "invscaling", "--power-t", "0.25"], 10)}



def weights(path):
    return [np.array(t) for t in persistence.load(path).thetas]


def history(folder):
    return json.loads((folder / "history.json").read_text())


def sigterm_after(monkeypatch, steps):
    """The run's Stop, sent a real SIGTERM after its ``steps``-th step (fit asks it after each step, and
    nothing asks it before training: a signal then raises Stopped, signals.py)."""
    class Counting(Stop):
        taken = 0

        def __call__(self):
            Counting.taken += 1
            if Counting.taken == steps:
                signal.raise_signal(signal.SIGTERM)
            return super().__call__()
    monkeypatch.setattr(train, "Stop", Counting)


@pytest.mark.parametrize("watch", list(WATCHES))
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_sigterm_within_an_epoch_then_resume_is_the_uninterrupted_run(cli, tmp_path, monkeypatch, optimizer, watch):
    """SIGTERM after epoch 1 and 3 steps: model.npz is at epoch 1 and step 3, checkpoint.npz stays the
    whole epoch 1; resuming either gives the weights and history of the run that never stopped"""
    watching, per_epoch = WATCHES[watch]
    args = [*COMMON, *OPTIMIZERS[optimizer], *watching, "--checkpoint-every", "1"]
    assert cli("train", *args, "--epochs", "4", "--out", "straight")[0] == 0
    sigterm_after(monkeypatch, per_epoch + 3)
    status, out, err = cli("train", *args, "--epochs", "4", "--out", "run")
    assert status == 143 and "stopped: interrupted" in out and "and 3 steps of epoch 2" in out, err
    model, checkpoint = (persistence.load_checkpoint(tmp_path / f"run/{f}.npz") for f in ("model", "checkpoint"))
    assert (model.epoch, model.position.step, len(model.position.losses)) == (1, 3, 3)
    assert (checkpoint.epoch, checkpoint.position.step) == (1, 0)  # a stop never writes a part epoch there
    assert checkpoint.history["elapsed"] > 0  # the time the epoch took, not 0
    stopped = history(tmp_path / "run")
    assert (stopped["epochs"], len(stopped["loss"]), stopped["steps"], stopped["part"]["steps"]) == \
        (1, 1, per_epoch + 3, 3)
    monkeypatch.setattr(train, "Stop", Stop)
    straight = history(tmp_path / "straight")
    for resumed in ("model", "checkpoint"):
        assert cli("train", "--resume", f"run/{resumed}.npz", "--epochs", "4", "--out", resumed)[0] == 0
        for got, expected in zip(weights(tmp_path / f"{resumed}/model.npz"), weights(tmp_path / "straight/model.npz")):
            np.testing.assert_array_equal(got, expected)
        again = history(tmp_path / resumed)
        for key in ("loss", "val_loss", "lr", "epochs", "steps", "samples", "stop_reason", "best_epoch", "part"):
            assert again[key] == straight[key], key


def test_history_after_resume_counts_the_whole_run(cli, tmp_path):
    """steps, samples and samples/s of history.json cover the run before --resume too"""
    assert cli("train", *COMMON, "--epochs", "2", "--out", "run")[0] == 0
    first = history(tmp_path / "run")
    assert cli("train", "--resume", "run/model.npz", "--epochs", "5")[0] == 0
    whole = history(tmp_path / "run")
    assert (first["steps"], first["samples"]) == (20, 300) and (whole["steps"], whole["samples"]) == (50, 750)
    assert whole["elapsed"] > first["elapsed"]
    assert whole["samples_per_s"] == pytest.approx(750 / whole["elapsed"], rel=1e-12)


def test_a_library_checkpoint_resumes_with_its_own_optimiser(cli, tmp_path):
    """No CLI record in the file: the saved sgd lr=0.2 continues (not the CLI's default adam), and nothing
    blames an option nobody typed"""
    import bpgpu
    from bpgpu.data import xor

    X, Y = xor(32, noise=0.1, seed=1)
    net = bpgpu.Network([2, 4, 1], activation="tanh", seed=2)
    net.fit(X, Y, epochs=3, batch_size=8, optimizer=bpgpu.Momentum(lr=0.2, momentum=0.5))
    persistence.save(net, tmp_path / "lib.npz", optimizer=net.optimizer, epoch=3)
    status, out, err = cli("train", "--resume", "lib.npz", "--data", "xor", "--samples", "32", "--epochs", "5",
                           "--quiet", "--no-plot")
    assert status == 0, err
    assert "with momentum lr=0.2 on" in out
    saved = persistence.load_checkpoint(tmp_path / "model.npz").optimizer
    assert (saved.name, saved.lr, saved.momentum) == ("momentum", 0.2, 0.5)
    status, _, err = cli("train", "--resume", "lib.npz", "--data", "xor", "--epochs", "5", "--optimizer", "adam")
    assert status == 1 and "--optimizer adam: the checkpoint was trained with momentum" in err


def test_a_full_disk_at_a_checkpoint_warns_and_training_goes_on(cli, tmp_path, monkeypatch):
    """Every checkpoint write fails with ENOSPC: one warning each, the old checkpoint whole, no temporaries
    left, and the model saved at the end is the uninterrupted run's"""
    args = [*COMMON, "--checkpoint-every", "1"]
    assert cli("train", *args, "--epochs", "5", "--out", "straight")[0] == 0
    assert cli("train", *args, "--epochs", "2", "--out", "run")[0] == 0
    before = (tmp_path / "run/checkpoint.npz").read_bytes()
    real = persistence.atomic_write

    def full_disk(path, write):
        if path.name != "checkpoint.npz":
            return real(path, write)

        def fail(f):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, fail)
    monkeypatch.setattr(persistence, "atomic_write", full_disk)
    status, out, err = cli("train", "--resume", "run/model.npz", "--epochs", "5", "--no-plot")
    assert status == 0, err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 3 and "checkpoint.npz: could not write it (No space left on device)" in warnings[0]
    assert (tmp_path / "run/checkpoint.npz").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.npz", "history.json", "model.npz"]
    for got, expected in zip(weights(tmp_path / "run/model.npz"), weights(tmp_path / "straight/model.npz")):
        np.testing.assert_array_equal(got, expected)


def test_resuming_a_run_fed_from_a_pipe_asks_for_its_data_again(cli, tmp_path):
    """A FIFO is read once: --resume without --data says so, naming --data, instead of reading (or waiting on) it"""
    feed = tmp_path / "feed"
    os.mkfifo(feed)
    rows = "x0,x1,y\n" + "0,0,0\n0,1,1\n1,0,1\n1,1,0\n" * 4
    threading.Thread(target=feed.write_text, args=(rows,), daemon=True).start()
    assert cli("train", "--data", "feed", "--target", "y", "--sizes", "2,3,1", "--epochs", "2", "--quiet",
               "--no-plot", "--out", "run")[0] == 0
    status, _, err = cli("train", "--resume", "run/model.npz", "--epochs", "3")
    assert status == 1 and f"--data: the run in run/model.npz read its data from {feed}, a pipe that cannot be " \
                           "read again; give --data with the same rows to resume it" in err
    (tmp_path / "same.csv").write_text(rows)
    assert cli("train", "--resume", "run/model.npz", "--epochs", "3", "--data", "same.csv", "--no-plot")[0] == 0
