"""CSV numbers read by pandas' C reader where pandas is installed, by NumPy's otherwise: the two
give the same table, bit for bit, or the same error, on every file (bpgpu/cli/readers.py takes
pandas' reading only where it cannot differ)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpgpu.cli import readers
from bpgpu.cli.errors import CLIError
from bpgpu.cli.tables import read_table

pytest.importorskip("pandas")


def read(path, with_pandas: bool):
    """(values, names, text, first_line) of ``path``, or its error's text."""
    saved = sys.modules.get("pandas")
    if not with_pandas:
        sys.modules["pandas"] = None  # import pandas raises ImportError
    try:
        t = read_table(path)
        return t.values, t.names, {j: c.tolist() for j, c in t.text.items()}, t.first_line
    except CLIError as err:
        return str(err)
    finally:
        sys.modules["pandas"] = saved


def assert_same(path):
    fast, plain = read(path, True), read(path, False)
    if isinstance(plain, str) or isinstance(fast, str):
        assert fast == plain
        return
    np.testing.assert_array_equal(fast[0], plain[0])  # NaN where NaN, the same bits elsewhere
    assert fast[1:] == plain[1:]


FILES = {
    "plain": b"a,b\n1,2\n3,4\n",
    "no header": b"1,2\n3,4\n",
    "no final newline": b"a,b\n1,2\n3,4",
    "windows": b"a,b\r\n1,2\r\n3,4\r\n",
    "old mac": b"a,b\r1,2\r3,4\r",
    "mixed line ends": b"a,b\r1,2\n3,4\n",
    "bom": b"\xef\xbb\xbfa,b\n1,2\n",
    "bom no header": b"\xef\xbb\xbf1,2\n3,4\n",
    "blank lines": b"a,b\n\n1,2\n\n\n3,4\n\n",
    "blank before header": b"\n\na,b\n1,2\n",
    "spaces only line": b"a,b\n1,2\n  \n3,4\n",
    "quoted header with a line break": b'"a\nb",c\n1,2\n',
    "quoted numbers": b'a,b\n"1",2\n3," 4 "\n',
    "line break in a quoted number": b'a,b\n"1\n",2\n3,4\n',
    "padded": b"a,b\n 1 ,\t2\n3,4\n",
    "empty cell": b"a,b\n1,\n3,4\n",
    "short row": b"a,b\n1,2\n3\n",
    "long row": b"a,b\n1,2\n3,4,5\n",
    "nan and inf": b"a,b\nnan,inf\n1,-Infinity\n",
    "overflow": b"a,b\n1e400,2\n1e-400,4\n",
    "text label": b"a,b\n1,cat\n2,dog\n",
    "underscore": b"a,b\n1_0,2\n3,4\n",
    "hex": b"a,b\n0x1,2\n3,4\n",
    "trailing delimiter": b"a,b,\n1,2,\n3,4,\n",
    "header only": b"a,b\n",
}


@pytest.mark.parametrize("name", list(FILES))
def test_pandas_and_numpy_read_every_kind_of_file_alike(tmp_path, name):
    path = tmp_path / "t.csv"
    path.write_bytes(FILES[name])
    assert_same(path)


def test_a_plain_table_of_numbers_is_read_by_pandas(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    np.savetxt(path, np.arange(12.0).reshape(4, 3) / 7, delimiter=",", header="x,y,z", comments="")

    def numpy_reads(*args):
        raise AssertionError("NumPy's reader ran")
    monkeypatch.setattr(readers, "_loadtxt", numpy_reads)
    np.testing.assert_array_equal(read_table(path).values, np.loadtxt(path, delimiter=",", skiprows=1))


def cell(v: float, fmt: str) -> str:
    if fmt == "%d":
        return str(int(v)) if abs(v) < 1e18 else repr(v)
    return fmt % v


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=6, max_size=60),
       fmt=st.sampled_from(["%r", "%.17g", "%.6e", "%.3f", " %.10g ", '"%.15g"', "%d"]),
       width=st.integers(1, 6))
def test_the_same_bits_whatever_the_numbers_and_their_format(tmp_path_factory, values, fmt, width):
    rows = [values[i:i + width] for i in range(0, len(values) - width + 1, width)]
    text = "\n".join(",".join(cell(v, fmt) for v in row) for row in rows)
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_text(text + "\n")
    assert_same(path)


def test_a_program_without_pandas_imported_reads_a_small_file_without_importing_it(tmp_path):
    """Importing pandas (~0.3 s) costs the command line more than its reader saves below 64 MB."""
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    code = ("import sys\nfrom bpgpu.cli.tables import read_table\n"
            f"assert read_table({str(path)!r}).values.tolist() == [[1, 2], [3, 4]]\nprint('pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize("size, pandas_reads", [(8, True), (readers.PANDAS_FROM, False)])
def test_pandas_is_imported_for_a_file_large_enough_to_repay_it(tmp_path, monkeypatch, size, pandas_reads):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    monkeypatch.setattr(readers, "PANDAS_FROM", size)
    monkeypatch.setattr(readers, "sys", types.SimpleNamespace(modules={}))  # as if pandas were not imported yet
    numpy_read = []
    loadtxt = readers._loadtxt
    monkeypatch.setattr(readers, "_loadtxt", lambda *args: numpy_read.append(1) or loadtxt(*args))
    assert read_table(path).values.tolist() == [[1, 2], [3, 4]] and numpy_read == ([] if pandas_reads else [1])
