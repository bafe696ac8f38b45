"""``predict`` and ``evaluate`` run the network a bounded chunk of rows at a time
(bpgpu/cli/chunks.py): the forward pass never sees more rows than fit in the budget,
whatever the row count, and the outputs are those of one pass."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bpgpu
from bpgpu.io import persistence
from bpgpu.cli import chunks, main
from bpgpu.network import Network

M = 1000


@pytest.fixture
def forwarded(monkeypatch):
    """The row counts of every forward pass made, with a budget of 7 rows of a 4-6-3 network
    (8 bytes × (4 + 6 + 3 + 3·6) = 248 bytes a row)."""
    monkeypatch.setattr(chunks, "BUDGET", 7 * 248)
    seen = []
    forward = Network._forward

    def spy(self, X, ws, *masks):
        seen.append(X.shape[0])
        return forward(self, X, ws, *masks)

    monkeypatch.setattr(Network, "_forward", spy)
    return seen


def exact_model(path):
    """A 4-6-3 relu/identity network with small integer weights and a dyadic scaler: every
    sum it makes is exact, so any order of the rows' arithmetic gives the same bits."""
    net = Network([4, 6, 3], activation="relu", output="identity", seed=0)
    rng = np.random.default_rng(0)
    net.set_thetas([rng.integers(-3, 4, t.shape).astype(float) for t in net.thetas])
    scaler = bpgpu.Standardizer(mean=[1.0, -2.0, 0.5, 0.0], std=[2.0, 0.25, 1.0, 4.0])
    persistence.save(net, path, scaler=scaler, extra={"data": {"kind": "file", "inputs": ["a", "b", "c", "d"],
                                                               "targets": ["y0", "y1", "y2"]}})
    X = np.random.default_rng(1).integers(-8, 9, (M, 4)).astype(float)
    return net, scaler, X


def test_predict_runs_in_chunks_and_gives_the_bits_of_one_pass(tmp_path, monkeypatch, forwarded):
    monkeypatch.chdir(tmp_path)
    net, scaler, X = exact_model("model.npz")
    np.savetxt("x.csv", X, delimiter=",", header="a,b,c,d", comments="")
    assert main(["predict", "model.npz", "--input", "x.csv", "--output", "y.npy"]) == 0
    assert max(forwarded) == 7 and sum(forwarded) == M  # 143 chunks: 142 of 7 rows, then 6
    whole = net.predict(scaler.transform(X))
    np.testing.assert_array_equal(np.load("y.npy"), whole)


def test_evaluate_runs_in_chunks_and_gives_the_numbers_of_one_pass(tmp_path, monkeypatch, capsys, forwarded):
    monkeypatch.chdir(tmp_path)
    net, scaler, X = exact_model("model.npz")
    Y = net.predict(scaler.transform(X)) + np.random.default_rng(2).normal(size=(M, 3))
    np.savetxt("xy.csv", np.hstack([X, Y]), delimiter=",", header="a,b,c,d,y0,y1,y2", comments="")
    capsys.readouterr()
    forwarded.clear()
    assert main(["evaluate", "model.npz", "--data", "xy.csv", "--json"]) == 0
    assert max(forwarded) == 7
    result = json.loads(capsys.readouterr().out)
    Xs = scaler.transform(X)
    Y = np.loadtxt("xy.csv", delimiter=",", skiprows=1)[:, 4:]  # as the file holds them
    assert result["loss"] == pytest.approx(net.evaluate(Xs, Y), rel=1e-13)  # sums in another order
    assert result["r2"] == pytest.approx(bpgpu.metrics.score(net, Xs, Y, "r2"), rel=1e-13)


def test_chunked_outputs_of_a_float_network_match_one_pass(forwarded):
    """tanh and softmax in float32 and float64: within the rounding BLAS gives one pass"""
    for dtype, rtol in (("float64", 1e-13), ("float32", 1e-5)):
        net = Network([4, 6, 3], output="softmax", dtype=dtype, seed=3)
        X = np.random.default_rng(4).normal(size=(M, 4))
        forwarded.clear()
        A = bpgpu.metrics.outputs(net, X, chunks.rows_per_chunk(net))
        assert A.dtype == dtype and max(forwarded) == (7 if dtype == "float64" else 14)
        np.testing.assert_allclose(A, net.predict(X), rtol=rtol)
