"""``bpgpu evaluate``: a saved model's loss and metric (accuracy or R²) on a labelled file."""

from __future__ import annotations

import json

from ..io import persistence
from ..metrics import score
from .chunks import rows_per_chunk
from .columns import model_inputs, model_targets, target_rows
from .scores import LABELS
from .sources import METRIC
from .tables import DELIMITER_HELP, check_fits, read_table


def add_arguments(p) -> None:
    p.add_argument("model", help="a model.npz saved by bpgpu train")
    p.add_argument("--data", required=True, metavar="FILE", help="examples with their targets (.csv, .tsv, .parquet, .npy, .npz)")
    p.add_argument("--target", metavar="COLS", help="the target columns (default: those the model was trained on, "
                   "by name)")
    p.add_argument("--columns", metavar="COLS", help="the input columns: names, indices, ranges first:last, "
                   "'!COL' to leave one out (default: the model's inputs by name, else all but the targets)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a line")
    p.add_argument("--delimiter", metavar="CHAR", help=DELIMITER_HELP)
    p.add_argument("--backend", choices=("numpy", "cupy", "auto"), default="numpy", help="(default numpy)")


def run(args) -> int:
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
    if checkpoint.scaler is not None:
        X = checkpoint.scaler.transform(X)
    metric = METRIC.get(stored.get("kind"), "accuracy" if kind != "file" else "r2")
    rows = rows_per_chunk(net)  # activations of a bounded chunk of rows at a time
    result = {"loss": net.evaluate(X, Y, chunk_size=rows), metric: score(net, X, Y, metric, rows=rows),
              "examples": X.shape[0],
              "data": str(args.data), "model": str(args.model)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"loss {result['loss']:.6g}, {LABELS[metric]} {result[metric]:.4g} "
              f"on {result['examples']} examples of {args.data}")
    return 0
