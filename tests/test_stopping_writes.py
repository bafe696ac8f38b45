"""``bench`` and ``predict --output`` under a stopping signal, and ``bench``'s sizes that
cannot fit: SIGTERM mid-write leaves no temporary (it stayed, as large as the output, until
the next write), SIGTERM while measuring still reports the cases measured (all were lost),
a signal while the report is written waits for it, and a huge ``--batches`` or
``--batch-sizes`` is one line before any case (it was a traceback inside each case).

The signals are sent by the process to itself at a chosen point (a patched writer or case),
so nothing depends on timing; every test checks that the handlers are restored."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import numpy as np
import pytest

from bpgpu import bench
from bpgpu.io import atomic, persistence
from bpgpu.bench import cli as bench_cli
from bpgpu.bench import report as bench_report
from bpgpu.cli import main
from bpgpu.cli import predict as predict_cli
from bpgpu.network import Network
from clirun import BPGPU, ENV


@pytest.fixture(autouse=True)
def default_dispositions():
    """SIGTERM/SIGHUP at their defaults for the test (a shell may have ignored them), and the
    same handlers after it as before: the commands must put theirs back."""
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s in before:
        signal.signal(s, signal.SIG_DFL)
    yield
    assert {s: signal.getsignal(s) for s in before} == dict.fromkeys(before, signal.SIG_DFL)
    for s, handler in before.items():
        signal.signal(s, handler)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_predict_writes_its_output_leaves_no_temporary(tmp_path, monkeypatch, capsys, signum):
    monkeypatch.chdir(tmp_path)
    persistence.save(Network([2, 3, 1], seed=0), "model.npz")
    np.save("x.npy", np.random.default_rng(0).normal(size=(500, 2)))

    def write_then_signal(path, Y, names, fmt):
        def write(f):
            f.write(b"y0\n" * 1000)  # part of the output is on the disk
            os.kill(os.getpid(), signum)
            f.write(b"never")
        return atomic.atomic_write(path, write)

    monkeypatch.setattr(predict_cli, "write_table", write_then_signal)
    capsys.readouterr()
    assert main(["predict", "model.npz", "--input", "x.npy", "--output", "y.csv"]) == 128 + signum
    assert capsys.readouterr().err.strip().splitlines() == [
        f"bpgpu predict: stopped by {signal.Signals(signum).name}; y.csv not written"]
    assert leftovers(tmp_path) == [] and not (tmp_path / "y.csv").exists()


def fake_cases(monkeypatch, stop_at: int):
    """run_case returns a row per case, and at case ``stop_at`` sends SIGTERM to this process."""
    calls = []

    def run_case(w, backend, dtype, m, **kw):
        calls.append(m)
        if len(calls) == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("SIGTERM did not stop the case")
        return {"workload": w.name, "backend": "numpy", "dtype": dtype, "batch": m, "optimizer": kw["optimizer"],
                "sizes": list(w.sizes), "fit": {"samples_per_s": 1.0, "seconds": 1.0}}

    monkeypatch.setattr(bench_cli, "run_case", run_case)
    return calls


BENCH = ["--smoke", "--workloads", "W0", "--backends", "numpy", "--peers", "none", "--batch-sizes", "3,4,5,6"]


def test_sigterm_while_measuring_reports_what_was_measured(tmp_path, monkeypatch, capsys):
    calls = fake_cases(monkeypatch, stop_at=3)
    code = bench.main([*BENCH, "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")])
    assert code == 143 and calls == [3, 4, 5]  # the fourth case never started
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["batch"] for r in report["results"]] == [3, 4]
    assert report["meta"]["stopped"] == "by SIGTERM after 2 cases"
    out = capsys.readouterr()
    assert "bpgpu bench: stopped by SIGTERM after 2 cases; reporting those" in out.err
    assert (tmp_path / "r.md").read_text() in out.out and leftovers(tmp_path) == []


def test_sigterm_while_the_report_is_written_waits_for_it(tmp_path, monkeypatch, capsys):
    fake_cases(monkeypatch, stop_at=99)
    real = bench_report.atomic_write_text

    def signal_then_write(path, text, **kw):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(path, text, **kw)

    monkeypatch.setattr(bench_report, "atomic_write_text", signal_then_write)
    assert bench.main([*BENCH, "--json", str(tmp_path / "r.json")]) == 143
    assert [r["batch"] for r in json.loads((tmp_path / "r.json").read_text())["results"]] == [3, 4, 5, 6]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("option", [["--batches", "10000000000000"], ["--batch-sizes", "3,100000000000000"],
                                    ["--batches", "99999999999999999999"]])
def test_sizes_that_cannot_fit_are_one_line_before_any_case(tmp_path, option):
    done = subprocess.run([*BPGPU, "bench", "--smoke", "--workloads", "W0", "--peers", "none", *option,
                           "--json", "r.json"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    culprit = "--batch-sizes 100000000000000 with --batches 4" if option[0] == "--batch-sizes" else \
        f"--batches {option[1]} with W0's batch size 3"
    assert lines[0].startswith(f"bpgpu bench: error: {culprit}: expected what fits in the memory available")
    assert not (tmp_path / "r.json").exists()
