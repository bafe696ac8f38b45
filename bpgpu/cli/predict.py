"""``bpgpu predict``: run a saved model on the inputs of a file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .errors import CLIError
from .tables import columns, read_table, write_table, x_and_y


def add_arguments(p) -> None:
    p.add_argument("model", help="a model.npz saved by bpgpu train or bpgpu.save")
    p.add_argument("--input", required=True, metavar="FILE", help="inputs, one example a row (.npy, .npz, .csv)")
    p.add_argument("--output", metavar="FILE", help="write predictions to .npy or .csv (default: CSV on stdout)")
    p.add_argument("--columns", metavar="COLS", help="the input columns to use, names or indices (default: all)")
    p.add_argument("--argmax", action="store_true", help="write each row's most likely class instead of the outputs")
    p.add_argument("--backend", choices=("numpy", "cupy", "auto"), default="numpy", help="(default numpy)")


def run(args) -> int:
    from .. import persistence

    if args.output is not None and Path(args.output).suffix.lower() not in (".npy", ".csv"):
        raise CLIError(f"{args.output}: expected a .npy or .csv output file, got {Path(args.output).suffix or 'no suffix'!r}")
    net = persistence.load(args.model, backend=args.backend)
    table, names = read_table(args.input)
    if args.columns:
        table = table[:, columns(args.input, args.columns, names, table.shape[1], "--columns")]
    elif x_and_y(names):  # the inputs of an X/Y .npz (or x0…/y0… columns): leave out the targets
        table = table[:, [j for j, n in enumerate(names) if n.startswith("x")]]
    if table.shape[1] != net.sizes[0]:
        raise CLIError(f"incompatible sizes: {args.model} expects {net.sizes[0]} input columns, "
                       f"{args.input} has {table.shape[1]}" + ("" if args.columns else " (pick them with --columns)"))
    Y = net.predict(table)
    if args.argmax:  # one output unit is a probability of class 1
        classes = (Y[:, 0] >= 0.5).astype(int) if Y.shape[1] == 1 else Y.argmax(axis=1)
        Y, header = classes[:, None], ["class"]
    else:
        header = [f"y{k}" for k in range(Y.shape[1])]
    if args.output is None:
        np.savetxt(sys.stdout, Y, delimiter=",", header=",".join(header), comments="", fmt="%.10g")
        return 0
    write_table(args.output, Y, header)
    print(f"wrote {Y.shape[0]} predictions to {args.output}", file=sys.stderr)
    return 0
