"""The ``bpgpu`` command: train, predict, bench, example, info.

    bpgpu train --data spirals --sizes 2,64,64,3 --activation relu --epochs 300 --out runs/demo
    bpgpu predict runs/demo/model.npz --input X.csv --output Y.csv

Every failure a user can cause (a missing file, a bad column, sizes that do not fit
the data, an unknown option value) ends as one line on stderr and a non-zero exit:
1 for errors, 2 for bad usage, 130 for Ctrl-C outside training. Ctrl-C *during*
training stops after the current step, saves the model and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .activations import HIDDEN, OUTPUTS
from .backend import DTYPES, BackendUnavailable
from .data import GENERATORS
from .environment import cuda_versions, package_version
from .losses import CROSS_ENTROPY_OUTPUTS, LOSSES
from .optimizers import OPTIMIZERS
from .training import DEFAULT_LR, DivergenceError, DivergenceWarning, optimizer_for

TABLE_SUFFIXES = (".npy", ".npz", ".csv")


class CLIError(Exception):
    """A user's mistake, reported as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not the usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv=None) -> int:
    """Run the ``bpgpu`` command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            return args.run(args)
        except BrokenPipeError:  # `bpgpu ... | head`: the reader left; say nothing more
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        except (CLIError, ValueError, TypeError, OSError, BackendUnavailable, DivergenceError) as err:
            return _fail(f"{args.prog}: error: {_one_line(err)}")
        except KeyboardInterrupt:
            return _fail(f"{args.prog}: interrupted", 130)
        except Exception as err:  # never a traceback for a user, unless asked for
            if os.environ.get("BPGPU_DEBUG"):
                raise
            return _fail(f"{args.prog}: internal error: {type(err).__name__}: {_one_line(err)} "
                         "(rerun with BPGPU_DEBUG=1 for the traceback, and please report it)")


def _one_line(err) -> str:
    text = str(err) or type(err).__name__
    if isinstance(err, OSError) and err.filename and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    return " ".join(text.split())


def _fail(message: str, status: int = 1) -> int:
    print(message, file=sys.stderr)
    return status


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"bpgpu: warning: {_one_line(message)}", file=sys.stderr)


# -- the parser ------------------------------------------------------------------------

def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``bpgpu`` parser. ``command`` is the subcommand about to run: only ``bench``
    imports its module, so the other commands start without it."""
    from . import __version__

    parser = _Parser(prog="bpgpu", description="Train fully-connected networks by backpropagation "
                     "on NumPy (CPU) or CuPy (CUDA GPU).")
    parser.add_argument("--version", action="version", version=f"bpgpu {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    def add(name, run, help, description=None):
        sub = commands.add_parser(name, help=help, description=description or help)
        sub.set_defaults(run=run, prog=f"bpgpu {name}")
        return sub

    _train_arguments(add("train", _train, "train a network on synthetic or file data",
                         "Train a network. Options left out on --resume come from the checkpoint."))
    _predict_arguments(add("predict", _predict, "run a saved model on inputs from a file"))
    bench = add("bench", _bench, "benchmark bpgpu (and PyTorch, scikit-learn) on reference workloads")
    if command == "bench":
        module = _bench_module()
        if module is not None:
            module.add_arguments(bench)
    add("example", _example, "the seeds' worked example: the page's figures beside the exact ones")
    add("info", _info, "versions, backends, CUDA devices and the BLAS NumPy uses")
    return parser


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 2,64,3, got {text!r}") from None
    if len(values) < 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected at least 2 positive sizes like 2,64,3, got {text!r}")
    return values


def _positive(kind, zero=False):
    """An argparse type: a ``kind`` number > 0 (≥ 0 with ``zero``)."""
    what = f"{'non-negative' if zero else 'positive'} {kind.__name__}"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what}, got {text!r}") from None
        if not (value >= 0 if zero else value > 0):
            raise argparse.ArgumentTypeError(f"expected a {what}, got {text!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _batch_size(text: str) -> int:
    """A positive int, or "full" (stored as 0: the whole batch)."""
    return 0 if text == "full" else _positive(int)(text)


def _fraction(text: str) -> float:
    value = _positive(float)(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text!r}")
    return value


# Defaults of ``bpgpu train``. The parser's own defaults are None, meaning "not given", so
# that --resume can tell an option the user typed from one to take from the checkpoint.
TRAIN_DEFAULTS = dict(
    sizes=None, activation="tanh", output="auto", loss="auto", lam=0.0, bias=True,
    optimizer="adam", lr=None, momentum=0.9, nesterov=False, beta1=0.9, beta2=0.999,
    batch_size=64, epochs=100, max_time=None, target_loss=None, patience=None,
    validation_split=None, chunk_size=None, shuffle=True,
    backend="numpy", dtype="float64", seed=0,
    data=None, samples=1000, classes=None, features=None, noise=None, teacher_sizes=None,
    data_seed=None, target=None, one_hot=False,
    out=None, checkpoint_every=None, log_every=None, quiet=False, plot=True,
)
ARCHITECTURE = ("sizes", "activation", "output", "loss", "lam", "bias", "dtype", "seed")
# Output and loss that suit each data source, when --output/--loss are "auto".
HEADS = {"xor": ("sigmoid", "cross_entropy"), "spirals": ("softmax", "cross_entropy"),
         "blobs": ("softmax", "cross_entropy"), "teacher": ("identity", "mse"),
         "one-hot": ("softmax", "cross_entropy"), "file": ("identity", "mse")}


def _train_arguments(p):
    d = TRAIN_DEFAULTS
    net = p.add_argument_group("network")
    net.add_argument("--sizes", type=_int_list, metavar="S0,S1,...", help="layer sizes, input first, e.g. 2,64,64,3 (required unless --resume)")
    net.add_argument("--activation", help=f"hidden activation, one of {', '.join(HIDDEN)}, or one per hidden "
                     f"layer comma-separated (default {d['activation']})")
    net.add_argument("--output", choices=OUTPUTS + ("auto",), help="output activation (default auto: "
                     "softmax for one-hot classes, sigmoid for xor, identity for regression)")
    net.add_argument("--loss", choices=LOSSES + ("auto",), help="loss (default auto: cross_entropy for "
                     "sigmoid/softmax outputs, else mse)")
    net.add_argument("--lam", type=float, help="L2 strength λ >= 0 (default 0)")
    net.add_argument("--no-bias", dest="bias", action="store_const", const=False, help="layers without a bias")

    opt = p.add_argument_group("optimiser")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {d['optimizer']})")
    opt.add_argument("--lr", type=_positive(float), help="learning rate (default: "
                     + ", ".join(f"{k} {v}" for k, v in DEFAULT_LR.items()) + ")")
    opt.add_argument("--momentum", type=float, help=f"momentum μ for --optimizer momentum (default {d['momentum']})")
    opt.add_argument("--nesterov", action="store_const", const=True, help="Nesterov momentum")
    opt.add_argument("--beta1", type=float, help=f"Adam β1 (default {d['beta1']})")
    opt.add_argument("--beta2", type=float, help=f"Adam β2 (default {d['beta2']})")
    opt.add_argument("--batch-size", type=_batch_size, metavar="N|full", help=f"examples per step, or 'full' for batch "
                     f"gradient descent (default {d['batch_size']})")
    opt.add_argument("--no-shuffle", dest="shuffle", action="store_const", const=False,
                     help="keep the data's order in every epoch")
    opt.add_argument("--epochs", type=_positive(int), help=f"total epochs, counting those before --resume (default {d['epochs']})")
    opt.add_argument("--max-time", type=_positive(float), help="stop after this many seconds")
    opt.add_argument("--target-loss", type=float, help="stop once an epoch's loss is at or below this")
    opt.add_argument("--validation-split", type=_fraction, help="hold out this fraction of the data for validation")
    opt.add_argument("--patience", type=_positive(int), help="stop when the validation loss has not improved "
                     "for this many epochs, keeping the best weights (needs --validation-split)")
    opt.add_argument("--chunk-size", type=_positive(int), help="compute each step this many rows at a time (same result, less memory)")

    dev = p.add_argument_group("device")
    dev.add_argument("--backend", choices=("numpy", "cupy", "auto"), help=f"(default {d['backend']})")
    dev.add_argument("--dtype", choices=DTYPES, help=f"(default {d['dtype']})")
    dev.add_argument("--seed", type=int, help="seeds the initial weights and the shuffling (default 0)")

    data = p.add_argument_group("data")
    data.add_argument("--data", metavar="SOURCE", help=f"a generator ({'|'.join(GENERATORS)}), made on the "
                      "chosen device, or a file (.npy, .npz, .csv)")
    data.add_argument("--samples", type=_positive(int), help=f"examples to generate (default {d['samples']})")
    data.add_argument("--classes", type=_positive(int), help="classes for spirals/blobs (default: sizes[-1])")
    data.add_argument("--features", type=_positive(int), help="input features for blobs (default: sizes[0])")
    data.add_argument("--noise", type=float, help="noise of the generator (default: the generator's own)")
    data.add_argument("--teacher-sizes", type=_int_list, metavar="S0,...", help="the teacher network's sizes (default: --sizes)")
    data.add_argument("--data-seed", type=int, help="seed of the generator and the validation split (default: --seed)")
    data.add_argument("--target", metavar="COLS", help="the target columns of a file: header names or "
                      "indices (negative from the end), comma-separated, e.g. 'label' or -1 or 3,4")
    data.add_argument("--one-hot", action="store_const", const=True, help="the one target column holds "
                      "class labels 0..sizes[-1]-1: train on their one-hot rows")

    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help="save model.npz, history.json and loss.png here")
    out.add_argument("--checkpoint-every", type=_positive(int), metavar="N",
                     help="also save DIR/checkpoint.npz every N epochs (resume with --resume)")
    out.add_argument("--resume", metavar="PATH", help="continue from a checkpoint or model.npz, "
                     "optimiser state included")
    out.add_argument("--log-every", type=_positive(int, zero=True), metavar="N", help="print the loss every N epochs "
                     "(default: about 10 lines; 0 = never)")
    out.add_argument("--quiet", action="store_const", const=True, help="no progress bar or loss lines")
    out.add_argument("--no-plot", dest="plot", action="store_const", const=False, help="skip loss.png")
    p.set_defaults(**{k: None for k in TRAIN_DEFAULTS})


