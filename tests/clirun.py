"""Running ``bpgpu`` as a user does, in a process of its own, for the tests that stop,
starve or cut it off: a run long enough to be interrupted, and the checks that what it
saved is one consistent run."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from bpgpu import persistence

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
       "PYTHONUNBUFFERED": "1"}
ENV.pop("BPGPU_DEBUG", None)
BPGPU = [sys.executable, "-m", "bpgpu"]
# A run that would take hours, logging every epoch: only a signal or a closed stream ends it.
ENDLESS = ["train", "--data", "spirals", "--sizes", "2,16,3", "--samples", "400", "--batch-size", "50",
           "--epochs", "1000000", "--log-every", "1", "--no-plot", "--checkpoint-every", "2", "--out", "run"]


def start(args, cwd: Path, **popen) -> subprocess.Popen:
    """``bpgpu args`` started in ``cwd``, stdout and stderr piped unless given."""
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.Popen([*BPGPU, *args], cwd=cwd, env=ENV, text=True, **popen)


def readline(process: subprocess.Popen, stream, timeout: float = 60.0) -> str:
    """The next line of ``stream`` (a pipe from ``process``); the process is killed and the
    test fails, rather than hangs, when none comes within ``timeout`` seconds."""
    if not select.select([stream], [], [], timeout)[0]:
        process.kill()
        raise AssertionError(f"no output from {process.args} in {timeout} s")
    return stream.readline()  # a line is written whole, so the rest of it follows at once


def wait_for_epoch(process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Read ``process``'s stdout until it logs an epoch: training has begun."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = readline(process, process.stdout, max(0.0, deadline - time.monotonic()))
        if line.startswith("epoch "):
            return
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"no epoch logged by {process.args}")


def assert_one_saved_run(run: Path) -> int:
    """The model and history in ``run`` load and tell of the same epoch, and a checkpoint
    there (written at the end of an epoch, so not at a stop mid-epoch) loads; that epoch."""
    model = persistence.load_checkpoint(run / "model.npz")
    history = json.loads((run / "history.json").read_text())
    assert model.epoch >= 1 and history["epochs"] == model.epoch == len(history["loss"])
    assert history["loss"] == model.history["loss"]
    if (run / "checkpoint.npz").exists():
        assert persistence.load_checkpoint(run / "checkpoint.npz").epoch <= model.epoch
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    return model.epoch
