"""A model meets a table by column name: predict, evaluate and ``train --resume --data`` find
the model's columns by header name (in any order; by position only without a header), a
missing column is named with a close match, a header naming a column twice is refused, and
matching costs linear time in the number of columns."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import bpgpu
from bpgpu.io import persistence
from bpgpu.cli import main
from bpgpu.cli.columns import model_inputs
from bpgpu.cli.errors import CLIError
from bpgpu.cli.headers import by_name, pick
from bpgpu.cli.tables import Table
from clirun import BPGPU, ENV

RELIABILITY = "columns"


def bpgpu_run(capsys, *argv):
    """(exit status, stdout, stderr) of ``bpgpu argv`` in this process."""
    capsys.readouterr()
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def ok(capsys, *argv) -> str:
    status, out, err = bpgpu_run(capsys, *argv)
    assert status == 0, err
    return out


def refused(capsys, *argv) -> str:
    """The one stderr line of a ``bpgpu argv`` that exits 1."""
    status, out, err = bpgpu_run(capsys, *argv)
    lines = err.strip().splitlines()
    assert status == 1 and len(lines) == 1 and out == "", (status, out, err)
    return lines[0]


def write_csv(path, header, columns) -> None:
    rows = [",".join(map(str, row)) for row in zip(*columns)]
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n")


@pytest.fixture
def regression(tmp_path, monkeypatch, capsys):
    """data.csv: inputs a, b, c and a numeric target y (a 3-input model trained on it in run/),
    and its columns as a dict."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    columns = {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": X @ [1.0, -2.0, 0.5]}
    write_csv(tmp_path / "data.csv", list(columns), list(columns.values()))
    ok(capsys, "train", "--data", "data.csv", "--target", "y", "--sizes", "3,4,1", "--epochs", "3", "--quiet",
       "--no-plot", "--out", "run", "--checkpoint-every", "1")
    return columns


def test_a_missing_input_column_is_named_not_replaced_by_the_target(regression, capsys, tmp_path):
    """a file without input c, but with the target y: refused naming c (it used a, b, y silently)"""
    write_csv(tmp_path / "abY.csv", ["a", "b", "y"], [regression[k] for k in "aby"])
    assert refused(capsys, "predict", "run/model.npz", "--input", "abY.csv") == (
        "bpgpu predict: error: abY.csv: no column 'c', one of the 3 inputs of run/model.npz; "
        "pick the inputs with --columns")
    assert "no column 'c', one of the 3 inputs" in refused(capsys, "evaluate", "run/model.npz", "--data", "abY.csv")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_renamed_column_is_named_with_its_close_match(regression, capsys, tmp_path, command):
    renamed = {("B_" if k == "b" else k): v for k, v in regression.items()}
    write_csv(tmp_path / "renamed.csv", list(renamed), list(renamed.values()))
    option = "--input" if command == "predict" else "--data"
    assert refused(capsys, command, "run/model.npz", option, "renamed.csv").endswith(
        "renamed.csv: no column 'b' (did you mean 'B_'?), one of the 3 inputs of run/model.npz; "
        "pick the inputs with --columns")


def test_a_renamed_target_is_named_by_evaluate(regression, capsys, tmp_path):
    write_csv(tmp_path / "t.csv", ["a", "b", "c", "Y"], [regression[k] for k in "abcy"])
    assert refused(capsys, "evaluate", "run/model.npz", "--data", "t.csv").endswith(
        "t.csv: no column 'y' (did you mean 'Y'?), one of the 1 targets of run/model.npz; "
        "name the target column(s) with --target")


def test_a_text_label_left_in_is_not_read_as_an_input(tmp_path, monkeypatch, capsys):
    """a file missing an input but holding the text label: the missing input is named (it was
    reported as a parse error of the label column)"""
    monkeypatch.chdir(tmp_path)
    x = np.linspace(-1, 1, 30)
    write_csv(tmp_path / "d.csv", ["x0", "x1", "label"], [x, -x, np.where(x > 0, "yes", "no")])
    ok(capsys, "train", "--data", "d.csv", "--target", "label", "--sizes", "2,3,1", "--epochs", "2", "--quiet",
       "--no-plot", "--out", "run")
    write_csv(tmp_path / "e.csv", ["x0", "label"], [x, np.where(x > 0, "yes", "no")])
    assert refused(capsys, "predict", "run/model.npz", "--input", "e.csv").endswith(
        "e.csv: no column 'x1', one of the 2 inputs of run/model.npz; "
        "pick the inputs with --columns")


