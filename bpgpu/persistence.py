"""Models on disk: one ``.npz`` file with the thetas, the architecture and a checksum.

The archive holds plain arrays only (it loads with ``allow_pickle=False``):

    theta.<l>              Theta(l), shape (sizes[l+1], sizes[l] + bias), the network's dtype
    optimizer.<key>.<i>    optimiser state (Adam's m and v, momentum's v), one array per
                           parameter array the optimiser steps, when saved
    meta                   UTF-8 JSON: format, version, net.config(), optimiser
                           name/step/hyper-parameters, epoch, history, extra
    sha256                 hex digest over every array above and ``meta``

Weights travel through the host, so a model saved from CuPy loads on NumPy and the
other way round. Writes are atomic: a temporary file in the same folder, flushed to
disk, then renamed over the target, so a crash mid-write leaves the old file whole.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "bpgpu-model"
VERSION = 1


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read: enough to resume training where it stopped.

    Attributes:
        network: the :class:`~bpgpu.Network` with its saved weights.
        optimizer: the optimiser with its state on the network's device, or None if
            none was saved; pass it to ``fit(optimizer=...)`` to resume.
        epoch: epochs completed when saved (``fit(initial_epoch=...)``), or None.
        history: the saved history (a dict of lists), or None.
        extra: the caller's own JSON metadata, or None.
    """

    network: object
    optimizer: object = None
    epoch: int | None = None
    history: dict | None = None
    extra: dict | None = None
    metadata: dict = field(default_factory=dict)


# -- writing ----------------------------------------------------------------------

