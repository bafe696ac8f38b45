"""Models on disk: one ``.npz`` file with the thetas, the architecture and a checksum.

The archive holds plain arrays only (it loads with ``allow_pickle=False``):

    theta.<l>              Theta(l), shape (sizes[l+1], sizes[l] + bias), the network's dtype
    optimizer.<key>.<i>    optimiser state (Adam's m and v, momentum's v), one array per
                           parameter array the optimiser steps, when saved
    scaler.mean, scaler.std  the input Standardizer's μ and σ (sizes[0],) float64, when saved
    meta                   UTF-8 JSON: format, version, net.config(), optimiser
                           name/step/hyper-parameters, epoch, history, extra, and the
                           class names of the output units when saved
    sha256                 hex digest over every array above and ``meta``

Weights travel through the host, so a model saved from CuPy loads on NumPy and the
other way round. A file without a scaler or class names is written as format version 1,
which every bpgpu reads; one with them as version 2, so that a bpgpu too old to apply them
refuses the file instead of predicting from unscaled inputs. Writes go through
:func:`bpgpu.atomic.atomic_write`: a crash or a full disk mid-write leaves the old file
whole, and symlinks, FIFOs and devices are refused.

Reading trusts nothing in the file: only a regular file is opened; every array's
declared shape is compared with what the metadata's architecture needs, and the
total checked against available memory, before any array is read or any network
built; the metadata's fields are type-checked, so a hand-edited file with a valid
checksum is refused with a ValueError naming the file.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import validation as check
from .atomic import atomic_write, check_target
from .npz import Archive
from .training import History
from .scaling import Standardizer

FORMAT = "bpgpu-model"
VERSION = 2  # the newest format this bpgpu reads and writes


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
        scaler: the :class:`~bpgpu.Standardizer` the inputs go through first, or None.
        classes: the class name of each output unit (of 0 and 1 for a single sigmoid
            output), or None.
    """

    network: object
    optimizer: object = None
    epoch: int | None = None
    history: dict | None = None
    extra: dict | None = None
    scaler: Standardizer | None = None
    classes: list[str] | None = None
    metadata: dict = field(default_factory=dict)


# -- writing ----------------------------------------------------------------------

def save(net, path, *, optimizer=None, history=None, epoch=None, extra=None, scaler=None, classes=None) -> Path:
    """Write ``net`` (and optionally its training state) to ``path`` atomically.

    Args:
        net: the :class:`~bpgpu.Network`.
        path: the file to write (conventionally ``*.npz``); its folder must exist.
        optimizer: an :class:`~bpgpu.optimizers.Optimizer` whose state to keep for resuming.
        history: a :class:`~bpgpu.History` or a dict of it.
        epoch: epochs completed, for resuming with ``initial_epoch``.
        extra: any JSON-serialisable dict of the caller's own.
        scaler: a fitted :class:`~bpgpu.Standardizer` of the network's inputs.
        classes: the class names of the output units, one per unit (two for a single
            sigmoid output: the classes of 0 and 1).

    Returns the path written.
    """
    # Everything checked before the weights leave the device, so that load reads back
    # what save accepts.
    path = check_target(path)
    epoch = check.number("epoch", epoch, low=0, integer=True, allow_none=True)
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra: expected a JSON-serialisable dict or None, got {type(extra).__name__}")
    if history is not None and not isinstance(history, (dict, History)):
        raise TypeError(f"history: expected a History or a dict of one, got {type(history).__name__}")
    to_host = net.backend.to_host
    arrays = {f"theta.{l}": np.asarray(to_host(t)) for l, t in enumerate(net.thetas)}
    if scaler is not None:
        arrays.update(_scaler_arrays(net, scaler))
    classes = _class_names(net, classes)
    meta = {"format": FORMAT, "version": 1 if scaler is None and classes is None else 2, "bpgpu_version": _version(),
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "saved_from": net.backend.name, "config": net.config(),
            "theta_shapes": [list(s) for s in net.theta_shapes()],
            "optimizer": None, "epoch": epoch,
            "history": _history_dict(history), "extra": extra, "classes": classes}
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
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def _scaler_arrays(net, scaler) -> dict:
    if not isinstance(scaler, Standardizer) or scaler.mean is None:
        raise TypeError(f"scaler: expected a fitted bpgpu.Standardizer, got {scaler!r}")
    if scaler.mean.shape != (net.sizes[0],):
        raise ValueError(f"scaler: expected one μ and σ per input ({net.sizes[0]}), got {scaler.mean.shape[0]}")
    return {"scaler.mean": scaler.mean, "scaler.std": scaler.std}


