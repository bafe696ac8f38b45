"""A training run's folder (``--out``): the files a run writes there, refused before any
training when they cannot be written, and where a resumed run finds its data and writes.

A run is one thing wherever the command is started from: its options are saved with
absolute paths, and ``--resume`` writes to the folder of the checkpoint it resumes (the
run's ``--out``) unless ``--out`` says otherwise.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..io.atomic import check_target
from ..data import GENERATORS
from .errors import CLIError

FILES = ("model.npz", "history.json", "checkpoint.npz")
PICTURES = ("loss.png", "regions.png")


def prepare(out, plot: bool) -> Path | None:
    """The ``--out`` folder (made if missing), or None without one. Each file a run may
    write there (the pictures only with ``plot``) is checked first, so a symlink, FIFO or
    folder in its place is refused now, not after the training."""
    if out is None:
        return None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: expected a folder, got an existing file")
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES + (PICTURES if plot else ()):
        check_target(out / name)
    return out


def resumed_folder(resume) -> dict:
    """The options ``--resume resume`` takes from where the checkpoint is: its folder is the
    run's ``--out``."""
    return {"out": str(Path(resume).parent)}


def portable(options: dict) -> dict:
    """``options`` as a checkpoint keeps them: a data file and the folder as absolute paths,
    so a resumed run finds them from anywhere."""
    kept = dict(options)
    if kept.get("data") is not None and kept["data"] not in GENERATORS:
        kept["data"] = os.path.abspath(kept["data"])
        kept["data_read_once"] = _read_once(kept["data"])
    if kept.get("out") is not None:
        kept["out"] = os.path.abspath(kept["out"])
    return kept


def _read_once(path: str) -> bool:
    """Whether data read from ``path`` is gone once read: a pipe, a FIFO, /dev/stdin."""
    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True
    return not regular or path.startswith(("/dev/", "/proc/"))


def check_data(stored: dict, given: dict, resume) -> None:
    """Refuse to resume a run whose data came from a pipe unless ``--data`` is given again
    (the pipe cannot be read a second time); takes the note out of ``stored``."""
    if stored.pop("data_read_once", False) and "data" not in given:
        raise CLIError(f"--data: the run in {resume} read its data from {stored['data']}, a pipe that cannot "
                       "be read again; give --data with the same rows to resume it")


def resuming(resume, epoch: int, o, given: dict) -> str:
    """The line that says what a resumed run reads and where it writes."""
    def whence(key):
        return "given" if key in given else "the run's"
    return (f"resuming {resume} at epoch {epoch}: data {o.data} ({whence('data')}), "
            f"saving to {o.out} ({whence('out')})")
