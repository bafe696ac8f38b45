"""Tables: the data files the commands read (.csv/.tsv with an optional header, .parquet,
.npy, .npz) and write (.csv, .npy).

A table is one example a row, with its column names where the file has them. Cells are
numbers, except that a CSV or Parquet column may hold text (class labels such as "setosa"):
such a column can be a target, never an input. Columns are picked by ``--columns``/``--target``
specs (:func:`bpgpu.cli.headers.pick`).
"""

from __future__ import annotations

import functools
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write, kind_of
from ..io.npz import Archive, map_npy, read_npy
from .errors import CLIError, one_line
from .readers import delimiter_of, is_number, read_csv, read_parquet

SUFFIXES = (".npy", ".npz", ".csv", ".tsv", ".parquet")
TEXT_SUFFIXES = (".csv", ".tsv")


@dataclass
class Table:
    """A file's examples.

    Attributes:
        path: where it came from, for messages.
        values: (m, n) float64; NaN in the cells of a text column.
        names: the n column names (a CSV header, or x…/y… of an X/Y .npz), or None.
        text: {column: (m,) str array} for each column holding text.
        first_line: the file line of row 0, for messages (2 under a CSV header).
        first_row: the file's row number of row 0 less one (a data-parallel rank's block
            of a .npy starts further in), for messages.
    """

    path: Path
    values: np.ndarray
    names: list[str] | None = None
    text: dict[int, np.ndarray] = field(default_factory=dict)
    first_line: int = 1
    first_row: int = 0

    @property
    def width(self) -> int:
        return self.values.shape[1]

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """{name: column} of the header ({} without one), built once. A name used twice is
        refused: models meet tables by name, and a twice-used name would match either column."""
        index: dict[str, int] = {}
        for j, name in enumerate(self.names or ()):
            first = index.setdefault(name, j)
            if first != j:
                raise CLIError(f"{self.path}: the column name {name!r} is used twice (columns {first} and {j}); "
                               "columns are matched by name, rename one")
        return index

    def name(self, j: int) -> str:
        """Column ``j`` as messages show it: its quoted name, or its index."""
        return repr(self.names[j]) if self.names else str(j)

    def numbers(self, columns: list[int]) -> np.ndarray:
        """values[:, columns] (m, len(columns)); a text cell among them is an error naming it."""
        for j in columns:
            if j in self.text:
                i = next(i for i, cell in enumerate(self.text[j]) if not is_number(cell))
                raise CLIError(f"{self.path}: line {self.first_line + i}, column {self.name(j)}: expected a number, "
                               f"got {str(self.text[j][i])!r}")
        return self._finite(columns)

    def labels(self, j: int) -> np.ndarray:
        """Column ``j`` as (m,) strings: a text column's cells, or numbers written as %g."""
        if j in self.text:
            return self.text[j]
        return np.array([f"{v:g}" for v in self._finite([j])[:, 0]])

    def _finite(self, columns: list[int]) -> np.ndarray:
        """values[:, columns], refused naming the row and column where one is not a finite
        number: only the columns a model reads are checked (an id or notes column may hold
        anything)."""
        A = self.values[:, columns]
        bad = ~np.isfinite(A)  # (m, k) booleans: no copy of the values
        if bad.any():
            row, k = np.argwhere(bad)[0]
            raise CLIError(f"{self.path}: row {self.first_row + row + 1}, column {self.name(columns[k])}: expected a "
                           f"finite number, got {A[row, k]}")
        return A

    def x_and_y(self) -> bool:
        """Whether the columns are x…/y… (x0, x1, y, or those of an X/Y .npz), targets last."""
        names = self.names
        return bool(names) and names[-1].startswith("y") and all(re.fullmatch(r"[xy]\d*", n) for n in names)


DELIMITER_HELP = "the delimiter of a text table: one character, '\\t' for a tab (default: a tab for .tsv, else ',')"