def save(net, path, *, optimizer=None, history=None, epoch=None, extra=None) -> Path:
    """Write ``net`` (and optionally its training state) to ``path`` atomically.

    Args:
        net: the :class:`~bpgpu.Network`.
        path: the file to write (conventionally ``*.npz``); its folder must exist.
        optimizer: an :class:`~bpgpu.optimizers.Optimizer` whose state to keep for resuming.
        history: a :class:`~bpgpu.History` or a dict of it.
        epoch: epochs completed, for resuming with ``initial_epoch``.
        extra: any JSON-serialisable dict of the caller's own.

    Returns the path written.
    """
    path = Path(path)
    to_host = net.backend.to_host
    arrays = {f"theta.{l}": np.asarray(to_host(t)) for l, t in enumerate(net.thetas)}
    meta = {"format": FORMAT, "version": VERSION, "bpgpu_version": _version(),
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "saved_from": net.backend.name, "config": net.config(),
            "theta_shapes": [list(s) for s in net.theta_shapes()],
            "optimizer": None, "epoch": None if epoch is None else int(epoch),
            "history": _history_dict(history), "extra": extra}
    if optimizer is not None:
        saved = optimizer.state_dict(to_host)
        # On disk, one array per parameter array [W(0), b(0), …], whatever the layout in memory.
        state = {k: [p for flat in v for p in net.split(flat)] for k, v in saved["state"].items()}
        if not all(np.isfinite(a).all() for v in state.values() for a in v):
            raise ValueError("optimizer: its state holds NaN or inf (a diverged run); save the network alone, "
                             "or a fresh optimiser")
        meta["optimizer"] = {"name": saved["name"], "t": saved["t"], "hyper": saved["hyper"],
                             "state": {k: len(v) for k, v in state.items()}}
        for key, values in state.items():
            arrays.update({f"optimizer.{key}.{i}": np.asarray(a) for i, a in enumerate(values)})
    try:
        meta_bytes = json.dumps(meta, sort_keys=True).encode()
    except TypeError as err:
        raise TypeError(f"extra: expected a JSON-serialisable dict, got {extra!r} ({err})") from None
    arrays["meta"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    arrays["sha256"] = np.frombuffer(_digest(arrays).encode(), dtype=np.uint8)
    _write_atomic(path, arrays)
    return path


def _history_dict(history):
    if history is None or isinstance(history, dict):
        return history
    return history.to_dict()


def _version() -> str:
    from . import __version__

    return __version__


def _digest(arrays: dict) -> str:
    """sha256 over every array but the digest itself: name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        if name == "sha256":
            continue
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _write_atomic(path: Path, arrays: dict) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: cannot save, folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


# -- reading ----------------------------------------------------------------------

def load(path, backend="numpy", dtype=None):
    """The :class:`~bpgpu.Network` saved at ``path``, on ``backend`` ("numpy", "cupy",
    "auto"), in its saved dtype unless ``dtype`` is given.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is truncated, corrupt, altered, or not a bpgpu model.
    """
    return load_checkpoint(path, backend=backend, dtype=dtype).network


def load_checkpoint(path, backend="numpy", dtype=None) -> Checkpoint:
    """Everything :func:`save` wrote to ``path``: the network, the optimiser with its
    state (on the network's device), the epoch, the history and the extra metadata.

    Raises as :func:`load`.
    """
    from .network import Network
    from .optimizers import make_optimizer

    path = Path(path)
    arrays = _read_arrays(path)
    meta = _read_meta(path, arrays)
    try:
        net = Network(**{**meta["config"], "backend": backend, **({"dtype": dtype} if dtype else {})})
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: cannot build the saved network: {err}") from None
    shapes = net.theta_shapes()
    thetas = [_entry(path, arrays, f"theta.{l}", shape) for l, shape in enumerate(shapes)]
    extra_thetas = sorted(k for k in arrays if k.startswith("theta.") and k not in {f"theta.{l}" for l in range(len(shapes))})
    if extra_thetas:
        raise ValueError(f"{path}: {len(extra_thetas)} more theta entries than the architecture "
                         f"{net.sizes} has layers: {extra_thetas}")
    try:
        net.set_thetas(thetas)
    except ValueError as err:  # NaN/inf weights under a valid checksum: a buggy writer
        raise ValueError(f"{path}: {err}") from None

    optimizer = None
    if meta.get("optimizer"):
        saved = meta["optimizer"]
        hyper = dict(saved["hyper"])
        optimizer = make_optimizer(saved["name"], hyper.pop("lr"), **hyper)
        # The state mirrors the parameter arrays the optimiser steps, whatever their layout.
        param_shapes = net.param_shapes()
        state = {}
        for key, count in saved["state"].items():
            if count != len(param_shapes):
                raise ValueError(f"{path}: optimiser state {key!r} has {count} arrays, the network has "
                                 f"{len(param_shapes)} parameter arrays")
            flat = np.empty(net.n_params)
            for i, (view, shape) in enumerate(zip(net.split(flat), param_shapes)):
                view[...] = _entry(path, arrays, f"optimizer.{key}.{i}", shape)
            state[key] = [flat]
        optimizer.load_state_dict({"t": saved["t"], "state": state},
                                  lambda a: net.backend.asarray(a, net.dtype))
    return Checkpoint(network=net, optimizer=optimizer, epoch=meta.get("epoch"),
                      history=meta.get("history"), extra=meta.get("extra"), metadata=meta)


def _read_arrays(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.is_dir():
        raise ValueError(f"{path}: expected a model file (.npz), got a folder")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK":  # every zip, hence every .npz, starts so
        kind = "an empty file" if not magic else "a single .npy array" if magic == b"\x93NUM" else "another kind of file"
        raise ValueError(f"{path}: not a bpgpu model file (expected a .npz archive, got {kind})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except Exception as err:  # zip, zlib, pickle and format errors all mean one thing here
        reason = str(err) or type(err).__name__
        raise ValueError(f"{path}: not a readable bpgpu model file, truncated or corrupt? ({reason})") from None


def _read_meta(path: Path, arrays: dict) -> dict:
    if "meta" not in arrays or "sha256" not in arrays:
        raise ValueError(f"{path}: not a bpgpu model file (no 'meta'/'sha256' entries; it holds {sorted(arrays)[:6]})")
    try:
        meta = json.loads(arrays["meta"].tobytes().decode())
        stored = arrays["sha256"].tobytes().decode()
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path}: the model's metadata is unreadable ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a bpgpu model file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if _digest(arrays) != stored:
        raise ValueError(f"{path}: checksum mismatch: the file was altered or corrupted after it was saved")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise ValueError(f"{path}: model format version {meta.get('version')!r} is newer than this bpgpu "
                         f"reads ({VERSION}); upgrade bpgpu")
    return meta


def _entry(path: Path, arrays: dict, name: str, shape) -> np.ndarray:
    if name not in arrays:
        raise ValueError(f"{path}: missing entry {name!r} that the architecture needs")
    a = arrays[name]
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{path}: entry {name!r} has shape {tuple(a.shape)}, the architecture needs {tuple(shape)}")
    return a
