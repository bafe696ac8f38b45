"""The CLI's data handling (bpgpu/cli/tables.py, columns.py) called directly: reading CSV,
.npy and .npz tables, column specs, targets and class labels, each with the exact values
and messages. Written for mutation testing (scripts/mutation_check.sh): the command-line
tests reach these functions only through whole training runs, so a wrong message or an
off-by-one in a spec survived them. docs/testing.md has the score and the equivalent mutants.
"""

from __future__ import annotations

import numpy as np
import pytest

from bpgpu.cli.columns import class_names, class_probabilities, encode, for_training, model_inputs, \
    model_targets, target_rows
from bpgpu.cli.errors import CLIError
from bpgpu.cli.headers import pick
from bpgpu.cli.tables import Table, read_table, write_table


def csv(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def fails(message, fn, *args, **kwargs):
    """fn(*args) raises CLIError whose message is exactly ``message``."""
    with pytest.raises(CLIError) as raised:
        fn(*args, **kwargs)
    assert str(raised.value) == message
    return raised


# -- reading ------------------------------------------------------------------------------

def test_csv_with_a_header_and_a_text_column(tmp_path):
    path = csv(tmp_path, "a, b ,label\n1,2, cat\n3.5,-4,dog\n\n")
    t = read_table(path)
    assert t.names == ["a", "b", "label"]
    assert t.first_line == 2
    np.testing.assert_array_equal(t.values[:, :2], [[1, 2], [3.5, -4]])
    assert np.isnan(t.values[:, 2]).all()
    assert list(t.text) == [2] and t.text[2].tolist() == ["cat", "dog"]
    assert t.width == 3 and t.name(1) == "'b'"


def test_csv_of_numbers_has_no_header(tmp_path):
    t = read_table(csv(tmp_path, "1,2\n3,4\n"))
    assert t.names is None and t.first_line == 1 and t.text == {}
    np.testing.assert_array_equal(t.values, [[1, 2], [3, 4]])
    assert t.name(1) == "1"


def test_a_first_row_of_numbers_and_labels_is_data_not_a_header(tmp_path):
    """a row whose only text sits in a column that holds text further down too is an example"""
    t = read_table(csv(tmp_path, "1,cat\n2,dog\n"))
    assert t.names is None
    assert t.text[1].tolist() == ["cat", "dog"]


def test_a_first_row_with_text_where_the_rest_has_numbers_is_a_header(tmp_path):
    t = read_table(csv(tmp_path, "x,7\n1,2\n"))  # text in column 0 only, numbers below it
    assert t.names == ["x", "7"]
    np.testing.assert_array_equal(t.values, [[1, 2]])


def test_a_single_row_with_text_is_a_header(tmp_path):
    fails(f"{tmp_path / 't.csv'}: no rows", read_table, csv(tmp_path, "a,1\n"))


def test_ragged_rows_are_refused_with_their_line(tmp_path):
    path = csv(tmp_path, "a,b\n1,2\n3\n")
    fails(f"{path}: line 3 has 1 columns, expected 2", read_table, path)
    path = csv(tmp_path, "1,2\n3,4,5\n", "u.csv")
    fails(f"{path}: line 2 has 3 columns, expected 2", read_table, path)


def test_empty_and_missing_and_unknown_files(tmp_path):
    path = csv(tmp_path, "\n\n")
    fails(f"{path}: empty file", read_table, path)
    fails(f"{tmp_path / 'no.csv'}: no such file", read_table, tmp_path / "no.csv")
    fails(f"{tmp_path / 'x.txt'}: expected a .csv, .tsv, .parquet, .npy or .npz file, got '.txt'", read_table, tmp_path / "x.txt")
    fails(f"{tmp_path / 'x'}: no such file", read_table, tmp_path / "x")  # no suffix: sniffed, once it exists


def test_suffix_case_does_not_matter(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((2, 2)))
    (tmp_path / "a.npy").rename(tmp_path / "A.NPY")
    assert read_table(tmp_path / "A.NPY").values.shape == (2, 2)


def test_non_finite_numbers_are_refused_naming_row_and_column_where_they_are_used(tmp_path):
    """a column the run reads (as numbers or as labels) must be finite; one it does not read may hold anything"""
    path = csv(tmp_path, "a,b,c\nx,1,2\ny,3,inf\n")
    table = read_table(path)
    fails(f"{path}: row 2, column 'c': expected a finite number, got inf", table.numbers, [1, 2])
    fails(f"{path}: row 2, column 'c': expected a finite number, got inf", table.labels, 2)
    np.testing.assert_array_equal(table.numbers([1]), [[1.0], [3.0]])
    np.save(tmp_path / "n.npy", np.array([[1.0, np.nan]]))
    fails(f"{tmp_path / 'n.npy'}: row 1, column 1: expected a finite number, got nan",
          read_table(tmp_path / "n.npy").numbers, [0, 1])


def test_npy_one_dimensional_is_a_column_and_integers_become_floats(tmp_path):
    np.save(tmp_path / "v.npy", np.array([1, 2, 3]))
    t = read_table(tmp_path / "v.npy")
    assert t.values.shape == (3, 1) and t.values.dtype == np.float64 and t.names is None


def test_npy_refusals(tmp_path):
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    fails(f"{tmp_path / 's.npy'}: the array holds <U1 values, expected numbers", read_table, tmp_path / "s.npy")
    np.save(tmp_path / "c.npy", np.ones((2, 2, 2)))
    fails(f"{tmp_path / 'c.npy'}: the array has shape (2, 2, 2), expected a 2-D table (examples, columns)",
          read_table, tmp_path / "c.npy")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(CLIError, match=r"bad\.npy: not a readable \.npy file \("):
        read_table(tmp_path / "bad.npy")


def test_npz_with_X_and_Y_is_one_table_named_x_and_y(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.arange(6.0).reshape(3, 2), Y=np.array([7.0, 8.0, 9.0]))
    t = read_table(tmp_path / "d.npz")
    assert t.names == ["x0", "x1", "y0"]
    np.testing.assert_array_equal(t.values, [[0, 1, 7], [2, 3, 8], [4, 5, 9]])
    assert t.x_and_y()


def test_npz_refusals_and_a_single_array(tmp_path):
    np.savez(tmp_path / "r.npz", X=np.ones((3, 2)), Y=np.ones((2, 1)))
    fails(f"{tmp_path / 'r.npz'}: X has 3 rows but Y has 2", read_table, tmp_path / "r.npz")
    np.savez(tmp_path / "m.npz", A=np.ones((2, 2)), B=np.ones((2, 2)))
    fails(f"{tmp_path / 'm.npz'}: expected arrays named X and Y, or a single array, got ['A', 'B']",
          read_table, tmp_path / "m.npz")
    np.savez(tmp_path / "one.npz", data=np.full((2, 3), 5.0))
    t = read_table(tmp_path / "one.npz")
    assert t.names is None and t.values.tolist() == [[5.0] * 3] * 2
    np.savez(tmp_path / "s.npz", X=np.array([["a"]]), Y=np.ones((1, 1)))
    fails(f"{tmp_path / 's.npz'}: X holds <U1 values, expected numbers", read_table, tmp_path / "s.npz")


def test_write_table_csv_and_npy(tmp_path):
    Y = np.array([[1.5, 2.0], [3.0, 1e-12]])
    write_table(tmp_path / "p.csv", Y, ["a", "b"])
    assert (tmp_path / "p.csv").read_text() == "a,b\n1.5,2\n3,1e-12\n"
    write_table(tmp_path / "p.npy", Y, ["a", "b"])
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), Y)


