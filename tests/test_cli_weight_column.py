"""`bpgpu train --weight-column COL`: a column of the file is each example's weight sᵢ (never an
input), and the run equals the API's fit(..., sample_weight=) on the same rows."""

from __future__ import annotations

import numpy as np
import pytest

import bpgpu
from bpgpu.io import persistence

RUN = ["train", "--data", "data.csv", "--target", "y", "--sizes", "2,4,1", "--epochs", "3", "--batch-size", "5",
       "--optimizer", "sgd", "--lr", "0.1", "--no-shuffle", "--no-plot", "--quiet"]


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal(23), rng.standard_normal(23)
    w = rng.integers(0, 4, 23).astype(float)
    y = np.tanh(a - 0.5 * b)
    with open(tmp_path / "data.csv", "w") as f:
        f.write("a,w,b,y\n")
        for row in zip(a, w, b, y):
            f.write(",".join(f"{v:.17g}" for v in row) + "\n")
    return np.column_stack([a, b]), y[:, None], w


def api(X, Y, w, **more):
    net = bpgpu.Network([2, 4, 1], activation="tanh", output="identity", loss="mse", seed=0)
    net.fit(X, Y, epochs=3, batch_size=5, optimizer=bpgpu.SGD(lr=0.1), shuffle=False, sample_weight=w, **more)
    return [np.array(t) for t in net.thetas]


def trained(path):
    return [np.array(t) for t in persistence.load(path).thetas]


def test_a_weight_column_trains_as_the_apis_sample_weight_and_is_no_input(cli, table):
    X, Y, w = table
    assert cli(*RUN, "--weight-column", "w", "--out", "run")[0] == 0
    for got, want in zip(trained("run/model.npz"), api(X, Y, w), strict=True):
        np.testing.assert_array_equal(got, want)
    # The weights matter (or the comparison proves nothing), and predict ignores the column by name.
    assert cli(*RUN, "--columns", "a,b", "--out", "plain")[0] == 0
    assert max(np.max(np.abs(p - q)) for p, q in zip(trained("plain/model.npz"), trained("run/model.npz"))) > 1e-6
    status, out, err = cli("predict", "run/model.npz", "--input", "data.csv")
    assert status == 0, err
    np.testing.assert_allclose(np.loadtxt(out.splitlines()[1:], ndmin=2), persistence.load("run/model.npz").predict(X))


def test_the_validation_split_keeps_each_rows_weight(cli, table):
    """--validation-split 0.25 of 23 rows: the 17 training rows keep their own weights"""
    X, Y, w = table
    assert cli(*RUN, "--weight-column", "w", "--validation-split", "0.25", "--out", "run")[0] == 0
    perm = np.random.default_rng([0, 1]).permutation(23)
    train, held = perm[round(23 * 0.25):], perm[:round(23 * 0.25)]
    want = api(X[train], Y[train], w[train], validation_data=(X[held], Y[held]))
    for got, expected in zip(trained("run/model.npz"), want, strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("extra, message", [
    (["--weight-column", "wt"], "--weight-column wt: no column 'wt'"),
    (["--weight-column", "y"], "--weight-column y: column 'y' of data.csv is the target"),
    (["--weight-column", "w", "--columns", "a,w,b", "--sizes", "3,4,1"], "--weight-column w: column 'w' is one of the inputs --columns names"),
    (["--weight-column", "a,b"], "--weight-column a,b: expected one column, got 2"),
])
def test_a_weight_column_that_cannot_be_is_refused_naming_it(cli, table, extra, message):
    status, _, err = cli(*RUN, *extra)
    assert status == 1 and message in err, err


def test_generated_data_has_no_weight_column(cli):
    status, _, err = cli("train", "--data", "spirals", "--sizes", "2,4,3", "--weight-column", "w", "--epochs", "1")
    assert status == 1 and "--weight-column" in err and "data from a file" in err, err
