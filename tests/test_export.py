"""bpgpu.export and ``bpgpu export``: the ONNX graph and the PyTorch Sequential compute what
``predict`` computes (onnxruntime: 1e-6 in float32, 1e-12 in float64), for every activation and
output, with and without biases and an input scaler; what cannot be exported is refused."""

import importlib.util
import json
import sys

import numpy as np
import pytest

import bpgpu
from bpgpu import export, persistence
from bpgpu.activations import HIDDEN, OUTPUTS
from bpgpu.cli import main

TOLERANCE = {"float32": 1e-6, "float64": 1e-12}


def assert_close(got, want, dtype):
    """Each output within TOLERANCE[dtype] of predict's, relative to the outputs' scale where they
    exceed 1 (float32 rounds 15.0 to steps of 1e-6: two summation orders differ by that)."""
    tol = TOLERANCE[str(dtype)]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, float(np.abs(want).max())))


def network(output, dtype, bias=True, k=3):
    """Four hidden layers, one of each hidden activation, weights large enough that every
    activation works outside its linear part (|z| up to about 5)."""
    net = bpgpu.Network([5, 6, 6, 6, 6, k], activation=list(HIDDEN), output=output, bias=bias, dtype=dtype, seed=3)
    rng = np.random.default_rng(4)
    net.set_thetas([rng.normal(0, 1.0, theta.shape) for theta in net.thetas])
    return net


def data(m=64):
    return np.random.default_rng(5).normal([1.0, -2.0, 0.0, 30.0, 0.5], [1.0, 3.0, 0.1, 10.0, 2.0], (m, 5))


def run_onnx(model, X):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["Y"], {"X": X})[0]


