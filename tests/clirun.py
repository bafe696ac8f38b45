"""Running ``bpgpu`` as a user does, in a process of its own, for the tests that stop,
starve or cut it off: a run long enough to be interrupted, and the checks that what it
saved is one consistent run."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from bpgpu.io import persistence

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
       "PYTHONUNBUFFERED": "1"}
ENV.pop("BPGPU_DEBUG", None)
BPGPU = [sys.executable, "-m", "bpgpu"]
# A run that would take hours, logging every epoch: only a signal or a closed stream ends it.
ENDLESS = ["train", "--data", "spirals", "--sizes", "2,16,3", "--samples", "400", "--batch-size", "50",
           "--epochs", "1000000", "--log-every", "1", "--no-plot", "--checkpoint-every", "2", "--out", "run"]


def default_signals() -> None:
    """In a child before it runs: Ctrl-C as from a terminal, whatever this test process
    inherited (a shell started with `nohup … &` makes its children ignore SIGINT, and an
    ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args, cwd: Path, **popen) -> subprocess.Popen:
    """``bpgpu args`` started in ``cwd`` with SIGINT at its default, stdout and stderr piped
    unless given."""
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "preexec_fn": default_signals, "env": ENV, **popen}
    return subprocess.Popen([*BPGPU, *args], cwd=cwd, text=True, **popen)


def _status(pid: int, field: str) -> str | None:
    """A field of /proc/PID/status (Linux), or None once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return next(line for line in lines if line.startswith(field + ":")).split()[1]


def _signal_mask(pid: int, field: str) -> int:
    """A signal mask of /proc/PID/status (SigCgt: handled, SigPnd/ShdPnd: pending); 0 once
    the process is gone."""
    return int(_status(pid, field) or "0", 16)


def wait_for_file(process: subprocess.Popen, path: Path, timeout: float = 60.0) -> None:
    """Wait until ``process`` has written ``path``; the test fails if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{process.args} wrote no {path}")
        time.sleep(0.01)


def wait_until(pid: int, signum: int, state: str, timeout: float = 60.0) -> None:
    """Wait until process ``pid`` handles ``signum`` (state "handled": its handler is
    installed) or no longer has it pending ("delivered": the kernel has run its handler,
    which for Python is the C-level one that notes it), as Linux's /proc says; the test fails when that does not happen within ``timeout``."""
    bit, deadline = 1 << (signum - 1), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state == "handled" and _signal_mask(pid, "SigCgt") & bit:
            return
        if state == "delivered" and not (_signal_mask(pid, "SigPnd") | _signal_mask(pid, "ShdPnd")) & bit:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid}: signal {signum} not {state} in {timeout} s")


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
