"""Where ``bpgpu train`` gets its examples: a generator made on the device, or a table file;
the output and loss that suit them; and the validation split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import data
from ..data import GENERATORS
from ..losses import CROSS_ENTROPY_OUTPUTS
from .errors import CLIError, count
from .tables import SUFFIXES, column_name, columns, read_table, x_and_y

# Output and loss that suit each data source, when --output/--loss are "auto".
HEADS = {"xor": ("sigmoid", "cross_entropy"), "spirals": ("softmax", "cross_entropy"),
         "blobs": ("softmax", "cross_entropy"), "teacher": ("identity", "mse"),
         "one-hot": ("softmax", "cross_entropy"), "file": ("identity", "mse")}


def training_data(o, backend):
    """(X, Y, source) on ``backend``, checked against --sizes. ``source`` describes the data."""
    sizes, m = o.sizes, o.samples
    wanted = f"--sizes {','.join(map(str, sizes))}"
    noise = {} if o.noise is None else {"noise": o.noise}
    common = dict(backend=backend, dtype=o.dtype, seed=o.data_seed)
    if o.data in GENERATORS:
        if o.data == "xor":
            _fits(sizes, 2, 1, wanted, "xor has 2 inputs and 1 output")
            X, Y = data.xor(m, **noise, **common)
        elif o.data == "spirals":
            classes = o.classes or sizes[-1]
            _fits(sizes, 2, classes, wanted, f"spirals has 2 inputs and {classes} classes")
            X, Y = data.spirals(m, classes, **noise, **common)
        elif o.data == "blobs":
            classes, features = o.classes or sizes[-1], o.features or sizes[0]
            _fits(sizes, features, classes, wanted, f"blobs has {features} features and {classes} classes")
            X, Y = data.blobs(m, classes, features, **({"spread": o.noise} if o.noise is not None else {}), **common)
        else:
            teacher = o.teacher_sizes or sizes
            _fits(sizes, teacher[0], teacher[-1], wanted,
                  f"the teacher {','.join(map(str, teacher))} has {count(teacher[0], 'input')} and {count(teacher[-1], 'output')}")
            X, Y = data.teacher(m, teacher, **noise, **common)
        return X, Y, {"kind": o.data, "description": f"{m} {o.data} examples"}
    return _file_data(o, backend, wanted)


def _fits(sizes, inputs, outputs, wanted, what):
    if sizes[0] != inputs or sizes[-1] != outputs:
        raise CLIError(f"incompatible sizes: {what}, but {wanted} has {count(sizes[0], 'input')} and {count(sizes[-1], 'output')}")


def _file_data(o, backend, wanted):
    path = Path(o.data)
    if path.suffix.lower() not in SUFFIXES:
        raise CLIError(f"--data {o.data}: expected one of {', '.join(GENERATORS)} or a .npy/.npz/.csv file")
    table, names = read_table(path)
    target = o.target
    if target is None:
        if x_and_y(names):  # an X/Y .npz
            target = ",".join(n for n in names if n.startswith("y"))
        else:
            raise CLIError(f"--target: name the target column(s) of {path}, e.g. --target -1 (the last column)"
                           + (f" or --target {names[-1]}" if names else ""))
    ys = columns(path, target, names, table.shape[1], "--target")
    xs = [j for j in range(table.shape[1]) if j not in ys]
    X, Y = table[:, xs], table[:, ys]
    if o.one_hot:
        if Y.shape[1] != 1:
            raise CLIError(f"--one-hot: expected one target column of class labels, got {Y.shape[1]}")
        labels, classes = Y[:, 0], o.sizes[-1]
        bad = (labels != np.round(labels)) | (labels < 0) | (labels >= classes)
        if bad.any():
            raise CLIError(f"--one-hot: column {column_name(names, ys[0])} of {path} must hold class labels "
                           f"0..{classes - 1} (sizes[-1] = {classes}), got {labels[bad][0]:g}")
        Y = np.eye(classes)[labels.astype(int)]
    if X.shape[1] != o.sizes[0] or Y.shape[1] != o.sizes[-1]:
        raise CLIError(f"incompatible sizes: {path} gives {count(X.shape[1], 'input column')} and "
                       f"{count(Y.shape[1], 'target column')}{' (one-hot)' if o.one_hot else ''}, but {wanted} "
                       f"has {count(o.sizes[0], 'input')} and {count(o.sizes[-1], 'output')}")
    # Staged on the device once, here, not per step.
    X, Y = backend.asarray(X, o.dtype), backend.asarray(Y, o.dtype)
    return X, Y, {"kind": "one-hot" if o.one_hot else "file", "path": str(path),
                  "description": f"{X.shape[0]} examples from {path}"}


def heads(o, source):
    """(output, loss) with "auto" replaced by what suits the data (cross-entropy only where
    both the data and the output activation allow it)."""
    suited_output, suited_loss = HEADS[source["kind"]]
    output = suited_output if o.output == "auto" else o.output
    if o.loss != "auto":
        return output, o.loss
    return output, suited_loss if output in CROSS_ENTROPY_OUTPUTS else "mse"


def split(X, Y, fraction, seed, backend):
    """((X_train, Y_train), (X_val, Y_val)): a seeded random ``fraction`` held out."""
    m = X.shape[0]
    held = round(m * fraction)
    if not 1 <= held < m:
        raise CLIError(f"--validation-split {fraction}: holds out {held} of {m} examples; "
                       "expected at least one for each side")
    perm = np.random.default_rng([seed, 1]).permutation(m)
    take = lambda A, rows: backend.xp.take(A, backend.asarray(rows, "int64"), axis=0)  # noqa: E731
    return (take(X, perm[held:]), take(Y, perm[held:])), (take(X, perm[:held]), take(Y, perm[:held]))
