"""bpgpu train --dropout: the rates reach the network, are saved with the model, and a
count that does not fit --sizes is one line naming the option."""

import pytest

import bpgpu
from bpgpu.cli import main


def test_dropout_trains_and_is_saved(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "spirals", "--samples", "200", "--sizes", "2,8,8,3", "--dropout", "0.2,0.1",
                 "--epochs", "2", "--out", str(out), "--quiet", "--no-plot"]) == 0
    assert bpgpu.load(out / "model.npz").dropout == [0.2, 0.1]


@pytest.mark.parametrize("given, message", [
    ("0.2,0.1,0.3", "--dropout 0.2,0.1,0.3: expected one rate or 2 (one per hidden layer of --sizes 2,8,8,3)"),
    ("1.5", "argument --dropout: expected rates in [0, 1), comma-separated, got '1.5'"),
])
def test_bad_rates_are_one_line_naming_the_option(given, message, capsys):
    try:
        status = main(["train", "--data", "spirals", "--sizes", "2,8,8,3", "--dropout", given, "--epochs", "1"])
    except SystemExit as exit_:  # argparse's own refusal
        status = exit_.code
    assert status in (1, 2)  # ours 1, argparse 2
    assert message in capsys.readouterr().err
