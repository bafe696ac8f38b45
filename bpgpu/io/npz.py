"""Reading ``.npz`` archives (and lone ``.npy`` files) that may be hostile, without blocking
or ballooning: regular files only, every member's header (shape, dtype) before its data, and
a member read only when its stored size is what its header declares. Every problem is a
``ValueError`` naming the file (docs/architecture.md, "Files").
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from .atomic import kind_of

@dataclass(frozen=True)
class Header:
    """What a member's ``.npy`` header declares."""

    shape: tuple
    dtype: np.dtype
    nbytes: int  # of data, after the header


def open_regular(path: Path, what: str):
    """``path`` opened for binary reading, refused at once unless it is a regular file
    (``what`` names what was expected, for the message)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    _require_regular(path, st.st_mode, what)
    # O_NONBLOCK: should a FIFO replace the file after the stat, opening it still returns at once.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        _require_regular(path, os.fstat(fd).st_mode, what)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _require_regular(path: Path, mode: int, what: str) -> None:
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path}: expected a {what}, got {kind_of(mode)}")


class Archive:
    """The arrays of the ``.npz`` at ``path``, read one by one under the caller's checks.

    Use as a context manager. ``names`` are the arrays it holds (members ``<name>.npy``);
    ``what`` names the kind of file in messages ("model file": "not a bpgpu model file").
    """

    def __init__(self, path: Path, what: str = "model file", data: bytes | None = None):
        self.path, self.what = Path(path), what
        # ``data``: the file's bytes, already read (from a pipe, which cannot seek).
        self._file = open_regular(self.path, what) if data is None else io.BytesIO(data)
        try:
            magic = self._file.read(4)
            if magic[:2] != b"PK":  # every zip, hence every .npz, starts so
                kind = ("an empty file" if not magic else "a single .npy array" if magic == b"\x93NUM"
                        else "another kind of file")
                raise ValueError(f"{self.path}: not a bpgpu {what} (expected a .npz archive, got {kind})")
            self._file.seek(0)
            self._zip = zipfile.ZipFile(self._file)
            self._members = {info.filename: info for info in self._zip.infolist()}
        except ValueError:
            self._file.close()
            raise
        except Exception as err:  # zip, struct and OS errors all mean one thing here
            self._file.close()
            raise self.unreadable(err) from None
        bad = [name for name in self._members if not name.endswith(".npy")]
        if bad:
            self.close()
            raise ValueError(f"{self.path}: not a bpgpu {what} (members that are not arrays: {bad[:3]})")
        self.names = {name[:-4] for name in self._members}

    def unreadable(self, err: BaseException) -> ValueError:
        reason = str(err) or type(err).__name__
        return ValueError(f"{self.path}: not a readable bpgpu {self.what}, truncated or corrupt? ({reason})")

    def header(self, name: str) -> Header:
        """The shape and dtype array ``name`` declares, read from its header alone;
        refused unless the member holds exactly that much data."""
        info = self._members[f"{name}.npy"]
        try:
            with self._zip.open(info) as f:
                shape, dtype, offset = _read_header(f, f"entry {name!r}")
        except Exception as err:
            raise self.unreadable(err) from None
        return _checked(self.path, f"entry {name!r}", self.what, shape, dtype, info.file_size - offset)

    def read(self, name: str) -> np.ndarray:
        """Array ``name``; call :meth:`header` first to agree to its size."""
        try:
            with self._zip.open(f"{name}.npy") as f:
                return npy.read_array(f, allow_pickle=False)
        except Exception as err:
            raise self.unreadable(err) from None

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_header(f, where: str) -> tuple:
    """(shape, dtype, offset of the data) from the ``.npy`` header at the start of ``f``."""
    version = npy.read_magic(f)
    # np.save writes 1.0, or 2.0 for huge headers; 3.0 only for structured dtypes with
    # non-Latin-1 names, never in a model or a table.
    read = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
    if read is None:
        raise ValueError(f"unsupported .npy format version {version} in {where}")
    shape, _, dtype = read(f, max_header_size=10_000)
    return shape, dtype, f.tell()


def _checked(path, where: str, what: str, shape, dtype, held: int) -> Header:
    """The header, unless it declares Python objects or other than the ``held`` bytes of data."""
    if dtype.hasobject:
        raise ValueError(f"{path}: {where} holds Python objects (dtype {dtype}); a {what} holds numbers only")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if held != nbytes:
        raise ValueError(f"{path}: {where} declares shape {shape} of {dtype} ({nbytes:,} bytes) "
                         f"but holds {held:,} bytes: truncated or forged")
    return Header(tuple(shape), dtype, nbytes)


def read_npy(path, data: bytes, what: str = "data file") -> np.ndarray:
    """The array in ``data``, the bytes of the ``.npy`` file ``path``, under the checks an
    archive's members get: numbers only, and exactly the data its header declares."""
    f = io.BytesIO(data)
    try:
        shape, dtype, offset = _read_header(f, "the array")
    except Exception as err:
        raise ValueError(f"{path}: not a readable .npy file ({str(err) or type(err).__name__})") from None
    _checked(path, "the array", what, shape, dtype, len(data) - offset)
    f.seek(0)
    return npy.read_array(f, allow_pickle=False)


def map_npy(path, what: str = "data file") -> np.ndarray:
    """The array of the regular ``.npy`` file ``path``, memory-mapped (read-only: only the
    rows a caller touches are read), under :func:`read_npy`'s checks."""
    with open(path, "rb") as f:
        try:
            shape, dtype, offset = _read_header(f, "the array")
        except Exception as err:
            raise ValueError(f"{path}: not a readable .npy file ({str(err) or type(err).__name__})") from None
        _checked(path, "the array", what, shape, dtype, os.fstat(f.fileno()).st_size - offset)
    return np.load(path, allow_pickle=False, mmap_mode="r")