# -- columns of a table ----------------------------------------------------------------------

def table(names=("a", "b", "c", "d"), m=2, text=None):
    width = len(names) if names else 4
    values = np.arange(m * width, dtype=float).reshape(m, width)
    return Table("f.csv", values, list(names) if names else None, text or {})


def test_pick_names_indices_ranges_and_exclusions():
    t = table()
    assert pick(t, "c,a", "--columns") == [2, 0]
    assert pick(t, " -1 , 0", "--columns") == [3, 0]
    assert pick(t, "b:d", "--columns") == [1, 2, 3]
    assert pick(t, "0:1", "--columns") == [0, 1]
    assert pick(t, "-2:-1", "--columns") == [2, 3]
    assert pick(t, "!b", "--columns") == [0, 2, 3]
    assert pick(t, "!b,!d", "--columns", rest=[0, 1, 2]) == [0, 2]
    assert pick(t, "a:c,!b", "--columns") == [0, 2]


def test_pick_refusals():
    t = table()
    fails("--columns a,,b: an empty column name; expected names, indices or ranges like f0:f63", pick, t, "a,,b", "--columns")
    fails("--columns a,a: column 'a' named twice", pick, t, "a,a", "--columns")
    fails("--columns !a,!b,!c,!d: leaves no column of f.csv", pick, t, "!a,!b,!c,!d", "--columns")
    fails("--target c:a: the range 'c:a' runs backwards (column 2 to 0)", pick, t, "c:a", "--target")
    fails("--columns z: no column 'z' in f.csv (its columns are a, b, c, d)", pick, t, "z", "--columns")
    fails("--columns 4: column 4 is out of range, f.csv has 4 columns", pick, t, "4", "--columns")
    fails("--columns -5: column -5 is out of range, f.csv has 4 columns", pick, t, "-5", "--columns")
    assert pick(t, "-4", "--columns") == [0]
    fails("--columns z: no column 'z' in f.csv (it has no header, use indices)", pick, table(None), "z", "--columns")


