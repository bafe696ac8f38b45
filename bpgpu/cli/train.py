"""``bpgpu train``: the run's plan (:class:`TrainPlan`, its options resolved once by
:mod:`bpgpu.cli.train_options`), its fit, and its summary and files."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from .. import metrics, plotting
from ..backend import get_backend
from ..io import persistence
from ..io.atomic import atomic_write_text
from ..network import Network
from ..position import Position
from ..scaling import Standardizer
from ..training import DivergenceError, DivergenceWarning, optimizer_for
from . import ranks, rundir
from .applies import refuse_inapplicable
from .argtypes import class_weights
from .errors import CLIError
from .lr_schedule import LRSchedule
from .progress import Progress
from .scores import Scores
from .signals import Stop
from .sources import METRIC, heads, resumed_columns, split, training_data
from .train_options import TRAIN_DEFAULTS, add_arguments, check, options  # noqa: F401 — cli/__init__ adds them


def run(args) -> int:
    comm = ranks.communicator(bool(args.distributed))
    stop = Stop()
    with stop.catching(), ranks.first_speaks(comm), ranks.abort_on_failure(comm):  # until the run is saved: see signals.py
        ranks.agree_on_options(comm, args)
        return _train(args, stop, comm) or stop.status()
    return stop.status()  # stopped before training (signals.py)


@dataclass
class TrainPlan:
    """Everything a ``bpgpu train`` run resolved before its first step: the options ``o``
    (given, then the checkpoint's, then defaults), the network, the data (``raw_X`` before
    scaling), the optimiser and where training starts."""

    o: argparse.Namespace
    given: dict
    checkpoint: object
    first: bool  # rank 0 (or no MPI): it alone shows progress and writes files
    net: Network
    X: object
    Y: object
    w: object  # the examples' weights (m,) on the host (--weight-column), or None
    raw_X: object
    validation: tuple | None
    source: dict
    classes: list | None
    scaler: Standardizer | None
    target_scaler: Standardizer | None  # --standardize-target: the network learns scaled targets
    optimizer: object
    schedule: LRSchedule
    position: Position
    out: object  # the run folder (a Path), or None

    @property
    def prior(self) -> dict | None:
        """The checkpoint's history (the epochs before this run), or None."""
        return self.checkpoint.history if self.checkpoint else None


def _train(args, stop, comm) -> int:
    plan = _plan(args, comm)
    history, scores, save = _fit(plan, args, stop, comm)
    stop.saving(history, comm.size if comm else 1)
    return _finish(plan, history, scores, save, stop, comm)


def _plan(args, comm) -> TrainPlan:
    """The run's options resolved once, and what they make: data, network, scaler, optimiser."""
    given = {k: getattr(args, k) for k in TRAIN_DEFAULTS if getattr(args, k) is not None}
    # A checkpoint loads on the host; the network moves to this run's backend below.
    checkpoint = persistence.load_checkpoint(args.resume) if args.resume else None
    o = options(given, checkpoint, args.resume)
    check(o, checkpoint)
    refuse_inapplicable(given, o)
    first = comm is None or comm.rank == 0
    if not first:  # rank 0 alone shows progress and writes files
        o.quiet, o.log_every = True, 0
    # An unusable backend says why before any data is made.
    backend = get_backend(o.backend, ranks.device(comm, o.backend))
    X, Y, w, source, classes = training_data(o, backend, *((comm.rank, comm.size) if comm else ()),
                                          like=resumed_columns(checkpoint, given))  # columns by name on --resume
    o.output, o.loss = heads(o, source)
    _check_target_scaling(o, source)
    if checkpoint:
        net = checkpoint.network.clone(backend=backend)
    else:
        net = Network(o.sizes, activation=o.activation, output=o.output, loss=o.loss, lam=o.lam, bias=o.bias,
                      backend=backend, dtype=o.dtype, seed=o.seed, dropout=o.dropout)
    X, Y = net.batch(X, Y)  # bad targets fail here, in one line, before the progress bar draws
    validation = None
    if o.validation_split:
        (X, Y, w), validation = split(X, Y, o.validation_split, o.data_seed, backend, w)
    raw_X = X
    scaler = _scaler("--standardize", o.standardize, checkpoint, "scaler", X, comm, backend)
    target_scaler = _scaler("--standardize-target", o.standardize_target, checkpoint, "target_scaler", Y, comm, backend)
    if scaler is not None:
        X = scaler.transform(X)
        if validation is not None:
            validation = (scaler.transform(validation[0]), validation[1])
    if target_scaler is not None:
        Y = target_scaler.transform(Y)
        if validation is not None:
            validation = (validation[0], target_scaler.transform(validation[1]))
    optimizer = _optimizer(o, checkpoint, net)
    schedule = _schedule(o, given, checkpoint, optimizer, X, comm)
    position = (checkpoint.position or Position()) if checkpoint else Position()
    if position.epoch >= o.epochs:
        raise CLIError(f"--epochs {o.epochs}: the checkpoint {args.resume} is already at epoch {position.epoch}; "
                       "ask for more epochs to continue")
    out = rundir.prepare(o.out, o.plot) if first else None
    return TrainPlan(o, given, checkpoint, first, net, X, Y, w, raw_X, validation, source, classes, scaler,
                     target_scaler, optimizer, schedule, position, out)


