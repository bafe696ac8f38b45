"""``bpgpu predict``: run a saved model on the inputs of a file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .. import metrics
from ..io import persistence
from ..io.atomic import check_target
from .chunks import rows_per_chunk
from .columns import class_probabilities, model_inputs
from .errors import CLIError
from .stopping import Stopped, raising
from .tables import DELIMITER_HELP, check_fits, read_table, write_table


def add_arguments(p) -> None:
    p.add_argument("model", help="a model.npz saved by bpgpu train or bpgpu.save")
    p.add_argument("--input", required=True, metavar="FILE", help="inputs, one example a row (.csv, .tsv, .parquet, .npy, .npz); "
                   "other columns, such as the target, are left out when the model knows its inputs' names")
    p.add_argument("--output", metavar="FILE", help="write predictions to .npy or .csv (default: CSV on stdout)")
    p.add_argument("--columns", metavar="COLS", help="the input columns to use: names, indices, ranges "
                   "first:last like f0:f63, '!COL' to leave one out (default: the model's inputs by name, else all)")
    p.add_argument("--argmax", action="store_true", help="write each row's most likely class (its name, for a "
                   "model trained on text labels) instead of the outputs")
    p.add_argument("--delimiter", metavar="CHAR", help=DELIMITER_HELP)
    p.add_argument("--backend", choices=("numpy", "cupy", "auto"), default="numpy", help="(default numpy)")


def run(args) -> int:
    try:
        with raising():
            return _predict(args)
    except Stopped as stop:  # the output's temporary is already gone
        print(f"bpgpu predict: stopped by {stop}" + (f"; {args.output} not written" if args.output else ""),
              file=sys.stderr)
        return stop.status


def _predict(args) -> int:
    if args.output is not None:
        if Path(args.output).suffix.lower() not in (".npy", ".csv"):
            raise CLIError(f"{args.output}: expected a .npy or .csv output file, "
                           f"got {Path(args.output).suffix or 'no suffix'!r}")
        check_target(args.output)  # a symlink, FIFO or folder there is refused before any work
    checkpoint = persistence.load_checkpoint(args.model, backend=args.backend)
    net, classes = checkpoint.network, checkpoint.classes
    table = read_table(args.input, delimiter=args.delimiter)
    X = model_inputs(table, args.columns, (checkpoint.extra or {}).get("data", {}), args.model, net.sizes[0])
    check_fits(table, X, net.dtype, "input")
    A = net.backend.to_host(metrics.outputs(net, X, rows_per_chunk(net), checkpoint.scaler))
    if checkpoint.target_scaler is not None:  # trained on scaled targets: back to their units
        A = checkpoint.target_scaler.inverse_transform(A)
    fmt = "%.10g"
    if args.argmax:
        k = metrics.classes(A, np).astype(int)
        Y, header = (np.array(classes)[k] if classes else k)[:, None], ["class"]
        fmt = "%s"
    elif classes:  # one probability column per class, headed by its name
        Y, header = class_probabilities(A, classes), classes
    else:
        Y, header = A, [f"y{k}" for k in range(A.shape[1])]
    if args.output is None:
        np.savetxt(sys.stdout, Y, delimiter=",", header=",".join(header), comments="", fmt=fmt)
        return 0
    write_table(args.output, Y, header, fmt)
    print(f"wrote {Y.shape[0]} predictions to {args.output}", file=sys.stderr)
    return 0
