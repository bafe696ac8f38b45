"""``bpgpu evaluate`` on a classifier: the confusion matrix, each class's precision, recall and
F1 (scikit-learn's numbers), as text, as JSON and as a picture."""

import json
import sys

import numpy as np
import pytest

from bpgpu import metrics, persistence
from bpgpu.cli import main

SPECIES = ["setosa", "versicolor", "virginica"]


def one_hot(labels, k):
    return np.eye(k)[labels]


@pytest.mark.parametrize("k", [1, 4])
def test_confusion_and_per_class_are_scikit_learns(k):
    """Random targets and outputs, one class never predicted (its precision 0 by zero_division=0)."""
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    if k == 1:  # one sigmoid output: classes 0 and 1 at a ≥ 0.5
        Y, A = rng.integers(0, 2, (60, 1)).astype(float), rng.random((60, 1))
        true, predicted, labels = Y[:, 0].astype(int), (A[:, 0] >= 0.5).astype(int), [0, 1]
    else:
        true, predicted = rng.integers(0, k, 60), rng.integers(0, k - 1, 60)
        Y, A = one_hot(true, k), one_hot(predicted, k) * 0.7 + 0.1
        labels = list(range(k))
    C = metrics.confusion(Y, A)
    np.testing.assert_array_equal(C, sk.confusion_matrix(true, predicted, labels=labels))
    scores = metrics.per_class(C)
    expected = sk.precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0)
    for name, want in zip(("precision", "recall", "f1", "support"), expected):
        np.testing.assert_allclose(scores[name], want, rtol=0, atol=1e-15, err_msg=name)
    if k == 4:
        assert scores["precision"][3] == 0.0 and scores["f1"][3] == 0.0 and scores["support"][3] > 0


def test_a_class_absent_everywhere_scores_zero_not_nan():
    scores = metrics.per_class(np.array([[3, 0], [0, 0]]))
    assert scores["precision"].tolist() == [1.0, 0.0] and scores["f1"].tolist() == [1.0, 0.0]


@pytest.fixture
def iris(tmp_path, monkeypatch, capsys):
    """A model trained on a three-class CSV with text labels; ``run(*args) -> (status, out, err)``."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    X = rng.normal(0, 0.6, (90, 2)) + np.array([[0, 0], [2, 0], [0, 2]])[labels]
    rows = [f"{a:.6f},{b:.6f},{SPECIES[c]}" for (a, b), c in zip(X, labels)]
    (tmp_path / "iris.csv").write_text("x0,x1,species\n" + "\n".join(rows) + "\n")

    def run(*args):
        capsys.readouterr()
        status = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return status, out, err

    status, _, err = run("train", "--data", "iris.csv", "--target", "species", "--sizes", "2,8,3", "--output",
                         "softmax", "--loss", "cross_entropy", "--epochs", "40", "--batch-size", "16", "--optimizer",
                         "adam", "--lr", "0.05", "--quiet", "--no-plot", "--out", "run")
    assert status == 0, err
    return run, X, labels


def test_evaluate_reports_the_confusion_matrix_and_per_class_scores(iris):
    sk = pytest.importorskip("sklearn.metrics")
    run, X, labels = iris
    net = persistence.load("run/model.npz")
    predicted = net.predict(X).argmax(axis=1)
    status, out, err = run("evaluate", "run/model.npz", "--data", "iris.csv", "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["classes"] == SPECIES
    assert result["confusion_matrix"] == sk.confusion_matrix(labels, predicted, labels=[0, 1, 2]).tolist()
    precision, recall, f1, support = sk.precision_recall_fscore_support(labels, predicted, labels=[0, 1, 2],
                                                                        zero_division=0)
    assert [s["class"] for s in result["per_class"]] == SPECIES
    assert [s["support"] for s in result["per_class"]] == support.tolist()
    for name, want in (("precision", precision), ("recall", recall), ("f1", f1)):
        assert [s[name] for s in result["per_class"]] == pytest.approx(want.tolist(), abs=1e-15)
    assert result["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-15)

    status, text, _ = run("evaluate", "run/model.npz", "--data", "iris.csv")
    lines = text.splitlines()
    assert lines[1] == "confusion matrix (rows: true class, columns: predicted class):"
    assert lines[2].split() == SPECIES
    for name, row, line in zip(SPECIES, result["confusion_matrix"], lines[3:6]):
        assert line.split() == [name, *map(str, row)]
    for s, line in zip(result["per_class"], lines[-3:]):
        assert line.split() == [s["class"], f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}",
                                str(s["support"])]


def test_evaluate_draws_the_confusion_matrix(iris, tmp_path):
    pytest.importorskip("matplotlib")
    run, _, _ = iris
    status, _, err = run("evaluate", "run/model.npz", "--data", "iris.csv", "--plot", "confusion.png")
    assert status == 0 and err == ""
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_without_matplotlib_says_so_in_one_line(iris, tmp_path, monkeypatch):
    run, _, _ = iris
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    status, out, err = run("evaluate", "run/model.npz", "--data", "iris.csv", "--plot", "confusion.png", "--json")
    assert status == 0 and json.loads(out)["classes"] == SPECIES
    assert err == 'bpgpu evaluate: --plot skipped: matplotlib is not installed (pip install "bpgpu[plot]")\n'
    assert not (tmp_path / "confusion.png").exists()


def test_evaluate_plot_of_a_regression_model_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "r.csv", np.hstack([rng.random((20, 2)), rng.random((20, 1))]), delimiter=",")
    assert main(["train", "--data", "r.csv", "--target", "-1", "--sizes", "2,3,1", "--epochs", "2", "--quiet", "--no-plot",
                 "--out", "run"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "run/model.npz", "--data", "r.csv", "--target", "-1", "--plot", "c.png"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == ("bpgpu evaluate: error: --plot: a confusion matrix needs a model of classes; "
                                 "run/model.npz predicts numbers (R²)\n")
    assert main(["evaluate", "run/model.npz", "--data", "r.csv", "--target", "-1", "--json"]) == 0
    assert "confusion_matrix" not in json.loads(capsys.readouterr().out)
