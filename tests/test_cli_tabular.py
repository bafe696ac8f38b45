"""``bpgpu`` on real-looking tables: --standardize, text class labels, a test file that still
holds its target, --columns ranges and exclusions, per-epoch metrics, ``evaluate`` and
regions.png. Run in this process (``bpgpu.cli.main``) for speed; test_cli.py drives the
command as a subprocess."""

import json

import numpy as np
import pytest

from bpgpu.io import persistence
from bpgpu.cli import main

SPECIES = np.array(["setosa", "versicolor", "virginica"])


def bpgpu(capsys, *argv):
    """(exit status, stdout, stderr) of ``bpgpu argv``."""
    capsys.readouterr()
    try:
        status = main([str(a) for a in argv])
    except SystemExit as stop:  # argparse's usage errors
        status = stop.code
    out = capsys.readouterr()
    return status, out.out, out.err


def ok(capsys, *argv):
    status, out, err = bpgpu(capsys, *argv)
    assert status == 0, err
    return out


def write_csv(path, header, columns):
    rows = [",".join(map(str, row)) for row in zip(*columns)]
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n")


@pytest.fixture
def flowers(tmp_path, monkeypatch):
    """flowers.csv: an id column, 4 features on very different scales, a text label 'species'
    last; test.csv: 30 more rows, target column included."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name, m in (("flowers.csv", 150), ("test.csv", 30)):
        k = rng.integers(0, 3, m)
        features = rng.normal(k[:, None] * [1.0, 0.5, 2.0, 0.3], 0.3, (m, 4)) * [1.0, 1.0, 100.0, 0.01]
        write_csv(tmp_path / name, ["id", "f0", "f1", "f2", "f3", "species"],
                  [np.arange(m), *features.T, SPECIES[k]])
    return tmp_path


TRAIN = ["train", "--data", "flowers.csv", "--target", "species", "--columns", "f0:f3", "--sizes", "4,8,3",
         "--epochs", "40", "--lr", "0.05", "--quiet", "--no-plot"]


def test_standardize_round_trip(flowers, capsys):
    ok(capsys, *TRAIN, "--standardize", "--validation-split", "0.2", "--out", "run")
    saved = persistence.load_checkpoint("run/model.npz")
    table = np.genfromtxt("flowers.csv", delimiter=",", skip_header=1, usecols=(1, 2, 3, 4))
    # μ and σ from the training split only: the rows the validation split left
    held = round(0.2 * len(table))
    train_rows = np.random.default_rng([0, 1]).permutation(len(table))[held:]
    np.testing.assert_allclose(saved.scaler.mean, table[train_rows].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(saved.scaler.std, table[train_rows].std(axis=0), rtol=1e-12)
    # predict applies it: the outputs are the network's on the scaled inputs
    out = ok(capsys, "predict", "run/model.npz", "--input", "flowers.csv")
    expected = saved.network.predict((table - saved.scaler.mean) / saved.scaler.std)
    np.testing.assert_allclose(np.loadtxt(out.splitlines()[1:], delimiter=","), expected, rtol=1e-9)


def test_text_labels_round_trip(flowers, capsys):
    ok(capsys, *TRAIN, "--standardize", "--out", "run")
    saved = persistence.load_checkpoint("run/model.npz")
    assert saved.classes == list(SPECIES) and saved.network.output == "softmax"
    assert saved.network.loss == "cross_entropy"
    names = ok(capsys, "predict", "run/model.npz", "--input", "test.csv", "--argmax").split()
    assert names[0] == "class" and set(names[1:]) <= set(SPECIES) and len(names) == 31
    truth = np.loadtxt("test.csv", delimiter=",", skiprows=1, usecols=5, dtype=str)
    assert np.mean(np.array(names[1:]) == truth) > 0.8  # the names mean what they say
    lines = ok(capsys, "predict", "run/model.npz", "--input", "test.csv").splitlines()
    assert lines[0] == "setosa,versicolor,virginica"
    probabilities = np.loadtxt(lines[1:], delimiter=",")
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert list(SPECIES[probabilities.argmax(axis=1)]) == names[1:]


def test_two_text_classes_on_one_sigmoid_output(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    x = np.linspace(-1, 1, 40)
    write_csv(tmp_path / "d.csv", ["x0", "x1", "label"], [x, -x, np.where(x > 0, "yes", "no")])
    ok(capsys, "train", "--data", "d.csv", "--target", "label", "--sizes", "2,4,1", "--epochs", "60", "--lr", "0.05",
       "--quiet", "--no-plot", "--out", "run")
    saved = persistence.load_checkpoint("run/model.npz")
    assert saved.classes == ["no", "yes"] and saved.network.output == "sigmoid"
    lines = ok(capsys, "predict", "run/model.npz", "--input", "d.csv").splitlines()
    assert lines[0] == "no,yes"
    p = np.loadtxt(lines[1:], delimiter=",")
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    argmax = ok(capsys, "predict", "run/model.npz", "--input", "d.csv", "--argmax").split()[1:]
    assert argmax == ["yes" if q > 0.5 else "no" for q in p[:, 1]]


def test_the_target_column_of_a_test_file_is_dropped_by_its_stored_name(flowers, capsys):
    ok(capsys, *TRAIN, "--out", "run")
    with_target = ok(capsys, "predict", "run/model.npz", "--input", "test.csv")
    inputs = np.loadtxt("test.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3, 4))
    np.savetxt("inputs.csv", inputs, delimiter=",", header="f0,f1,f2,f3", comments="")
    assert ok(capsys, "predict", "run/model.npz", "--input", "inputs.csv") == with_target
    # the columns in another order, id and target included: still found by name
    write_csv(flowers / "shuffled.csv", ["species", "f3", "id", "f1", "f0", "f2"],
              [np.full(30, "setosa"), inputs[:, 3], np.arange(30), inputs[:, 1], inputs[:, 0], inputs[:, 2]])
    assert ok(capsys, "predict", "run/model.npz", "--input", "shuffled.csv") == with_target


@pytest.mark.parametrize("spec, picked", [
    ("f0:f3", [1, 2, 3, 4]), ("1:4", [1, 2, 3, 4]), ("!id", [1, 2, 3, 4]), ("!0", [1, 2, 3, 4]),
    ("f0:f3,!f1", [1, 3, 4]), ("f2,f0", [3, 1]), ("!id,!f3", [1, 2, 3]),
])
def test_columns_take_names_ranges_and_exclusions(flowers, spec, picked):
    from bpgpu.cli.headers import pick
    from bpgpu.cli.tables import read_table

    table = read_table("flowers.csv")
    assert pick(table, spec, "--columns", rest=[0, 1, 2, 3, 4]) == picked


@pytest.mark.parametrize("spec, message", [
    ("f3:f0", "the range 'f3:f0' runs backwards"), ("f0:g9", "no column 'g9'"), ("!f0:f3,!id", "leaves no column"),
    ("f0,f0", "column 'f0' named twice"), ("f0,,f1", "an empty column name"),
])
def test_bad_columns_are_one_clear_line(flowers, capsys, spec, message):
    status, _, err = bpgpu(capsys, *TRAIN[:6], spec, *TRAIN[7:])
    assert status == 1 and message in err and len(err.strip().splitlines()) == 1


def test_a_text_input_column_is_still_refused(flowers, capsys):
    status, _, err = bpgpu(capsys, "train", "--data", "flowers.csv", "--target", "f0", "--sizes", "5,3,1", "--quiet")
    assert status == 1 and "flowers.csv: line 2, column 'species': expected a number, got '" in err


def test_classification_metrics_equal_scikit_learn_accuracy_score(flowers, capsys):
    sk = pytest.importorskip("sklearn.metrics")
    loud = [a for a in TRAIN if a != "--quiet"]
    out = ok(capsys, *loud, "--standardize", "--log-every", "20", "--out", "run")
    history = json.loads((flowers / "run/history.json").read_text())
    assert history["metric"] == "accuracy" and len(history["accuracy"]) == len(history["loss"]) == 40
    saved = persistence.load_checkpoint("run/model.npz")
    X = np.loadtxt("flowers.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3, 4))
    truth = np.loadtxt("flowers.csv", delimiter=",", skiprows=1, usecols=5, dtype=str)
    predicted = SPECIES[saved.network.predict(saved.scaler.transform(X)).argmax(axis=1)]
    assert history["accuracy"][-1] == sk.accuracy_score(truth, predicted)
    assert f"accuracy {history['accuracy'][-1]:.4g}" in out.splitlines()[-2]  # the final summary
    assert "accuracy" in [line for line in out.splitlines() if line.startswith("epoch 20/40")][0]


def test_regression_metrics_equal_scikit_learn_r2_score_and_evaluate_agrees(tmp_path, monkeypatch, capsys):
    sk = pytest.importorskip("sklearn.metrics")
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=120)
    write_csv(tmp_path / "r.csv", ["a", "b", "c", "y"], [*X.T, y])
    ok(capsys, "train", "--data", "r.csv", "--target", "y", "--sizes", "3,8,1", "--epochs", "30", "--lr", "0.01",
       "--validation-split", "0.25", "--quiet", "--no-plot", "--out", "run")
    history = json.loads((tmp_path / "run/history.json").read_text())
    assert history["metric"] == "r2" and len(history["r2"]) == len(history["val_r2"]) == 30
    net = persistence.load("run/model.npz")
    r2 = sk.r2_score(y, net.predict(X)[:, 0])
    result = json.loads(ok(capsys, "evaluate", "run/model.npz", "--data", "r.csv", "--json"))
    assert result["r2"] == pytest.approx(r2, abs=1e-12) and result["examples"] == 120
    assert result["loss"] == pytest.approx(net.evaluate(X, y[:, None]), rel=1e-12)
    line = ok(capsys, "evaluate", "run/model.npz", "--data", "r.csv")
    assert line.startswith(f"loss {result['loss']:.6g}, R² {r2:.4g} on 120 examples of r.csv")


def test_evaluate_scores_text_labels_by_the_stored_class_names(flowers, capsys):
    sk = pytest.importorskip("sklearn.metrics")
    ok(capsys, *TRAIN, "--standardize", "--out", "run")
    result = json.loads(ok(capsys, "evaluate", "run/model.npz", "--data", "test.csv", "--json"))
    predicted = ok(capsys, "predict", "run/model.npz", "--input", "test.csv", "--argmax").split()[1:]
    truth = np.loadtxt("test.csv", delimiter=",", skiprows=1, usecols=5, dtype=str)
    assert result["accuracy"] == sk.accuracy_score(truth, predicted)
    (flowers / "odd.csv").write_text("id,f0,f1,f2,f3,species\n0,1,1,1,1,rose\n")
    status, _, err = bpgpu(capsys, "evaluate", "run/model.npz", "--data", "odd.csv")
    assert status == 1 and "label 'rose' is not one of the model's classes (setosa, versicolor, virginica)" in err


def test_regions_png_for_two_feature_classes(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    out = ok(capsys, "train", "--data", "spirals", "--sizes", "2,8,3", "--samples", "200", "--epochs", "3",
             "--standardize", "--quiet", "--out", "run")
    png = (tmp_path / "run/regions.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "run/regions.png" in out
    ok(capsys, "train", "--data", "teacher", "--sizes", "2,4,1", "--samples", "50", "--epochs", "2", "--quiet",
       "--out", "numbers")
    assert not (tmp_path / "numbers/regions.png").exists()  # regression: no classes to draw


def test_resume_keeps_the_scaler_and_refuses_to_change_it(flowers, capsys):
    ok(capsys, *TRAIN, "--standardize", "--checkpoint-every", "20", "--out", "run")
    first = persistence.load_checkpoint("run/checkpoint.npz").scaler
    ok(capsys, "train", "--resume", "run/checkpoint.npz", "--epochs", "60", "--quiet", "--no-plot", "--out", "more")
    again = persistence.load_checkpoint("more/model.npz")
    np.testing.assert_array_equal(again.scaler.mean, first.mean)
    assert len(json.loads((flowers / "more/history.json").read_text())["accuracy"]) == 60
    ok(capsys, *TRAIN, "--out", "plain")
    status, _, err = bpgpu(capsys, "train", "--resume", "plain/model.npz", "--epochs", "50", "--standardize", "--quiet")
    assert status == 1 and "--standardize: the checkpoint's network was trained on unscaled inputs" in err


def test_help_tells_the_truth(capsys):
    for command in ("train", "bench"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "mse otherwise, including numeric file targets whatever the output" in text
    assert "DESIGN" not in text and "W2 784-1024-1024-10" in text