def _held_out(plan, comm) -> str:
    """" (N train, K held out for validation)" where --validation-split holds rows out."""
    if plan.validation is None:
        return ""
    if comm is not None:
        return f" ({plan.o.validation_split:g} of each rank's rows held out for validation)"
    return f" ({plan.X.shape[0]} train, {plan.validation[0].shape[0]} held out for validation)"


def _fit(plan, args, stop, comm):
    """(history, scores, save): ``plan`` trained, with progress lines and checkpoints after
    each epoch; ``save(path, history)`` writes the model as it stands."""
    o, net, optimizer, schedule, start = plan.o, plan.net, plan.optimizer, plan.schedule, plan.position.epoch
    if plan.checkpoint:
        print(rundir.resuming(args.resume, start, o, plan.given))
    prior = plan.prior
    print(f"training {'-'.join(map(str, net.sizes))} ({'/'.join(net.activations) or '-'} → {net.output}, "
          f"{net.loss}) with {optimizer.name} lr={optimizer.lr:g} on {plan.source['description']}{_held_out(plan, comm)}, "
          f"{net.backend.name} {net.dtype}{ranks.announce(comm)}" + (f", from epoch {start}" if start else ""), flush=True)
    progress = Progress(o, start)
    scores = Scores(METRIC[plan.source["kind"]], net, (plan.X, plan.Y), plan.validation, prior, every=o.score_every,
                    **({"score": ranks.scorer(comm)} if comm else {}))
    saved_options = rundir.portable(vars(o))

    def save(path, history):
        return persistence.save(net, path, optimizer=optimizer, position=history.position,
                                history=_merge(prior, history, scores, schedule),
                                extra={"cli": saved_options, "data": plan.source, "lr_schedule": schedule.state()},
                                scaler=plan.scaler, classes=plan.classes, target_scaler=plan.target_scaler)

    def after_epoch(epoch, history):
        shown = schedule.shown(optimizer)  # the rate this epoch trained with
        stopping = schedule.after_epoch(optimizer, epoch, history.loss[-1])
        scores.update(epoch)
        progress.epoch(epoch, history, {**scores.latest(), **shown})
        if plan.out is not None and o.checkpoint_every and (epoch + 1) % o.checkpoint_every == 0:
            _checkpoint(save, plan.out / "checkpoint.npz", history)
        return stopping

    stop.training()  # until now a stopping signal ended the command at once: nothing to save
    try:  # a diverging run is reported below, once its last good weights are saved
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)
            history = net.fit(plan.X, plan.Y, epochs=o.epochs, batch_size=o.batch_size or None, optimizer=optimizer,
                              shuffle=o.shuffle, max_time=o.max_time, target_loss=o.target_loss,
                              validation_data=plan.validation, patience=o.patience, chunk_size=o.chunk_size,
                              on_nonfinite="stop", callback=after_epoch, resume=plan.position, comm=comm, stop=stop,
                              sample_weight=plan.w, class_weight=class_weights(o.class_weight))
    finally:
        progress.close()
    if schedule.stopped and history.stop_reason == "callback":
        history.stop_reason = "lr_schedule"
    return history, scores, save


def _finish(plan, history, scores, save, stop, comm) -> int:
    """The run's summary line, then its files (model, history.json, pictures) in ``plan.out``."""
    o, out = plan.o, plan.out
    diverged = history.divergence_message() if history.stop_reason == "nonfinite" else ""
    end = history.position.epoch
    merged = {**_merge(plan.prior, history, scores, plan.schedule), "ranks": comm.size if comm else 1}
    print(f"{_summary(merged, history, scores, end, o.epochs)}; {history.samples_per_s:,.0f} samples/s; "
          f"stopped: {history.stop_reason}", flush=True)
    if out is None:
        if diverged:
            raise DivergenceError(f"{diverged} (try a smaller --lr)")
        if not plan.first:
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
        if plan.net.sizes[0] == 2 and scores.metric == "accuracy":
            _regions(plan.net, plan.scaler, plan.raw_X, plan.Y, plan.classes, plan.source, out / "regions.png")
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


