"""Atomic file writes: the one way bpgpu puts a file on disk.

    atomic_write(path, write)          write(f) fills a binary file object
    atomic_write_bytes(path, data)
    atomic_write_text(path, text, encoding="utf-8")
    check_target(path)                 the same refusals, before any work is done

A temporary beside the target, fsynced and renamed over it: the path holds the old file or
the whole new one. Symlinks, FIFOs, devices and folders are refused (docs/architecture.md).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from pathlib import Path
from typing import BinaryIO, Callable

_TMP = ".bpgpu-"  # then "<pid>-<random>.tmp"


def _prefix(name: str) -> str:
    """The start of the temporaries' names for file ``name``, cut so that a whole
    temporary name stays within the usual 255-byte limit."""
    return f".{name.encode()[:200].decode('utf-8', 'ignore')}{_TMP}"


_KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]


def kind_of(mode: int) -> str:
    """What a non-regular file is, from its ``st_mode``: "a folder", "a FIFO (named pipe)", …"""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_target(path) -> Path:
    """``path`` as a :class:`~pathlib.Path` if :func:`atomic_write` may write it, else an
    :class:`OSError` naming it: a symlink, a FIFO, a device, a socket or a folder there,
    or a folder that is missing or not writable. Call it to refuse a bad output path
    before long work (training, measuring) rather than after.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise _refused(path, f"it is a symlink (to {os.readlink(path)}); bpgpu does not write through links, "
                             "give the real file's path")
    if st is not None and not stat.S_ISREG(st.st_mode):
        error = IsADirectoryError if stat.S_ISDIR(st.st_mode) else FileExistsError
        raise _refused(path, f"it is {kind_of(st.st_mode)}, not a regular file", error)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: cannot write, folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: cannot write, folder {folder} is not writable")
    return path


def _refused(path: Path, why: str, error=FileExistsError) -> OSError:
    return error(f"{path}: refusing to write: {why}")


def atomic_write(path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills ``f``, a binary file object (it
    may call ``f.write``, ``np.save(f, …)``, ``fig.savefig(f, format="png")``, …).

    The new file keeps the mode of the file it replaces, or gets the mode a plain
    ``open`` would give (0o666 less the umask). Returns ``path`` as a Path.

    Raises:
        OSError: the target is refused (see :func:`check_target`), or the write failed
            (disk full, file size limit, or an OSError from ``write``): the message names
            the file, ``errno`` is the cause's, the previous file is untouched. Other
            exceptions from ``write`` propagate unchanged, with the same guarantee.
    """
    path = check_target(path)
    folder = path.parent
    _remove_stale(folder, path.name)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = None
    tmp = folder / f"{_prefix(path.name)}{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        # O_EXCL|O_NOFOLLOW: never open anything that was already there. 0o666 lets the
        # umask decide the mode of a new file, as a plain open() would.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as err:
        raise _failed(path, err) from err
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        _unlink(tmp)
        if isinstance(err, OSError):
            raise _failed(path, err) from err
        raise
    _fsync_folder(folder)
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically in ``encoding`` (see :func:`atomic_write`);
    newlines are written as given."""
    return atomic_write_bytes(path, text.encode(encoding))


def _failed(path: Path, err: OSError) -> OSError:
    """``err`` as one line naming ``path``, its errno kept."""
    why = err.strerror or str(err) or type(err).__name__
    if err.errno == errno.EFBIG:
        why += " (the file size limit, ulimit -f?)"
    failed = OSError(f"{path}: could not write it ({why}); the previous file, if any, is unchanged")
    failed.errno = err.errno
    return failed


def _unlink(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except OSError:  # already gone, or the folder vanished: nothing left to clean
        pass


def _remove_stale(folder: Path, name: str) -> None:
    """Remove the temporaries of writers of ``folder/name`` that are no longer running."""
    prefix = _prefix(name)
    try:
        entries = [e for e in os.listdir(folder) if e.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        ours = re.fullmatch(r"(\d+)-[0-9a-f]{8}\.tmp", entry[len(prefix):])
        if ours and not _running(int(ours.group(1))):
            _unlink(folder / entry)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # someone else's process, or cannot tell: keep its file
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
