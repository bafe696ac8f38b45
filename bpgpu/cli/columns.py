"""Which columns of a table a model reads (its inputs) and is scored on (its targets), and
how targets become the rows a network trains on: numbers as they are, integer labels
(``--one-hot``) or text labels as one-hot rows (one 0/1 column for two classes and one output).

Training stores the input and target column names in the model (with the class names);
``predict`` and ``evaluate`` then find the inputs by name, so a file that still holds its
target column (or any other) needs no ``--columns``.
"""

from __future__ import annotations

import numpy as np

from ..labels import class_rows
from ..labels import one_hot as one_hot_rows  # target_rows has a one_hot flag
from .errors import CLIError
from .headers import by_name, listed, pick
from .tables import Table


def for_training(table: Table, target: str | None, columns: str | None,
                 like: dict | None = None) -> tuple[list[int], list[int]]:
    """(input columns, target columns) from --target (default: the y… of an X/Y table) and
    --columns (default: every column that is not a target).

    ``like``: the data record of the model a run resumes ({"inputs": names, "targets":
    names}); a table with a header then gives those columns by name, in the model's order
    (the columns of the file may come in any order)."""
    if like and like.get("inputs"):
        if not table.names:  # --target is the record's, not the user's: say so, not "--target y"
            raise CLIError(f"--target: {table.path} has no header, so the resumed model's target "
                           f"{listed(like['targets'])} cannot be found by name; give the target column(s) by index, "
                           "e.g. --target -1")
        hint = "name them with --columns and --target"
        return (by_name(table, like["inputs"], "inputs of the resumed model", hint),
                by_name(table, like["targets"], "targets of the resumed model", hint))
    if target is None:
        if not table.x_and_y():
            raise CLIError(f"--target: name the target column(s) of {table.path}, e.g. --target -1 (the last column)"
                           + (f" or --target {table.names[-1]}" if table.names else ""))
        target = ",".join(n for n in table.names if n.startswith("y"))
    ys = pick(table, target, "--target")
    targets = set(ys)
    rest = [j for j in range(table.width) if j not in targets]
    xs = pick(table, columns, "--columns", rest) if columns else rest
    both = [j for j in xs if j in targets]
    if both:
        raise CLIError(f"--columns {columns}: column {table.name(both[0])} is also a --target column")
    return xs, ys


def model_inputs(table: Table, columns: str | None, stored: dict, model, inputs: int, targets=()) -> np.ndarray:
    """The inputs (m, ``inputs``) of ``model`` in ``table``: the columns --columns names (in the
    model's order where they are exactly its inputs by name), else (in a table with a header)
    those named as the model's inputs were (``stored["inputs"]``: every one must be there),
    else the x… of an X/Y table, else all but the ``targets`` columns, by position."""
    names = stored.get("inputs")
    table.index  # noqa: B018 — a header naming a column twice is refused, however the columns are found
    if columns:
        xs = pick(table, columns, "--columns")
        if names and table.names and sorted(table.names[j] for j in xs) == sorted(names):
            xs = by_name(table, names, f"inputs of {model}", "")  # the model's own columns: fed by name, in its order
    elif names and table.names:
        xs = by_name(table, names, f"inputs of {model}", "pick the inputs with --columns")
    elif table.x_and_y():
        xs = [j for j, n in enumerate(table.names) if n.startswith("x")]
    else:
        omitted = set(targets)
        xs = [j for j in range(table.width) if j not in omitted]
    if len(xs) != inputs:
        raise CLIError(f"incompatible sizes: {model} expects {inputs} input columns, {table.path} has {len(xs)}"
                       + ("" if columns else f" ({'its inputs were ' + listed(names) + '; ' if names else ''}"
                                             "pick them with --columns)"))
    return table.numbers(xs)


