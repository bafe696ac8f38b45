"""Integer class codes in a table's target column are named for what they likely are: with one
output unit they would silently train as regression (iris's 0/1/2 scored by R²), so a warning
suggests --one-hot; with one unit per class the size error suggests it."""

from __future__ import annotations

import numpy as np
import pytest

from bpgpu.cli import main
from bpgpu.cli.sources import class_codes

TRAIN = ["train", "--epochs", "1", "--quiet", "--no-plot", "--data", "d.csv", "--target", "y"]
CODED = "a,b,y\n0.1,0.2,0\n0.3,0.1,1\n0.5,0.9,2\n0.2,0.2,1\n"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_class_codes_on_one_output_are_trained_with_a_warning_suggesting_one_hot(folder, capsys):
    (folder / "d.csv").write_text(CODED)
    assert main([*TRAIN, "--sizes", "2,4,1"]) == 0
    assert capsys.readouterr().err.strip() == (
        "bpgpu: warning: column 'y' of d.csv holds only the integers 0..2, trained as numbers on one output "
        "(regression); if they are class labels, add --one-hot and end --sizes with 3")


def test_one_unit_per_class_without_one_hot_is_an_error_suggesting_it(folder, capsys):
    (folder / "d.csv").write_text(CODED)
    assert main([*TRAIN, "--sizes", "2,4,3"]) == 1
    assert capsys.readouterr().err.strip().endswith(
        "has 2 inputs and 3 outputs; column 'y' of d.csv holds only the integers 0..2: if they are class labels, "
        "add --one-hot")


@pytest.mark.parametrize("targets", ["0.5,1.5,2.5,1.5", "0,1,1,0", "1,2,3,2", "0,2,4,2"])
def test_numbers_that_are_not_codes_0_to_k_train_without_a_word(folder, capsys, targets):
    rows = "".join(f"0.1,0.2,{y}\n" for y in targets.split(","))
    (folder / "d.csv").write_text("a,b,y\n" + rows)
    assert main([*TRAIN, "--sizes", "2,4,1"]) == 0
    assert capsys.readouterr().err == ""


def test_class_codes():
    assert class_codes(np.array([[2.0], [0.0], [1.0], [0.0]])) == 3
    assert class_codes(np.array([[1.0], [0.0]])) == 2
    assert class_codes(np.array([[0.0], [0.0]])) is None
    assert class_codes(np.array([[0.0, 1.0], [1.0, 0.0]])) is None
    assert class_codes(np.arange(1001.0)[:, None]) is None
