"""A closed stdout or stderr never costs the model: ``bpgpu train … | head -1``, ``2>&-``,
``>&-`` and a terminal gone (SIGHUP after the reader left) all still train and save. Printing
is best effort, saving is not; a command whose product is its output exits 141 when the
reader leaves, as a filter killed by SIGPIPE does, with no "Exception ignored" noise."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from clirun import BPGPU, ENDLESS, ENV, assert_one_saved_run, readline, start, wait_for_epoch
from reliability import tally

RELIABILITY = "pipes"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX pipes and descriptors")
SHORT = ["train", "--data", "spirals", "--sizes", "2,8,3", "--samples", "200", "--epochs", "30", "--log-every", "1",
         "--no-plot", "--out", "run"]
needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to close descriptors")


def reader_leaves(args, tmp_path: Path, lines: int = 1) -> tuple[int, str]:
    """(exit status, stderr) of ``bpgpu args`` whose stdout reader leaves after ``lines`` lines."""
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = start(args, tmp_path, stderr=stderr)
        try:
            for _ in range(lines):
                readline(process, process.stdout)
            process.stdout.close()  # what `head` does once it has its lines
            tally()
            process.wait(timeout=60)
        finally:
            process.kill()
    return process.returncode, (tmp_path / "stderr.txt").read_text()


def test_train_piped_into_head_still_trains_and_saves(tmp_path):
    """`bpgpu train … | head -1`: the reader leaves after one line; the run finishes, saves and exits 0"""
    status, err = reader_leaves(SHORT, tmp_path)
    assert status == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert assert_one_saved_run(tmp_path / "run") == 30


@needs_bash
@pytest.mark.parametrize("closed", ["2>&-", ">&-", ">&- 2>&-"])
def test_train_with_closed_standard_streams_still_saves(tmp_path, closed):
    """Started with stdout, stderr or both closed: trains and saves, and no file takes a standard descriptor's place"""
    done = subprocess.run(["bash", "-c", f'"$@" {closed}; echo "status $?"', "bash", *BPGPU, *SHORT],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60)
    tally()
    assert done.stdout.strip().splitlines()[-1] == "status 0", done.stderr
    assert assert_one_saved_run(tmp_path / "run") == 30


def test_a_progress_bar_whose_reader_left(tmp_path):
    """stderr (the progress bar) closed by its reader mid-run: the run is not cut short"""
    train = start(SHORT, tmp_path, stdout=subprocess.DEVNULL)
    try:
        select.select([train.stderr], [], [], 60)
        train.stderr.close()
        tally()
        train.wait(timeout=60)
    finally:
        train.kill()
    assert train.returncode == 0
    assert assert_one_saved_run(tmp_path / "run") == 30


def test_the_reader_gone_then_a_hangup(tmp_path):
    """The reader leaves, then SIGHUP (the terminal closed): saved, exit 129, nothing left half-written"""
    train = start(ENDLESS, tmp_path)
    try:
        wait_for_epoch(train)
        train.stdout.close()
        train.stderr.close()
        train.send_signal(signal.SIGHUP)
        tally(2)
        train.wait(timeout=60)
    finally:
        train.kill()
    assert train.returncode == 128 + signal.SIGHUP
    assert_one_saved_run(tmp_path / "run")


def test_predict_piped_into_head_exits_141_quietly(tmp_path):
    """`bpgpu predict … | head -1`: the product is the output, so 141 as for SIGPIPE, and no traceback"""
    subprocess.run([*BPGPU, "train", "--data", "xor", "--sizes", "2,4,1", "--epochs", "2", "--quiet", "--no-plot",
                    "--out", "run"], cwd=tmp_path, env=ENV, check=True, capture_output=True, timeout=60)
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((20000, 2)))
    status, err = reader_leaves(["predict", "run/model.npz", "--input", "X.npy"], tmp_path)
    assert status == 141 and err == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_output_to_a_full_disk_is_an_error_not_a_sigpipe(tmp_path):
    """predict > /dev/full: exit 1 and one line saying why (141 is for a reader that left)"""
    subprocess.run([*BPGPU, "train", "--data", "xor", "--sizes", "2,4,1", "--epochs", "2", "--quiet", "--no-plot",
                    "--out", "run"], cwd=tmp_path, env=ENV, check=True, capture_output=True, timeout=60)
    np.save(tmp_path / "X.npy", np.zeros((5, 2)))
    with open("/dev/full", "w") as full:
        done = subprocess.run([*BPGPU, "predict", "run/model.npz", "--input", "X.npy"], cwd=tmp_path, env=ENV,
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    tally()
    assert done.returncode == 1
    assert done.stderr == "bpgpu predict: error: could not write the output (No space left on device)\n"
