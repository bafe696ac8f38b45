"""The per-epoch metric of `bpgpu train`: bounded in rows, every N epochs, and the start line's
counts under a validation split."""

from __future__ import annotations

import json

import numpy as np

import bpgpu
from bpgpu.cli import main
from bpgpu.cli.scores import Scores


def test_each_epoch_scores_at_most_the_sampled_rows_the_same_every_epoch_and_the_summary_all():
    """20 training rows with a bound of 5: every epoch scores the same 5 rows (in order), the
    summary's text all 20"""
    net = bpgpu.Network([2, 3, 2], output="softmax", loss="cross_entropy")
    X, Y = net.batch(np.arange(40.0).reshape(20, 2), np.eye(2)[np.arange(20) % 2])
    seen = []

    def spy(net_, X_, Y_, metric):
        seen.append(X_[:, 0].tolist())
        return 0.5

    scores = Scores("accuracy", net, (X, Y), score=spy, rows=5)
    scores.update(0)
    scores.update(1)
    assert len(seen[0]) == 5 and seen[0] == seen[1] == sorted(seen[0])
    assert set(seen[0]) <= set(X[:, 0].tolist())
    scores.text()
    assert len(seen[2]) == 20


def test_score_every_n_epochs_leaves_the_others_empty(tmp_path, monkeypatch, capsys):
    """--score-every 2: history.json holds null for the epochs between, and the lines show no metric there"""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "spirals", "--samples", "120", "--sizes", "2,8,3", "--epochs", "4",
                 "--validation-split", "0.25", "--score-every", "2", "--log-every", "1", "--out", "run",
                 "--no-plot"]) == 0
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    for key in ("accuracy", "val_accuracy"):
        assert [v is None for v in history[key]] == [True, False, True, False], history[key]
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("epoch ")]
    assert ["accuracy" in l for l in lines[:4]] == [False, True, False, True], lines


def test_the_start_line_counts_the_rows_that_train_not_those_held_out(tmp_path, monkeypatch, capsys):
    """--validation-split 0.25 of 120: '(90 train, 30 held out for validation)'"""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "spirals", "--samples", "120", "--sizes", "2,8,3", "--epochs", "1",
                 "--validation-split", "0.25", "--quiet", "--no-plot"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "on 120 spirals examples (90 train, 30 held out for validation)," in first, first


def test_loss_png_draws_the_metric_beside_the_loss_skipping_epochs_not_scored(monkeypatch, tmp_path):
    """Two panels: loss (training, validation) and accuracy, whose lines join the scored epochs only"""
    import pytest

    pytest.importorskip("matplotlib")
    from bpgpu import plotting

    drawn = {}
    monkeypatch.setattr(plotting, "_save", lambda fig, path, dpi: drawn.update(fig=fig))
    history = {"loss": [1.0, 0.8, 0.6, 0.5], "val_loss": [1.1, 0.9, 0.8, 0.7], "metric": "accuracy",
               "accuracy": [None, 0.6, None, 0.8], "val_accuracy": [None, 0.5, None, 0.7]}
    assert plotting.loss_curve(history, tmp_path / "loss.png")
    loss_ax, metric_ax = drawn["fig"].axes
    assert (loss_ax.get_ylabel(), metric_ax.get_ylabel()) == ("loss", "accuracy")
    assert [line.get_xdata().tolist() for line in metric_ax.get_lines()] == [[2, 4], [2, 4]]
    assert [line.get_ydata().tolist() for line in metric_ax.get_lines()] == [[0.6, 0.8], [0.5, 0.7]]
    plotting.loss_curve({"loss": [1.0, 0.5]}, tmp_path / "plain.png")  # no metric: one panel
    assert len(drawn["fig"].axes) == 1
