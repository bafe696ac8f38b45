"""The table readers (bpgpu/cli/readers.py) through read_table: CSV and TSV through NumPy's C
reader with any delimiter, Parquet through pyarrow (skipped without it), the peak memory of a
large read, and the one-line install hint where pyarrow is missing."""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pytest

from bpgpu.cli import main
from bpgpu.cli.errors import CLIError
from bpgpu.cli.readers import delimiter_of
from bpgpu.cli.tables import read_table


def fails(message, fn, *args, **kwargs):
    with pytest.raises(CLIError) as raised:
        fn(*args, **kwargs)
    assert str(raised.value) == message


def test_tsv_is_read_by_its_suffix_with_a_header_and_text_labels(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\tkind\n1.5\t-2\tcat\n3\t 4e1 \tdog\n")
    t = read_table(path)
    assert t.names == ["a", "b", "kind"] and t.first_line == 2
    np.testing.assert_array_equal(t.values[:, :2], [[1.5, -2.0], [3.0, 40.0]])
    assert list(t.text) == [2] and t.text[2].tolist() == ["cat", "dog"]


@pytest.mark.parametrize("given, delimiter", [(";", ";"), ("|", "|"), ("\\t", "\t"), ("tab", "\t"), (" ", " ")])
def test_any_one_character_delimiter(tmp_path, given, delimiter):
    path = tmp_path / "t.csv"
    path.write_text(f"x{delimiter}y\n1{delimiter}2\n3{delimiter}4\n")
    t = read_table(path, delimiter=given)
    assert t.names == ["x", "y"]
    np.testing.assert_array_equal(t.values, [[1, 2], [3, 4]])


@pytest.mark.parametrize("given", ["ab", "1", ".", "-", '"', "", "e"])
def test_a_delimiter_that_could_be_part_of_a_cell_is_refused(given):
    fails(f"--delimiter: expected one character that is neither part of a number nor a quote "
          f"(',', ';', '|', ' ' or '\\t'), got {given!r}", delimiter_of, "t.csv", given)


def test_quoted_cells_may_hold_the_delimiter_and_numbers_may_be_quoted(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('x,"y",label\n"1",2,"a,b"\n3,"4",c\n')
    t = read_table(path)
    assert t.names == ["x", "y", "label"]
    np.testing.assert_array_equal(t.values[:, :2], [[1, 2], [3, 4]])
    assert t.text[2].tolist() == ["a,b", "c"]


def test_numbers_after_a_text_cell_are_still_numbers_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,2\n\n3,\n5,6\n")
    t = read_table(path)
    np.testing.assert_array_equal(t.values[:, 0], [1, 3, 5])
    assert t.text[1].tolist() == ["2", "", "6"]
    fails(f"{path}: line 3, column 'y': expected a number, got ''", t.numbers, [1])


def test_the_delimiter_option_reaches_the_reader_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("x0;x1;y\n0;0;0\n0;1;1\n1;0;1\n1;1;0\n")
    argv = ["train", "--sizes", "2,3,1", "--epochs", "1", "--quiet", "--no-plot", "--data", "d.csv", "--target", "y"]
    assert main([*argv, "--delimiter", ";"]) == 0
    assert "on 4 examples from d.csv" in capsys.readouterr().out
    assert main(argv) == 1  # read with commas, each line is one text cell
    assert main(["train", "--data", "xor", "--sizes", "2,3,1", "--delimiter", ";"]) == 1
    assert "--delimiter: applies to data from a file only" in capsys.readouterr().err


def test_a_large_numeric_csv_peaks_under_three_times_its_float64_size(tmp_path):
    """The pure-Python reader peaked at about 37× (a list of str per row, then a str array)"""
    rng = np.random.default_rng(0)
    table = np.round(rng.random((20_000, 51)) * 100, 2)
    path = tmp_path / "big.csv"
    np.savetxt(path, table, delimiter=",", fmt="%.10g", header=",".join(f"f{j}" for j in range(51)), comments="")
    read_table(path)  # the reader's imports (pandas' where installed) are not the read's memory
    tracemalloc.start()
    try:
        values = read_table(path).values
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(values, table)
    assert peak <= 3 * table.nbytes, f"peak {peak / table.nbytes:.2f}× the float64 size"


# -- Parquet ------------------------------------------------------------------------------

def write_parquet(path, **columns):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table(columns), path)


def test_parquet_numbers_booleans_and_text_labels(tmp_path):
    pa = pytest.importorskip("pyarrow")
    path = tmp_path / "t.parquet"
    write_parquet(path, n=pa.array([1, 2, 3], pa.int32()), x=[0.5, -1.5, 2.0], flag=[True, False, True],
                  kind=pa.array(["cat", "dog", "cat"]).dictionary_encode(), name=["a", None, "c"])
    t = read_table(path)
    assert t.names == ["n", "x", "flag", "kind", "name"]
    np.testing.assert_array_equal(t.values[:, :3], [[1, 0.5, 1], [2, -1.5, 0], [3, 2.0, 1]])
    assert t.text[3].tolist() == ["cat", "dog", "cat"] and t.text[4].tolist() == ["a", "", "c"]


def test_parquet_is_told_by_its_first_bytes_and_nulls_are_refused_where_used(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "data"  # no suffix, as /dev/stdin
    write_parquet(path, x=[1.0, None, 3.0], y=[1, 2, 3])
    table = read_table(path)
    fails(f"{path}: row 2, column 'x': expected a finite number, got nan", table.numbers, [0])
    np.testing.assert_array_equal(table.numbers([1])[:, 0], [1.0, 2.0, 3.0])


def test_parquet_columns_of_other_types_are_refused_naming_them(tmp_path):
    pa = pytest.importorskip("pyarrow")
    path = tmp_path / "t.parquet"
    write_parquet(path, x=[1.0], when=pa.array([0], pa.date32()))
    fails(f"{path}: column 'when' holds date32[day], expected numbers or text", read_table, path)


def test_parquet_without_pyarrow_says_how_to_install_it(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    fails(f"{path}: reading Parquet needs pyarrow: pip install 'bpgpu[parquet]'", read_table, path)


def test_a_broken_parquet_file_is_one_line_naming_it(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(CLIError, match=f"^{path}: not a readable Parquet file"):
        read_table(path)
