"""``bpgpu train --class-weight``: each example's loss weighed by its class, kept by a
checkpoint so that a resumed run is the uninterrupted one."""

import numpy as np
import pytest

from bpgpu.io import persistence

RUN = ["train", "--data", "spirals", "--sizes", "2,8,3", "--samples", "60", "--batch-size", "16", "--no-plot",
       "--quiet"]



def params(path):
    return np.concatenate([np.ravel(t) for t in persistence.load(path).thetas])


def test_class_weights_change_the_run_and_a_resumed_run_is_the_uninterrupted_one(cli):
    assert cli(*RUN, "--epochs", "4", "--out", "plain")[0] == 0
    assert cli(*RUN, "--epochs", "4", "--class-weight", "0=1,1=5,2=0.5", "--out", "whole")[0] == 0
    assert not np.array_equal(params("plain/model.npz"), params("whole/model.npz"))
    assert cli(*RUN, "--epochs", "2", "--class-weight", "0=1,1=5,2=0.5", "--out", "part")[0] == 0
    assert cli("train", "--resume", "part/model.npz", "--epochs", "4", "--quiet", "--no-plot")[0] == 0
    assert np.array_equal(params("part/model.npz"), params("whole/model.npz"))


def test_balanced_runs_and_a_bad_value_is_refused_in_one_line(cli, capsys):
    assert cli(*RUN, "--epochs", "2", "--class-weight", "balanced", "--out", "b")[0] == 0
    with pytest.raises(SystemExit) as refused:
        cli(*RUN, "--class-weight", "0=heavy")
    assert refused.value.code == 2
    assert "--class-weight: expected 'balanced' or CLASS=WEIGHT,... like 0=1,1=5, got '0=heavy'" in capsys.readouterr().err
    status, _, err = cli(*RUN, "--class-weight", "7=2")
    assert status != 0 and "class_weight: expected classes among 0, 1, 2" in err and "Traceback" not in err
