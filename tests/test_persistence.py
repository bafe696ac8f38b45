"""bpgpu.io.persistence: round trips, resumable state, atomic writes, and clear errors on bad files."""

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import bpgpu
from bpgpu import data
from bpgpu.io import persistence
from bpgpu.backend import BackendUnavailable, get_backend
from bpgpu.optimizers import make_optimizer


@pytest.fixture
def trained():
    X, Y = data.spirals(120, 3, seed=1)
    net = bpgpu.Network([2, 8, 3], activation=["relu"], output="softmax", loss="cross_entropy",
                        lam=0.01, seed=2)
    opt = make_optimizer("adam", 0.01)
    history = net.fit(X, Y, epochs=4, batch_size=32, optimizer=opt)
    return net, opt, history, X, Y


def test_round_trip_predicts_identically(tmp_path, trained):
    net, _, _, X, _ = trained
    path = tmp_path / "model.npz"
    bpgpu.save(net, path)
    back = bpgpu.io.persistence.load(path)
    assert back.config() == net.config()
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    for a, b in zip(back.thetas, net.thetas):
        np.testing.assert_array_equal(a, b)


def test_the_old_module_name_still_loads(tmp_path, trained):
    """bpgpu.persistence (README's name for load_checkpoint before bpgpu.io) is bpgpu.io.persistence"""
    import bpgpu.persistence
    from bpgpu.persistence import load_checkpoint

    bpgpu.save(trained[0], tmp_path / "m.npz")
    assert bpgpu.persistence is persistence and load_checkpoint is bpgpu.load_checkpoint
    assert load_checkpoint(tmp_path / "m.npz").network.config() == trained[0].config()


@pytest.mark.parametrize("bias, dtype", [(False, "float32"), (True, "float64")])
def test_round_trip_keeps_bias_and_dtype(tmp_path, bias, dtype):
    net = bpgpu.Network([3, 2, 1], activation="identity", bias=bias, dtype=dtype, seed=7)
    persistence.save(net, tmp_path / "m.npz")
    back = persistence.load(tmp_path / "m.npz")
    assert back.bias is bias and back.dtype == dtype and back.thetas[0].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.thetas[0], net.thetas[0])
    assert persistence.load(tmp_path / "m.npz", dtype="float64").dtype == "float64"


def test_checkpoint_resumes_to_the_same_weights(tmp_path, trained):
    """4 epochs, save, load, 4 more == 8 straight (adam state and epoch carried over)."""
    net, opt, history, X, Y = trained
    persistence.save(net, tmp_path / "c.npz", optimizer=opt, history=history, epoch=4, extra={"note": "x"})
    c = persistence.load_checkpoint(tmp_path / "c.npz")
    assert c.epoch == 4 and c.extra == {"note": "x"} and c.history["loss"] == history.loss
    assert c.optimizer.name == "adam" and c.optimizer.t == opt.t and c.optimizer.lr == 0.01
    c.network.fit(X, Y, epochs=8, batch_size=32, optimizer=c.optimizer, initial_epoch=4)

    straight = bpgpu.Network([2, 8, 3], activation="relu", output="softmax", loss="cross_entropy", lam=0.01, seed=2)
    straight.fit(X, Y, epochs=8, batch_size=32, optimizer="adam", lr=0.01)
    for a, b in zip(c.network.thetas, straight.thetas):
        np.testing.assert_array_equal(a, b)


def test_momentum_state_round_trips(tmp_path):
    X, Y = data.xor(8)
    net = bpgpu.Network([2, 3, 1], seed=0)
    opt = make_optimizer("momentum", 0.1, momentum=0.8, nesterov=True)
    net.fit(X, Y, epochs=3, optimizer=opt)
    persistence.save(net, tmp_path / "c.npz", optimizer=opt)
    back = persistence.load_checkpoint(tmp_path / "c.npz").optimizer
    assert (back.momentum, back.nesterov, back.t) == (0.8, True, 3)
    assert list(back.state) == ["velocity"]
    np.testing.assert_array_equal(back.state["velocity"], opt.state["velocity"])
    with np.load(tmp_path / "c.npz") as saved:  # one flat vector a slot
        np.testing.assert_array_equal(saved["optimizer.velocity.0"], opt.state["velocity"])


