"""Model files made to hurt: a FIFO or device where a model should be, metadata
edited by hand under a recomputed (valid) checksum, shapes declared far larger than
the data, and compressed members that expand enormously.

The promise under test: ``load``/``load_checkpoint`` refuse each at once with a
one-line ValueError naming the file — never block, never allocate much more than
the file's honest content, never fail with KeyError, TypeError or "internal error".
"""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest

import bpgpu
from bpgpu.io import model_file, persistence
from bpgpu import environment
from reliability import tally

RELIABILITY = "hostile_model"

# What loading a small model may allocate at most, however large the file says it is.
SMALL = 16 * 2**20


@pytest.fixture
def saved(tmp_path):
    """A [2, 8, 3] model with Adam state, an epoch, a history and extra metadata."""
    net = bpgpu.Network([2, 8, 3], activation="relu", output="softmax", loss="cross_entropy", seed=2)
    X, Y = bpgpu.data.spirals(60, 3, seed=1)
    opt = bpgpu.optimizers.make_optimizer("adam", 0.01)
    history = net.fit(X, Y, epochs=3, optimizer=opt)
    path = tmp_path / "model.npz"
    persistence.save(net, path, optimizer=opt, history=history, epoch=3, extra={"cli": {"lr": 0.01}})
    return path


