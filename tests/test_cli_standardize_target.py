"""``bpgpu train --standardize-target``: the network learns targets scaled to mean 0 and
deviation 1 (μ, σ from the training split, kept in the model as ``target_scaler``), and
predict, evaluate and export give numbers in the targets' own units."""

import numpy as np
import pytest

import bpgpu
from bpgpu import export
from bpgpu.io import model_file, persistence

TRAIN = ["train", "--data", "table.csv", "--target", "price", "--columns", "a:c", "--sizes", "3,8,1", "--standardize",
         "--standardize-target", "--epochs", "30", "--lr", "0.01", "--quiet", "--no-plot"]


@pytest.fixture
def table(tmp_path):
    """Two targets far from 0 and 1 (prices near 1e5, a count near 7): three inputs."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    Y = np.column_stack([1e5 + 2e4 * np.tanh(X @ [1.0, -0.5, 0.2]), 7 + X[:, 2] - X[:, 0]])
    np.savetxt(tmp_path / "table.csv", np.hstack([X, Y]), delimiter=",", header="a,b,c,price,count", comments="")
    return X, Y


def test_the_network_learns_scaled_targets_and_predicts_in_their_units(cli, tmp_path, table):
    X, Y = table
    status, out, err = cli(*TRAIN, "--target", "price,count", "--sizes", "3,8,2", "--validation-split", "0.25", "--out", "run")
    assert status == 0, err
    saved = persistence.load_checkpoint(tmp_path / "run" / "model.npz")
    train_rows = np.random.default_rng([0, 1]).permutation(120)[30:]  # the split's seeded rows (cli/sources.split)
    np.testing.assert_allclose(saved.target_scaler.mean, Y[train_rows].mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(saved.target_scaler.std, Y[train_rows].std(axis=0), rtol=1e-13)
    assert saved.metadata["version"] == 3
    scaled = saved.network.predict(saved.scaler.transform(X))
    assert np.abs(scaled).max() < 5  # the network's own outputs are in scaled units
    status, out, err = cli("predict", "run/model.npz", "--input", "table.csv", "--output", "p.npy")
    assert status == 0, err
    predicted = np.load(tmp_path / "p.npy")
    np.testing.assert_allclose(predicted, scaled * saved.target_scaler.std + saved.target_scaler.mean, rtol=1e-14)
    assert abs(predicted[:, 0].mean() - 1e5) < 2e4 and abs(predicted[:, 1].mean() - 7) < 2


def test_evaluate_scores_r2_in_the_targets_units_and_the_loss_as_training_reports_it(cli, tmp_path, table):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    X, Y = table
    assert cli(*TRAIN, "--target", "price,count", "--sizes", "3,8,2", "--out", "run")[0] == 0
    cli("predict", "run/model.npz", "--input", "table.csv", "--output", "p.npy")
    status, out, err = cli("evaluate", "run/model.npz", "--data", "table.csv", "--json")
    assert status == 0, err
    import json
    result = json.loads(out)
    assert result["r2"] == pytest.approx(sklearn_metrics.r2_score(Y, np.load(tmp_path / "p.npy")), rel=1e-12)
    saved = persistence.load_checkpoint(tmp_path / "run" / "model.npz")
    scaled_Y = (Y - saved.target_scaler.mean) / saved.target_scaler.std
    assert result["loss"] == pytest.approx(saved.network.evaluate(saved.scaler.transform(X), scaled_Y), rel=1e-12)


def test_the_exported_graph_and_module_predict_in_the_targets_units(cli, tmp_path, table):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    X, _ = table
    assert cli(*TRAIN, "--target", "price,count", "--sizes", "3,8,2", "--out", "run")[0] == 0
    cli("predict", "run/model.npz", "--input", "table.csv", "--output", "p.npy")
    status, out, err = cli("export", "run/model.npz", "m.onnx")
    assert status == 0 and "predicting in the targets' units" in out, err
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    predicted = np.load(tmp_path / "p.npy")
    np.testing.assert_allclose(session.run(["Y"], {"X": X})[0], predicted, rtol=1e-12)
    torch = pytest.importorskip("torch")
    saved = persistence.load_checkpoint(tmp_path / "run" / "model.npz")
    module = export.to_torch(saved.network, scaler=saved.scaler, target_scaler=saved.target_scaler)
    np.testing.assert_allclose(module(torch.from_numpy(X)).detach().numpy(), predicted, rtol=1e-12)
    assert "inverse" in repr(module[-1])


@pytest.mark.parametrize("args, message", [
    (["--data", "spirals", "--target", None, "--columns", None, "--sizes", "2,8,3"],
     "--standardize-target: scales numeric targets, and this run's are classes (1000 spirals examples)"),
    (["--output", "sigmoid"], "needs --output identity and --loss mse; this run has sigmoid and mse"),
])
def test_it_is_refused_where_scaled_targets_cannot_be_learnt(cli, table, args, message):
    argv = list(TRAIN)
    for flag, value in zip(args[::2], args[1::2]):
        i = argv.index(flag) if flag in argv else None
        if i is not None:
            del argv[i:i + 2]
        if value is not None:
            argv += [flag, value]
    status, out, err = cli(*argv)
    assert status == 1 and message in err, err


def test_a_resume_keeps_the_target_scaler_and_refuses_to_drop_it(cli, tmp_path, table):
    assert cli(*TRAIN, "--epochs", "30", "--out", "whole")[0] == 0
    assert cli(*TRAIN, "--epochs", "12", "--out", "part")[0] == 0
    assert cli("train", "--resume", "part/model.npz", "--epochs", "30", "--quiet", "--no-plot", "--out", "again")[0] == 0
    whole, again = (persistence.load_checkpoint(tmp_path / d / "model.npz") for d in ("whole", "again"))
    np.testing.assert_array_equal(again.network.params, whole.network.params)
    np.testing.assert_array_equal(again.target_scaler.std, whole.target_scaler.std)
    changed = ["train", "--data", "table.csv", "--resume", "part/model.npz", "--epochs", "30", "--quiet", "--no-plot"]
    stored = bpgpu.load_checkpoint(tmp_path / "part" / "model.npz")
    assert stored.extra["cli"]["standardize_target"] is True
    status, out, err = cli(*changed, "--standardize", "--target", "price")
    assert status == 0, err  # the checkpoint's own choice
    persistence.save(stored.network, tmp_path / "plain.npz", optimizer=stored.optimizer, extra=stored.extra,
                     scaler=stored.scaler, position=stored.position)  # the same run, its target scaler lost
    status, out, err = cli("train", "--resume", "plain.npz", "--epochs", "30", "--quiet", "--no-plot")
    assert status == 1 and "--standardize-target: the checkpoint's network was trained on unscaled targets" in err


def test_a_bpgpu_that_reads_format_2_refuses_the_file_rather_than_predict_in_scaled_units(cli, tmp_path, table,
                                                                                        monkeypatch):
    assert cli(*TRAIN, "--out", "run")[0] == 0
    monkeypatch.setattr(model_file, "VERSION", 2)
    with pytest.raises(ValueError, match="model format version 3 is newer than this bpgpu"):
        persistence.load_checkpoint(tmp_path / "run" / "model.npz")