def _predict_arguments(p):
    p.add_argument("model", help="a model.npz saved by bpgpu train or Network.save")
    p.add_argument("--input", required=True, metavar="FILE", help="inputs, one example a row (.npy, .npz, .csv)")
    p.add_argument("--output", metavar="FILE", help="write predictions to .npy or .csv (default: CSV on stdout)")
    p.add_argument("--columns", metavar="COLS", help="the input columns to use, names or indices (default: all)")
    p.add_argument("--argmax", action="store_true", help="write each row's most likely class instead of the outputs")
    p.add_argument("--backend", choices=("numpy", "cupy", "auto"), default="numpy", help="(default numpy)")


# -- tables: data in and out ---------------------------------------------------------------

def read_table(path) -> tuple[np.ndarray, list[str] | None]:
    """A 2-D float table (rows = examples) and its column names (CSV header) or None.

    A .npz holding X and Y comes back as the table [X | Y] with names x0…, y0…
    """
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise CLIError(f"{path}: expected a .npy, .npz or .csv file, got {path.suffix or 'no suffix'!r}")
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table, names = _read_csv(path)
    else:
        try:
            loaded = np.load(path, allow_pickle=False)
        except Exception as err:  # zip, pickle and format errors alike mean "not readable"
            raise CLIError(f"{path}: not a readable {suffix} file ({_one_line(err)})") from None
        names = None
        if suffix == ".npz":
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
            if "X" in arrays and "Y" in arrays:
                X, Y = (_as_2d(path, k, arrays[k]) for k in ("X", "Y"))
                if len(X) != len(Y):
                    raise CLIError(f"{path}: X has {len(X)} rows but Y has {len(Y)}")
                names = [f"x{i}" for i in range(X.shape[1])] + [f"y{i}" for i in range(Y.shape[1])]
                loaded = np.hstack([X, Y])
            elif len(arrays) == 1:
                loaded = next(iter(arrays.values()))
            else:
                raise CLIError(f"{path}: expected arrays named X and Y, or a single array, got {sorted(arrays)}")
        table = _as_2d(path, "the array", loaded)
    if table.shape[0] == 0:
        raise CLIError(f"{path}: no rows")
    if not np.all(np.isfinite(table)):
        row, col = np.argwhere(~np.isfinite(table))[0]
        raise CLIError(f"{path}: row {row + 1}, column {_column_name(names, col)}: expected a finite number, got {table[row, col]}")
    return table, names