def forge(path, edit, *, compression=zipfile.ZIP_STORED):
    """Rewrite the model at ``path`` with ``edit(meta, arrays)`` applied and the checksum
    recomputed, as a careful forger (or a buggy writer) would."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays["meta"].tobytes())
    edited = edit(meta, arrays)
    raw = edited if isinstance(edited, bytes) else json.dumps(meta).encode()
    arrays["meta"] = np.frombuffer(raw, np.uint8)
    arrays["sha256"] = np.frombuffer(persistence._digest(arrays).encode(), np.uint8)
    write_npz(path, arrays, compression)


def write_npz(path, arrays, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, a in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, a, allow_pickle=True)
            z.writestr(f"{name}.npy", buffer.getvalue())


def refused(path, words=(), load=persistence.load_checkpoint) -> str:
    """Loading ``path`` raises a one-line ValueError naming it and every one of ``words``."""
    with pytest.raises(ValueError) as raised:
        load(path)
    tally()
    assert type(raised.value) is ValueError
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    missing = [w for w in words if w not in message]
    assert not missing, f"{message!r} lacks {missing}"
    return message


def peak_while(call) -> int:
    """Bytes allocated at the peak while ``call()`` runs (its exception swallowed)."""
    tracemalloc.start()
    try:
        call()
    except ValueError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


# -- not a file at all ------------------------------------------------------------------

def test_a_fifo_is_refused_at_once(tmp_path, no_hang):
    """A FIFO with no writer where the model should be: refused without opening it (opening would block)"""
    os.mkfifo(tmp_path / "model.npz")
    refused(tmp_path / "model.npz", ["FIFO"], load=persistence.load)


def test_a_symlink_to_a_fifo_is_refused_at_once(tmp_path, no_hang):
    """A symlink to a FIFO: the same"""
    os.mkfifo(tmp_path / "pipe")
    os.symlink(tmp_path / "pipe", tmp_path / "model.npz")
    refused(tmp_path / "model.npz", ["FIFO"])


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused(device, no_hang):
    """A character device (endless bytes): refused before reading"""
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    refused(device, ["character device"])


def test_a_folder_is_refused(tmp_path):
    """A folder named like a model: refused, saying so"""
    (tmp_path / "model.npz").mkdir()
    refused(tmp_path / "model.npz", ["expected a model file, got a folder"])


def test_a_symlink_to_a_model_loads(saved):
    """Reading through a symlink to a real model is fine (only writes refuse links)"""
    os.symlink(saved, saved.with_name("latest.npz"))
    assert persistence.load_checkpoint(saved.with_name("latest.npz")).epoch == 3


# -- metadata edited by hand, checksum recomputed ---------------------------------------

def drop(key):
    return lambda meta, arrays: meta.pop(key)


def put(key, value):
    return lambda meta, arrays: meta.__setitem__(key, value)


def put_in(outer, key, value):
    return lambda meta, arrays: meta[outer].__setitem__(key, value)


def drop_in(outer, key):
    return lambda meta, arrays: meta[outer].pop(key)


def put_hyper(key, value):
    return lambda meta, arrays: meta["optimizer"]["hyper"].__setitem__(key, value)


def put_history(key, value):
    return lambda meta, arrays: meta["history"].__setitem__(key, value)


EDITS = [
    ("config missing", drop("config"), ["'config'", "expected a dict"]),
    ("config a list", put("config", [2, 8, 3]), ["'config'", "expected a dict"]),
    ("config without sizes", drop_in("config", "sizes"), ["'config'", "sizes"]),
    ("config sizes a string", put_in("config", "sizes", "2,8,3"), ["'config'", "sizes", "'2,8,3'"]),
    ("config sizes with a fraction", put_in("config", "sizes", [2, 8.5, 3]), ["sizes[1]", "8.5"]),
    ("config bias a string", put_in("config", "bias", "yes"), ["'config.bias'", "true or false", '"yes"']),
    ("config with an unknown key", put_in("config", "colour", "red"), ["cannot build the saved network", "colour"]),
    ("config with an unknown activation", put_in("config", "activation", ["swish"]), ["cannot build", "'swish'"]),
    ("meta a JSON list", lambda meta, arrays: b"[1, 2, 3]", ["not a bpgpu model file"]),
    ("meta not JSON", lambda meta, arrays: b"{not json", ["metadata is unreadable"]),
    ("meta not UTF-8", lambda meta, arrays: b'{"format": "\xff\xfe"}', ["metadata is unreadable"]),
    ("meta nested 100000 deep", lambda meta, arrays: b"[" * 100_000 + b"]" * 100_000, ["metadata is unreadable"]),
    ("version a string", put("version", "1"), ["version '1'", "positive integer"]),
    ("version missing", drop("version"), ["version None"]),
    ("optimizer a string", put("optimizer", "adam"), ["'optimizer'", '"adam"']),
    ("optimizer without state", drop_in("optimizer", "state"), ["'optimizer'", "'state'"]),
    ("optimizer state counts as strings", put_in("optimizer", "state", {"m": "2", "v": "2"}), ["'optimizer'"]),
    ("optimizer state a list", put_in("optimizer", "state", ["m", "v"]), ["'optimizer'"]),
    ("optimizer state of a billion arrays", put_in("optimizer", "state", {"m": 10**9, "v": 4}),
     ["declares 1,000,000,006 arrays", "holds 6"]),
    ("optimizer without a name", drop_in("optimizer", "name"), ["'optimizer.name'", "got null"]),
    ("optimizer of an unknown name", put_in("optimizer", "name", "adamw"), ["cannot build the saved optimizer", "adamw"]),
    ("optimizer hyper-parameters without lr", lambda meta, arrays: meta["optimizer"]["hyper"].pop("lr"),
     ["'optimizer.hyper.lr'", "a number", "got null"]),
    ("optimizer lr a string", put_hyper("lr", "0.01"), ["'optimizer.hyper'", "numbers", '"0.01"']),
    ("optimizer with an unknown hyper-parameter", put_hyper("gamma", 0.5), ["cannot build the saved optimizer", "gamma"]),
    ("optimizer hyper-parameters a list", put_in("optimizer", "hyper", [0.01]), ["'optimizer.hyper'", "[0.01]"]),
    ("optimizer step count negative", put_in("optimizer", "t", -1), ["'optimizer.t'", "got -1"]),
    ("optimizer step count a string", put_in("optimizer", "t", "7"), ["'optimizer.t'", "integer >= 0", '"7"']),
    ("epoch a string", put("epoch", "3"), ["'epoch'", "integer >= 0", '"3"']),
    ("epoch negative", put("epoch", -3), ["'epoch'", "-3"]),
    ("epoch a fraction", put("epoch", 2.5), ["'epoch'", "2.5"]),
    ("epoch true", put("epoch", True), ["'epoch'", "true"]),
    ("history a list", put("history", [0.5, 0.4]), ["'history'"]),
    ("history loss a string", put_history("loss", "0.5"), ["'history'"]),
    ("history loss holding strings", put_history("loss", ["0.5"]), ["'history'"]),
    ("history steps negative", put_history("steps", -1), ["'history'"]),
    ("extra a list", put("extra", ["cli"]), ["'extra'", "a dict or null"]),
    ("classes a string", put("classes", "abc"), ["'classes'", "3 distinct names", '"abc"']),
    ("classes repeated", put("classes", ["a", "a", "b"]), ["'classes'", "distinct"]),
    ("classes one short", put("classes", ["a", "b"]), ["'classes'", "3 distinct names"]),
    ("classes not names", put("classes", [0, 1, 2]), ["'classes'", "[0, 1, 2]"]),
    ("theta_shapes disagreeing", put("theta_shapes", [[8, 3], [3, 8]]), ["'theta_shapes'", "[[8, 3], [3, 9]]"]),
]


@pytest.mark.parametrize("edit, words", [pytest.param(*case[1:], id=case[0]) for case in EDITS])
def test_hand_edited_metadata_is_refused_naming_the_file(saved, edit, words):
    """Metadata edited by hand, checksum recomputed: refused in one line naming the file and the field"""
    forge(saved, edit)
    refused(saved, words)


def test_an_unedited_forgery_still_loads(saved):
    """The forger's round trip itself changes nothing: what it writes unedited loads as saved"""
    forge(saved, lambda meta, arrays: None)
    back = persistence.load_checkpoint(saved)
    assert back.epoch == 3 and back.optimizer.name == "adam" and back.extra == {"cli": {"lr": 0.01}}


