"""Input files are read faithfully: no example silently lost (a byte-order mark, an empty
cell in the first row), and what cannot be read (not UTF-8, an over-long field,
Python objects in a .npz, a forged .npy header, values beyond float32, a class count too
large to one-hot) is one line naming the file, and the line or row where known, before any
work. Files without a suffix — pipes, ``/dev/stdin`` — are read when their first bytes
tell the format; devices and folders are refused without reading."""

from __future__ import annotations

import io
import os
import subprocess

import numpy as np
import pytest

from bpgpu.cli import main
from clirun import BPGPU, ENV
from reliability import tally

RELIABILITY = "inputs"

TRAIN = ["train", "--sizes", "2,3,1", "--epochs", "1", "--quiet", "--no-plot"]
XOR = "0,0,0\n0,1,1\n1,0,1\n1,1,0\n"


def run(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(argv)
    tally()
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("text, argv", [
    ("\ufeff" + XOR, ["--target", "-1"]),
    ("\ufeffx0,x1,y\n" + XOR, ["--target", "y"]),
    ("0,,0\n" + XOR[6:], ["--target", "2", "--columns", "0"]),
    ("0, 0 ,0\r\n0,1,1\r\n1,0,1\r\n1,1,0\r\n", ["--target", "-1"]),
], ids=["BOM, no header", "BOM before a header", "empty cell in the first row", "spaces and CRLF"])
def test_every_example_is_read(tmp_path, monkeypatch, capsys, text, argv):
    """A headerless CSV keeps its first example whatever its first bytes; a header is told only by text cells"""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_bytes(text.encode("utf-8"))
    sizes = ["--sizes", "1,3,1"] if "--columns" in argv else []
    status, out, err = run([*TRAIN, *sizes, "--data", "d.csv", *argv], capsys)
    assert status == 0, err
    assert "on 4 examples from d.csv" in out


BAD = {
    "not UTF-8": (b"x0,x1,y\n0,0,0\n0,\xe9,1\n", "d.csv", ["d.csv: line 3", "not UTF-8", "0xe9"]),
    "a field over the limit": (b"x0,x1,y\n0," + b"1" * 200_000 + b",0\n", "d.csv", ["d.csv: row 1", "column 'x1'", "finite", "inf"]),
    "UTF-16": (("x0,x1,y\n" + XOR).encode("utf-16"), "d.csv", ["d.csv: line 1", "not UTF-8", "0xff"]),
    "an empty first cell used as input": (b"0,,0\n" + XOR.encode(), "d.csv", ["d.csv: line 1", "column 1", "''"]),
    "beyond float32": (b"x0,x1,y\n0,0,0\n0,1e39,1\n", "d.csv", ["d.csv: row 2", "1e+39 overflows float32"]),
}


def object_npz() -> bytes:
    f = io.BytesIO()
    np.savez(f, X=np.array([[1, 2]], dtype=object), Y=np.array([1.0]))
    return f.getvalue()


def forged_npy() -> bytes:
    f = io.BytesIO()
    np.save(f, np.zeros((2, 3)))
    return f.getvalue().replace(b"(2, 3)", b"(9999999999, 3)".ljust(6)[:15], 1)


BAD["Python objects in a .npz"] = (object_npz(), "d.npz", ["d.npz", "entry 'X' holds Python objects"])
BAD["a forged .npy header"] = (forged_npy(), "d.npy", ["d.npy", "declares shape", "truncated or forged"])


@pytest.mark.parametrize("case", BAD)
def test_what_cannot_be_read_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys, case):
    """Unreadable or unrepresentable input: one line naming the file (and line or row), nothing trained"""
    data, name, words = BAD[case]
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(data)
    status, _, err = run([*TRAIN, "--dtype", "float32", "--data", name, "--target", "-1", "--out", "run"], capsys)
    lines = err.strip().splitlines()
    assert status == 1 and len(lines) == 1 and "internal error" not in err, err
    assert all(w in lines[0] for w in words), lines
    assert not (tmp_path / "run").exists()


def test_a_huge_class_count_is_refused_before_allocating(tmp_path, monkeypatch, capsys):
    """--one-hot with 10^10 classes: refused by the memory guard, not a MemoryError"""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("x0,x1,y\n0,0,0\n0,1,1\n")
    status, _, err = run(["train", "--data", "d.csv", "--target", "y", "--one-hot", "--sizes", "2,3,10000000000"],
                         capsys)
    assert status == 1 and "--one-hot column 'y' of d.csv" in err and "memory available" in err, err


def table_bytes(kind: str) -> bytes:
    rows = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=float)
    f = io.BytesIO()
    if kind == "npy":
        np.save(f, rows)
    elif kind == "npz":
        np.savez(f, X=rows[:, :2], Y=rows[:, 2:])
    else:
        f.write(XOR.encode())
    return f.getvalue()


@pytest.mark.parametrize("kind", ["csv", "npy", "npz"])
def test_a_pipe_without_a_suffix_is_read_by_its_first_bytes(tmp_path, kind):
    """--data /dev/stdin fed by a pipe: CSV, NPY and NPZ told apart by their first bytes"""
    done = subprocess.run([*BPGPU, *TRAIN, "--data", "/dev/stdin", "--target", "-1"], input=table_bytes(kind),
                          cwd=tmp_path, env=ENV, capture_output=True, timeout=60)
    tally()
    assert done.returncode == 0, done.stderr
    assert b"on 4 examples from /dev/stdin" in done.stdout


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("path, kind", [("/dev/zero", "a character device"), (".", "a folder")])
def test_devices_and_folders_are_refused_without_reading(tmp_path, monkeypatch, capsys, no_hang, path, kind):
    """--data /dev/zero (endless) or a folder: refused at once"""
    monkeypatch.chdir(tmp_path)
    status, _, err = run([*TRAIN, "--data", path, "--target", "-1"], capsys)
    assert status == 1 and f"{path}: expected a data file or a pipe, got {kind}" in err