def _as_2d(path, what, a) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise CLIError(f"{path}: {what} holds {a.dtype} values, expected numbers")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise CLIError(f"{path}: {what} has shape {a.shape}, expected a 2-D table (examples, columns)")
    return a.astype(np.float64, copy=False)


def _read_csv(path: Path):
    import csv

    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows:
        raise CLIError(f"{path}: empty file")
    names = None
    if any(not _is_number(cell) for cell in rows[0]):
        names, rows = [cell.strip() for cell in rows[0]], rows[1:]
    width = len(names) if names else len(rows[0])
    table = np.empty((len(rows), width))
    for i, row in enumerate(rows):
        line = i + 1 + (names is not None)
        if len(row) != width:
            raise CLIError(f"{path}: line {line} has {len(row)} columns, expected {width}")
        for j, cell in enumerate(row):
            if not _is_number(cell):
                raise CLIError(f"{path}: line {line}, column {_column_name(names, j)}: expected a number, got {cell.strip()!r}")
        table[i] = [float(cell) for cell in row]
    return table, names


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column_name(names, j) -> str:
    return repr(names[j]) if names else str(j)


def _columns(path, spec: str, names, width: int, option: str) -> list[int]:
    """Column indices from ``spec``: comma-separated header names or indices."""
    picked = []
    for item in (s.strip() for s in spec.split(",")):
        if names and item in names:
            j = names.index(item)
        else:
            try:
                j = int(item)
            except ValueError:
                known = f"its columns are {', '.join(names)}" if names else "it has no header, use indices"
                raise CLIError(f"{option} {spec}: no column {item!r} in {path} ({known})") from None
            if not -width <= j < width:
                raise CLIError(f"{option} {spec}: column {j} is out of range, {path} has {width} columns")
            j %= width
        if j in picked:
            raise CLIError(f"{option} {spec}: column {item!r} named twice")
        picked.append(j)
    return picked