# -- arrays forged under a valid checksum -------------------------------------------------

def replace_array(name, value):
    return lambda meta, arrays: arrays.__setitem__(name, value)


ARRAYS = [
    ("a theta of Python objects", replace_array("theta.0", np.array([[None] * 3] * 8, dtype=object)),
     ["'theta.0'", "Python objects"]),
    ("a theta of strings", replace_array("theta.0", np.full((8, 3), "1.0")), ["'theta.0'", "float32 or float64", "<U3"]),
    ("a theta of integers", replace_array("theta.0", np.ones((8, 3), dtype=np.int64)), ["'theta.0'", "int64"]),
    ("an extra layer", replace_array("theta.2", np.ones((3, 4))), ["does not have", "theta.2"]),
    ("an entry nobody asked for", replace_array("junk", np.ones(10)), ["does not have", "junk"]),
    ("optimizer state of the wrong size", replace_array("optimizer.m.0", np.ones((80, 20))),
     ["optimiser state 'm'", "1,600 numbers", "51 weights"]),
    ("a scaler of the wrong width", lambda meta, arrays: arrays.update({"scaler.mean": np.zeros(5), "scaler.std": np.ones(5)}),
     ["'scaler.mean'", "(5,)", "(2,)"]),
    ("half a scaler", replace_array("scaler.mean", np.zeros(2)), ["missing entry 'scaler.std'"]),
    ("a scaler of strings", lambda meta, arrays: arrays.update({"scaler.mean": np.array(["0", "0"]), "scaler.std": np.ones(2)}),
     ["'scaler.mean'", "float32 or float64"]),
    ("a missing optimizer state", lambda meta, arrays: arrays.pop("optimizer.v.0"), ["missing entry 'optimizer.v.0'"]),
]


@pytest.mark.parametrize("edit, words", [pytest.param(*case[1:], id=case[0]) for case in ARRAYS])
def test_forged_arrays_are_refused_before_reading(saved, edit, words):
    """Arrays of the wrong kind, shape or name under a valid checksum: refused from their headers"""
    forge(saved, edit)
    refused(saved, words)


# -- shapes declared far larger than the data ----------------------------------------------

def test_huge_declared_sizes_with_small_arrays_build_nothing(saved):
    """config says sizes [3000, 3000, 3] but the arrays are [2, 8, 3]'s: refused before any network is built"""
    forge(saved, lambda meta, arrays: meta["config"].update(sizes=[3000, 3000, 3]))
    assert peak_while(lambda: persistence.load(saved)) < SMALL
    refused(saved, ["'theta.0'", "(8, 3)", "(3000, 3001)"])


