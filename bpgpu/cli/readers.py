"""Parsing a file's bytes into the parts of a table: CSV/TSV (any one-character delimiter)
through pandas' C reader where pandas is installed, else NumPy's, and Parquet through pyarrow
(an optional extra).

Why: on a 150k × 51 CSV of numbers on a quiet machine, NumPy's reader (``np.loadtxt``, C since
NumPy 1.23) took 1.4–2.4× the time of pandas' ``read_csv``, with a lower peak memory (1.5× the
float64 table against pandas' 2×); with pandas' reader, bpgpu's takes 1.1–1.2× pandas' own time
(the checks that it reads as NumPy would). pandas is heavy, so it is an extra (``tables``),
used where a program has imported it already or the file is large enough to repay the import;
NumPy's reader stays the path without it, and the two give the same bits or the same error
(tests/test_csv_paths.py; ``benchmarks/read_csv.py`` measures both, BENCHMARKS.md has the runs).
Floats are parsed straight into the array; only a file with text cells (class labels, an empty
cell) takes a second pass that reads the cells as text.

Each reader returns ``(values, names, text, first_line)`` as :class:`~bpgpu.cli.tables.Table`
holds them: values (m, n) float64 with NaN in text columns, the n names or None,
{column: (m,) str array} for each text column, and the file line of row 0.
"""

from __future__ import annotations

import csv
import io
import sys
import warnings

import numpy as np

from .errors import CLIError, one_line

PARQUET_HINT = "reading Parquet needs pyarrow: pip install 'bpgpu[parquet]'"
# Importing pandas takes ~0.3 s, and its reader saves ~4 ms per MB over NumPy's: a program that
# has not imported it already (the command line) imports it for files of 64 MB and more.
PANDAS_FROM = 64 << 20
BLOCK_ROWS = 4096  # rows pandas reads at a time: the peak stays near 1.5× the float64 table


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def delimiter_of(path, given: str | None) -> str:
    """The CSV delimiter: ``given`` (``\\t`` or ``tab`` spell a tab), else a tab for a .tsv
    file, else a comma."""
    if given is None:
        return "\t" if str(path).lower().endswith(".tsv") else ","
    d = {"\\t": "\t", "tab": "\t"}.get(given, given)
    if len(d) != 1 or d in "\"\r\n.+-" or d.isalnum():
        raise CLIError(f"--delimiter: expected one character that is neither part of a number nor a quote "
                       f"(',', ';', '|', ' ' or '\\t'), got {given!r}")
    return d


def read_csv(path, data: bytes, delimiter: str = ","):
    """The parts of the CSV table in ``data``. A header is told by its text cells (see
    :func:`_has_header`); cells may be quoted and padded with spaces; a leading byte-order
    mark is dropped; blank lines are skipped; every row has the same number of cells."""
    _check_utf8(path, data)
    first, lines = _first_row(path, data, delimiter)
    if first is None:
        raise CLIError(f"{path}: empty file")
    labels = [j for j, cell in enumerate(first) if cell.strip() and not is_number(cell)]
    if labels:
        values, text = _parse(path, data, delimiter, lines)
        if _has_header(first, labels, text, len(values)):
            names = [cell.strip() for cell in first]
            if values.size and values.shape[1] != len(names):
                raise CLIError(f"{path}: line 2 has {values.shape[1]} columns, expected {len(names)}")
            return values.reshape(len(values), len(names)), names, text, 2
    values, text = _parse(path, data, delimiter, 0)
    return values, None, text, 1


def _has_header(first: list[str], labels: list[int], text: dict, m: int) -> bool:
    """Whether the first row, with text in columns ``labels``, names the columns: yes, unless
    it is a row of numbers whose text sits only in columns that hold text (class labels)
    further down as well (``text``, of the m rows below). An empty cell is no evidence
    either way: a missing number is not a column's name."""
    if len(labels) == len(first) or m == 0:
        return True
    return not all(j in text for j in labels)


def _check_utf8(path, data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise CLIError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[err.start]:02x}); "
                       "save the file as UTF-8") from None


