"""Every file the command line writes goes through ``bpgpu.io.atomic``: train's model, history
and pictures, predict's output, bench's reports. A symlink, FIFO or folder where one of
them goes is refused in one line naming it, before any training or measuring; a write cut
off by ``ulimit -f`` leaves the previous file whole and says which file."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bpgpu.cli import main
from clirun import BPGPU, ENV
from reliability import tally

RELIABILITY = "files"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symlinks, FIFOs and rlimits are POSIX")
PLOTTING = ["train", "--data", "xor", "--sizes", "2,3,1", "--epochs", "2", "--quiet", "--out", "run"]
TRAIN = [*PLOTTING, "--no-plot"]


def symlink_to_precious(path: Path):
    (path.parent / "precious.txt").write_text("someone else's file\n")
    os.symlink(path.parent / "precious.txt", path)


HOSTILE = {"a symlink": (symlink_to_precious, "symlink"), "a FIFO": (os.mkfifo, "FIFO"),
           "a folder": (os.mkdir, "folder")}


def unchanged(path: Path) -> tuple:
    """What a write would change at ``path``: its kind, inode, size and modification time,
    and a symlink's target. Not its access time: a refusal may read it (readlink, stat of a
    folder), and under relatime the first access after creation moves it, tick by tick."""
    st = os.lstat(path)
    return (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns,
            os.readlink(path) if os.path.islink(path) else None)


def refused(argv, capsys, path: Path, kind: str) -> None:
    """``bpgpu argv`` exits 1 with one stderr line naming ``path`` as ``kind``, leaving it as it was."""
    before = unchanged(path)
    capsys.readouterr()
    assert main(argv) == 1
    tally()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and kind in lines[0] and "refusing" in lines[0], lines
    assert unchanged(path) == before
    if kind == "symlink":
        assert (path.parent / "precious.txt").read_text() == "someone else's file\n"


@pytest.mark.parametrize("name", ["model.npz", "history.json", "loss.png", "checkpoint.npz"])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_train_refuses_a_hostile_file_in_its_folder_before_training(tmp_path, monkeypatch, capsys, name, hostile):
    """train: a symlink, FIFO or folder in place of a file of the run, refused before training"""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    make, kind = HOSTILE[hostile]
    make(tmp_path / "run" / name)
    refused(PLOTTING, capsys, Path("run") / name, kind)
    assert not (tmp_path / "run/model.npz").is_file() or name == "model.npz"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_predict_refuses_a_hostile_output_before_predicting(tmp_path, monkeypatch, capsys, hostile):
    """predict --output: a symlink, FIFO or folder there, refused"""
    monkeypatch.chdir(tmp_path)
    assert main(TRAIN) == 0
    np.save("X.npy", np.zeros((3, 2)))
    make, kind = HOSTILE[hostile]
    make(tmp_path / "Y.csv")
    refused(["predict", "run/model.npz", "--input", "X.npy", "--output", "Y.csv"], capsys, Path("Y.csv"), kind)


@pytest.mark.parametrize("option", ["--json", "--markdown"])
def test_bench_refuses_a_hostile_report_before_measuring(tmp_path, monkeypatch, capsys, option):
    """bench --json/--markdown to a symlink: refused before anything is measured"""
    monkeypatch.chdir(tmp_path)
    symlink_to_precious(tmp_path / "report")
    refused(["bench", "--smoke", "--workloads", "W0", "--peers", "none", option, "report"], capsys,
            Path("report"), "symlink")
    assert "W0" not in capsys.readouterr().err  # no case started


@pytest.mark.parametrize("name", ["Y.NPY", "Y.Npy", "Y.csv"])
def test_predict_writes_exactly_the_file_it_names(tmp_path, monkeypatch, capsys, name):
    """predict --output Y.NPY writes Y.NPY (np.save alone would write Y.NPY.npy), atomically"""
    monkeypatch.chdir(tmp_path)
    assert main(TRAIN) == 0
    np.save("X.npy", np.zeros((3, 2)))
    capsys.readouterr()
    assert main(["predict", "run/model.npz", "--input", "X.npy", "--output", name]) == 0
    assert f"to {name}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", "X.npy", name])
    rows = np.load(name) if name.lower().endswith(".npy") else np.loadtxt(name, delimiter=",", skiprows=1)
    assert len(rows) == 3


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for ulimit -f")
@pytest.mark.parametrize("command", ["predict", "train"])
def test_ulimit_f_leaves_the_previous_file(tmp_path, command):
    """`ulimit -f` cuts a write short: one line naming the file, the previous file whole"""
    subprocess.run([*BPGPU, *TRAIN], cwd=tmp_path, env=ENV, check=True, capture_output=True, timeout=60)
    if command == "predict":
        np.save(tmp_path / "X.npy", np.random.default_rng(0).random((20000, 2)))
        (tmp_path / "Y.csv").write_text("y0\n0.5\n")
        argv, victim = ["predict", "run/model.npz", "--input", "X.npy", "--output", "Y.csv"], "Y.csv"
    else:  # the model keeps its history: 5,000 epochs of it outgrow the limit
        argv, victim = [*TRAIN, "--epochs", "5000", "--batch-size", "full", "--samples", "4"], "run/model.npz"
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    done = subprocess.run(["bash", "-c", 'ulimit -f 64 && exec "$@"', "bash", *BPGPU, *argv], cwd=tmp_path,
                          env=ENV, capture_output=True, text=True, timeout=60)
    tally()
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert victim in lines[0] and "File too large" in lines[0] and "previous file" in lines[0], lines
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # nothing new either


def test_pictures_and_reports_are_written_atomically(tmp_path):
    """loss.png, regions.png, bench's PNG, JSON and Markdown go through bpgpu.io.atomic: a symlink refused"""
    pytest.importorskip("matplotlib")
    from bpgpu import plotting
    from bpgpu.bench import report

    history = {"loss": [1.0, 0.5], "val_loss": []}
    bench = {"meta": {"command": "bpgpu bench", "cpu": "cpu", "cores": 1, "threads": 1, "platform": "here",
                      "versions": {}, "backends": {}, "unavailable": {}, "smoke": True}, "results": []}
    writers = {"loss.png": lambda path: plotting.loss_curve(history, path),
               "regions.png": lambda path: plotting.regions(lambda P: (P[:, 0] > 0).astype(int), np.eye(2),
                                                            np.arange(2), path, resolution=8),
               "bench.png": lambda path: plotting.throughput([], path),
               "bench.json": lambda path: report.write(bench, json_path=path),
               "bench.md": lambda path: report.write(bench, markdown_path=path)}
    for name, write in writers.items():
        symlink_to_precious(tmp_path / name)
        with pytest.raises(OSError, match=f"{name}: refusing to write: it is a symlink"):
            write(tmp_path / name)
        tally()
        os.unlink(tmp_path / name)
        if name.endswith(".png"):
            write(tmp_path / name)
            assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "precious.txt").read_text() == "someone else's file\n"
