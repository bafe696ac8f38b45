"""What training and saving keep, exactly: each test here caught a bug that was once
planted in a copy and survived the suite (scripts/planted_bugs.py plants them again)."""

import os
import stat

import numpy as np
import pytest

import bpgpu
from bpgpu.io import atomic, persistence
from bpgpu.scaling import Standardizer


def test_a_divergence_in_the_first_epoch_leaves_no_optimiser_state_made_after_its_snapshot():
    """Adam's moments are made at the first step, after the epoch's snapshot: going back drops them, NaN
    and all, as if never made (t back to 0), and the optimiser then trains on from clean state"""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((16, 2)) * 1e3, rng.standard_normal((16, 1)) * 1e3
    net = bpgpu.Network([2, 8, 1], activation="relu", output="identity", seed=0)
    with pytest.warns(bpgpu.training.DivergenceWarning):
        history = net.fit(X, Y, epochs=5, batch_size=4, optimizer="adam", lr=1e300)
    assert history.nonfinite_at["epoch"] == 0 and history.stop_reason == "nonfinite"
    assert (net.optimizer.t, net.optimizer.state) == (0, {})
    net.fit(X[:, :] * 1e-3, Y * 1e-3, epochs=1, batch_size=4, optimizer="adam", lr=1e-3, warm_start=True)
    assert all(np.isfinite(a).all() for a in net.optimizer.state.values()) and net.optimizer.state


def test_class_names_come_back_in_the_order_saved(tmp_path):
    """Unsorted names: the order is the output units', so sorting them would relabel every prediction"""
    net = bpgpu.Network([2, 3], output="softmax", loss="cross_entropy")
    persistence.save(net, tmp_path / "m.npz", classes=["zebra", "ant", "moth"])
    assert persistence.load_checkpoint(tmp_path / "m.npz").classes == ["zebra", "ant", "moth"]


@pytest.mark.parametrize("scaler, classes, version", [(False, False, 1), (True, False, 2), (False, True, 2),
                                                      (True, True, 2)])
def test_a_scaler_or_class_names_make_a_version_2_file(tmp_path, scaler, classes, version):
    """A version-1 reader ignores a scaler: a file with one must be version 2, classes or not"""
    net = bpgpu.Network([2, 1])
    extra = dict(scaler=Standardizer(np.zeros(2), np.ones(2)) if scaler else None, classes=["no", "yes"] if classes else None)
    persistence.save(net, tmp_path / "m.npz", **extra)
    assert persistence.load_checkpoint(tmp_path / "m.npz").metadata["version"] == version


def test_a_float32_checkpoint_reloads_its_optimiser_state_in_float32(tmp_path):
    """The moments (and a position's best state) come back in the network's dtype, bit for bit"""
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((20, 2)), rng.random((20, 1))
    net = bpgpu.Network([2, 4, 1], dtype="float32", seed=1)
    history = net.fit(X, Y, epochs=3, batch_size=5, optimizer="adam", lr=0.01, validation_data=(X, Y), patience=5)
    persistence.save(net, tmp_path / "c.npz", optimizer=net.optimizer, position=history.position)
    back = persistence.load_checkpoint(tmp_path / "c.npz")
    best = back.position.best
    for got, saved in [(back.optimizer.state[k], net.optimizer.state[k]) for k in ("m", "v")] + \
            [(best.optimizer["state"]["m"][0], history.position.best.optimizer["state"]["m"][0]),
             (best.params, history.position.best.params)]:
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, saved)


def test_an_atomic_write_syncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    """Without the fsync before os.replace a crash can leave the new name on an empty file"""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", "file" if stat.S_ISREG(os.fstat(fd).st_mode) else "folder"))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.getsize(src)))
        real_replace(src, dst)
    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    atomic.atomic_write_bytes(tmp_path / "f.bin", b"12345")
    assert events == [("fsync", "file"), ("replace", 5), ("fsync", "folder")]
    assert (tmp_path / "f.bin").read_bytes() == b"12345"