def model_targets(table: Table, target: str | None, stored: dict, model="the model") -> list[int]:
    """The target columns for a saved model: --target, else (in a table with a header) those
    named as in training (every one must be there), else the y… of an X/Y table."""
    if target:
        return pick(table, target, "--target")
    names = stored.get("targets")
    if names and table.names:
        return by_name(table, names, f"targets of {model}", "name the target column(s) with --target")
    if table.x_and_y():
        return [j for j, n in enumerate(table.names) if n.startswith("y")]
    raise CLIError(f"--target: name the target column(s) of {table.path}"
                   + (f"; the model's were {listed(names)}" if names else ", e.g. --target -1 (the last column)"))


def target_rows(table: Table, ys: list[int], outputs: int, *, one_hot=False, classes=None):
    """(Y (m, k), kind, classes): the targets a network with ``outputs`` units trains on.

    A text column (or any column, given the model's ``classes``) holds class labels: kind
    "labels", classes its sorted names unless given (``one_hot`` on text is refused: it would
    do nothing). ``one_hot``: integer labels 0..outputs−1, kind "one-hot". Otherwise the
    numbers themselves, kind "file".
    """
    if classes is not None or any(j in table.text for j in ys):
        column = _one_column(table, ys, "class labels")
        if one_hot and column in table.text:  # an option that would do nothing is refused
            raise CLIError(f"--one-hot: column {table.name(column)} of {table.path} holds text labels, which "
                           "become one-hot classes without it; leave out --one-hot")
        labels = table.labels(column)
        classes = classes or class_names(labels)
        return encode(labels, classes, outputs, f"column {table.name(column)} of {table.path}"), "labels", classes
    if one_hot:
        column = _one_column(table, ys, "class labels", option="--one-hot")
        labels = table.numbers([column])[:, 0]
        bad = (labels != np.round(labels)) | (labels < 0) | (labels >= outputs)
        if bad.any():
            raise CLIError(f"--one-hot: column {table.name(column)} of {table.path} must hold class labels "
                           f"0..{outputs - 1} (sizes[-1] = {outputs}), got {labels[bad][0]:g}")
        return one_hot_rows(labels.astype(int), outputs, f"--one-hot column {table.name(column)} of {table.path}"), \
            "one-hot", None
    return table.numbers(ys), "file", None


def _one_column(table, ys, what, option="--target") -> int:
    if len(ys) != 1:
        raise CLIError(f"{option}: expected one target column of {what}, got {len(ys)}")
    return ys[0]


def class_names(labels: np.ndarray) -> list[str]:
    """The distinct labels, sorted: by value where all are numbers (2 before 10), else as text."""
    distinct = sorted(set(labels.tolist()))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def encode(labels: np.ndarray, classes: list[str], outputs: int, where: str) -> np.ndarray:
    """Labels (m,) as rows for ``outputs`` units: one-hot (m, outputs), or for two classes and
    one output the 0/1 column (m, 1) of "is the second class"."""
    if outputs != len(classes) and not (outputs == 1 and len(classes) == 2):
        raise CLIError(f"incompatible sizes: {where} holds {len(classes)} classes ({', '.join(classes)}), "
                       f"but the network has {outputs} output{'s' if outputs != 1 else ''}; expected {len(classes)}"
                       + (" (or 1 for two classes)" if len(classes) == 2 else ""))
    labels = [str(label) for label in labels]  # plain str, as messages show them
    index = {name: k for k, name in enumerate(classes)}
    unknown = [label for label in labels if label not in index]
    if unknown:
        raise CLIError(f"{where}: label {unknown[0]!r} is not one of the model's classes ({', '.join(classes)})")
    k = np.array([index[label] for label in labels])
    return class_rows(k, outputs, where)


def class_probabilities(A: np.ndarray, classes: list[str]) -> np.ndarray:
    """One probability column per class (m, len(classes)): the outputs A, or for a single
    sigmoid output a (the second class) the columns 1 − a and a."""
    return np.hstack([1.0 - A, A]) if A.shape[1] == 1 and len(classes) == 2 else A
