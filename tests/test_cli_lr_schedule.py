"""``bpgpu train --lr-schedule``: scikit-learn's rules for the learning rate between epochs,
the rate of every epoch in history.json, and a resumed run that goes on as the whole one."""

import json

import numpy as np
import pytest

import bpgpu

SPIRALS = ["train", "--data", "spirals", "--samples", "200", "--sizes", "2,8,3", "--optimizer", "sgd",
           "--quiet", "--no-plot"]


def history(folder):
    return json.loads((folder / "history.json").read_text())


def test_invscaling_sets_lr0_over_examples_seen_to_the_power_t(cli, tmp_path):
    status, out, err = cli(*SPIRALS, "--epochs", "5", "--lr", "0.3", "--lr-schedule", "invscaling",
                           "--power-t", "0.25", "--validation-split", "0.25", "--out", "run")
    assert status == 0, err
    m = 150  # the training rows: 200 less the quarter held out
    assert history(tmp_path / "run")["lr"] == [0.3] + [0.3 / (e * m + 1) ** 0.25 for e in range(1, 5)]


def sklearn_adaptive(losses, lr):
    """The rates scikit-learn's learning_rate="adaptive" gives after these training losses
    (tol 1e-4, n_iter_no_change 10, ÷5, stop at a plateau once lr <= 1e-6), written from its
    _update_no_improvement_count and _fit_stochastic."""
    rates, best, count = [], np.inf, 0
    for loss in losses:
        rates.append(lr)
        count = count + 1 if loss > best - 1e-4 else 0
        best = min(best, loss)
        if count > 10:
            if lr <= 1e-6:
                return rates, True
            lr, count = lr / 5, 0
    return rates, False


def test_adaptive_divides_lr_on_each_plateau_and_stops_once_it_is_small(cli, tmp_path):
    status, out, err = cli(*SPIRALS, "--epochs", "60", "--lr", "1e-5", "--lr-schedule", "adaptive", "--out", "run")
    assert status == 0, err
    h = history(tmp_path / "run")
    rates, stopped = sklearn_adaptive(h["loss"], 1e-5)
    assert stopped and h["lr"] == rates and len(set(rates)) == 3  # two plateaus divided it, the third stopped
    assert h["stop_reason"] == "lr_schedule" and h["epochs"] < 60 and "stopped: lr_schedule" in out


@pytest.mark.parametrize("schedule", ["adaptive", "invscaling"])
def test_a_resumed_run_goes_on_as_the_whole_run(cli, tmp_path, schedule):
    """The plateau's count and best loss, and η0, travel in the checkpoint: 15 epochs then
    --resume to 40 give the bits of 40 epochs in one run (the stale count is 3 at epoch 15)."""
    args = [*SPIRALS, "--lr", "1e-5", "--lr-schedule", schedule, "--checkpoint-every", "5"]
    assert cli(*args, "--epochs", "40", "--out", "whole")[0] == 0
    assert cli(*args, "--epochs", "15", "--out", "part")[0] == 0
    status, out, err = cli("train", "--resume", "part/checkpoint.npz", "--epochs", "40", "--quiet", "--no-plot",
                           "--out", "resumed")
    assert status == 0, err
    whole, resumed = history(tmp_path / "whole"), history(tmp_path / "resumed")
    assert (resumed["lr"], resumed["loss"], resumed["stop_reason"]) == (whole["lr"], whole["loss"], whole["stop_reason"])
    assert len(set(whole["lr"])) > 2
    np.testing.assert_array_equal(bpgpu.load(tmp_path / "resumed" / "model.npz").params,
                                  bpgpu.load(tmp_path / "whole" / "model.npz").params)


def test_lr_on_resume_starts_the_schedule_again_from_it(cli, tmp_path):
    assert cli(*SPIRALS, "--epochs", "2", "--lr", "0.3", "--lr-schedule", "invscaling", "--out", "part")[0] == 0
    assert cli("train", "--resume", "part/model.npz", "--epochs", "4", "--lr", "0.1", "--quiet", "--no-plot",
               "--out", "again")[0] == 0
    lr = history(tmp_path / "again")["lr"]
    assert lr[:2] == [0.3, 0.3 / 201**0.5] and lr[2:] == [0.1, 0.1 / (3 * 200 + 1) ** 0.5]


def test_power_t_without_invscaling_is_refused(cli):
    status, out, err = cli(*SPIRALS, "--epochs", "1", "--power-t", "0.3")
    assert status == 1 and "--power-t: applies to --lr-schedule invscaling only, and this run's is constant" in err


def test_without_a_schedule_the_rate_stays_and_each_epoch_records_it(cli, tmp_path):
    status, out, err = cli(*SPIRALS, "--epochs", "3", "--lr", "0.2", "--out", "run")
    assert status == 0 and history(tmp_path / "run")["lr"] == [0.2] * 3


def test_a_negative_power_t_is_refused_as_scikit_learn_refuses_it(cli, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(*SPIRALS, "--epochs", "1", "--lr-schedule", "invscaling", "--power-t", "-0.5")
    assert exit_.value.code == 2
    assert "argument --power-t: expected a non-negative float, got '-0.5'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="power_t"):
        bpgpu.schedules.InvScaling(0.1, power_t=-0.5)
