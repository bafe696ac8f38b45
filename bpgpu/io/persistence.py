"""Models on disk: one ``.npz`` of plain arrays (``theta.<l>``, ``optimizer.<slot>.0``,
``scaler.mean``/``scaler.std``, ``target_scaler.mean``/``target_scaler.std``, ``meta`` JSON,
``sha256`` over them all), written through :func:`bpgpu.io.atomic.atomic_write` and read
trusting nothing (:mod:`bpgpu.io.model_file`). Weights travel through the host, so a model
saved from CuPy loads on NumPy. A file with a scaler or class names is format version 2, one
with a target scaler version 3 (docs/architecture.md, "Files", has the layout).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import model_file
from .. import validation as check
from .atomic import atomic_write, check_target
from .model_file import FORMAT
from .npz import Archive
from ..optimizers import OPTIMIZERS
from ..position import Position, State
from ..training import History
from ..scaling import Standardizer



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
        target_scaler: the :class:`~bpgpu.Standardizer` of the targets the network was
            trained on, or None: predictions in the targets' units are
            ``target_scaler.inverse_transform(net.predict(...))``.
        classes: the class name of each output unit (of 0 and 1 for a single sigmoid
            output), or None.
        position: where the saved run stands (``fit(resume=...)`` continues it exactly:
            a part epoch, the early-stopping state), or None when no epoch was saved;
            a file saved without one gives the start of epoch ``epoch``.
    """

    network: object
    optimizer: object = None
    epoch: int | None = None
    history: dict | None = None
    extra: dict | None = None
    scaler: Standardizer | None = None
    classes: list[str] | None = None
    target_scaler: Standardizer | None = None
    metadata: dict = field(default_factory=dict)
    position: Position | None = None


# -- writing ----------------------------------------------------------------------

