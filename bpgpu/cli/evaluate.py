"""``bpgpu evaluate``: a saved model's loss and metric (accuracy or R²) on a labelled file, and
for a classifier its confusion matrix and each class's precision, recall and F1."""

from __future__ import annotations

import json
import sys

from .. import plotting
from ..io import persistence
from ..io.atomic import check_target
from ..metrics import LABELS, METRICS, confusion, outputs, per_class
from .chunks import rows_per_chunk
from .columns import model_inputs, model_targets, target_rows
from .sources import METRIC
from .tables import DELIMITER_HELP, check_fits, read_table


def add_arguments(p) -> None:
    p.add_argument("model", help="a model.npz saved by bpgpu train")
    p.add_argument("--data", required=True, metavar="FILE", help="examples with their targets (.csv, .tsv, .parquet, .npy, .npz)")
    p.add_argument("--target", metavar="COLS", help="the target columns (default: those the model was trained on, "
                   "by name)")
    p.add_argument("--columns", metavar="COLS", help="the input columns: names, indices, ranges first:last, "
                   "'!COL' to leave one out (default: the model's inputs by name, else all but the targets)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.add_argument("--plot", metavar="PATH", help="a classifier's confusion matrix as a picture (PNG, or the "
                   "format PATH's suffix names; needs matplotlib)")
    p.add_argument("--delimiter", metavar="CHAR", help=DELIMITER_HELP)
    p.add_argument("--backend", choices=("numpy", "cupy", "auto"), default="numpy", help="(default numpy)")


def run(args) -> int:
    if args.plot:
        check_target(args.plot)  # a path that cannot be written is refused before the work
    checkpoint = persistence.load_checkpoint(args.model, backend=args.backend)
    net = checkpoint.network
    extra = checkpoint.extra or {}
    stored, options = extra.get("data", {}), extra.get("cli", {})
    table = read_table(args.data, delimiter=args.delimiter)
    ys = model_targets(table, args.target, stored, args.model)
    X = model_inputs(table, args.columns, stored, args.model, net.sizes[0], targets=ys)
    Y, kind, _ = target_rows(table, ys, net.sizes[-1], one_hot=bool(options.get("one_hot")),
                             classes=checkpoint.classes)
    check_fits(table, X, net.dtype, "input")
    check_fits(table, Y, net.dtype, "target")
    metric = METRIC.get(stored.get("kind"), "accuracy" if kind != "file" else "r2")
    if args.plot and metric != "accuracy":
        raise ValueError(f"--plot: a confusion matrix needs a model of classes; {args.model} predicts numbers (R²)")
    if checkpoint.scaler is not None:
        X = checkpoint.scaler.transform(X)
    rows = rows_per_chunk(net)  # activations of a bounded chunk of rows at a time
    A, Y = outputs(net, X, rows), net.backend.asarray(Y, net.dtype)
    unscaled = checkpoint.target_scaler
    loss = net.evaluate(X, Y if unscaled is None else unscaled.transform(Y), chunk_size=rows)  # as train reports it
    if unscaled is not None:
        A = unscaled.inverse_transform(A)
    result = {"loss": loss, metric: METRICS[metric](Y, A, net.backend),
              "examples": X.shape[0], "data": str(args.data), "model": str(args.model)}
    if metric == "accuracy":
        result.update(classification(confusion(Y, A, net.backend), checkpoint.classes))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"loss {result['loss']:.6g}, {LABELS[metric]} {result[metric]:.4g} "
              f"on {result['examples']} examples of {args.data}")
        if metric == "accuracy":
            print("\n".join(report_lines(result)))
    if args.plot:
        _plot(result, args.plot)
    return 0


def classification(C, names=None) -> dict:
    """The JSON-ready report of a confusion matrix C (k, k): the class names (``names``, else
    "0" … "k−1"), C's rows (true class) and each class's precision, recall, F1 and support."""
    names = [str(name) for name in names] if names else [str(i) for i in range(C.shape[0])]
    scores = per_class(C)
    return {"classes": names, "confusion_matrix": C.tolist(),
            "per_class": [{"class": name, **{key: values[i].item() for key, values in scores.items()}}
                          for i, name in enumerate(names)]}


def report_lines(result: dict) -> list[str]:
    """:func:`classification`'s report as aligned text: the confusion matrix (rows: true class,
    columns: predicted), then a line per class of precision, recall, F1 and support."""
    names, C = result["classes"], result["confusion_matrix"]
    left = max(len("class"), *map(len, names))
    width = max(6, *map(len, names), *(len(str(c)) for row in C for c in row))
    lines = ["confusion matrix (rows: true class, columns: predicted class):",
             " " * left + "".join(f"  {name:>{width}}" for name in names)]
    lines += [f"{name:<{left}}" + "".join(f"  {c:>{width}}" for c in row) for name, row in zip(names, C)]
    lines += ["", f"{'class':<{left}}  precision     recall         F1    support"]
    lines += [f"{s['class']:<{left}}  {s['precision']:>9.4f}  {s['recall']:>9.4f}  {s['f1']:>9.4f}  {s['support']:>9}"
              for s in result["per_class"]]
    return lines


def _plot(result: dict, path) -> None:
    """The confusion matrix drawn to ``path``; without matplotlib, one line on stderr says so."""
    if not plotting.available():
        print(f"bpgpu evaluate: --plot skipped: matplotlib is not installed ({plotting.INSTALL})", file=sys.stderr)
        return
    plotting.confusion(result["confusion_matrix"], result["classes"], path)