def read_table(path, rows=None, delimiter=None) -> Table:
    """The table in ``path``: a .csv/.tsv, .parquet, .npy or .npz file, or a file without a
    suffix (a pipe, ``/dev/stdin``) whose format its first bytes tell. A .npz holding X and Y
    comes back as the table [X | Y] with names x0…, y0…; every number must be finite.
    ``delimiter``: the CSV's (``--delimiter``; default a tab for .tsv, else a comma).

    ``rows``: a function of the file's row count m giving the block (start, stop) to keep
    (a data-parallel rank's share) of a .npy (memory-mapped: only that block is read) or a
    .npz (read whole). A CSV or Parquet file is always read whole: text labels name their
    classes from every row, so the caller takes its block of the targets it makes.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix and suffix not in SUFFIXES:
        raise CLIError(f"{path}: expected a .csv, .tsv, .parquet, .npy or .npz file, got {path.suffix!r}")
    if rows is not None and suffix == ".npy" and path.is_file():
        table = _read_npy_block(path, rows)
    else:
        data = _read_bytes(path)
        suffix = suffix or _sniffed(data)
        if suffix in TEXT_SUFFIXES:
            table = Table(path, *read_csv(path, data, delimiter_of(path, delimiter)))
        elif suffix == ".parquet":
            table = Table(path, *read_parquet(path, data))
        else:
            table = _read_numpy(path, data, suffix, rows)
    if table.values.shape[0] == 0:
        raise CLIError(f"{path}: no rows")
    return table


def _sniffed(data: bytes) -> str:
    """The suffix a file's first bytes tell: np.save's magic, a zip's (every .npz), Parquet's, else text."""
    for magic, suffix in ((b"\x93NUMPY", ".npy"), (b"PK", ".npz"), (b"PAR1", ".parquet")):
        if data.startswith(magic):
            return suffix
    return ".csv"


def check_fits(table: Table, A: np.ndarray, dtype: str, what: str, first_row: int = 0) -> None:
    """Refuse ``what`` (rows of ``table`` from row ``first_row`` + 1 of its file on) if a value
    overflows ``dtype``, naming the file's row: float32 would turn it into inf."""
    largest = np.finfo(dtype).max
    over = np.abs(A) > largest
    if over.any():
        row, k = np.argwhere(over)[0]
        raise CLIError(f"{table.path}: row {first_row + row + 1}: {what} {A[row, k]:g} overflows {dtype} (largest {largest:.4g}); "
                       "rescale it" + (", or use --dtype float64" if dtype == "float32" else ""))


def _read_bytes(path: Path) -> bytes:
    """The whole of a regular file or a pipe; anything else (a folder, a device that never
    ends) is refused without reading."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise CLIError(f"{path}: expected a data file or a pipe, got {kind_of(mode)}")
    with open(path, "rb") as f:
        return f.read()


def _read_npy_block(path: Path, rows) -> Table:
    """A data-parallel rank's block ``rows(m)`` of a .npy file, memory-mapped: only those
    rows are read from the disk."""
    try:
        loaded = map_npy(path)
    except ValueError as err:
        raise CLIError(one_line(err)) from None
    return _table(path, loaded, None, rows)


def _read_numpy(path: Path, data: bytes, suffix: str, rows=None) -> Table:
    names = None
    try:
        if suffix == ".npy":
            loaded = read_npy(path, data)
        else:
            arrays = {}
            with Archive(path, "data file", data) as archive:
                for name in sorted(archive.names):
                    archive.header(name)  # numbers only, and no more than the data declared
                    arrays[name] = archive.read(name)
    except ValueError as err:
        raise CLIError(one_line(err)) from None
    if suffix == ".npz":
        if "X" in arrays and "Y" in arrays:
            X, Y = (_as_2d(path, k, arrays[k]) for k in ("X", "Y"))
            if len(X) != len(Y):
                raise CLIError(f"{path}: X has {len(X)} rows but Y has {len(Y)}")
            names = [f"x{i}" for i in range(X.shape[1])] + [f"y{i}" for i in range(Y.shape[1])]
            loaded = np.hstack([X, Y])
        elif len(arrays) == 1:
            loaded = next(iter(arrays.values()))
        else:
            raise CLIError(f"{path}: expected arrays named X and Y, or a single array, got {sorted(arrays)}")
    return _table(path, loaded, names, rows)


def _table(path: Path, loaded: np.ndarray, names, rows) -> Table:
    """``loaded`` as a Table, only the block ``rows(m)`` of its m rows where ``rows`` is given."""
    first = 0
    if rows is not None and loaded.ndim in (1, 2):
        first, stop = rows(len(loaded))
        loaded = np.array(loaded[first:stop])  # from a memory map: reads this block only
    return Table(path, _as_2d(path, "the array", loaded), names, first_row=first)


def _as_2d(path, what, a) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise CLIError(f"{path}: {what} holds {a.dtype} values, expected numbers")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise CLIError(f"{path}: {what} has shape {a.shape}, expected a 2-D table (examples, columns)")
    return a.astype(np.float64, copy=False)


def write_table(path, Y: np.ndarray, names: list[str], fmt="%.10g") -> Path:
    """Write ``Y`` (m, k) atomically to exactly ``path`` (``Y.NPY`` too, which ``np.save``
    would have made ``Y.NPY.npy``): NPY for a .npy suffix in any case, else CSV with a
    header of ``names``."""
    if Path(path).suffix.lower() == ".npy":
        return atomic_write(path, lambda f: np.save(f, Y, allow_pickle=False))
    return atomic_write(path, lambda f: np.savetxt(f, Y, delimiter=",", header=",".join(names), comments="",
                                                   fmt=fmt, encoding="utf-8"))
