"""Where ``bpgpu train`` gets its examples: a generator made on the device, or a table file;
the output and loss that suit them; and the validation split.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .. import data
from ..data import GENERATORS
from ..agreement import mark_every_rank
from ..distributed import shard
from ..losses import CROSS_ENTROPY_OUTPUTS
from .errors import CLIError, count
from .columns import for_training, target_rows
from .headers import pick
from .tables import SUFFIXES, check_fits, read_table

# Output and loss that suit each data source, when --output/--loss are "auto".
HEADS = {"xor": ("sigmoid", "cross_entropy"), "spirals": ("softmax", "cross_entropy"),
         "blobs": ("softmax", "cross_entropy"), "teacher": ("identity", "mse"),
         "one-hot": ("softmax", "cross_entropy"), "labels": ("softmax", "cross_entropy"),
         "file": ("identity", "mse")}
# How predictions are scored beside the loss: classes by accuracy, numbers by R².
METRIC = {"xor": "accuracy", "spirals": "accuracy", "blobs": "accuracy", "teacher": "r2",
          "one-hot": "accuracy", "labels": "accuracy", "file": "r2"}


def training_data(o, backend, rank=0, ranks=1, like=None):
    """(X, Y, source, classes): X (m, sizes[0]) and Y (m, sizes[-1]) on ``backend``, checked
    against --sizes; ``source`` describes the data (kept in the model); ``classes`` names the
    classes of a text label column, else None. ``like``: the resumed model's columns
    (:func:`resumed_columns`), which a table with a header gives by name.

    Data-parallel ``rank`` of ``ranks`` gets its block of rows (:func:`bpgpu.distributed.shard`
    of the file's rows, or of --samples) and generates its own, seeded by (--data-seed, rank).
    """
    start, stop = block_of(o.samples, rank, ranks, f"--samples {o.samples}")
    sizes, m = o.sizes, stop - start
    wanted = f"--sizes {','.join(map(str, sizes))}"
    noise = {} if o.noise is None else {"noise": o.noise}
    common = dict(backend=backend, dtype=o.dtype, seed=rank_seed(o.data_seed, rank))
    if o.data in GENERATORS:
        with np.errstate(over="ignore", invalid="ignore"):  # a huge --noise is reported below, by name
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
        if o.noise is not None and not bool(backend.xp.all(backend.xp.isfinite(X))):
            raise CLIError(f"--noise {o.noise:g}: the generated inputs overflow to inf or NaN; give a smaller --noise")
        return X, Y, None, {"kind": o.data, "description": f"{o.samples} {o.data} examples"}, None
    if ranks > 1 and Path(o.data).exists() and not Path(o.data).is_file():
        # mpiexec gives standard input to rank 0 alone, and a pipe is read once: the others would wait for ever.
        raise mark_every_rank(CLIError(f"--data {o.data}: every one of the {ranks} ranks reads the file itself; "
                                       "expected a regular file, not a pipe or a device"))
    return _file_data(o, backend, wanted, lambda n: block_of(n, rank, ranks, f"--data {o.data}"), like)


def block_of(n: int, rank: int, ranks: int, what: str) -> tuple[int, int]:
    """(start, stop) of ``rank``'s block of n rows; fewer rows than ranks are refused alike
    on every rank (a rank without rows would say the file has none)."""
    if n < ranks:
        raise mark_every_rank(CLIError(f"{what}: {count(n, 'example')} for {ranks} ranks; every rank needs at least "
                                       f"one: start at most {n} ranks"))
    return shard(n, rank, ranks)


def resumed_columns(checkpoint, given: dict) -> dict | None:
    """The data record ({"inputs": names, "targets": names}) of the model a run resumes, by
    whose names its --data is matched; None without a checkpoint, or where this run names
    its columns itself (``given`` holds --columns or --target)."""
    if checkpoint is None or "columns" in given or "target" in given:
        return None
    return (checkpoint.extra or {}).get("data")


def rank_seed(seed: int, rank: int) -> int:
    """The generator seed of ``rank``: ``seed`` itself on rank 0 (so one rank makes what a
    single process makes), one derived from (seed, rank) on the others."""
    return seed if rank == 0 else int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def _fits(sizes, inputs, outputs, wanted, what):
    if sizes[0] != inputs or sizes[-1] != outputs:
        raise CLIError(f"incompatible sizes: {what}, but {wanted} has {count(sizes[0], 'input')} and {count(sizes[-1], 'output')}")


def _file_data(o, backend, wanted, rows, like):
    """The file's examples; ``rows(m)`` is the block (start, stop) of its m rows to keep."""
    path = Path(o.data)
    # A file without a suffix (a pipe, /dev/stdin) has its format sniffed; a name that is
    # neither is most likely a mistyped generator.
    if path.suffix.lower() not in SUFFIXES and (path.suffix or not path.exists()):
        raise CLIError(f"--data {o.data}: expected one of {', '.join(GENERATORS)} or a .csv/.tsv/.parquet/.npy/.npz file")
    rows_in_file, spans = [], []

    def block(m):
        rows_in_file.append(m)
        spans.append(rows(m))
        return spans[-1]

    table = read_table(path, rows=block, delimiter=o.delimiter)
    xs, ys = for_training(table, o.target, o.columns, like)
    xs, w = _weight_column(o, table, xs, ys)
    X = table.numbers(xs)
    Y, kind, classes = target_rows(table, ys, o.sizes[-1], one_hot=o.one_hot)
    if not rows_in_file:  # a CSV, read whole (text labels name their classes from every row): keep this rank's block
        X, Y, w = (None if A is None else A[slice(*block(X.shape[0]))] for A in (X, Y, w))
    first = spans[0][0] if spans else 0  # messages name the file's rows, not the rank's
    check_fits(table, X, o.dtype, "input", first)
    check_fits(table, Y, o.dtype, "target", first)
    k = class_codes(Y) if kind == "file" else None
    codes = k and f"column {table.name(ys[0])} of {path} holds only the integers 0..{k - 1}"
    if X.shape[1] != o.sizes[0] or Y.shape[1] != o.sizes[-1]:
        raise CLIError(f"incompatible sizes: {path} gives {count(X.shape[1], 'input column')} and "
                       f"{count(Y.shape[1], 'target column')}{' (one-hot)' if kind == 'one-hot' else ''}, but {wanted} "
                       f"has {count(o.sizes[0], 'input')} and {count(o.sizes[-1], 'output')}"
                       + (f"; {codes}: if they are class labels, add --one-hot" if codes and o.sizes[-1] > 1 else ""))
    if codes and k >= 3:  # one output unit: iris's 0/1/2 would train as regression, and score R²
        warnings.warn(f"{codes}, trained as numbers on one output (regression); if they are class labels, "
                      f"add --one-hot and end --sizes with {k}")
    # Staged on the device once, here, not per step.
    X, Y = backend.asarray(X, o.dtype), backend.asarray(Y, o.dtype)
    source = {"kind": kind, "path": str(path), "description": f"{rows_in_file[0]} examples from {path}"}
    if table.names:  # predict and evaluate find these columns by name
        source.update(inputs=[table.names[j] for j in xs], targets=[table.names[j] for j in ys])
    return X, Y, w, source, classes


def _weight_column(o, table, xs: list[int], ys: list[int]):
    """(the input columns without --weight-column's, its (m,) values) or (xs, None) without
    the option: the examples' weights sᵢ, never an input or a target."""
    if not o.weight_column:
        return xs, None
    picked = pick(table, o.weight_column, "--weight-column")
    if len(picked) != 1:
        raise CLIError(f"--weight-column {o.weight_column}: expected one column, got {len(picked)}")
    j = picked[0]
    if j in ys:
        raise CLIError(f"--weight-column {o.weight_column}: column {table.name(j)} of {table.path} is the target")
    if j in xs and o.columns:
        raise CLIError(f"--weight-column {o.weight_column}: column {table.name(j)} is one of the inputs --columns names")
    return [k for k in xs if k != j], table.numbers([j])[:, 0]


def class_codes(Y: np.ndarray) -> int | None:
    """k when the one target column of Y (m, 1) holds exactly the integers 0..k−1, k ≥ 2 (class
    codes, most likely), else None."""
    if Y.shape[1] != 1:
        return None
    values = np.unique(Y[:, 0])
    return len(values) if 2 <= len(values) <= 1000 and np.array_equal(values, np.arange(len(values))) else None


def heads(o, source):
    """(output, loss) with "auto" replaced by what suits the data (cross-entropy only where
    both the data and the output activation allow it)."""
    suited_output, suited_loss = HEADS[source["kind"]]
    if suited_output == "softmax" and o.sizes[-1] == 1:  # two classes on one unit: its sigmoid is P(second)
        suited_output = "sigmoid"
    output = suited_output if o.output == "auto" else o.output
    if o.loss != "auto":
        return output, o.loss
    return output, suited_loss if output in CROSS_ENTROPY_OUTPUTS else "mse"


def split(X, Y, fraction, seed, backend, w=None):
    """((X_train, Y_train, w_train), (X_val, Y_val)): a seeded random ``fraction`` held out;
    ``w``, the examples' host weights (or None), split with their rows (the validation loss
    is unweighted)."""
    m = X.shape[0]
    held = round(m * fraction)
    if not 1 <= held < m:
        raise CLIError(f"--validation-split {fraction}: holds out {held} of {m} examples; "
                       "expected at least one for each side")
    perm = np.random.default_rng([seed, 1]).permutation(m)
    take = lambda A, rows: backend.xp.take(A, backend.asarray(rows, "int64"), axis=0)  # noqa: E731
    return ((take(X, perm[held:]), take(Y, perm[held:]), None if w is None else w[perm[held:]]),
            (take(X, perm[:held]), take(Y, perm[:held])))
