"""``bpgpu train``: its options (with --resume's rules for them) and the training run."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import numpy as np

from .. import metrics, plotting
from ..io import persistence
from ..activations import HIDDEN, OUTPUTS
from ..io.atomic import atomic_write_text
from ..backend import DTYPES, get_backend
from ..data import GENERATORS
from ..losses import LOSSES
from ..network import Network
from ..optimizers import OPTIMIZERS
from ..scaling import Standardizer
from ..position import Position
from ..training import DEFAULT_LR, DivergenceError, DivergenceWarning, optimizer_for
from . import rundir
from .applies import refuse_inapplicable
from .argtypes import batch_size, fraction, positive, sizes
from . import ranks
from .errors import CLIError
from .progress import Progress
from .scores import Scores
from .signals import Stop
from .sources import METRIC, heads, resumed_columns, split, training_data
from .tables import DELIMITER_HELP

TRAIN_DEFAULTS = dict(
    sizes=None, activation="tanh", output="auto", loss="auto", lam=0.0, bias=True,
    optimizer="adam", lr=None, momentum=0.9, nesterov=False, beta1=0.9, beta2=0.999,
    batch_size=64, epochs=100, max_time=None, target_loss=None, patience=None,
    validation_split=None, chunk_size=None, shuffle=True,
    backend="numpy", dtype="float64", seed=0,
    data=None, samples=1000, classes=None, features=None, noise=None, teacher_sizes=None,
    data_seed=None, target=None, columns=None, delimiter=None, one_hot=False, standardize=False,
    out=None, checkpoint_every=None, log_every=None, quiet=False, plot=True,
)
ARCHITECTURE = ("sizes", "activation", "output", "loss", "lam", "bias", "dtype", "seed")


def add_arguments(p) -> None:
    d = TRAIN_DEFAULTS
    net = p.add_argument_group("network")
    net.add_argument("--sizes", type=sizes, metavar="S0,S1,...", help="layer sizes, input first, e.g. 2,64,64,3 (required unless --resume)")
    net.add_argument("--activation", help=f"hidden activation, one of {', '.join(HIDDEN)}, or one per hidden "
                     f"layer comma-separated (default {d['activation']})")
    net.add_argument("--output", choices=OUTPUTS + ("auto",), help="output activation (default auto: "
                     "softmax for classes (spirals, blobs, --one-hot, text labels; sigmoid when sizes[-1] is 1), "
                     "sigmoid for xor, identity for numbers (teacher, numeric file targets))")
    net.add_argument("--loss", choices=LOSSES + ("auto",), help="loss (default auto: cross_entropy when the "
                     "data are classes (xor, spirals, blobs, --one-hot, text labels) and the output is sigmoid "
                     "or softmax; mse otherwise, including numeric file targets whatever the output)")
    net.add_argument("--lam", type=float, help="L2 strength λ >= 0 (default 0)")
    net.add_argument("--no-bias", dest="bias", action="store_const", const=False, help="layers without a bias")

    opt = p.add_argument_group("optimiser")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {d['optimizer']})")
    opt.add_argument("--lr", type=positive(float), help="learning rate (default: "
                     + ", ".join(f"{k} {v}" for k, v in DEFAULT_LR.items()) + ")")
    opt.add_argument("--momentum", type=float, help=f"momentum μ for --optimizer momentum (default {d['momentum']})")
    opt.add_argument("--nesterov", action="store_const", const=True, help="Nesterov momentum")
    opt.add_argument("--beta1", type=float, help=f"Adam β1 (default {d['beta1']})")
    opt.add_argument("--beta2", type=float, help=f"Adam β2 (default {d['beta2']})")
    opt.add_argument("--batch-size", type=batch_size, metavar="N|full", help=f"examples per step, or 'full' for batch "
                     f"gradient descent (default {d['batch_size']})")
    opt.add_argument("--no-shuffle", dest="shuffle", action="store_const", const=False,
                     help="keep the data's order in every epoch")
    opt.add_argument("--epochs", type=positive(int), help=f"total epochs, counting those before --resume (default {d['epochs']})")
    opt.add_argument("--max-time", type=positive(float), help="stop after this many seconds")
    opt.add_argument("--target-loss", type=float, help="stop once an epoch's loss is at or below this")
    opt.add_argument("--validation-split", type=fraction, help="hold out this fraction of the data for validation")
    opt.add_argument("--patience", type=positive(int), help="stop when the validation loss has not improved "
                     "for this many epochs, keeping the best weights (needs --validation-split)")
    opt.add_argument("--chunk-size", type=positive(int), help="compute each step this many rows at a time (same result, less memory)")

    dev = p.add_argument_group("device")
    dev.add_argument("--backend", choices=("numpy", "cupy", "auto"), help=f"(default {d['backend']})")
    dev.add_argument("--dtype", choices=DTYPES, help=f"(default {d['dtype']})")
    dev.add_argument("--seed", type=int, help="seeds the initial weights and the shuffling (default 0)")
    dev.add_argument("--distributed", action="store_const", const=True, help="data-parallel over MPI: one of the "
                     "ranks mpiexec/srun started (detected without this flag from the launcher's environment); "
                     "each rank reads its block of rows, rank 0 prints and saves; needs pip install \"bpgpu[mpi]\"")

    data = p.add_argument_group("data")
    data.add_argument("--data", metavar="SOURCE", help=f"a generator ({'|'.join(GENERATORS)}), made on the "
                      "chosen device, or a file (.csv, .tsv, .parquet, .npy, .npz)")
    data.add_argument("--samples", type=positive(int), help=f"examples to generate (default {d['samples']})")
    data.add_argument("--classes", type=positive(int), help="classes for spirals/blobs (default: sizes[-1])")
    data.add_argument("--features", type=positive(int), help="input features for blobs (default: sizes[0])")
    data.add_argument("--noise", type=float, help="noise of the generator (default: the generator's own)")
    data.add_argument("--teacher-sizes", type=sizes, metavar="S0,...", help="the teacher network's sizes (default: --sizes)")
    data.add_argument("--data-seed", type=int, help="seed of the generator and the validation split (default: --seed)")
    data.add_argument("--target", metavar="COLS", help="the target columns of a file: header names or "
                      "indices (negative from the end), comma-separated, e.g. 'label' or -1 or 3,4")
    data.add_argument("--columns", metavar="COLS", help="the input columns of a file (default: all but the "
                      "targets): names, indices, ranges first:last like f0:f63, and '!COL' to leave one out")
    data.add_argument("--delimiter", metavar="CHAR", help=DELIMITER_HELP)
    data.add_argument("--one-hot", action="store_const", const=True, help="the one target column holds "
                      "class labels 0..sizes[-1]-1: train on their one-hot rows (a column of text labels "
                      "needs no flag: its names become the classes)")
    data.add_argument("--standardize", action="store_const", const=True, help="scale each input to mean 0 and "
                      "standard deviation 1, with mean and deviation from the training split only; kept in the "
                      "model, so predict and evaluate scale their inputs alike")

    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help="save model.npz, history.json and loss.png here (and "
                     "regions.png for two-feature classes)")
    out.add_argument("--checkpoint-every", type=positive(int), metavar="N",
                     help="also save DIR/checkpoint.npz every N epochs (resume with --resume)")
    out.add_argument("--resume", metavar="PATH", help="continue from a checkpoint or model.npz, "
                     "optimiser state included")
    out.add_argument("--log-every", type=positive(int, zero=True), metavar="N", help="print the loss every N epochs "
                     "(default: about 10 lines; 0 = never)")
    out.add_argument("--quiet", action="store_const", const=True, help="no progress bar or loss lines")
    out.add_argument("--no-plot", dest="plot", action="store_const", const=False, help="skip loss.png and regions.png")
    p.set_defaults(**{k: None for k in TRAIN_DEFAULTS})


def run(args) -> int:
    comm = ranks.communicator(bool(args.distributed))
    stop = Stop()
    with stop.catching(), ranks.first_speaks(comm), ranks.abort_on_failure(comm):  # until the run is saved: see signals.py
        ranks.agree_on_options(comm, args)
        return _train(args, stop, comm) or stop.status()
    return stop.status()  # stopped before training (signals.py)


def _train(args, stop, comm) -> int:
    given = {k: getattr(args, k) for k in TRAIN_DEFAULTS if getattr(args, k) is not None}
    # A checkpoint loads on the host; the network moves to this run's backend below.
    checkpoint = persistence.load_checkpoint(args.resume) if args.resume else None
    o = _options(given, checkpoint, args.resume)
    _check(o, checkpoint)
    refuse_inapplicable(given, o)
    first = comm is None or comm.rank == 0
    if not first:  # rank 0 alone shows progress and writes files
        o.quiet, o.log_every = True, 0
    # An unusable backend says why before any data is made.
    backend = get_backend(o.backend, ranks.device(comm, o.backend))
    X, Y, source, classes = training_data(o, backend, *((comm.rank, comm.size) if comm else ()),
                                          like=resumed_columns(checkpoint, given))  # columns by name on --resume
    o.output, o.loss = heads(o, source)
    if checkpoint:
        net = checkpoint.network.clone(backend=backend)
    else:
        net = Network(o.sizes, activation=o.activation, output=o.output, loss=o.loss, lam=o.lam, bias=o.bias,
                      backend=backend, dtype=o.dtype, seed=o.seed)
    X, Y = net.batch(X, Y)  # bad targets fail here, in one line, before the progress bar draws
    validation = None
    if o.validation_split:
        (X, Y), validation = split(X, Y, o.validation_split, o.data_seed, backend)
    raw_X = X
    scaler = _scaler(o, checkpoint, X, comm, backend)
    if scaler is not None:
        X = scaler.transform(X)
        if validation is not None:
            validation = (scaler.transform(validation[0]), validation[1])

    optimizer = _optimizer(o, checkpoint, net)
    position = (checkpoint.position or Position()) if checkpoint else Position()
    start = position.epoch
    if start >= o.epochs:
        raise CLIError(f"--epochs {o.epochs}: the checkpoint {args.resume} is already at epoch {start}; "
                       "ask for more epochs to continue")
    out = rundir.prepare(o.out, o.plot) if first else None
    if checkpoint:
        print(rundir.resuming(args.resume, start, o, given))
    prior = checkpoint.history if checkpoint else None

    print(f"training {'-'.join(map(str, net.sizes))} ({'/'.join(net.activations) or '-'} → {net.output}, "
          f"{net.loss}) with {optimizer.name} lr={optimizer.lr:g} on {source['description']}, "
          f"{net.backend.name} {net.dtype}{ranks.announce(comm)}" + (f", from epoch {start}" if start else ""), flush=True)
    progress = Progress(o, start)
    scores = Scores(METRIC[source["kind"]], net, (X, Y), validation, prior, **({"score": ranks.scorer(comm)} if comm else {}))
    saved_options = rundir.portable(vars(o))

    def save(path, history):
        return persistence.save(net, path, optimizer=optimizer, position=history.position,
                                history=_merge(prior, history, scores), extra={"cli": saved_options, "data": source},
                                scaler=scaler, classes=classes)

    def after_epoch(epoch, history):
        scores.update()
        progress.epoch(epoch, history, scores.latest())
        if out is not None and o.checkpoint_every and (epoch + 1) % o.checkpoint_every == 0:
            _checkpoint(save, out / "checkpoint.npz", history)
        return False

    stop.training()  # until now a stopping signal ended the command at once: nothing to save
    try:  # a diverging run is reported below, once its last good weights are saved
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)
            history = net.fit(X, Y, epochs=o.epochs, batch_size=o.batch_size or None, optimizer=optimizer,
                              shuffle=o.shuffle, max_time=o.max_time, target_loss=o.target_loss,
                              validation_data=validation, patience=o.patience, chunk_size=o.chunk_size,
                              on_nonfinite="stop", callback=after_epoch, resume=position, comm=comm, stop=stop)
    finally:
        progress.close()
    stop.saving(history, comm.size if comm else 1)
    diverged = history.divergence_message() if history.stop_reason == "nonfinite" else ""
    end = history.position.epoch
    merged = {**_merge(prior, history, scores), "ranks": comm.size if comm else 1}
    losses = merged["loss"]
    summary = f"epoch {end}/{o.epochs}: loss {losses[-1]:.6g}" if losses else f"epoch {end}/{o.epochs}"
    if len(losses) > 1:
        summary += f" (epoch 1: {losses[0]:.6g})"
    if history.part:
        summary += f" and {history.part['steps']} steps of epoch {end + 1}"
    if history.val_loss:
        summary += f", validation loss {history.val_loss[-1]:.6g}"
    summary += f", {scores.text()}"
    print(f"{summary}; {history.samples_per_s:,.0f} samples/s; stopped: {history.stop_reason}", flush=True)

    if out is None:
        if diverged:
            raise DivergenceError(f"{diverged} (try a smaller --lr)")
        if not first:
            return 0
        print("not saved: give --out DIR to keep the model")
        if stop():
            print(f"bpgpu train: stopped by {stop.name}: nothing saved (no --out)", file=sys.stderr)
        return 0
    model = save(out / "model.npz", history)
    atomic_write_text(out / "history.json", json.dumps(merged, indent=1) + "\n")
    files = [model, out / "history.json"]
    if o.plot and _plotting_available():
        if plotting.loss_curve(merged, out / "loss.png"):
            files.append(out / "loss.png")
        if net.sizes[0] == 2 and scores.metric == "accuracy":
            _regions(net, scaler, raw_X, Y, classes, source, out / "regions.png")
            files.append(out / "regions.png")
    files = ", ".join(map(str, files))
    if diverged:
        raise DivergenceError(f"{diverged} and saved to {model} (try a smaller --lr)")
    if stop():
        print(f"bpgpu train: stopped by {stop.name} at epoch {end}: saved {files} "
              f"(continue with --resume {model})", file=sys.stderr)
    else:
        print(f"saved {files}")
    return 0


def _options(given: dict, checkpoint, resume) -> argparse.Namespace:
    """The options of this run: those given, then (on --resume) the checkpoint's with its folder
    as --out, then defaults."""
    stored = {}
    if checkpoint is not None:
        stored = dict((checkpoint.extra or {}).get("cli", {}))
        rundir.check_data(stored, given, resume)
        config = checkpoint.network.config()
        for key in ARCHITECTURE:
            if key in given and given[key] != "auto" and _normal(key, given[key], config) != config[key]:
                shown = ",".join(map(str, config[key])) if key == "sizes" else config[key]
                option = "--no-bias" if key == "bias" else f"--{key}"
                raise CLIError(f"{option}: the checkpoint's network has {key} {shown}; "
                               "a resumed run cannot change its architecture")
        stored.update(config, **_saved_optimizer(checkpoint), **rundir.resumed_folder(resume))
        for shown_only in ("log_every", "quiet", "plot"):  # how this run looks is this run's choice
            stored.pop(shown_only, None)
    options = {**TRAIN_DEFAULTS, **stored, **given}
    if options["data_seed"] is None:
        options["data_seed"] = options["seed"]
    return argparse.Namespace(**options)


def _checkpoint(save, path, history) -> None:
    """``save(path, history)``; a write that fails (a full disk, ``ulimit -f``) leaves the
    previous checkpoint whole and costs no training: one line on stderr, and the run goes
    on to save its model when it ends or is stopped."""
    try:
        save(path, history)
    except OSError as err:
        print(f"bpgpu train: warning: {err}; training goes on, and the model is saved when it ends",
              file=sys.stderr, flush=True)


def _saved_optimizer(checkpoint) -> dict:
    """The options the checkpoint's optimiser stands for (its name, lr, momentum, …): a
    resumed run continues it, whether the checkpoint has the CLI's record or not."""
    saved = checkpoint.optimizer
    if saved is None:
        return {}
    return {k: v for k, v in {"optimizer": saved.name, **saved.hyperparameters()}.items() if k in TRAIN_DEFAULTS}