OLD = Path(__file__).parent / "data"


@pytest.mark.parametrize("name, slots", [("momentum", ["velocity"]), ("adam", ["m", "v"])])
def test_a_checkpoint_of_commit_0d7d0da_resumes_exactly(name, slots):
    """files written by bpgpu at 0d7d0da (state one array per parameter array, momentum's
    "v"; a best state kept for patience) load, and resuming gives that commit's weights"""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((10, 2)), rng.random((10, 1))
    Xv, Yv = rng.standard_normal((6, 2)), rng.random((6, 1))
    saved = persistence.load_checkpoint(OLD / f"{name}_0d7d0da.npz")
    assert sorted(saved.optimizer.state) == slots and saved.optimizer.t == 12
    saved.network.fit(X, Y, epochs=6, batch_size=4, optimizer=saved.optimizer, validation_data=(Xv, Yv),
                      patience=10, resume=saved.position)
    np.testing.assert_array_equal(saved.network.params, np.load(OLD / f"{name}_0d7d0da_after6.npy"))


def _available(name):
    try:
        get_backend(name)
    except BackendUnavailable:
        return False
    return True


@pytest.mark.skipif(not _available("array_api_strict"), reason="array_api_strict is not installed")
def test_loads_onto_another_backend(tmp_path, trained):
    net, _, _, X, _ = trained
    bpgpu.save(net, tmp_path / "m.npz")
    strict = persistence.load(tmp_path / "m.npz", backend="array_api_strict")
    assert strict.backend.name == "array_api_strict"
    np.testing.assert_allclose(strict.predict(X), net.predict(X), rtol=1e-12)


@pytest.mark.cupy
@pytest.mark.skipif(not _available("cupy"), reason="needs CuPy and a working CUDA device")
def test_saved_on_the_gpu_loads_on_the_cpu(tmp_path, trained):
    net, _, _, X, _ = trained
    gpu = net.clone(backend="cupy")
    bpgpu.save(gpu, tmp_path / "m.npz")
    cpu = persistence.load(tmp_path / "m.npz", backend="numpy")
    np.testing.assert_allclose(cpu.predict(X), gpu.predict(X), rtol=1e-12)
    assert persistence.load_checkpoint(tmp_path / "m.npz").metadata["saved_from"] == "cupy"


# -- atomic writes ----------------------------------------------------------------