def write_table(path, Y: np.ndarray, names: list[str]) -> None:
    """Write ``Y`` (m, k) to a .npy or .csv file (with a header of ``names``)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        np.save(path, Y)
    else:
        np.savetxt(path, Y, delimiter=",", header=",".join(names), comments="", fmt="%.10g")


# -- train -------------------------------------------------------------------------------

def _train(args) -> int:
    from . import persistence

    given = {k: getattr(args, k) for k in TRAIN_DEFAULTS if getattr(args, k) is not None}
    # A checkpoint loads on the host; the network moves to this run's backend below.
    checkpoint = persistence.load_checkpoint(args.resume) if args.resume else None
    o = _options(given, checkpoint)
    _check(o, checkpoint)
    backend = _backend(o.backend)  # an unusable backend says why before any data is made
    X, Y, source = _training_data(o, backend)
    o.output, o.loss = _heads(o, source)
    if checkpoint:
        net = checkpoint.network.clone(backend=backend)
    else:
        from .network import Network

        net = Network(o.sizes, activation=o.activation, output=o.output, loss=o.loss, lam=o.lam, bias=o.bias,
                      backend=backend, dtype=o.dtype, seed=o.seed)
    X, Y = net._batch(X, Y)  # bad targets fail here, in one line, before the progress bar draws
    validation = None
    if o.validation_split:
        (X, Y), validation = _split(X, Y, o.validation_split, o.data_seed, backend)

    optimizer = _optimizer(o, checkpoint, net)
    start = (checkpoint.epoch or 0) if checkpoint else 0
    if start >= o.epochs:
        raise CLIError(f"--epochs {o.epochs}: the checkpoint {args.resume} is already at epoch {start}; "
                       "ask for more epochs to continue")
    out = Path(o.out) if o.out else None
    if out is not None:
        if out.exists() and not out.is_dir():
            raise CLIError(f"--out {out}: expected a folder, got an existing file")
        out.mkdir(parents=True, exist_ok=True)
    prior = checkpoint.history if checkpoint else None

    print(f"training {'-'.join(map(str, net.sizes))} ({'/'.join(net.activations) or '-'} → {net.output}, "
          f"{net.loss}) with {optimizer.name} lr={optimizer.lr:g} on {source['description']}, "
          f"{net.backend.name} {net.dtype}" + (f", from epoch {start}" if start else ""), flush=True)
    progress = _Progress(o, start)
    saved_options = dict(vars(o))

    def after_epoch(epoch, history):
        progress.epoch(epoch, history)
        if o.checkpoint_every and (epoch + 1) % o.checkpoint_every == 0:
            persistence.save(net, out / "checkpoint.npz", optimizer=optimizer, epoch=epoch + 1,
                             history=_merge(prior, history, start), extra={"cli": saved_options, "data": source})
        return False

    try:  # a diverging run is reported below, once its last good weights are saved
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)
            history = net.fit(X, Y, epochs=o.epochs, batch_size=o.batch_size or None, optimizer=optimizer,
                              shuffle=o.shuffle, max_time=o.max_time, target_loss=o.target_loss,
                              validation_data=validation, patience=o.patience, chunk_size=o.chunk_size,
                              on_nonfinite="stop", callback=after_epoch, initial_epoch=start)
    finally:
        progress.close()
    diverged = history.divergence_message() if history.stop_reason == "nonfinite" else ""
    end = start + history.epochs
    merged = _merge(prior, history, start)
    losses = merged["loss"]
    summary = f"epoch {end}/{o.epochs}: loss {losses[-1]:.6g}" if losses else f"epoch {end}/{o.epochs}"
    if len(losses) > 1:
        summary += f" (epoch 1: {losses[0]:.6g})"
    if history.val_loss:
        summary += f", validation loss {history.val_loss[-1]:.6g}"
    print(f"{summary}; {history.samples_per_s:,.0f} samples/s; stopped: {history.stop_reason}", flush=True)

    if out is None:
        if diverged:
            raise DivergenceError(f"{diverged} (try a smaller --lr)")
        print("not saved: give --out DIR to keep the model")
        return 0
    model = persistence.save(net, out / "model.npz", optimizer=optimizer, epoch=end, history=merged,
                             extra={"cli": saved_options, "data": source})
    (out / "history.json").write_text(json.dumps(merged, indent=1) + "\n")
    plotted = o.plot and _plot(merged, out / "loss.png")
    files = f"{model}, {out / 'history.json'}" + (f", {out / 'loss.png'}" if plotted else "")
    if diverged:
        raise DivergenceError(f"{diverged} and saved to {model} (try a smaller --lr)")
    if history.stop_reason == "interrupted":
        print(f"interrupted at epoch {end}: model saved to {model} (continue with --resume {model})")
    else:
        print(f"saved {files}")
    return 0


def _options(given: dict, checkpoint) -> argparse.Namespace:
    """The options of this run: those given, then (on --resume) the checkpoint's, then defaults."""
    stored = {}
    if checkpoint is not None:
        stored = dict((checkpoint.extra or {}).get("cli", {}))
        config = checkpoint.network.config()
        for key in ARCHITECTURE:
            if key in given and given[key] != "auto" and _normal(key, given[key], config) != config[key]:
                shown = ",".join(map(str, config[key])) if key == "sizes" else config[key]
                option = "--no-bias" if key == "bias" else f"--{key}"
                raise CLIError(f"{option}: the checkpoint's network has {key} {shown}; "
                               "a resumed run cannot change its architecture")
        stored.update(config)
        for shown_only in ("log_every", "quiet", "plot"):  # how this run looks is this run's choice
            stored.pop(shown_only, None)
    options = {**TRAIN_DEFAULTS, **stored, **given}
    if options["data_seed"] is None:
        options["data_seed"] = options["seed"]
    return argparse.Namespace(**options)


