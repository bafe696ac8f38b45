"""Tables: the data files the commands read and write (.csv with an optional header, .npy, .npz).

A table is a 2-D float array, one example a row, with its column names where the file has
them. Columns are picked by header name or index.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import CLIError, one_line

SUFFIXES = (".npy", ".npz", ".csv")


def read_table(path) -> tuple[np.ndarray, list[str] | None]:
    """A 2-D float table (rows = examples) and its column names (CSV header) or None.

    A .npz holding X and Y comes back as the table [X | Y] with names x0…, y0…
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise CLIError(f"{path}: expected a .npy, .npz or .csv file, got {path.suffix or 'no suffix'!r}")
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table, names = _read_csv(path)
    else:
        try:
            loaded = np.load(path, allow_pickle=False)
        except Exception as err:  # zip, pickle and format errors alike mean "not readable"
            raise CLIError(f"{path}: not a readable {suffix} file ({one_line(err)})") from None
        names = None
        if suffix == ".npz":
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
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
        table = _as_2d(path, "the array", loaded)
    if table.shape[0] == 0:
        raise CLIError(f"{path}: no rows")
    if not np.all(np.isfinite(table)):
        row, col = np.argwhere(~np.isfinite(table))[0]
        raise CLIError(f"{path}: row {row + 1}, column {column_name(names, col)}: expected a finite number, got {table[row, col]}")
    return table, names


def _as_2d(path, what, a) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise CLIError(f"{path}: {what} holds {a.dtype} values, expected numbers")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise CLIError(f"{path}: {what} has shape {a.shape}, expected a 2-D table (examples, columns)")
    return a.astype(np.float64, copy=False)


def _read_csv(path: Path):
    import csv

    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows:
        raise CLIError(f"{path}: empty file")
    names = None
    if any(not _is_number(cell) for cell in rows[0]):
        names, rows = [cell.strip() for cell in rows[0]], rows[1:]
    width = len(names) if names else len(rows[0])
    table = np.empty((len(rows), width))
    for i, row in enumerate(rows):
        line = i + 1 + (names is not None)
        if len(row) != width:
            raise CLIError(f"{path}: line {line} has {len(row)} columns, expected {width}")
        for j, cell in enumerate(row):
            if not _is_number(cell):
                raise CLIError(f"{path}: line {line}, column {column_name(names, j)}: expected a number, got {cell.strip()!r}")
        table[i] = [float(cell) for cell in row]
    return table, names


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def column_name(names, j) -> str:
    return repr(names[j]) if names else str(j)


def columns(path, spec: str, names, width: int, option: str) -> list[int]:
    """Column indices from ``spec``: comma-separated header names or indices."""
    picked = []
    for item in (s.strip() for s in spec.split(",")):
        if names and item in names:
            j = names.index(item)
        else:
            try:
                j = int(item)
            except ValueError:
                known = f"its columns are {', '.join(names)}" if names else "it has no header, use indices"
                raise CLIError(f"{option} {spec}: no column {item!r} in {path} ({known})") from None
            if not -width <= j < width:
                raise CLIError(f"{option} {spec}: column {j} is out of range, {path} has {width} columns")
            j %= width
        if j in picked:
            raise CLIError(f"{option} {spec}: column {item!r} named twice")
        picked.append(j)
    return picked


def write_table(path, Y: np.ndarray, names: list[str]) -> None:
    """Write ``Y`` (m, k) to a .npy or .csv file (with a header of ``names``)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        np.save(path, Y)
    else:
        np.savetxt(path, Y, delimiter=",", header=",".join(names), comments="", fmt="%.10g")



def x_and_y(names) -> bool:
    """Whether ``names`` are x…/y… columns (x0, x1, y, or those read_table gives an X/Y .npz), targets last."""
    return bool(names) and names[-1].startswith("y") and all(re.fullmatch(r"[xy]\d*", n) for n in names)