def test_columns_in_another_order_predict_and_evaluate_the_same(regression, capsys, tmp_path):
    order = ["y", "c", "a", "b"]
    write_csv(tmp_path / "shuffled.csv", order, [regression[k] for k in order])
    assert ok(capsys, "predict", "run/model.npz", "--input", "shuffled.csv") == \
        ok(capsys, "predict", "run/model.npz", "--input", "data.csv")
    assert ok(capsys, "evaluate", "run/model.npz", "--data", "shuffled.csv", "--json").replace("shuffled", "data") \
        == ok(capsys, "evaluate", "run/model.npz", "--data", "data.csv", "--json")


def test_resume_with_the_columns_in_another_order_trains_the_same_weights(regression, capsys, tmp_path):
    order = ["y", "c", "a", "b"]
    write_csv(tmp_path / "shuffled.csv", order, [regression[k] for k in order])
    for name, data in (("same", "data.csv"), ("reordered", "shuffled.csv")):
        ok(capsys, "train", "--resume", "run/checkpoint.npz", "--data", data, "--epochs", "6", "--quiet",
           "--no-plot", "--out", name)
    same, reordered = (persistence.load_checkpoint(f"{name}/model.npz") for name in ("same", "reordered"))
    assert same.network.thetas[0].shape == (4, 4)  # 3 inputs and the bias
    for w, v in zip(same.network.thetas, reordered.network.thetas):
        np.testing.assert_array_equal(w, v)
    assert reordered.extra["data"]["inputs"] == ["a", "b", "c"] and reordered.extra["data"]["targets"] == ["y"]


def test_resume_with_a_missing_column_names_it(regression, capsys, tmp_path):
    write_csv(tmp_path / "less.csv", ["a", "c", "y"], [regression[k] for k in "acy"])
    assert refused(capsys, "train", "--resume", "run/checkpoint.npz", "--data", "less.csv", "--epochs", "6",
                   "--quiet", "--no-plot", "--out", "less").endswith(
        "less.csv: no column 'b', one of the 3 inputs of the resumed model; name them with --columns and --target")


def test_a_headerless_file_is_matched_by_position(regression, capsys, tmp_path):
    X = np.column_stack([regression[k] for k in "abc"])
    np.savetxt(tmp_path / "bare.csv", X, delimiter=",")
    expected = persistence.load_checkpoint("run/model.npz").network.predict(X)
    out = ok(capsys, "predict", "run/model.npz", "--input", "bare.csv")
    np.testing.assert_allclose(np.loadtxt(out.splitlines()[1:], delimiter=",", ndmin=2), expected, rtol=1e-9)


def test_resume_on_a_headerless_file_asks_for_the_target_by_index(regression, capsys, tmp_path):
    """the --target y it blamed came from the checkpoint's record: the user never typed it"""
    np.savetxt(tmp_path / "bare.csv", np.column_stack([regression[k] for k in "abcy"]), delimiter=",")
    assert refused(capsys, "train", "--resume", "run/checkpoint.npz", "--data", "bare.csv", "--epochs", "6",
                   "--quiet", "--no-plot", "--out", "bare") == (
        "bpgpu train: error: --target: bare.csv has no header, so the resumed model's target y cannot be found "
        "by name; give the target column(s) by index, e.g. --target -1")
    ok(capsys, "train", "--resume", "run/checkpoint.npz", "--data", "bare.csv", "--target", "-1", "--epochs", "6",
       "--quiet", "--no-plot", "--out", "bare")


@pytest.mark.parametrize("argv", [
    ["train", "--data", "dup.csv", "--target", "y", "--sizes", "3,2,1", "--quiet", "--no-plot"],
    ["predict", "run/model.npz", "--input", "dup.csv"],
    ["evaluate", "run/model.npz", "--data", "dup.csv"],
])
def test_a_header_naming_a_column_twice_is_refused(regression, capsys, tmp_path, argv):
    write_csv(tmp_path / "dup.csv", ["a", "b", "a", "y"], [regression[k] for k in "abcy"])
    assert refused(capsys, *argv).endswith(
        "dup.csv: the column name 'a' is used twice (columns 0 and 2); columns are matched by name, rename one")


@pytest.mark.parametrize("given, said", [
    (["--target", "Y"], "--target Y: no column 'Y' in data.csv (did you mean 'y'?)"),
    (["--target", "y", "--columns", "a,bb"], "--columns a,bb: no column 'bb' in data.csv (did you mean 'b'?)"),
    (["--target", "y", "--columns", "q"], "--columns q: no column 'q' in data.csv (its columns are a, b, c, y)"),
])
def test_a_wrong_name_gets_a_close_match(regression, capsys, given, said):
    line = refused(capsys, "train", "--data", "data.csv", *given, "--sizes", "3,2,1", "--quiet", "--no-plot")
    assert line == f"bpgpu train: error: {said}"