def _class_names(net, classes) -> list[str] | None:
    if classes is None:
        return None
    wanted = 2 if net.sizes[-1] == 1 else net.sizes[-1]
    if isinstance(classes, str) or not all(isinstance(c, str) for c in classes) or len(classes) != wanted \
            or len(set(classes)) != len(classes):
        raise ValueError(f"classes: expected {wanted} distinct names (strings), one per class of the "
                         f"{net.sizes[-1]} output unit(s), got {classes!r}")
    return list(classes)


def _history_dict(history):
    return history.to_dict() if isinstance(history, History) else history


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
    arrays = {}
    with Archive(path) as archive:
        meta, arrays["meta"], arrays["sha256"] = _read_meta(path, archive)
        sizes, shapes = _architecture(path, meta)
        state_counts = _state_counts(path, meta)
        arrays.update(_read_arrays(path, archive, sizes, shapes, state_counts))
    stored = arrays["sha256"]
    if _digest(arrays) != stored.tobytes().decode("ascii", "replace"):
        raise ValueError(f"{path}: checksum mismatch: the file was altered or corrupted after it was saved")
    _check_fields(path, meta, shapes)
    try:
        net = Network(**{**meta["config"], "backend": backend, **({"dtype": dtype} if dtype else {})})
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: cannot build the saved network: {err}") from None
    try:
        net.set_thetas([arrays[f"theta.{l}"] for l in range(len(shapes))])
    except ValueError as err:  # NaN/inf weights under a valid checksum: a buggy writer
        raise ValueError(f"{path}: {err}") from None

    optimizer = None
    if meta["optimizer"] is not None:
        saved = meta["optimizer"]
        hyper = dict(saved["hyper"])
        try:
            optimizer = make_optimizer(saved["name"], hyper.pop("lr"), **hyper)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: cannot build the saved optimizer: {err}") from None
        # The state mirrors the parameter arrays the optimiser steps, whatever their layout.
        param_shapes = net.param_shapes()
        state = {}
        for key, count in state_counts.items():
            if count != len(param_shapes):
                raise ValueError(f"{path}: optimiser state {key!r} has {count} arrays, the network has "
                                 f"{len(param_shapes)} parameter arrays")
            flat = np.empty(net.n_params)
            for i, (view, shape) in enumerate(zip(net.split(flat), param_shapes)):
                view[...] = _entry(path, arrays, f"optimizer.{key}.{i}", shape)
            state[key] = [flat]
        optimizer.load_state_dict({"t": saved["t"], "state": state},
                                  lambda a: net.backend.asarray(a, net.dtype))
    scaler = None
    if "scaler.mean" in arrays:
        try:
            scaler = Standardizer(arrays["scaler.mean"], arrays["scaler.std"])
        except ValueError as err:
            raise ValueError(f"{path}: the saved scaler is unusable: {err}") from None
    return Checkpoint(network=net, optimizer=optimizer, epoch=meta["epoch"], history=meta["history"],
                      extra=meta["extra"], scaler=scaler, classes=meta["classes"], metadata=meta)


# The metadata is JSON (the history grows by a few numbers an epoch); anything far
# larger is not a model's.
META_LIMIT = 256 * 2**20