def test_a_name_with_a_colon_is_a_name_not_a_range():
    assert pick(table(("a:b", "c")), "a:b", "--columns") == [0]


def test_numbers_and_labels():
    t = table(text={1: np.array(["1", "cat"])})
    np.testing.assert_array_equal(t.numbers([0, 2]), [[0, 2], [4, 6]])
    fails("f.csv: line 2, column 'b': expected a number, got 'cat'", t.numbers, [0, 1])
    t.first_line = 2
    fails("f.csv: line 3, column 'b': expected a number, got 'cat'", t.numbers, [1])
    assert t.labels(1).tolist() == ["1", "cat"]
    assert t.labels(0).tolist() == ["0", "4"]
    assert Table("g", np.array([[0.5], [1e6]]), None).labels(0).tolist() == ["0.5", "1e+06"]


def test_x_and_y():
    assert table(("x0", "x1", "y")).x_and_y()
    assert table(("x", "y1", "y2")).x_and_y()
    assert not table(("x0", "y0", "x1")).x_and_y()  # targets last
    assert not table(("x0", "z", "y")).x_and_y()
    assert not table(None).x_and_y()


# -- columns.py ------------------------------------------------------------------------------

def test_for_training_defaults_and_refusals():
    t = table(("x0", "x1", "y0", "y1"))
    assert for_training(t, None, None) == ([0, 1], [2, 3])
    assert for_training(t, "y1", None) == ([0, 1, 2], [3])
    assert for_training(t, "y1", "x1,x0") == ([1, 0], [3])
    assert for_training(t, "y1", "!x0") == ([1, 2], [3])
    fails("--columns a,b: column 'b' is also a --target column", for_training, table(), "b", "a,b")
    fails("--target: name the target column(s) of f.csv, e.g. --target -1 (the last column) or --target d",
          for_training, table(), None, None)
    fails("--target: name the target column(s) of f.csv, e.g. --target -1 (the last column)",
          for_training, table(None), None, None)


def test_model_inputs_by_columns_stored_names_x_and_y_or_the_rest():
    t = table()
    np.testing.assert_array_equal(model_inputs(t, "d,a", {}, "m", 2), t.values[:, [3, 0]])
    np.testing.assert_array_equal(model_inputs(t, None, {"inputs": ["c", "b"]}, "m", 2), t.values[:, [2, 1]])
    xy = table(("x0", "x1", "y"))
    np.testing.assert_array_equal(model_inputs(xy, None, {}, "m", 2), xy.values[:, :2])
    bare = table(None)  # no header: by position, all but the targets
    np.testing.assert_array_equal(model_inputs(bare, None, {"inputs": ["q"]}, "m", 3, targets=[1]),
                                  bare.values[:, [0, 2, 3]])
    fails("incompatible sizes: m expects 3 input columns, f.csv has 4 (pick them with --columns)",
          model_inputs, t, None, {}, "m", 3)
    fails("incompatible sizes: m expects 3 input columns, f.csv has 4 (its inputs were q, r; pick them with --columns)",
          model_inputs, bare, None, {"inputs": ["q", "r"]}, "m", 3)
    fails("incompatible sizes: m expects 3 input columns, f.csv has 1", model_inputs, t, "a", {}, "m", 3)


