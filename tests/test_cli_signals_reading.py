"""A stopping signal before training stops ``bpgpu train`` at once, even while it blocks
reading its data (a FIFO no one writes to, a pipe that never ends): nothing trained, nothing
saved, one line, exit 128 + the signal. (Under mpiexec a pipe is refused before any read:
tests/test_distributed_cli.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from bpgpu.cli.signals import Stop
from clirun import BPGPU, ENV, default_signals, wait_until
from reliability import tally

RELIABILITY = "signals"
pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's /proc")
TRAIN = ["train", "--sizes", "2,4,1", "--epochs", "3", "--no-plot"]


def _stopped(process, signum):
    """Send ``signum`` once ``process`` handles it; the exit status and stderr. A process that
    stays blocked fails the test at the timeout."""
    wait_until(process.pid, signal.SIGTERM, "handled")
    process.send_signal(signum)
    tally()
    try:
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    return process.returncode, err


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_signal_stops_a_read_blocked_on_a_fifo(tmp_path, name):
    os.mkfifo(tmp_path / "data.csv")  # opening it blocks until a writer comes: none will
    train = subprocess.Popen([*BPGPU, *TRAIN, "--data", "data.csv"], cwd=tmp_path, env=ENV, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_signals)
    status, err = _stopped(train, getattr(signal, name))
    assert status == 128 + getattr(signal, name), err
    assert err.strip() == f"bpgpu train: stopped by {name} before training: nothing saved"


def test_a_signal_stops_a_read_from_a_pipe_that_never_ends(tmp_path):
    read, write = os.pipe()  # the writing end stays open and silent
    try:
        train = subprocess.Popen([*BPGPU, *TRAIN, "--data", "/dev/stdin"], cwd=tmp_path, env=ENV, text=True,
                                 stdin=read, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_signals)
        status, err = _stopped(train, signal.SIGTERM)
    finally:
        os.close(read)
        os.close(write)
    assert status == 143 and err.strip() == "bpgpu train: stopped by SIGTERM before training: nothing saved", err


def test_before_training_a_signal_raises_and_sets_the_status(capsys):
    """In-process: a long parse that checks for signals (as SIGINT already stopped) stops at
    the SIGTERM, not at its end."""
    stop = Stop()
    parsed = []
    with stop.catching():
        os.kill(os.getpid(), signal.SIGTERM)
        parsed.append("the rest of the parse")  # not reached: the handler raised first
    assert parsed == [] and stop.status() == 143
    assert capsys.readouterr().err == "bpgpu train: stopped by SIGTERM before training: nothing saved\n"