def test_save_leaves_no_temporary_files_and_a_normal_mode(tmp_path, trained):
    net = trained[0]
    for _ in range(2):  # the second save replaces the first
        bpgpu.save(net, tmp_path / "model.npz")
    assert os.listdir(tmp_path) == ["model.npz"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "model.npz").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failure_mid_write_leaves_the_old_file_intact(tmp_path, trained, monkeypatch):
    net, _, _, X, _ = trained
    path = tmp_path / "model.npz"
    bpgpu.save(net, path)
    before = path.read_bytes()

    def half_written(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(persistence.np, "savez", half_written)
    other = bpgpu.Network([2, 8, 3], activation="relu", output="softmax", loss="cross_entropy", seed=99)
    with pytest.raises(OSError, match="disk full"):
        bpgpu.save(other, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(persistence.load(path).predict(X), net.predict(X))


def test_save_into_a_missing_folder_says_so(tmp_path, trained):
    with pytest.raises(FileNotFoundError, match="folder .*nowhere does not exist"):
        bpgpu.save(trained[0], tmp_path / "nowhere" / "m.npz")


def test_extra_must_be_json(tmp_path, trained):
    with pytest.raises(TypeError, match="extra: expected a JSON-serialisable dict"):
        persistence.save(trained[0], tmp_path / "m.npz", extra={"f": object()})
    assert os.listdir(tmp_path) == []


# -- bad files ----------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path, trained):
    path = tmp_path / "model.npz"
    persistence.save(trained[0], path, optimizer=trained[1], epoch=4)
    return path


def _rewrite(path, change):
    """Rewrite the archive at ``path`` with ``change(entries)`` applied to its {name: bytes}."""
    with zipfile.ZipFile(path) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    change(entries)
    with zipfile.ZipFile(path, "w") as z:
        for name, content in entries.items():
            z.writestr(name, content)


def _with_meta(path, edit):
    with np.load(path) as z:
        arrays = dict(z)
    meta = json.loads(arrays["meta"].tobytes())
    edit(meta, arrays)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    arrays["sha256"] = np.frombuffer(persistence._digest(arrays).encode(), np.uint8)  # a consistent forgery
    np.savez(path, **arrays)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz: no such model file"):
        persistence.load(tmp_path / "nothing.npz")


@pytest.mark.parametrize("cut", [0.5, 0.95])
def test_truncated_file(saved, cut):
    content = saved.read_bytes()
    saved.write_bytes(content[:int(len(content) * cut)])
    with pytest.raises(ValueError, match=r"model.npz: not a readable bpgpu model file, truncated or corrupt\?"):
        persistence.load(saved)


def test_flipped_byte_in_the_weights(saved):
    def flip(entries):
        raw = bytearray(entries["theta.0.npy"])
        raw[-1] ^= 0xFF
        entries["theta.0.npy"] = bytes(raw)

    _rewrite(saved, flip)  # a fresh, valid zip around altered weights: only the checksum can tell
    with pytest.raises(ValueError, match="model.npz: checksum mismatch"):
        persistence.load(saved)


def test_altered_metadata(saved):
    def edit(entries):
        entries["meta.npy"] = entries["meta.npy"].replace(b'"lam": 0.01', b'"lam": 0.02')

    _rewrite(saved, edit)
    with pytest.raises(ValueError, match="checksum mismatch"):
        persistence.load(saved)


@pytest.mark.parametrize("content, kind", [(b"", "an empty file"), (b"hello, world\n", "another kind of file")])
def test_foreign_files(tmp_path, content, kind):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"x.npz: not a bpgpu model file \\(expected a .npz archive, got {kind}\\)"):
        persistence.load(path)


def test_foreign_npz_and_npy(tmp_path):
    np.savez(tmp_path / "plain.npz", X=np.ones((2, 2)))
    with pytest.raises(ValueError, match="plain.npz: not a bpgpu model file \\(no 'meta'/'sha256' entries; it holds \\['X'\\]"):
        persistence.load(tmp_path / "plain.npz")
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(ValueError, match="got a single .npy array"):
        persistence.load(tmp_path / "a.npy")


def test_shapes_checked_against_the_architecture(saved):
    _with_meta(saved, lambda meta, arrays: meta["config"].update(sizes=[2, 9, 3]))
    with pytest.raises(ValueError, match=r"entry 'theta.0' has shape \(8, 3\), the architecture needs \(9, 3\)"):
        persistence.load(saved)


def test_missing_layer(saved):
    _with_meta(saved, lambda meta, arrays: arrays.pop("theta.1"))
    with pytest.raises(ValueError, match="missing entry 'theta.1'"):
        persistence.load(saved)


def test_invalid_architecture(saved):
    _with_meta(saved, lambda meta, arrays: meta["config"].update(output="softplus"))
    with pytest.raises(ValueError, match="cannot build the saved network: output: expected one of"):
        persistence.load(saved)


def test_newer_format_version(saved):
    _with_meta(saved, lambda meta, arrays: meta.update(version=99))
    with pytest.raises(ValueError, match="format version 99 is newer"):
        persistence.load(saved)


def test_an_optimizer_load_cannot_rebuild_is_refused_by_save(tmp_path):
    """scikit-learn's Adam (bpgpu.sklearn.ScikitAdam) is not one load rebuilds: save refuses
    it, naming optimizer, before anything is written (load used to fail on the file instead)."""
    for needed in ("sklearn", "scipy"):
        pytest.importorskip(needed, reason='bpgpu.sklearn needs scikit-learn and scipy: pip install "bpgpu[sklearn]"')
    from bpgpu import sklearn as sk
    net = bpgpu.Network([2, 3, 1])
    opt = sk.ScikitAdam(0.01)
    net.fit([[0.0, 1.0], [1.0, 0.0]], [[0.2], [0.8]], epochs=2, optimizer=opt)
    with pytest.raises(ValueError, match=r"^optimizer: a saved optimiser must be one load can rebuild"):
        bpgpu.save(net, tmp_path / "m.npz", optimizer=opt)
    assert not (tmp_path / "m.npz").exists()