def test_sizes_beyond_the_memory_available_are_refused(saved, monkeypatch):
    """config sizes needing more than the memory available: refused by the memory guard, naming the file"""
    forge(saved, lambda meta, arrays: meta["config"].update(sizes=[2, 100_000, 3]))
    monkeypatch.setattr(environment, "available_memory", lambda: 2**20)
    refused(saved, ["'config'", "memory available"])


def test_a_header_declaring_a_huge_array_allocates_nothing(tmp_path):
    """An .npy header declaring a (30000, 3001) theta over 16 bytes of data: refused before NumPy allocates 720 MB"""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (30000, 3001)})
    meta = {"format": "bpgpu-model", "version": 1, "optimizer": None,
            "config": {"sizes": [3000, 30000], "activation": [], "output": "sigmoid"}}
    path = tmp_path / "model.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("theta.0.npy", header.getvalue() + bytes(16))
        for name, a in {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
                        "sha256": np.frombuffer(b"0" * 64, np.uint8)}.items():
            buffer = io.BytesIO()
            np.save(buffer, a)
            z.writestr(f"{name}.npy", buffer.getvalue())
    assert peak_while(lambda: persistence.load(path)) < SMALL
    refused(path, ["'theta.0'", "declares shape (30000, 3001)", "holds 16 bytes", "truncated or forged"])


# -- compressed archives -------------------------------------------------------------------

def test_a_compressed_model_loads(saved):
    """A model re-zipped with deflate (bpgpu writes it stored) is still a model"""
    forge(saved, lambda meta, arrays: None, compression=zipfile.ZIP_DEFLATED)
    assert persistence.load_checkpoint(saved).epoch == 3


def bomb_member(z, name, nbytes):
    """A .npy member of ``nbytes`` zeros (uint8), deflated to about a thousandth of that."""
    with z.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (nbytes,)})
        chunk = bytes(2**20)
        for _ in range(nbytes // len(chunk)):
            f.write(chunk)


def test_a_zip_bomb_in_an_extra_member_is_never_expanded(saved):
    """A model with an extra member of 256 MB of zeros compressed to 250 KB: refused without expanding it"""
    with zipfile.ZipFile(saved, "a", zipfile.ZIP_DEFLATED) as z:
        bomb_member(z, "bomb", 256 * 2**20)
    assert saved.stat().st_size < 2**20
    assert peak_while(lambda: persistence.load(saved)) < SMALL
    refused(saved, ["does not have", "bomb"])


def test_a_zip_bomb_as_metadata_is_never_expanded(saved, monkeypatch):
    """Metadata of 64 MB of zeros compressed to 64 KB, above the metadata limit (made 1 MB here): refused unread"""
    monkeypatch.setattr(model_file, "META_LIMIT", 2**20)
    with np.load(saved) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "meta"}
    write_npz(saved, arrays, zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(saved, "a", zipfile.ZIP_DEFLATED) as z:
        bomb_member(z, "meta", 64 * 2**20)
    assert peak_while(lambda: persistence.load(saved)) < SMALL
    refused(saved, ["'meta'", "at most 1,048,576 bytes"])


def test_a_zip_bomb_of_declared_weights_must_fit_in_memory(saved, monkeypatch):
    """Zeros for a [2000, 3000, 3] network, deflated to ~50 KB, with 8 MB available: refused before expanding"""
    def grow(meta, arrays):
        meta["config"]["sizes"] = [2000, 3000, 3]
        meta["theta_shapes"] = [[3000, 2001], [3, 3001]]
        meta["optimizer"] = None
        for name in [n for n in arrays if n.startswith("optimizer.")]:
            arrays.pop(name)
        arrays["theta.0"], arrays["theta.1"] = np.zeros((3000, 2001)), np.zeros((3, 3001))

    forge(saved, grow, compression=zipfile.ZIP_DEFLATED)
    assert saved.stat().st_size < 2**20
    monkeypatch.setattr(environment, "available_memory", lambda: 8 * 2**20)
    assert peak_while(lambda: persistence.load(saved)) < SMALL
    refused(saved, ["memory available"])
    monkeypatch.undo()
    assert persistence.load(saved).sizes == [2000, 3000, 3]  # with memory to spare it is a model
