"""Stopping signals during ``bpgpu train`` keep the work: SIGTERM and SIGHUP (batch systems,
``timeout``, ``docker stop``, a closed terminal) stop after the current step and save as
Ctrl-C does, then exit 128 + the signal's number; a second signal during the saving cuts
nothing short. Each run here is a real process, stopped at a random moment of training."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time

import pytest

from bpgpu import cli
from clirun import (ENDLESS, ENV, BPGPU, assert_one_saved_run, default_signals, start, wait_for_epoch, wait_for_file,
                    wait_until)
from reliability import tally

RELIABILITY = "signals"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", SIGNALS)
def test_a_stopping_signal_saves_the_run_and_exits_with_its_status(tmp_path, name, seed):
    """A stopping signal at a random moment of training: model and history saved, one stderr line, 128 + signal"""
    signum = SIGNALS[name]
    train = start(ENDLESS, tmp_path)
    try:
        wait_for_epoch(train)
        time.sleep(random.Random(seed).uniform(0.0, 0.3))
        train.send_signal(signum)
        tally()
        _, err = train.communicate(timeout=60)
    finally:
        train.kill()
    assert train.returncode == 128 + signum, err
    said = [line for line in err.splitlines() if "stopped by" in line]
    assert len(said) == 1 and said[0].startswith(f"bpgpu train: stopped by {name}"), err
    assert all(f"run/{f}" in said[0] for f in ("model.npz", "history.json")), said
    assert "Traceback" not in err
    assert_one_saved_run(tmp_path / "run")


def test_a_barrage_of_signals_leaves_one_whole_run(tmp_path):
    """Signals every 2 ms until the process is gone: the first stops it, the rest leave the saved run whole"""
    train = start(ENDLESS, tmp_path, stdout=subprocess.DEVNULL)
    try:
        wait_for_file(train, tmp_path / "run" / "checkpoint.npz")
        deadline = time.monotonic() + 60
        rng = random.Random(3)
        sent = []
        while train.poll() is None and time.monotonic() < deadline:
            sent.append(rng.choice([signal.SIGTERM, signal.SIGHUP]))
            train.send_signal(sent[-1])
            if len(sent) == 1:  # the first has arrived before any other is sent (the kernel
                wait_until(train.pid, sent[0], "delivered")  # hands pending ones over lowest first)
            time.sleep(0.002)
        tally(len(sent))
        _, err = train.communicate(timeout=60)
    finally:
        train.kill()
    # 128 + the first; or, once the run is saved and its handlers gone, killed by a later one.
    assert train.returncode in (128 + sent[0], *(-s for s in sent[1:])), err
    assert f"stopped by {signal.Signals(sent[0]).name} at epoch" in err
    assert_one_saved_run(tmp_path / "run")


def test_signals_during_the_saving_wait_for_it(tmp_path, monkeypatch, capsys):
    """SIGTERM, Ctrl-C and SIGHUP while the model is being written: every file is still written, then exit 143"""
    monkeypatch.chdir(tmp_path)
    real_save = cli.train.persistence.save

    def save_under_fire(*args, **kwargs):
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            os.kill(os.getpid(), signum)  # Python runs the handler before the next line
            tally()
        return real_save(*args, **kwargs)

    monkeypatch.setattr(cli.train.persistence, "save", save_under_fire)
    before = {signum: signal.getsignal(signum) for signum in SIGNALS.values()}
    status = cli.main(["train", "--data", "xor", "--sizes", "2,4,1", "--epochs", "3", "--quiet", "--no-plot",
                       "--out", "run"])
    err = capsys.readouterr().err
    assert status == 143, err
    assert "stopped by SIGTERM at epoch 3: saved run/model.npz, run/history.json" in err
    assert_one_saved_run(tmp_path / "run")
    assert {signum: signal.getsignal(signum) for signum in SIGNALS.values()} == before  # handlers given back


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for job control")
def test_ctrl_c_reaches_a_background_job_under_job_control(tmp_path):
    """`set -m`: a background run gets SIGINT as from a terminal, saves and exits 130"""
    # Bounded, and the job killed should the shell be: no run outlives the test.
    script = ('set -m; "$@" > out.txt 2> err.txt & trap "kill -KILL %1 2>/dev/null" EXIT; '
              'for i in $(seq 1500); do grep -q "^epoch" out.txt && break; sleep 0.02; done; '
              'kill -INT %1; wait %1; echo "status $?"')
    done = subprocess.run(["bash", "-c", script, "bash", *BPGPU, *ENDLESS], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=60, preexec_fn=default_signals)
    tally()
    err = (tmp_path / "err.txt").read_text()
    assert done.stdout.strip() == "status 130", err
    assert "stopped by SIGINT (Ctrl-C)" in err
    assert_one_saved_run(tmp_path / "run")


def test_the_first_stopping_signal_decides_the_status(tmp_path, monkeypatch, capsys):
    """Ctrl-C, then SIGTERM, during training: stopped by SIGINT, exit 130 (fit's own handler
    takes the Ctrl-C, so the command reads the order of arrival from Python's wakeup pipe)"""
    monkeypatch.chdir(tmp_path)
    real_epoch = cli.train.Progress.epoch

    def epoch_then_signals(self, epoch, *args):
        if epoch == 1:
            for signum in (signal.SIGINT, signal.SIGTERM):  # each handled in C before kill returns
                os.kill(os.getpid(), signum)
            tally(2)
        return real_epoch(self, epoch, *args)

    monkeypatch.setattr(cli.train.Progress, "epoch", epoch_then_signals)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal, even under nohup
    try:
        status = cli.main(["train", "--data", "xor", "--sizes", "2,4,1", "--epochs", "50", "--quiet", "--no-plot",
                           "--out", "run"])
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err
    assert status == 130, err
    assert "bpgpu train: stopped by SIGINT (Ctrl-C) at epoch 2: saved run/model.npz" in err
    assert_one_saved_run(tmp_path / "run")