def _summary(merged, history, scores, end, epochs) -> str:
    """"epoch 7/10: loss 0.1 (epoch 1: 0.9), validation loss 0.2, accuracy 0.95"."""
    losses = merged["loss"]
    summary = f"epoch {end}/{epochs}: loss {losses[-1]:.6g}" if losses else f"epoch {end}/{epochs}"
    if len(losses) > 1:
        summary += f" (epoch 1: {losses[0]:.6g})"
    if history.part:
        summary += f" and {history.part['steps']} steps of epoch {end + 1}"
    if history.val_loss:
        summary += f", validation loss {history.val_loss[-1]:.6g}"
    return summary + f", {scores.text()}"


def _checkpoint(save, path, history) -> None:
    """``save(path, history)``; a write that fails (a full disk, ``ulimit -f``) leaves the
    previous checkpoint whole and costs no training: one line on stderr, and the run goes
    on to save its model when it ends or is stopped."""
    try:
        save(path, history)
    except OSError as err:
        print(f"bpgpu train: warning: {err}; training goes on, and the model is saved when it ends",
              file=sys.stderr, flush=True)


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


def _schedule(o, given, checkpoint, optimizer, X, comm) -> LRSchedule:
    """The run's --lr-schedule, going on from the checkpoint's state unless --lr starts it again."""
    saved = (checkpoint.extra or {}).get("lr_schedule") if checkpoint else None
    lr0 = saved["lr0"] if saved and saved.get("name") == o.lr_schedule and "lr" not in given else optimizer.lr
    rows = X.shape[0] if comm is None else ranks.rows(comm, X.shape[0])
    prior = (checkpoint.history or {}) if checkpoint else {}
    lr = prior.get("lr") or [None] * len(prior.get("loss", []))
    return LRSchedule(o.lr_schedule, lr0, o.power_t, rows, saved if "lr" not in given else None, lr)


def _merge(prior, history, scores, schedule) -> dict:
    """The history of the whole run: the checkpoint's (if any) followed by this fit's, with
    the metric and the learning rate of each epoch (``scores`` and ``schedule`` hold the
    checkpoint's epochs already). ``epochs`` counts whole epochs (a part epoch is ``part``);
    the counts and the time are the whole run's (a part epoch's steps were counted where they
    were taken), and so is the rate."""
    prior = prior or {}
    now = {**history.to_dict(), "metric": scores.metric, **scores.history, "lr": list(schedule.lr),
           "epochs": history.position.epoch}
    merged = {**now, "loss": list(prior.get("loss", [])) + now["loss"],
              "val_loss": list(prior.get("val_loss", [])) + now["val_loss"],
              **{k: prior.get(k, 0) + now[k] for k in ("steps", "samples", "elapsed")}}
    elapsed = merged["elapsed"]
    return {**merged, "samples_per_s": merged["samples"] / elapsed if elapsed > 0 else 0.0}


def _scaler(option, wanted, checkpoint, kept, data, comm, backend):
    """A Standardizer of this run (``option`` --standardize for the inputs, --standardize-target
    for the targets): the checkpoint's (its attribute ``kept``) on --resume, as its network
    learnt on them, else one fitted to the training split ``data`` (every rank's) where
    ``wanted``, else None."""
    if checkpoint is None:
        if not wanted:
            return None
        return Standardizer().fit(data) if comm is None else ranks.standardizer(comm, data, backend)
    saved, what = getattr(checkpoint, kept), "inputs" if kept == "scaler" else "targets"
    if wanted != (saved is not None):
        raise CLIError(f"{option}: the checkpoint's network was trained on {'un' if wanted else ''}scaled {what}; "
                       f"a resumed run cannot change how its {what} are scaled")
    return saved


def _check_target_scaling(o, source):
    """--standardize-target scales numbers to any real value: it needs numeric targets, an
    identity output and mse."""
    if not o.standardize_target:
        return
    if METRIC[source["kind"]] != "r2":
        raise CLIError(f"--standardize-target: scales numeric targets, and this run's are classes "
                       f"({source['description']}); leave it out")
    if (o.output, o.loss) != ("identity", "mse"):
        raise CLIError(f"--standardize-target: scaled targets take any real value, which needs --output identity "
                       f"and --loss mse; this run has {o.output} and {o.loss}")


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