def _normal(key, value, config):
    if key == "activation":
        names = value.split(",")
        return names * (len(config["sizes"]) - 2) if len(names) == 1 else names
    return float(value) if key == "lam" else value


def _backend(name):
    from .backend import get_backend

    return get_backend(name)


def _check(o, checkpoint):
    if o.sizes is None:
        raise CLIError("--sizes: give the layer sizes, input first, e.g. --sizes 2,64,3")
    if o.data is None:
        raise CLIError(f"--data: give a generator ({', '.join(GENERATORS)}) or a .npy/.npz/.csv file")
    if o.patience and not o.validation_split:
        raise CLIError("--patience: early stopping watches a validation loss; add --validation-split, e.g. 0.2")
    if o.checkpoint_every and not o.out:
        raise CLIError("--checkpoint-every: checkpoints go into --out DIR; give one")
    if checkpoint is None and o.activation is not None and o.sizes is not None:
        names = o.activation.split(",")
        if len(names) not in (1, len(o.sizes) - 2):
            raise CLIError(f"--activation {o.activation}: expected one name or {len(o.sizes) - 2} "
                           f"(one per hidden layer of --sizes {','.join(map(str, o.sizes))})")
        o.activation = names[0] if len(names) == 1 else names


def _training_data(o, backend):
    """(X, Y, source) on ``backend``, checked against --sizes. ``source`` describes the data."""
    from . import data

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
                  f"the teacher {','.join(map(str, teacher))} has {_n(teacher[0], 'input')} and {_n(teacher[-1], 'output')}")
            X, Y = data.teacher(m, teacher, **noise, **common)
        return X, Y, {"kind": o.data, "description": f"{m} {o.data} examples"}
    return _file_data(o, backend, wanted)