def _normal(key, value, config):
    if key == "activation":
        names = value.split(",")
        return names * (len(config["sizes"]) - 2) if len(names) == 1 else names
    return float(value) if key == "lam" else value


def _check(o, checkpoint):
    if o.sizes is None:
        raise CLIError("--sizes: give the layer sizes, input first, e.g. --sizes 2,64,3")
    if o.data is None:
        raise CLIError(f"--data: give a generator ({', '.join(GENERATORS)}) or a .csv/.tsv/.parquet/.npy/.npz file")
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


def _optimizer(o, checkpoint, net):
    saved = checkpoint.optimizer if checkpoint else None
    eps = {"eps": saved.eps} if getattr(saved, "name", None) == "adam" else {}  # no option of its own: the saved one
    optimizer = optimizer_for(o.optimizer, o.lr, momentum=o.momentum, nesterov=o.nesterov, beta1=o.beta1,
                              beta2=o.beta2, **eps)
    o.lr = optimizer.lr  # the default resolved, so a resumed run keeps it
    if saved is not None:
        if saved.name != optimizer.name:
            raise CLIError(f"--optimizer {o.optimizer}: the checkpoint was trained with {saved.name}, "
                           "whose state cannot carry over")
        optimizer.load_state_dict(saved.state_dict(net.backend.to_host), lambda a: net.backend.asarray(a, net.dtype))
    return optimizer