def test_model_targets():
    t = table()
    assert model_targets(t, "b", {}) == [1]
    assert model_targets(t, None, {"targets": ["d", "a"]}) == [3, 0]
    assert model_targets(table(("x0", "y0", "y1")), None, {}) == [1, 2]
    fails("--target: name the target column(s) of f.csv; the model's were q", model_targets, table(None), None,
          {"targets": ["q"]})
    fails("--target: name the target column(s) of f.csv, e.g. --target -1 (the last column)", model_targets, t, None, {})


def test_target_rows_numbers_one_hot_and_labels():
    t = Table("f.csv", np.array([[0.5, 2.0], [1.5, 0.0], [2.5, 1.0]]), ["a", "k"])
    Y, kind, classes = target_rows(t, [0], 1)
    assert kind == "file" and classes is None and Y.tolist() == [[0.5], [1.5], [2.5]]
    Y, kind, classes = target_rows(t, [1], 3, one_hot=True)
    assert kind == "one-hot" and classes is None
    np.testing.assert_array_equal(Y, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    fails("--one-hot: column 'k' of f.csv must hold class labels 0..1 (sizes[-1] = 2), got 2", target_rows, t, [1], 2,
          one_hot=True)
    fails("--one-hot: column 'a' of f.csv must hold class labels 0..2 (sizes[-1] = 3), got 0.5", target_rows, t, [0], 3,
          one_hot=True)
    negative = Table("f.csv", np.array([[-1.0], [0.0]]), ["k"])
    fails("--one-hot: column 'k' of f.csv must hold class labels 0..1 (sizes[-1] = 2), got -1", target_rows, negative,
          [0], 2, one_hot=True)
    fails("--one-hot: expected one target column of class labels, got 2", target_rows, t, [0, 1], 2, one_hot=True)
    Y, kind, classes = target_rows(t, [1], 3, classes=["0", "1", "2"])  # a model's classes: labels, even numbers
    assert kind == "labels" and classes == ["0", "1", "2"]
    np.testing.assert_array_equal(Y, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    words = Table("f.csv", np.full((3, 1), np.nan), ["s"], {0: np.array(["b", "a", "b"])})
    Y, kind, classes = target_rows(words, [0], 1)
    assert (kind, classes, Y.tolist()) == ("labels", ["a", "b"], [[1.0], [0.0], [1.0]])
    fails("--target: expected one target column of class labels, got 2", target_rows,
          Table("f.csv", np.full((1, 2), np.nan), None, {0: np.array(["a"]), 1: np.array(["b"])}), [0, 1], 2)


def test_class_names_sort_numbers_by_value():
    assert class_names(np.array(["10", "2", "2", "1.5"])) == ["1.5", "2", "10"]
    assert class_names(np.array(["b", "10", "a"])) == ["10", "a", "b"]


def test_encode():
    np.testing.assert_array_equal(encode(np.array(["b", "a"]), ["a", "b", "c"], 3, "w"), [[0, 1, 0], [1, 0, 0]])
    one = encode(np.array(["b", "a"]), ["a", "b"], 1, "w")
    assert one.dtype == np.float64 and one.tolist() == [[1.0], [0.0]]
    np.testing.assert_array_equal(encode(np.array(["b"]), ["a", "b"], 2, "w"), [[0, 1]])
    fails("incompatible sizes: w holds 3 classes (a, b, c), but the network has 2 outputs; expected 3",
          encode, np.array(["a"]), ["a", "b", "c"], 2, "w")
    fails("incompatible sizes: w holds 2 classes (a, b), but the network has 3 outputs; expected 2 (or 1 for two classes)",
          encode, np.array(["a"]), ["a", "b"], 3, "w")
    fails("incompatible sizes: w holds 3 classes (a, b, c), but the network has 1 output; expected 3",
          encode, np.array(["a"]), ["a", "b", "c"], 1, "w")
    fails("w: label 'z' is not one of the model's classes (a, b)", encode, np.array(["a", "z"]), ["a", "b"], 2, "w")


def test_class_probabilities():
    A = np.array([[0.25], [1.0]])
    np.testing.assert_array_equal(class_probabilities(A, ["a", "b"]), [[0.75, 0.25], [0.0, 1.0]])
    B = np.array([[0.2, 0.8]])
    assert class_probabilities(B, ["a", "b"]) is B
    C = np.array([[0.5], [0.5]])
    assert class_probabilities(C, ["a"]) is C


def test_npy_holding_python_objects_is_not_unpickled(tmp_path):
    """allow_pickle=False: a table file cannot run code when read"""
    np.save(tmp_path / "o.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    fails(f"{tmp_path / 'o.npy'}: the array holds Python objects (dtype object); a data file holds numbers only",
          read_table, tmp_path / "o.npy")


def test_npz_with_only_X_is_a_single_array_and_tables_keep_their_path(tmp_path):
    np.savez(tmp_path / "x.npz", X=np.ones((2, 3)))
    t = read_table(tmp_path / "x.npz")
    assert t.names is None and t.values.shape == (2, 3) and t.path == tmp_path / "x.npz"
    np.save(tmp_path / "a.npy", np.ones((2, 1)))
    assert read_table(tmp_path / "a.npy").path == tmp_path / "a.npy"


def test_model_columns_name_their_option():
    t = table()
    fails("--columns z: no column 'z' in f.csv (its columns are a, b, c, d)", model_inputs, t, "z", {}, "m", 1)
    fails("--target z: no column 'z' in f.csv (its columns are a, b, c, d)", model_targets, t, "z", {})
    fails("--target: name the target column(s) of f.csv; the model's were q, r", model_targets, table(None), None,
          {"targets": ["q", "r"]})


def test_an_unknown_label_names_its_column_and_file():
    words = Table("f.csv", np.full((2, 1), np.nan), ["s"], {0: np.array(["a", "z"])})
    fails("column 's' of f.csv: label 'z' is not one of the model's classes (a, b)", target_rows, words, [0], 2,
          classes=["a", "b"])


def test_training_columns_name_their_option():
    t = table()
    fails("--target z: no column 'z' in f.csv (its columns are a, b, c, d)", for_training, t, "z", None)
    fails("--columns z: no column 'z' in f.csv (its columns are a, b, c, d)", for_training, t, "a", "z")


def test_range_ends_are_checked_and_a_range_of_one_column_is_allowed():
    t = table()
    assert pick(t, "b:b", "--columns") == [1]
    fails("--columns a:z: no column 'z' in f.csv (its columns are a, b, c, d)", pick, t, "a:z", "--columns")
    fails("--columns 0:1:2: no column '1:2' in f.csv (its columns are a, b, c, d)", pick, t, "0:1:2", "--columns")


def test_csv_reading_keeps_line_breaks_inside_quoted_cells(tmp_path):
    """the csv module reads with newline='': a quoted \\r\\n is part of the cell"""
    path = tmp_path / "q.csv"
    path.write_bytes(b'x,label\r\n1,"a\r\nb"\r\n2,c\r\n')
    assert read_table(path).text[1].tolist() == ["a\r\nb", "c"]


def test_header_detection_for_all_text_and_ragged_tables(tmp_path):
    t = read_table(csv(tmp_path, "first,second\np,q\nr,s\n"))
    assert t.names == ["first", "second"] and t.text[0].tolist() == ["p", "r"]
    path = csv(tmp_path, "x,1,lab\n1,2\n", "r.csv")
    fails(f"{path}: line 2 has 2 columns, expected 3", read_table, path)


def test_a_short_row_under_a_text_column_is_not_read_past_its_end(tmp_path):
    path = csv(tmp_path, "a,1,b\ncat,2\n")
    fails(f"{path}: line 2 has 2 columns, expected 3", read_table, path)
