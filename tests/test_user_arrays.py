"""The API takes arrays as users hold them: pandas DataFrames and Series (a fitted network
remembers its column names and refuses others, as scikit-learn's feature_names_in_), any
DLPack array (torch, array-api-strict; shared without a copy on the host), and class labels
(m,) — integers as PyTorch's cross-entropy takes them, text as scikit-learn does — one-hot
inside, their classes kept in ``net.classes`` and saved."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import bpgpu
from bpgpu import validation as check
from bpgpu.backend import get_backend

X = np.array([[0.0, 1.0], [1.0, 0.5], [2.0, -1.0], [3.0, 0.0]])
CODES = np.array([0, 1, 2, 1])
ONE_HOT = np.eye(3)[CODES]


def classifier(k=3, output="softmax"):
    return bpgpu.Network([2, 4, k], activation="tanh", output=output, loss="cross_entropy", seed=1)


def same_loss_and_gradients(a, b):
    (Ja, Da), (Jb, Db) = a, b
    assert Ja == Jb
    for x, y in zip(Da, Db):
        np.testing.assert_array_equal(x, y)


# -- pandas -------------------------------------------------------------------------------

def frame(columns=("a", "b")):
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=list(columns))


def test_a_network_fitted_on_a_dataframe_keeps_its_column_names_and_predicts_as_on_its_values():
    net = classifier()
    net.fit(frame(), CODES, epochs=3, lr=0.1)
    assert net.feature_names == ["a", "b"]
    np.testing.assert_array_equal(net.predict(frame()), net.predict(X))


@pytest.mark.parametrize("columns, message", [
    (("b", "a"), "X: expected the columns in the order the network was fitted on (a, b), got (b, a)"),
    (("a", "c"), "X: expected the columns the network was fitted on (a, b), got unseen: c; missing: b"),
])
def test_a_dataframe_with_other_or_reordered_columns_is_refused_naming_them(columns, message):
    net = classifier()
    net.fit(frame(), CODES, epochs=1, lr=0.1)
    with pytest.raises(ValueError) as raised:
        net.predict(frame(columns))
    assert str(raised.value) == message


def test_a_dataframe_column_that_is_not_numbers_is_named():
    df = frame()
    df["b"] = ["x", "y", "z", "w"]
    with pytest.raises(TypeError, match=r"^X: expected columns of real numbers, got column 'b' of dtype"):
        classifier().predict(df)


def test_a_boolean_dataframe_column_is_read_as_0_and_1():
    """a bool column beside a float one made an object array: 'expected an array of real numbers, got dtype object'"""
    df = frame()
    df["b"] = X[:, 1] > 0
    np.testing.assert_array_equal(classifier().predict(df), classifier().predict(np.c_[X[:, 0], X[:, 1] > 0]))


def test_a_dataframe_naming_a_column_twice_is_refused():
    """the CLI refuses such a header (models meet tables by name); fit kept feature_names ['a', 'a']"""
    with pytest.raises(ValueError, match=r"^X: .*'a'.*twice"):
        classifier().fit(frame(("a", "a")), CODES, epochs=1, lr=0.1)


def test_series_targets_and_labels():
    pd = pytest.importorskip("pandas")
    reg = bpgpu.Network([2, 3, 1], output="identity")
    y = pd.Series([0.5, 1.5, -1.0, 2.0], name="y")
    same_loss_and_gradients(reg.loss_and_gradients(frame(), y), reg.loss_and_gradients(X, y.to_numpy()[:, None]))
    net = classifier()
    same_loss_and_gradients(net.loss_and_gradients(X, pd.Series(["c0", "c1", "c2", "c1"])),
                            net.loss_and_gradients(X, ONE_HOT))


def test_without_pandas_installed_nothing_breaks(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas would raise ImportError
    net = classifier()
    net.fit(X, CODES, epochs=1, lr=0.1)
    assert net.feature_names is None and net.predict(X).shape == (4, 3)


def test_import_bpgpu_does_not_import_pandas():
    done = subprocess.run([sys.executable, "-c", "import sys, bpgpu; print('pandas' in sys.modules)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# -- DLPack -------------------------------------------------------------------------------

def test_a_cpu_torch_tensor_is_shared_without_a_copy():
    torch = pytest.importorskip("torch")
    t = torch.tensor(X)
    a = check.host_or_backend_array("X", t, get_backend("numpy"))
    assert isinstance(a, np.ndarray) and np.shares_memory(a, t.numpy())
    net = classifier()
    np.testing.assert_array_equal(net.predict(t), net.predict(X))


def test_torch_integer_labels_train_as_their_one_hot_rows():
    torch = pytest.importorskip("torch")
    net = classifier()
    same_loss_and_gradients(net.loss_and_gradients(torch.tensor(X), torch.tensor(CODES)),
                            net.loss_and_gradients(X, ONE_HOT))


def test_an_array_api_strict_array_is_read_through_dlpack():
    xp = pytest.importorskip("array_api_strict")
    net = classifier()
    np.testing.assert_array_equal(net.predict(xp.asarray(X)), net.predict(X))


# -- class labels -------------------------------------------------------------------------

def test_integer_labels_are_one_hot_inside_and_fit_keeps_the_classes():
    a, b = classifier(), classifier()
    a.fit(X, CODES, epochs=5, lr=0.1, shuffle=False)
    b.fit(X, ONE_HOT, epochs=5, lr=0.1, shuffle=False)
    assert a.classes == [0, 1, 2] and b.classes is None
    for s, t in zip(a.thetas, b.thetas):
        np.testing.assert_array_equal(s, t)


def test_text_labels_take_sorted_class_names_and_refuse_others():
    net = classifier()
    labels = np.array(["eel", "cat", "dog", "cat"])
    net.fit(X, labels, epochs=1, lr=0.1)
    assert net.classes == ["cat", "dog", "eel"]
    same_loss_and_gradients(net.loss_and_gradients(X, list(labels)), net.loss_and_gradients(X, np.eye(3)[[2, 0, 1, 0]]))
    with pytest.raises(ValueError, match=r"^Y: label 'fox' is not one of the network's classes \(cat, dog, eel\)$"):
        net.evaluate(X, ["cat", "dog", "fox", "cat"])
    with pytest.raises(ValueError, match=r"^Y: expected 3 classes, one per output unit, got 2: a, b$"):
        classifier().fit(X, ["a", "b", "a", "b"])


def test_two_text_classes_on_one_sigmoid_unit_are_its_0_1_column():
    net = classifier(k=1, output="sigmoid")
    same_loss_and_gradients(net.loss_and_gradients(X, ["no", "yes", "yes", "no"]),
                            net.loss_and_gradients(X, np.array([[0.0], [1.0], [1.0], [0.0]])))


def test_integer_labels_out_of_range_are_refused():
    with pytest.raises(ValueError, match=r"^Y: expected class labels 0\.\.2, one per output unit, got 3$"):
        classifier().fit(X, np.array([0, 1, 3, 1]))


def test_integers_on_one_unit_and_labels_for_an_identity_output_stay_numbers():
    net = classifier(k=1, output="sigmoid")
    net.fit(X, np.array([0, 1, 1, 0]), epochs=1, lr=0.1)
    assert net.classes is None
    with pytest.raises(ValueError, match="expected a 2-D array"):
        bpgpu.Network([2, 3], output="identity").fit(X, CODES)


def test_the_classes_are_saved_and_loaded(tmp_path):
    net = classifier()
    net.fit(X, ["eel", "cat", "dog", "cat"], epochs=1, lr=0.1)
    bpgpu.save(net, tmp_path / "m.npz")
    back = bpgpu.load(tmp_path / "m.npz")
    assert back.classes == ["cat", "dog", "eel"]
    same_loss_and_gradients(back.loss_and_gradients(X, ["dog", "cat", "eel", "dog"]),
                            net.loss_and_gradients(X, ["dog", "cat", "eel", "dog"]))


def test_pandas_nullable_columns_are_read_and_a_missing_value_is_named():
    """A nullable Int64 column (what Parquet and read_csv give integers with gaps) trains as
    its numbers; a missing value in it is refused like a NaN"""
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"a": pd.array([1, 2, 3, 4], dtype="Int64"), "b": [0.5, 1.5, 2.5, 3.5]})
    Y = np.array([[0.1], [0.2], [0.3], [0.4]])
    net, twin = bpgpu.Network([2, 3, 1], seed=1), bpgpu.Network([2, 3, 1], seed=1)
    net.fit(X, Y, epochs=3)
    twin.fit(X.astype("float64").to_numpy(), Y, epochs=3)
    for a, b in zip(net.thetas, twin.thetas):
        np.testing.assert_array_equal(a, b)
    X.loc[2, "a"] = pd.NA
    with pytest.raises(ValueError, match="^X: .*(NaN|finite)"):
        bpgpu.Network([2, 3, 1]).fit(X, Y, epochs=1)