def expected(net, scaler, X):
    """predict's outputs for X given in the network's dtype, as the exported model takes it (the
    scaler then computes in that dtype too)."""
    X = X.astype(net.dtype)
    return net.predict(X if scaler is None else scaler.transform(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("bias, scaled", [(True, True), (False, False)])
def test_onnx_computes_predict(output, dtype, bias, scaled):
    pytest.importorskip("onnx")
    net, X = network(output, dtype, bias), data()
    scaler = bpgpu.Standardizer().fit(X) if scaled else None
    model = export.onnx_model(net, scaler)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Gemm") == 5 and ops[-1] == "Identity"
    assert [op for op in ops if op not in ("Gemm", "Identity", "Sub", "Div")] == \
        [export.ONNX_OPS[g] for g in [*HIDDEN, output] if export.ONNX_OPS[g]]
    assert ("Sub" in ops) == scaled and model.opset_import[0].version == export.DEFAULT_OPSET
    got = run_onnx(model, X.astype(dtype))
    want = expected(net, scaler, X)
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape == (64, 3)
    assert_close(got, want, dtype)
    assert np.ptp(want) > 0.1  # the outputs vary: the comparison is not of constants


@pytest.mark.parametrize("output", ["sigmoid", "identity"])
def test_a_single_output_unit(output):
    pytest.importorskip("onnx")
    net, X = network(output, "float64", k=1), data()
    assert_close(run_onnx(export.onnx_model(net), X), net.predict(X), "float64")


def test_every_opset_from_13_to_the_installed_newest_runs():
    onnx = pytest.importorskip("onnx")
    net, X = network("softmax", "float64"), data()
    for opset in sorted({13, 17, onnx.defs.onnx_opset_version()}):
        model = export.onnx_model(net, opset=opset)
        assert model.opset_import[0].version == opset
        assert_close(run_onnx(model, X), net.predict(X), "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", OUTPUTS)
def test_to_torch_computes_predict_with_the_same_weights(output, dtype):
    torch = pytest.importorskip("torch")
    net, X = network(output, dtype), data()
    scaler = bpgpu.Standardizer().fit(X)
    model = export.to_torch(net, scaler)
    with torch.no_grad():
        got = model(torch.from_numpy(X.astype(dtype))).numpy()
    assert_close(got, expected(net, scaler, X), dtype)
    state = model.state_dict()
    np.testing.assert_array_equal(state["0.mean"].numpy(), scaler.mean.astype(dtype))
    for l, theta in enumerate(net.thetas):
        np.testing.assert_array_equal(state[f"{2 * l + 1}.weight"].numpy(), theta[:, 1:])
        np.testing.assert_array_equal(state[f"{2 * l + 1}.bias"].numpy(), theta[:, 0])
    assert not model.training


def test_to_torch_without_biases_or_scaler():
    torch = pytest.importorskip("torch")
    net, X = network("tanh", "float64", bias=False), data()
    model = export.to_torch(net)
    assert sorted(model.state_dict()) == [f"{2 * l}.weight" for l in range(5)]
    with torch.no_grad():
        assert_close(model(torch.from_numpy(X)).numpy(), net.predict(X), "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_target_scaler_puts_both_exports_in_the_targets_units(dtype):
    """y = a·σ + μ after the output, in the network's dtype: ONNX (Mul, Add) and torch (the
    last module), from ``net.to_torch`` as from the function; a scaler of other width refused."""
    torch = pytest.importorskip("torch")
    net, X = network("identity", dtype, k=2), data()
    scaler, target = bpgpu.Standardizer().fit(X), bpgpu.Standardizer([1e5, -3.0], [2e4, 0.5])
    want = target.inverse_transform(expected(net, scaler, X))
    model = net.to_torch(scaler, target_scaler=target)
    with torch.no_grad():
        assert_close(model(torch.from_numpy(X.astype(dtype))).numpy(), want, dtype)
    np.testing.assert_array_equal(model.state_dict()[f"{len(model) - 1}.std"].numpy(), target.std.astype(dtype))
    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime"):
        assert_close(run_onnx(export.onnx_model(net, scaler, target_scaler=target), X.astype(dtype)), want, dtype)
    with pytest.raises(ValueError, match=r"^target_scaler: expected 2 outputs \(sizes\[-1\]\), got 5$"):
        export.to_torch(net, target_scaler=scaler)


def test_what_cannot_be_exported_is_refused_by_name(tmp_path, monkeypatch):
    net = network("softmax", "float64")
    net.activations = ["sigmoid", "swish", "relu", "tanh"]  # as a user's registered activation would be
    with pytest.raises(ValueError, match="^net: the activation 'swish' of hidden layer 2 cannot be exported "
                                         r"\(exportable: sigmoid, tanh, relu, identity, softmax, exp\)$"):
        export.layers(net)
    net = network("softmax", "float64")
    with pytest.raises(ValueError, match=r"^scaler: expected 5 features \(sizes\[0\]\), got 2$"):
        export.layers(net, bpgpu.Standardizer().fit(data()[:, :2]))
    with pytest.raises(ValueError, match="^scaler: expected a fitted Standardizer"):
        export.layers(net, bpgpu.Standardizer())
    if importlib.util.find_spec("onnx") is not None:
        with pytest.raises(ValueError, match=r"^opset: expected an integer 13…\d+ \(the installed onnx"):
            export.onnx_model(net, opset=12)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ModuleNotFoundError, match=r'^exporting needs onnx, which is not installed: pip install "bpgpu\[onnx\]"$'):
        export.to_onnx(net, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_import_bpgpu_does_not_import_onnx_or_torch():
    import subprocess

    code = "import sys, bpgpu, bpgpu.export; print([m for m in ('onnx', 'onnxruntime', 'torch') if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip() == "[]"


# -- the command ------------------------------------------------------------------------------

@pytest.fixture
def trained(tmp_path, monkeypatch, capsys):
    """A softmax model trained from a CSV of text labels with --standardize, in float32."""
    monkeypatch.chdir(tmp_path)
    X = data(60)
    labels = np.array(["a", "b", "c"])[np.argmax(X[:, :3], axis=1)]
    (tmp_path / "d.csv").write_text("f0,f1,f2,f3,f4,y\n" + "".join(
        ",".join(f"{v:.6f}" for v in row) + f",{label}\n" for row, label in zip(X, labels)))
    assert main(["train", "--data", "d.csv", "--target", "y", "--sizes", "5,8,3", "--output", "softmax", "--loss",
                 "cross_entropy", "--standardize", "--dtype", "float32", "--epochs", "5", "--quiet", "--no-plot",
                 "--out", "run"]) == 0
    capsys.readouterr()
    return X


def test_export_command_writes_what_predict_computes(trained, capsys):
    onnx = pytest.importorskip("onnx")
    assert main(["export", "run/model.npz", "model.onnx"]) == 0
    assert capsys.readouterr().out == ("wrote model.onnx: 5-8-3 (tanh → softmax), float32, opset 17, input X (m, 5), "
                                       "output Y (m, 3), input scaling included\n")
    model = onnx.load("model.onnx")
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert props == {"classes": ["a", "b", "c"]}
    checkpoint = persistence.load_checkpoint("run/model.npz")
    want = checkpoint.network.predict(checkpoint.scaler.transform(trained.astype(np.float32)))
    assert_close(run_onnx(model, trained.astype(np.float32)), want, "float32")


@pytest.mark.parametrize("args, message", [
    (["run/model.npz", "model.pt"], "bpgpu export: error: OUT: expected a file name ending in .onnx, got model.pt "
                                    "(for PyTorch, call bpgpu.export.to_torch in Python)"),
    (["run/model.npz", "model.onnx", "--opset", "12"],
     "bpgpu export: error: argument --opset: expected an integer >= 13, got '12' (see bpgpu export --help)"),
    (["missing.npz", "model.onnx"], "bpgpu export: error: "),
    (["run/model.npz", "no/such/dir/model.onnx"], "bpgpu export: error: "),
])
def test_export_command_errors_are_one_line(trained, capsys, args, message):
    try:
        status = main(["export", *args])
    except SystemExit as usage:  # argparse's errors
        status = usage.code
    _, err = capsys.readouterr()
    assert status in (1, 2) and err.startswith(message) and err.count("\n") == 1


def test_export_command_without_onnx_says_how_to_install(trained, capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", "run/model.npz", "model.onnx"]) == 1
    assert capsys.readouterr().err == ('bpgpu export: error: exporting needs onnx, which is not installed: '
                                       'pip install "bpgpu[onnx]"\n')
    assert not (tmp_path / "model.onnx").exists()