def _text(data: bytes) -> io.TextIOWrapper:
    """``data`` as text, decoded as it is read; "-sig": a byte-order mark is not part of the first cell."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")


def _first_row(path, data: bytes, delimiter: str):
    """(the first row's cells, the lines up to and with it), or (None, 0) for a file without one."""
    reader = csv.reader(_text(data), delimiter=delimiter)
    try:
        for row in reader:
            if row:
                return row, reader.line_num
    except csv.Error as err:  # a field over the size limit
        raise CLIError(f"{path}: line {reader.line_num}: {err}") from None
    return None, 0


def _parse(path, data: bytes, delimiter: str, skip: int):
    """(values (m, n), text columns) of the rows after the first ``skip`` lines: parsed as
    numbers in one pass; where a cell is not a number, read again as text and split into
    number and text columns."""
    try:
        return _numbers(data, delimiter, skip), {}
    except ValueError:
        pass
    try:
        cells = _loadtxt(data, delimiter, skip, str)
    except ValueError as err:
        raise _ragged(path, data, delimiter, err) from None
    values = np.full(cells.shape, np.nan)
    text = {}
    for j in range(cells.shape[1]):
        column = np.char.strip(cells[:, j])
        try:
            values[:, j] = column.astype(np.float64)
        except ValueError:
            text[j] = column
    return values, text


def _numbers(data: bytes, delimiter: str, skip: int) -> np.ndarray:
    """The rows after the first ``skip`` lines as float64 (m, n), or a ValueError where a cell
    is not a number: by pandas' C reader where pandas is installed and it reads the table as
    NumPy would (:func:`_pandas_numbers`), else by NumPy's. pandas refuses a "nan" cell
    (``na_filter=False``) and a short row, and reads "inf" as NumPy does."""
    values = _pandas_numbers(data, delimiter, skip)
    return _loadtxt(data, delimiter, skip, np.float64) if values is None else values


def _pandas_numbers(data: bytes, delimiter: str, skip: int) -> np.ndarray | None:
    """The table of :func:`_numbers` by pandas, or None where pandas is missing, not worth
    importing (PANDAS_FROM) or its reading might differ from NumPy's: NumPy then reads. Taken
    only where pandas' rows are the text's lines one for one (pandas skips a line of spaces,
    NumPy refuses it; a blank line or a line break inside a quoted cell goes to NumPy too).
    Read in blocks of rows, so that a signal's handler runs between them."""
    if "pandas" not in sys.modules and len(data) < PANDAS_FROM:
        return None
    try:
        import pandas
    except ImportError:
        return None
    start = _after_lines(data, skip)
    if start is None:
        return None
    lines = data.count(b"\n", start) + (not data.endswith(b"\n"))
    text = io.BytesIO(data)  # shares data's bytes; read from ``start``
    text.seek(start)
    values, m = None, 0
    try:
        for block in pandas.read_csv(text, sep=delimiter, header=None, dtype=np.float64, na_filter=False,
                                     quotechar='"', encoding="utf-8-sig", engine="c", chunksize=BLOCK_ROWS):
            if values is None:
                values = np.empty((lines, block.shape[1]))
            if m + len(block) > lines:
                return None
            values[m:m + len(block)] = block.to_numpy()
            m += len(block)
    except (ValueError, UnicodeError):
        return None
    return values if m == lines else None


def _after_lines(data: bytes, skip: int) -> int | None:
    """Where ``data``'s line ``skip`` + 1 starts, or None where one of the lines before ends
    in a lone "\r" (the csv module counts that as a line, ``skip`` counts its lines)."""
    end = 0
    for _ in range(skip):
        end = data.find(b"\n", end) + 1
        if end == 0:
            return None
    return None if b"\r" in data[:end].replace(b"\r\n", b"") else end


def _loadtxt(data: bytes, delimiter: str, skip: int, dtype) -> np.ndarray:
    with warnings.catch_warnings():  # "input contained no data": a header alone is refused by the caller
        warnings.simplefilter("ignore", UserWarning)
        return np.loadtxt(_text(data), dtype=dtype, delimiter=delimiter, quotechar='"', comments=None,
                          skiprows=skip, ndmin=2)


def _ragged(path, data: bytes, delimiter: str, err: ValueError) -> CLIError:
    """The error for a table NumPy could not read as text: the first row whose cell count
    differs from the first row's, naming its line (as the rows count, blank lines skipped)."""
    reader = csv.reader(_text(data), delimiter=delimiter)
    width, line = None, 0
    try:
        for row in reader:
            if not row:
                continue
            line += 1
            width = width or len(row)
            if len(row) != width:
                return CLIError(f"{path}: line {line} has {len(row)} columns, expected {width}")
    except csv.Error as csv_err:
        return CLIError(f"{path}: line {reader.line_num}: {csv_err}")
    return CLIError(f"{path}: {one_line(err)}")


def read_parquet(path, data: bytes):
    """The parts of the Parquet table in ``data``: number and boolean columns as float64
    (a null becomes NaN, refused where it is used), text and categorical columns as text."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise CLIError(f"{path}: {PARQUET_HINT}") from None
    try:
        # Read on this thread: pq.read_table (the dataset API) starts a thread of Arrow's that
        # aborts the process at exit ("terminate called without an active exception",
        # apache/arrow#34314) in 5 of 600 runs under load here; ParquetFile.read in 0 of 600.
        table = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise CLIError(f"{path}: not a readable Parquet file ({one_line(err)})") from None
    names = [str(name) for name in table.column_names]
    values = np.full((table.num_rows, len(names)), np.nan)
    text = {}
    for j, column in enumerate(table.columns):
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            values[:, j] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
            text[j] = np.array(["" if cell is None else str(cell) for cell in column.to_pylist()], dtype=str)
        else:
            raise CLIError(f"{path}: column {names[j]!r} holds {kind}, expected numbers or text")
    return values, names, text, 1