def _fits(sizes, inputs, outputs, wanted, what):
    if sizes[0] != inputs or sizes[-1] != outputs:
        raise CLIError(f"incompatible sizes: {what}, but {wanted} has {_n(sizes[0], 'input')} and {_n(sizes[-1], 'output')}")


def _n(count, noun):
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _x_and_y(names) -> bool:
    """Whether ``names`` are x…/y… columns (x0, x1, y, or those read_table gives an X/Y .npz), targets last."""
    return bool(names) and names[-1].startswith("y") and all(re.fullmatch(r"[xy]\d*", n) for n in names)


def _file_data(o, backend, wanted):
    path = Path(o.data)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise CLIError(f"--data {o.data}: expected one of {', '.join(GENERATORS)} or a .npy/.npz/.csv file")
    table, names = read_table(path)
    target = o.target
    if target is None:
        if _x_and_y(names):  # an X/Y .npz
            target = ",".join(n for n in names if n.startswith("y"))
        else:
            raise CLIError(f"--target: name the target column(s) of {path}, e.g. --target -1 (the last column)"
                           + (f" or --target {names[-1]}" if names else ""))
    ys = _columns(path, target, names, table.shape[1], "--target")
    xs = [j for j in range(table.shape[1]) if j not in ys]
    X, Y = table[:, xs], table[:, ys]
    if o.one_hot:
        if Y.shape[1] != 1:
            raise CLIError(f"--one-hot: expected one target column of class labels, got {Y.shape[1]}")
        labels, classes = Y[:, 0], o.sizes[-1]
        bad = (labels != np.round(labels)) | (labels < 0) | (labels >= classes)
        if bad.any():
            raise CLIError(f"--one-hot: column {_column_name(names, ys[0])} of {path} must hold class labels "
                           f"0..{classes - 1} (sizes[-1] = {classes}), got {labels[bad][0]:g}")
        Y = np.eye(classes)[labels.astype(int)]
    if X.shape[1] != o.sizes[0] or Y.shape[1] != o.sizes[-1]:
        raise CLIError(f"incompatible sizes: {path} gives {_n(X.shape[1], 'input column')} and "
                       f"{_n(Y.shape[1], 'target column')}{' (one-hot)' if o.one_hot else ''}, but {wanted} "
                       f"has {_n(o.sizes[0], 'input')} and {_n(o.sizes[-1], 'output')}")
    # Staged on the device once, here, not per step.
    X, Y = backend.asarray(X, o.dtype), backend.asarray(Y, o.dtype)
    return X, Y, {"kind": "one-hot" if o.one_hot else "file", "path": str(path),
                  "description": f"{X.shape[0]} examples from {path}"}