def save(net, path, *, optimizer=None, history=None, epoch=None, extra=None, scaler=None, classes=None,
         position=None, target_scaler=None) -> Path:
    """Write ``net`` (and optionally its training state) to ``path`` atomically.

    Args:
        net: the :class:`~bpgpu.Network`.
        path: the file to write (conventionally ``*.npz``); its folder must exist.
        optimizer: an :class:`~bpgpu.optimizers.Optimizer` whose state to keep for resuming.
        history: a :class:`~bpgpu.History` or a dict of it.
        epoch: epochs completed, for resuming with ``initial_epoch``.
        extra: any JSON-serialisable dict of the caller's own.
        scaler: a fitted :class:`~bpgpu.Standardizer` of the network's inputs.
        target_scaler: a fitted :class:`~bpgpu.Standardizer` of the targets it was trained
            on (one μ and σ per output unit).
        classes: the class names of the output units, one per unit (two for a single
            sigmoid output: the classes of 0 and 1).
        position: a :class:`~bpgpu.position.Position` (``history.position``), so that the
            run resumes exactly where it stopped; ``epoch`` is then its epoch.

    Returns the path written.
    """
    # Everything checked before the weights leave the device, so that load reads back
    # what save accepts.
    path = check_target(path)
    epoch = _epoch_of(check.number("epoch", epoch, low=0, integer=True, allow_none=True), position)
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra: expected a JSON-serialisable dict or None, got {type(extra).__name__}")
    if history is not None and not isinstance(history, (dict, History)):
        raise TypeError(f"history: expected a History or a dict of one, got {type(history).__name__}")
    if optimizer is not None and getattr(optimizer, "name", None) not in OPTIMIZERS:
        raise ValueError(f"optimizer: a saved optimiser must be one load can rebuild, one of {OPTIMIZERS}; got "
                         f"{type(optimizer).__name__} named {getattr(optimizer, 'name', None)!r}: save the network alone")
    to_host = net.backend.to_host
    arrays = {f"theta.{l}": np.asarray(to_host(t)) for l, t in enumerate(net.thetas)}
    for name, given, width in (("scaler", scaler, net.sizes[0]), ("target_scaler", target_scaler, net.sizes[-1])):
        if given is not None:
            arrays.update(_scaler_arrays(name, given, width))
    classes = _class_names(net, classes)
    version = 3 if target_scaler is not None else 1 if scaler is None and classes is None else 2
    meta = {"format": FORMAT, "version": version, "bpgpu_version": _version(),
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "saved_from": net.backend.name, "config": net.config(),
            "theta_shapes": [list(s) for s in net.theta_shapes()],
            "optimizer": None, "epoch": epoch,
            "history": _history_dict(history), "extra": extra, "classes": classes}
    if optimizer is not None:
        saved = optimizer.state_dict(to_host)
        meta["optimizer"] = {"name": saved["name"], "t": saved["t"], "hyper": saved["hyper"],
                             "state": _slot_arrays("optimizer", saved["state"], arrays)}
    if position is not None:
        meta["position"] = {**position.meta(), "best": _best_arrays(net, position.best, arrays)}
    try:
        meta_bytes = json.dumps(meta, sort_keys=True).encode()
    except TypeError as err:
        raise TypeError(f"extra: expected a JSON-serialisable dict, got {extra!r} ({err})") from None
    arrays["meta"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    arrays["sha256"] = np.frombuffer(_digest(arrays).encode(), dtype=np.uint8)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def _epoch_of(epoch, position):
    if position is None:
        return epoch
    if not isinstance(position, Position):
        raise TypeError(f"position: expected a bpgpu.position.Position (history.position) or None, "
                        f"got {type(position).__name__}")
    if epoch is not None and epoch != position.epoch:
        raise ValueError(f"epoch: the position is at epoch {position.epoch}, got epoch={epoch}")
    return position.epoch


def _slot_arrays(prefix: str, slots: dict, arrays: dict) -> dict:
    """Each optimiser slot, a flat host vector (n_params,), into ``arrays`` as ``prefix``.<slot>.0;
    what the metadata says of them ({slot: 1}). NaN or inf refused."""
    if not all(np.isfinite(v).all() for v in slots.values()):
        raise ValueError(f"{prefix.partition('.')[2] or prefix}: its state holds NaN or inf (a diverged run); "
                         "save the network alone, or a fresh optimiser")
    arrays.update({f"{prefix}.{key}.0": np.asarray(v) for key, v in slots.items()})
    return {key: 1 for key in slots}


def _best_arrays(net, best: State | None, arrays: dict) -> dict | None:
    """A position's best weights and optimiser state into ``arrays`` (best.params.<i>,
    best.optimizer.<key>.<i>); what the metadata says of them."""
    if best is None:
        return None
    to_host = net.backend.to_host
    params = [np.asarray(p) for p in net.split(np.array(to_host(best.params)))]
    arrays.update({f"best.params.{i}": p for i, p in enumerate(params)})
    slots = {k: np.array(to_host(v)) for k, v in best.optimizer["state"].items()}
    return {"t": best.optimizer["t"], "params": len(params), "state": _slot_arrays("best.optimizer", slots, arrays)}


def _scaler_arrays(name: str, scaler, width: int) -> dict:
    """``name``.mean and ``name``.std of a fitted Standardizer of ``width`` columns (the inputs
    for "scaler", the output units for "target_scaler")."""
    if not isinstance(scaler, Standardizer) or scaler.mean is None:
        raise TypeError(f"{name}: expected a fitted bpgpu.Standardizer, got {scaler!r}")
    if scaler.mean.shape != (width,):
        what = "input" if name == "scaler" else "output unit"
        raise ValueError(f"{name}: expected one μ and σ per {what} ({width}), got {scaler.mean.shape[0]}")
    return {f"{name}.mean": scaler.mean, f"{name}.std": scaler.std}


def _class_names(net, classes) -> list[str] | None:
    if classes is None and getattr(net, "classes", None) is not None:  # those the API's fit kept
        classes = [str(c) for c in net.classes]
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
    from .. import __version__

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
    from ..network import Network
    from ..optimizers import make_optimizer

    path = Path(path)
    arrays = {}
    with Archive(path) as archive:
        meta, arrays["meta"], arrays["sha256"] = model_file.read_meta(path, archive)
        sizes, shapes = model_file.architecture(path, meta)
        state_counts = model_file.state_counts(path, meta)
        arrays.update(model_file.read_arrays(path, archive, sizes, shapes, state_counts))
    stored = arrays["sha256"]
    if _digest(arrays) != stored.tobytes().decode("ascii", "replace"):
        raise ValueError(f"{path}: checksum mismatch: the file was altered or corrupted after it was saved")
    model_file.check_fields(path, meta, shapes)
    try:
        net = Network(**{**meta["config"], "backend": backend, **({"dtype": dtype} if dtype else {})})
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: cannot build the saved network: {err}") from None
    try:
        net.set_thetas([arrays[f"theta.{l}"] for l in range(len(shapes))])
    except ValueError as err:  # NaN/inf weights under a valid checksum: a buggy writer
        raise ValueError(f"{path}: {err}") from None

    flats = {prefix: _flat(path, net, arrays, prefix, count) for prefix, count in state_counts.items()}
    optimizer = None
    if meta["optimizer"] is not None:
        saved = meta["optimizer"]
        hyper = dict(saved["hyper"])
        try:
            optimizer = make_optimizer(saved["name"], hyper.pop("lr"), **hyper)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: cannot build the saved optimizer: {err}") from None
        optimizer.load_state_dict({"t": saved["t"], "state": _state(flats, "optimizer.")},
                                  lambda a: net.backend.asarray(a, net.dtype))
    net.classes = meta["classes"]
    return Checkpoint(network=net, optimizer=optimizer, epoch=meta["epoch"], history=meta["history"],
                      extra=meta["extra"], scaler=_scaler(path, arrays, "scaler"), classes=meta["classes"],
                      metadata=meta, position=_position(meta, net, flats),
                      target_scaler=_scaler(path, arrays, "target_scaler"))


def _scaler(path, arrays: dict, name: str) -> Standardizer | None:
    if f"{name}.mean" not in arrays:
        return None
    try:
        return Standardizer(arrays[f"{name}.mean"], arrays[f"{name}.std"])
    except ValueError as err:
        raise ValueError(f"{path}: the saved {name.replace('_', ' ')} is unusable: {err}") from None


def _flat(path, net, arrays: dict, prefix: str, count: int) -> np.ndarray:
    """One flat host vector (n_params,) in the layout of ``net.params`` from the entries
    ``prefix``.0 …: that vector itself, or (files of bpgpu ≤ 0.x, and best.params) one
    entry per parameter array [W(0), b(0), …]."""
    if count == 1 and tuple(arrays[f"{prefix}.0"].shape) == (net.n_params,):
        return np.asarray(arrays[f"{prefix}.0"], dtype=np.float64)
    param_shapes = net.param_shapes()
    if count != len(param_shapes):
        raise ValueError(f"{path}: {model_file.label(prefix)} has {count} arrays, the network has "
                         f"{len(param_shapes)} parameter arrays")
    flat = np.empty(net.n_params)
    for i, (view, shape) in enumerate(zip(net.split(flat), param_shapes)):
        view[...] = model_file.entry(path, arrays, f"{prefix}.{i}", shape)
    return flat


def _state(flats: dict, prefix: str) -> dict:
    """{slot: flat vector} of the state entries under ``prefix`` ("optimizer.", "best.optimizer.")."""
    return {name[len(prefix):]: flat for name, flat in flats.items() if name.startswith(prefix)}


def _position(meta: dict, net, flats: dict) -> Position | None:
    """The saved :class:`Position`, its best state on the network's device; the start of
    the saved epoch for a file without one; None without an epoch."""
    saved = meta.get("position")
    if saved is None:
        return None if meta["epoch"] is None else Position(epoch=meta["epoch"])
    best = None
    if saved.get("best") is not None:
        def to_device(a):
            return net.backend.asarray(a, net.dtype)
        state = {k: to_device(v) for k, v in _state(flats, "best.optimizer.").items()}
        best = State(to_device(flats["best.params"]), {"t": saved["best"]["t"], "state": state})
    return Position.from_meta(saved, best)
