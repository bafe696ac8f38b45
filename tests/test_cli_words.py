"""Options that would do nothing, and inputs at the edge of the floats: ``--one-hot`` on a
column of text labels is refused; ``--standardize`` on inputs near 1e160 scales them (σ
overflowed to inf, and every scaled input became 0)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bpgpu
from bpgpu.io import persistence
from bpgpu.cli import main


def write_csv(path, header, columns) -> None:
    rows = [",".join(map(str, row)) for row in zip(*columns)]
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n")


def test_one_hot_on_text_labels_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    x = np.linspace(-1, 1, 12)
    write_csv(tmp_path / "d.csv", ["x", "label"], [x, np.where(x > 0, "yes", "no")])
    capsys.readouterr()
    assert main(["train", "--data", "d.csv", "--target", "label", "--one-hot", "--sizes", "1,2,2", "--quiet",
                 "--no-plot", "--out", "run"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "bpgpu train: error: --one-hot: column 'label' of d.csv holds text labels, which become one-hot classes "
        "without it; leave out --one-hot"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("dtype, size", [("float64", 1e160), ("float64", 1e300), ("float32", 1e30)])
def test_standardizer_of_huge_inputs_is_finite_and_scales_them(dtype, size):
    X = (np.random.default_rng(0).normal(size=(200, 3)) * [1.0, 2.0, 0.5] + [0.0, 5.0, -1.0]).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        scaler = bpgpu.Standardizer().fit(X * np.asarray(size, dtype))
        scaled = scaler.transform(X * np.asarray(size, dtype))
    small = bpgpu.Standardizer().fit(X)
    np.testing.assert_allclose(scaler.std, small.std * size, rtol=1e-6 if dtype == "float32" else 1e-12)
    np.testing.assert_allclose(scaler.mean, small.mean * size, rtol=1e-5 if dtype == "float32" else 1e-12)
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, rtol=1e-5)


def test_standardizer_keeps_the_bits_of_the_plain_formula_on_ordinary_inputs():
    """dividing by a power of two first changes no bit where μ and σ did not overflow"""
    rng = np.random.default_rng(1)
    for scale in (1e-5, 1.0, 3.7, 1e6, 1e150):
        X = rng.normal(size=(257, 4)) * scale + rng.normal(size=4) * scale
        mean = X.mean(axis=0)
        scaler = bpgpu.Standardizer().fit(X)
        np.testing.assert_array_equal(scaler.mean, mean)
        np.testing.assert_array_equal(scaler.std, np.sqrt(((X - mean) ** 2).mean(axis=0)))


def test_train_standardize_on_inputs_near_1e160_learns(tmp_path, monkeypatch, capsys):
    """two blobs at ±1e160: scaled to about ±1 and classified (they all became 0: accuracy 0.5)"""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    k = rng.integers(0, 2, 200)
    x = (np.where(k == 1, 1.0, -1.0) + rng.normal(0, 0.2, 200)) * 1e160
    write_csv(tmp_path / "d.csv", ["x", "label"], [x, np.array(["a", "b"])[k]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["train", "--data", "d.csv", "--target", "label", "--sizes", "1,4,1", "--standardize",
                     "--epochs", "30", "--lr", "0.05", "--quiet", "--no-plot", "--out", "run"]) == 0
    saved = persistence.load_checkpoint("run/model.npz")
    assert np.isfinite(saved.scaler.std[0]) and saved.scaler.std[0] == pytest.approx(np.std(x / 1e160) * 1e160, rel=1e-12)
    capsys.readouterr()
    assert main(["evaluate", "run/model.npz", "--data", "d.csv", "--json"]) == 0
    assert '"accuracy": 1.0' in capsys.readouterr().out