def _read_meta(path: Path, archive: Archive) -> tuple[dict, np.ndarray, np.ndarray]:
    """(the metadata, its entry, the stored digest), bounded in size; format and version checked."""
    if not {"meta", "sha256"} <= archive.names:
        raise ValueError(f"{path}: not a bpgpu model file (no 'meta'/'sha256' entries; it holds {sorted(archive.names)[:6]})")
    for name, limit in (("meta", META_LIMIT), ("sha256", 64)):
        header = archive.header(name)
        if header.dtype != np.uint8 or len(header.shape) != 1 or header.nbytes > limit:
            raise ValueError(f"{path}: entry {name!r} is not a bpgpu model's: expected at most {limit:,} bytes "
                             f"(uint8), got shape {header.shape} of {header.dtype}")
    raw, stored = archive.read("meta"), archive.read("sha256")
    try:
        meta = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ValueError(f"{path}: the model's metadata is unreadable ({type(err).__name__}: {err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a bpgpu model file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version:
        raise ValueError(f"{path}: model format version {version!r}: expected a positive integer")
    if version > VERSION:
        raise ValueError(f"{path}: model format version {version!r} is newer than this bpgpu "
                         f"reads ({VERSION}); upgrade bpgpu")
    return meta, raw, stored


def _architecture(path: Path, meta: dict) -> tuple[list[int], list[tuple[int, int]]]:
    """(sizes, Theta(l)'s shapes) as the metadata declares them, checked to fit in
    memory, without building anything."""
    config = meta.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{path}: metadata 'config': expected a dict of the network's arguments, got {_shown(config)}")
    bias = config.get("bias", True)
    if not isinstance(bias, bool):
        raise ValueError(f"{path}: metadata 'config.bias': expected true or false, got {_shown(bias)}")
    try:
        sizes = check.sizes(config.get("sizes"))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: metadata 'config': {err}") from None
    return sizes, [(sizes[l + 1], sizes[l] + bias) for l in range(len(sizes) - 1)]


def _state_counts(path: Path, meta: dict) -> dict:
    """{state key: number of arrays} the metadata declares for the optimiser ({} for none)."""
    saved = meta.get("optimizer")
    if saved is None:
        return {}
    state = saved.get("state") if isinstance(saved, dict) else None
    if not isinstance(state, dict) or not all(isinstance(k, str) and _count(v) for k, v in state.items()):
        raise ValueError(f"{path}: metadata 'optimizer': expected a dict whose 'state' maps names to array "
                         f"counts, got {_shown(saved)}")
    return state


def _read_arrays(path: Path, archive: Archive, sizes, shapes, state_counts) -> dict:
    """Every array but meta/sha256, each header checked against the architecture before
    anything is read: Theta(l) exactly ``shapes[l]``, each optimiser state as many
    numbers as the weights (its layout is the optimiser's), nothing else; and all of
    it, with the network to be built, checked to fit in the memory available."""
    declared = len(shapes) + sum(state_counts.values())  # (a scaler's 2 entries are optional)
    if declared > len(archive.names):  # before listing them: the counts may be absurd
        raise ValueError(f"{path}: the metadata declares {declared:,} arrays, the file holds {len(archive.names)}")
    exact = {f"theta.{l}": shape for l, shape in enumerate(shapes)}
    if "scaler.mean" in archive.names or "scaler.std" in archive.names:
        exact.update({"scaler.mean": (sizes[0],), "scaler.std": (sizes[0],)})
    state = {key: [f"optimizer.{key}.{i}" for i in range(count)] for key, count in state_counts.items()}
    wanted = set(exact).union(*state.values())
    unexpected = sorted(archive.names - wanted - {"meta", "sha256"})
    if unexpected:
        raise ValueError(f"{path}: entries that a network of sizes {sizes} does not have: {unexpected[:6]}")
    missing = sorted(wanted - archive.names)
    if missing:
        raise ValueError(f"{path}: missing entry {missing[0]!r} that the architecture needs")
    total = 0
    for name, shape in exact.items():
        header = _float_header(path, archive, name)
        if header.shape != shape:
            raise ValueError(f"{path}: entry {name!r} has shape {header.shape}, the architecture needs {shape}")
        total += header.nbytes
    weights = sum(a * b for a, b in shapes)
    for key, names in state.items():
        numbers = sum(int(np.prod(_float_header(path, archive, name).shape)) for name in names)
        if numbers != weights:
            raise ValueError(f"{path}: optimiser state {key!r} holds {numbers:,} numbers, the network has {weights:,} weights")
        total += numbers * 16  # read, then copied to the device
    try:
        check.fits_in_memory("the model", check.network_bytes(sizes) + total,
                             f"{len(archive.names)} arrays and a network of sizes {sizes}")
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return {name: archive.read(name) for name in sorted(wanted)}


def _float_header(path: Path, archive: Archive, name: str):
    header = archive.header(name)
    if header.dtype.kind != "f" or header.dtype.itemsize not in (4, 8):
        raise ValueError(f"{path}: entry {name!r}: expected float32 or float64 numbers, got {header.dtype}")
    return header


def _check_fields(path: Path, meta: dict, shapes) -> None:
    """The metadata's other fields have the types :func:`save` writes, so nothing
    downstream meets a string where it expects an epoch."""
    declared = meta.get("theta_shapes")
    if declared is not None and declared != [list(s) for s in shapes]:
        raise ValueError(f"{path}: metadata 'theta_shapes' {_shown(declared)} disagrees with the architecture's "
                         f"{[list(s) for s in shapes]}")
    saved = meta.get("optimizer")
    if saved is not None:
        hyper = saved.get("hyper")
        for key, ok, expected in (
                ("name", isinstance(saved.get("name"), str), "an optimiser's name"),
                ("t", _count(saved.get("t")), "a step count, an integer >= 0"),
                ("hyper", isinstance(hyper, dict) and all(isinstance(v, (int, float)) for v in hyper.values()),
                 "a dict of numbers"),
                ("hyper.lr", isinstance(hyper, dict) and _number(hyper.get("lr")), "a number")):
            if not ok:
                value = hyper.get("lr") if key == "hyper.lr" else saved.get(key)
                raise ValueError(f"{path}: metadata 'optimizer.{key}': expected {expected}, got {_shown(value)}")
    meta.setdefault("optimizer", None)
    epoch = meta.setdefault("epoch", None)
    if epoch is not None and not _count(epoch):
        raise ValueError(f"{path}: metadata 'epoch': expected an integer >= 0 or null, got {_shown(epoch)}")
    history = meta.setdefault("history", None)
    if history is not None and not _history_ok(history):
        raise ValueError(f"{path}: metadata 'history': expected a dict with lists of numbers 'loss'/'val_loss' "
                         f"and counts 'epochs'/'steps'/'samples', got {_shown(history)}")
    extra = meta.setdefault("extra", None)
    if extra is not None and not isinstance(extra, dict):
        raise ValueError(f"{path}: metadata 'extra': expected a dict or null, got {_shown(extra)}")
    classes = meta.setdefault("classes", None)
    if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
                                or len(set(classes)) != len(classes)
                                or len(classes) != max(2, shapes[-1][0])):
        raise ValueError(f"{path}: metadata 'classes': expected {max(2, shapes[-1][0])} distinct names or null, "
                         f"got {_shown(classes)}")


def _history_ok(history) -> bool:
    if not isinstance(history, dict):
        return False
    lists = all(isinstance(history.get(k, []), list) and all(_number(x) for x in history.get(k, []))
                for k in ("loss", "val_loss"))
    counts = all(_count(history.get(k, 0)) for k in ("epochs", "steps", "samples"))
    return lists and counts and _number(history.get("elapsed", 0.0))


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _entry(path: Path, arrays: dict, name: str, shape) -> np.ndarray:
    a = arrays[name]
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{path}: entry {name!r} has shape {tuple(a.shape)}, the architecture needs {tuple(shape)}")
    return a