def _merge(prior, history, scores) -> dict:
    """The history of the whole run: the checkpoint's (if any) followed by this fit's, with
    the metric of each epoch (``scores`` holds the checkpoint's epochs already). ``epochs``
    counts whole epochs (a part epoch is ``part``); the counts and the time are the whole
    run's (a part epoch's steps were counted where they were taken), and so is the rate."""
    prior = prior or {}
    now = {**history.to_dict(), "metric": scores.metric, **scores.history, "epochs": history.position.epoch}
    merged = {**now, "loss": list(prior.get("loss", [])) + now["loss"],
              "val_loss": list(prior.get("val_loss", [])) + now["val_loss"],
              **{k: prior.get(k, 0) + now[k] for k in ("steps", "samples", "elapsed")}}
    elapsed = merged["elapsed"]
    return {**merged, "samples_per_s": merged["samples"] / elapsed if elapsed > 0 else 0.0}


def _scaler(o, checkpoint, X, comm, backend):
    """The Standardizer of this run: the checkpoint's on --resume (its network learnt on those
    scaled inputs), else one fitted to the training split X (every rank's) with --standardize,
    else None."""
    if checkpoint is None:
        if not o.standardize:
            return None
        return Standardizer().fit(X) if comm is None else ranks.standardizer(comm, X, backend)
    if o.standardize != (checkpoint.scaler is not None):
        raise CLIError(f"--standardize: the checkpoint's network was trained on {'un' if o.standardize else ''}"
                       "scaled inputs; a resumed run cannot change how its inputs are scaled")
    return checkpoint.scaler


def _plotting_available() -> bool:
    """Whether pictures can be drawn; without matplotlib, one line says so."""
    if plotting.available():
        return True
    print(f"loss.png skipped: matplotlib is not installed ({plotting.INSTALL})")
    return False


def _regions(net, scaler, X, Y, classes, source, path) -> None:
    """regions.png: the classes ``net`` gives the plane of its two inputs (in the units of the
    data, before any scaling), with the training examples X, Y over it."""
    def classify(points):
        points = scaler.transform(points) if scaler is not None else points
        return metrics.classes(net.predict(points), np)

    host = net.backend.to_host
    plotting.regions(classify, host(X), metrics.classes(host(Y), np), path, names=classes,
                     features=source.get("inputs") or ("feature 0", "feature 1"))
