"""Reading a model file that may have been written by someone else: nothing in it is
trusted. Every entry's declared shape is compared with what the metadata's architecture
needs, and the total with the memory available, before any array is read or network
built; the metadata's fields are type-checked, so a hand-edited file with a valid checksum
is refused with a ValueError naming the file. :mod:`bpgpu.io.persistence` reads through this.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import validation as check
from .npz import Archive

FORMAT = "bpgpu-model"
VERSION = 3  # the newest format this bpgpu reads and writes


# The metadata is JSON (the history grows by a few numbers an epoch); anything far
# larger is not a model's.
META_LIMIT = 256 * 2**20


def read_meta(path: Path, archive: Archive) -> tuple[dict, np.ndarray, np.ndarray]:
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


def architecture(path: Path, meta: dict) -> tuple[list[int], list[tuple[int, int]]]:
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


def state_counts(path: Path, meta: dict) -> dict:
    """{entry prefix: number of arrays} of the per-parameter arrays the metadata declares:
    the optimiser's state ("optimizer.<key>"), and a saved position's best weights
    ("best.params") and their optimiser state ("best.optimizer.<key>"); {} for none."""
    counts = {f"optimizer.{k}": n for k, n in _declared(path, meta, "optimizer", meta.get("optimizer")).items()}
    position = meta.get("position")
    best = position.get("best") if isinstance(position, dict) else None
    if best is not None:
        counts.update({f"best.optimizer.{k}": n for k, n in _declared(path, meta, "position.best", best).items()})
        if not _count(best.get("params")):
            raise ValueError(f"{path}: metadata 'position.best.params': expected an array count, got "
                             f"{_shown(best.get('params'))}")
        counts["best.params"] = best["params"]
    return counts


def _declared(path: Path, meta: dict, where: str, saved) -> dict:
    """{state key: number of arrays} of an optimiser's state as ``saved`` declares it."""
    if saved is None:
        return {}
    state = saved.get("state") if isinstance(saved, dict) else None
    if not isinstance(state, dict) or not all(isinstance(k, str) and _count(v) for k, v in state.items()):
        raise ValueError(f"{path}: metadata '{where}': expected a dict whose 'state' maps names to array "
                         f"counts, got {_shown(saved)}")
    return state


def read_arrays(path: Path, archive: Archive, sizes, shapes, state_counts) -> dict:
    """Every array but meta/sha256, each header checked against the architecture before
    anything is read: Theta(l) exactly ``shapes[l]``, each optimiser state as many
    numbers as the weights (its layout is the optimiser's), nothing else; and all of
    it, with the network to be built, checked to fit in the memory available."""
    declared = len(shapes) + sum(state_counts.values())  # (the scalers' entries are optional)
    if declared > len(archive.names):  # before listing them: the counts may be absurd
        raise ValueError(f"{path}: the metadata declares {declared:,} arrays, the file holds {len(archive.names)}")
    exact = {f"theta.{l}": shape for l, shape in enumerate(shapes)}
    for scaler, width in (("scaler", sizes[0]), ("target_scaler", sizes[-1])):  # both optional
        if f"{scaler}.mean" in archive.names or f"{scaler}.std" in archive.names:
            exact.update({f"{scaler}.mean": (width,), f"{scaler}.std": (width,)})
    state = {key: [f"{key}.{i}" for i in range(count)] for key, count in state_counts.items()}
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
            raise ValueError(f"{path}: {label(key)} holds {numbers:,} numbers, the network has {weights:,} weights")
        total += numbers * 16  # read, then copied to the device
    try:
        check.fits_in_memory("the model", check.network_bytes(sizes) + total,
                             f"{len(archive.names)} arrays and a network of sizes {sizes}")
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return {name: archive.read(name) for name in sorted(wanted)}


def label(prefix: str) -> str:
    """How an error names the arrays ``prefix``.0, .1, …: "optimiser state 'm'", "entries best.params.*"."""
    return f"optimiser state {prefix[len('optimizer.'):]!r}" if prefix.startswith("optimizer.") else f"entries {prefix}.*"


def _float_header(path: Path, archive: Archive, name: str):
    header = archive.header(name)
    if header.dtype.kind != "f" or header.dtype.itemsize not in (4, 8):
        raise ValueError(f"{path}: entry {name!r}: expected float32 or float64 numbers, got {header.dtype}")
    return header


def check_fields(path: Path, meta: dict, shapes) -> None:
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
    _check_position(path, meta)
    extra = meta.setdefault("extra", None)
    if extra is not None and not isinstance(extra, dict):
        raise ValueError(f"{path}: metadata 'extra': expected a dict or null, got {_shown(extra)}")
    classes = meta.setdefault("classes", None)
    if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
                                or len(set(classes)) != len(classes)
                                or len(classes) != max(2, shapes[-1][0])):
        raise ValueError(f"{path}: metadata 'classes': expected {max(2, shapes[-1][0])} distinct names or null, "
                         f"got {_shown(classes)}")


def _check_position(path: Path, meta: dict) -> None:
    """A saved :class:`~bpgpu.position.Position`: its counts, its part epoch's losses (one a
    step), its epoch the file's, its best state's step count."""
    position = meta.setdefault("position", None)
    if position is None:
        return
    fields = isinstance(position, dict) and all(_count(position.get(k)) for k in ("epoch", "step", "samples", "wait")) \
        and _count(position.get("dropout_draws", 0))
    losses = position.get("losses") if fields else None
    best = position.get("best") if fields else None
    if not (fields and isinstance(losses, list) and all(_number(J) for J in losses) and len(losses) == position["step"]
            and position["epoch"] == meta.get("epoch")
            and (position.get("best_loss") is None or _number(position["best_loss"]))
            and (position.get("best_epoch") is None or _count(position["best_epoch"]))
            and (best is None or (isinstance(best, dict) and _count(best.get("t"))))):
        raise ValueError(f"{path}: metadata 'position': expected the epoch {meta.get('epoch')}, counts 'step'/"
                         f"'samples'/'wait', one loss a step and a best loss, epoch and state or null, got "
                         f"{_shown(position)}")


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


def entry(path: Path, arrays: dict, name: str, shape) -> np.ndarray:
    a = arrays[name]
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{path}: entry {name!r} has shape {tuple(a.shape)}, the architecture needs {tuple(shape)}")
    return a