def _heads(o, source):
    """(output, loss) with "auto" replaced by what suits the data (cross-entropy only where
    both the data and the output activation allow it)."""
    suited_output, suited_loss = HEADS[source["kind"]]
    output = suited_output if o.output == "auto" else o.output
    if o.loss != "auto":
        return output, o.loss
    return output, suited_loss if output in CROSS_ENTROPY_OUTPUTS else "mse"


def _split(X, Y, fraction, seed, backend):
    """((X_train, Y_train), (X_val, Y_val)): a seeded random ``fraction`` held out."""
    m = X.shape[0]
    held = round(m * fraction)
    if not 1 <= held < m:
        raise CLIError(f"--validation-split {fraction}: holds out {held} of {m} examples; "
                       "expected at least one for each side")
    perm = np.random.default_rng([seed, 1]).permutation(m)
    take = lambda A, rows: backend.xp.take(A, backend.asarray(rows, "int64"), axis=0)  # noqa: E731
    return (take(X, perm[held:]), take(Y, perm[held:])), (take(X, perm[:held]), take(Y, perm[:held]))


def _optimizer(o, checkpoint, net):
    optimizer = optimizer_for(o.optimizer, o.lr, momentum=o.momentum, nesterov=o.nesterov, beta1=o.beta1, beta2=o.beta2)
    o.lr = optimizer.lr  # the default resolved, so a resumed run keeps it
    saved = checkpoint.optimizer if checkpoint else None
    if saved is not None:
        if saved.name != optimizer.name:
            raise CLIError(f"--optimizer {o.optimizer}: the checkpoint was trained with {saved.name}, "
                           "whose state cannot carry over")
        optimizer.load_state_dict(saved.state_dict(net.backend.to_host), lambda a: net.backend.asarray(a, net.dtype))
    return optimizer


def _merge(prior, history, start) -> dict:
    """The history of the whole run: the checkpoint's (if any) followed by this fit's."""
    now = history.to_dict()
    if not prior:
        return {**now, "epochs": start + history.epochs}
    return {**now, "loss": list(prior.get("loss", [])) + now["loss"],
            "val_loss": list(prior.get("val_loss", [])) + now["val_loss"],
            "epochs": start + history.epochs, "steps": prior.get("steps", 0) + now["steps"],
            "samples": prior.get("samples", 0) + now["samples"],
            "elapsed": prior.get("elapsed", 0.0) + now["elapsed"]}


