"""What ``bpgpu train`` shows while it runs: a bar on a terminal, plain loss lines elsewhere."""

import io
import subprocess
import sys
from types import SimpleNamespace

from bpgpu.cli import progress
from bpgpu.training import History

from clirun import ENV


class Terminal(io.StringIO):
    def isatty(self):
        return True


def show(monkeypatch, stderr, epochs=4):
    """Drive a Progress over ``epochs`` epochs with ``stderr`` as sys.stderr; (stdout, stderr) text."""
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    shown = progress.Progress(SimpleNamespace(epochs=epochs, log_every=1, quiet=False), 0)
    history = History()
    for epoch in range(epochs):
        history.loss.append(1.0 / (epoch + 1))
        history.samples += 10
        shown.epoch(epoch, history, {"accuracy": 0.5})
    shown.close()
    return stdout.getvalue(), stderr.getvalue()


def test_a_log_file_gets_the_loss_lines_alone(monkeypatch):
    out, err = show(monkeypatch, io.StringIO())
    assert err == ""
    assert out.splitlines() == [f"epoch {e}/4  loss {1 / e:.6g}  accuracy 0.5" for e in range(1, 5)]


def test_a_terminal_gets_the_bar_and_the_lines(monkeypatch):
    out, err = show(monkeypatch, Terminal())
    assert "\r" in err and "4/4" in err and "epoch" in err  # tqdm's redrawn line
    assert out.splitlines() == [f"epoch {e}/4  loss {1 / e:.6g}  accuracy 0.5" for e in range(1, 5)]


def test_a_closed_stderr_is_not_a_terminal():
    closed = io.StringIO()
    closed.close()
    assert not progress.is_terminal(closed) and not progress.is_terminal(None)


def test_train_with_its_streams_in_files_writes_no_bar(tmp_path):
    """As under ``mpiexec`` or ``2> log``: stderr holds no bar redraws, stdout one line per epoch."""
    run = subprocess.run([sys.executable, "-m", "bpgpu", "train", "--data", "xor", "--samples", "40", "--sizes", "2,3,1",
                          "--epochs", "3", "--log-every", "1", "--no-plot", "--out", "run"],
                         cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr and "epoch/s" not in run.stderr and "s/epoch" not in run.stderr
    assert [line.split()[:2] for line in run.stdout.splitlines() if line.startswith("epoch ")][:3] == \
        [["epoch", "1/3"], ["epoch", "2/3"], ["epoch", "3/3"]]