# -- linear time ----------------------------------------------------------------------------

class Name(str):
    """A column name that counts how often it is compared for equality."""
    compared = 0

    def __eq__(self, other):
        Name.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


@pytest.mark.parametrize("match", [
    lambda t, names: model_inputs(t, None, {"inputs": names[::-1]}, "m", len(names)),
    lambda t, names: by_name(t, names[::-1], "inputs", ""),
    lambda t, names: pick(t, f"{names[0]}:{names[-1]},!{names[1]}", "--columns"),
    lambda t, names: pick(t, ",".join(names[::-1]), "--columns"),
], ids=["model_inputs", "by_name", "range", "list"])
def test_matching_n_names_costs_o_n_comparisons(match):
    """2,000 names matched with at most a few comparisons each (a list search made ~n²/2 = 2·10⁶)"""
    n = 2000
    names = [Name(f"col{j}") for j in range(n)]
    wanted = [Name(str(name)) for name in names]  # equal, not the same objects: a lookup compares
    t = Table("wide.csv", np.zeros((1, n)), names)
    Name.compared = 0
    match(t, wanted)
    assert Name.compared <= 4 * n


def test_a_missing_name_among_many_is_found_with_its_match():
    names = [f"col{j}" for j in range(1000)]
    t = Table("wide.csv", np.zeros((1, 1000)), [*names[:500], "Col500", *names[501:]])
    with pytest.raises(CLIError, match=r"^wide\.csv: no column 'col500' \(did you mean 'Col500'\?\), "
                                       r"one of the 1,000 inputs; hint$"):
        by_name(t, names, "inputs", "hint")
    with pytest.raises(CLIError, match=r"^--columns zzz: no column 'zzz' in wide\.csv \(its columns are col0, col1, "
                                       r"col2, col3, col4, col5, col6, col7, … \(1,000 in all\)\)$"):
        pick(t, "zzz", "--columns")


def test_predict_on_200k_named_columns_in_another_order(tmp_path):
    """200,000 input columns, reversed in the file, matched by name, and by a first:last range
    that picks exactly the model's inputs (so by name too), in a subprocess (seconds); quadratic
    matching (2·10¹⁰ comparisons) took minutes: the timeout is only a guard against hanging"""
    n = 200_000
    names = [f"c{j}" for j in range(n)]
    net = bpgpu.Network([n, 1], seed=0)
    persistence.save(net, tmp_path / "model.npz", extra={"data": {"kind": "file", "inputs": names}})
    X = np.random.default_rng(0).normal(size=(2, n))
    with open(tmp_path / "wide.csv", "w") as f:
        f.write(",".join(names[::-1]) + "\n")
        for row in X[:, ::-1]:
            f.write(",".join(f"{v:.17g}" for v in row) + "\n")
    expected = net.predict(X)
    for columns in ([], ["--columns", f"c{n - 1}:c0"]):
        done = subprocess.run([*BPGPU, "predict", "model.npz", "--input", "wide.csv", *columns], cwd=tmp_path,
                              env=ENV, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        got = np.loadtxt(done.stdout.splitlines()[1:], delimiter=",", ndmin=2)
        np.testing.assert_allclose(got, expected, rtol=1e-9)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_nan_in_a_column_the_model_does_not_read_is_ignored(regression, capsys, tmp_path, command):
    """an id/notes column with a 'nan' (or a Parquet null) was refused though no input or target reads it"""
    noted = {**regression, "n": np.where(np.arange(40) == 7, np.nan, 1.0)}
    write_csv(tmp_path / "noted.csv", list(noted), list(noted.values()))
    option = "--input" if command == "predict" else "--data"
    assert ok(capsys, command, "run/model.npz", option, "noted.csv").replace("noted", "data") == \
        ok(capsys, command, "run/model.npz", option, "data.csv")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_columns_picked_by_the_model_s_own_names_are_fed_by_name(regression, capsys, tmp_path, command):
    """--columns c,a,b names exactly the model's inputs a,b,c: they were fed by position (R² 0.99 → −1.4)"""
    option = "--input" if command == "predict" else "--data"
    assert ok(capsys, command, "run/model.npz", option, "data.csv", "--columns", "c,a,b") == \
        ok(capsys, command, "run/model.npz", option, "data.csv")