class _Progress:
    """A tqdm bar over all epochs (epoch, loss, samples/s) and a loss line every few epochs."""

    def __init__(self, o, start):
        self.total, self.t0 = o.epochs, time.perf_counter()
        every = o.log_every
        self.every = max(1, (o.epochs - start) // 10) if every is None else every
        self.quiet = bool(o.quiet)
        self.bar = None
        if not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=o.epochs, initial=start, unit="epoch", dynamic_ncols=True, file=sys.stderr)

    def epoch(self, epoch, history):
        loss = history.loss[-1]
        rate = history.samples / max(time.perf_counter() - self.t0, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4g}", samples_s=f"{rate:,.0f}", refresh=False)
            self.bar.update(1)
        if not self.quiet and self.every and (epoch + 1) % self.every == 0:
            line = f"epoch {epoch + 1:>{len(str(self.total))}}/{self.total}  loss {loss:.6g}"
            if history.val_loss:
                line += f"  validation {history.val_loss[-1]:.6g}"
            self.bar.write(line, file=sys.stdout)
            sys.stdout.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _plot(history: dict, path: Path) -> bool:
    """Draw the loss curve to ``path``; False (with a one-line notice) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('loss.png skipped: matplotlib is not installed (pip install "bpgpu[plot]")')
        return False
    loss = history["loss"]
    if not loss:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, loss, label="training")
    if history.get("val_loss"):
        ax.plot(epochs[-len(history["val_loss"]):], history["val_loss"], label="validation")
    if min(loss + list(history.get("val_loss") or [])) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# -- predict -----------------------------------------------------------------------------

def _predict(args) -> int:
    from . import persistence

    if args.output is not None and Path(args.output).suffix.lower() not in (".npy", ".csv"):
        raise CLIError(f"{args.output}: expected a .npy or .csv output file, got {Path(args.output).suffix or 'no suffix'!r}")
    net = persistence.load(args.model, backend=args.backend)
    table, names = read_table(args.input)
    if args.columns:
        table = table[:, _columns(args.input, args.columns, names, table.shape[1], "--columns")]
    elif _x_and_y(names):  # the inputs of an X/Y .npz (or x0…/y0… columns): leave out the targets
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


# -- bench, example, info ---------------------------------------------------------------------

def _bench_module():
    """bpgpu.bench, or None where this installation lacks it."""
    try:
        from . import bench
    except ModuleNotFoundError as err:
        if err.name != "bpgpu.bench":
            raise
        return None
    return bench


def _bench(args) -> int:
    module = _bench_module()
    if module is None:
        raise CLIError("benchmarks are not available in this installation (bpgpu/bench.py is missing)")
    return module.run(args)


def _example(args) -> int:
    try:
        from .worked_example import report
    except ModuleNotFoundError as err:
        if err.name != "bpgpu.worked_example":
            raise
        raise CLIError("the worked example is not available in this installation "
                       "(bpgpu/worked_example.py is missing)") from None
    print(report())
    return 0


def _info(args) -> int:
    import platform

    from . import __version__, available_backends

    print(f"bpgpu {__version__}")
    print(f"python {platform.python_version()} ({platform.python_implementation()}, {platform.platform()})")
    print("packages: " + ", ".join(f"{name} {_version(name)}" for name in
                                   ("numpy", "cupy", "tqdm", "matplotlib", "torch", "scikit-learn", "threadpoolctl")))
    backends = available_backends()
    print("backends:")
    for name, description in backends.items():
        print(f"  {name}: {description}")
    print("CUDA devices:")
    for line in _cuda_devices(backends):
        print(f"  {line}")
    print(f"BLAS (numpy): {_blas()}")
    return 0


def _version(name: str) -> str:
    return package_version(name) or "not installed"


def _cuda_devices(backends) -> list[str]:
    if backends.get("cupy", "").startswith("unavailable"):
        return ["none usable (the cupy backend is unavailable, see above)"]
    from .backend import get_backend

    cupy = get_backend("cupy").xp  # through the backend: it is the one module that imports cupy
    cuda = cuda_versions(cupy)
    lines = [f"CUDA runtime {cuda['CUDA runtime']}, driver {cuda['CUDA driver']}"]
    for i in range(cupy.cuda.runtime.getDeviceCount()):
        props = cupy.cuda.runtime.getDeviceProperties(i)
        with cupy.cuda.Device(i):
            free, total = cupy.cuda.runtime.memGetInfo()
        lines.append(f"{i}: {props['name'].decode()}, compute capability {props['major']}.{props['minor']}, "
                     f"{total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free)")
    return lines


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        found = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads"
                 + (f", {p['architecture']}" if p.get("architecture") else "") + f") at {p.get('filepath')}"
                 for p in threadpool_info() if p.get("user_api") == "blas"]
        if found:
            return "; ".join(found)
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')} (from numpy's build configuration)".replace("  ", " ")
    except Exception as err:  # the config layout varies between NumPy versions
        return f"unknown ({_one_line(err)})"
