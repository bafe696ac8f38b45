"""The training loop: batches, optimiser steps, stopping rules and the History.

Data is staged on the device once per ``fit``. Inside an epoch nothing is brought
to the host: each step's J stays on the device, and the epoch's losses cross over
together at its end, which is also where the stopping rules are checked.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from copy import deepcopy
from dataclasses import dataclass, field, fields

import numpy as np

from . import distributed
from . import validation as check
from .optimizers import make_optimizer
from .position import EarlyStopping, Position, State

ON_NONFINITE = ("stop", "raise")
DEFAULT_LR = {"sgd": 0.5, "momentum": 0.1, "adam": 0.001}


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or weight; the last good weights are in place."""


class DivergenceWarning(RuntimeWarning):
    """``fit(on_nonfinite="stop")`` stopped a diverging run; the last good weights are in place."""


@dataclass
class History:
    """What one ``fit`` did.

    loss[e] is epoch e's training loss: the mean over its examples of the mini-batch
    losses J computed during the epoch (each before its own update). ``epochs`` counts
    whole epochs; an epoch stopped within (Ctrl-C, ``stop``, ``max_time``) is ``part``,
    {"epoch", "steps", "samples", "loss"} (its steps' mean J), in ``steps`` and ``samples``
    but not in ``loss`` or ``epochs``. ``position`` is where the run stands, for
    ``fit(resume=...)``.
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epochs: int = 0
    steps: int = 0
    samples: int = 0
    elapsed: float = 0.0
    stop_reason: str = ""
    best_epoch: int | None = None
    nonfinite_at: dict | None = None  # {"epoch": e, "step": k} of the first non-finite loss
    part: dict | None = None
    position: Position | None = field(default=None, repr=False, compare=False)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict:
        """The JSON-able record (``position`` aside: it holds arrays)."""
        record = {f.name: deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "position"}
        return {**record, "samples_per_s": self.samples_per_s}

    def divergence_message(self) -> str:
        """What a run that stopped on a non-finite loss or weight says about it."""
        where = self.nonfinite_at
        return (f"training diverged: non-finite loss or weights at epoch {where['epoch']}, step {where['step']}; "
                "the last good weights were restored")


class _Interrupt:
    """Turns the first Ctrl-C into a request to stop after the current step.

    Installed only in the main thread and only over Python's default handler, so a
    program's own SIGINT handling is left alone. A second Ctrl-C interrupts at once.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _check_options(epochs, batch_size, max_time, target_loss, patience, validation_data,
                   on_nonfinite, chunk_size, initial_epoch, callback):
    check.number("epochs", epochs, low=1, integer=True)
    check.number("batch_size", batch_size, low=1, integer=True, allow_none=True)
    check.number("max_time", max_time, low=0.0, low_open=True, allow_none=True)
    check.number("target_loss", target_loss, allow_none=True)
    check.number("patience", patience, low=1, integer=True, allow_none=True)
    check.number("chunk_size", chunk_size, low=1, integer=True, allow_none=True)
    check.number("initial_epoch", initial_epoch, low=0, integer=True)
    check.choice("on_nonfinite", on_nonfinite, ON_NONFINITE)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a function callback(epoch, history), got {callback!r}")
    if patience is not None and validation_data is None:
        raise ValueError("patience: early stopping watches the validation loss; pass validation_data=(X_val, Y_val) too")
    if validation_data is not None and (not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2):
        raise TypeError(f"validation_data: expected a pair (X_val, Y_val), got {type(validation_data).__name__}")


def _epoch_loss(earlier, losses, params, step_sizes, backend):
    """(epoch loss, None, step losses), or (None, (what, k), step losses) when step k's
    loss (what = "loss") or, by the end of the epoch, the weights (what = "weights", k =
    the last step) are not finite. ``earlier``: the J (host floats) of the epoch's steps
    taken before a resume, then ``losses`` those taken since; step losses: all of them.

    One transfer to the host per epoch: the step losses J (0-d device arrays) together
    with Σ of every weight, finite when all weights are; only when it is not are the
    weights looked at one by one (a huge but finite sum is not a divergence). A weight
    can turn ±inf while the loss stays finite (a saturated unit). ``step_sizes`` are the
    examples in each step taken, as Python ints.
    """
    xp = backend.xp
    weights = backend.total(params)
    if len(losses) == 1:  # full batch: plain floats, no host arrays
        step_losses, weight_sum = [float(losses[0])], float(weights)
    else:
        host = backend.to_host(xp.stack(losses + [weights]))
        step_losses, weight_sum = host[:-1].tolist(), float(host[-1])
    step_losses = list(earlier) + step_losses
    for k, J in enumerate(step_losses):
        if not math.isfinite(J):
            return None, ("loss", k), step_losses
    if not math.isfinite(weight_sum) and not all(bool(xp.all(xp.isfinite(p))) for p in params):
        return None, ("weights", len(step_losses) - 1), step_losses
    # Weighted by each step's share of the examples, so large finite losses cannot overflow.
    seen = sum(step_sizes)
    return sum(J * (n / seen) for J, n in zip(step_losses, step_sizes)), None, step_losses


def fit(net, X, Y, *, epochs=100, lr=None, batch_size=None, optimizer="sgd", shuffle=True,
        momentum=0.9, nesterov=False, beta1=0.9, beta2=0.999, eps=1e-8,
        max_time=None, target_loss=None, validation_data=None, patience=None,
        chunk_size=None, memory_budget=None, on_nonfinite="stop", verbose=False, callback=None, initial_epoch=0,
        device=None, warm_start=False, comm=None, stop=None, resume=None):
    """Train ``net`` on (X, Y) by backpropagation; returns a :class:`History`.

    Args:
        X, Y: (m, sizes[0]) inputs and (m, sizes[-1]) targets.
        epochs: the epoch count to reach, including the ``initial_epoch`` epochs already done.
        lr: learning rate η; default 0.5 for sgd (the seeds' η), 0.1 momentum, 0.001 adam.
        batch_size: examples per step; None = the whole batch (batch gradient descent).
        optimizer: "sgd", "momentum" (``momentum``, ``nesterov``), "adam" (``beta1``,
            ``beta2``, ``eps``), or an :class:`~bpgpu.optimizers.Optimizer`, which keeps its own
            lr, hyper-parameters and state (the arguments above are then ignored).
        shuffle: reshuffle mini-batches every epoch, seeded by ``net.seed`` and the epoch
            number (so a resumed run sees the same batches); False keeps the order.
        max_time: stop after this many seconds.
        target_loss: stop once an epoch's loss is at or below this (the seeds' error threshold).
        validation_data: (X_val, Y_val); its loss is recorded every epoch.
        patience: stop when the validation loss has not improved for this many epochs,
            and restore the weights of the best epoch.
        chunk_size: compute each step's D this many rows at a time (exact; less memory).
        memory_budget: bytes of activations allowed at once; sets ``chunk_size``.
        on_nonfinite: on a NaN/inf loss or weight, restore the last good weights, then
            "stop" (warn and return) or "raise" :class:`DivergenceError`.
        verbose: show a progress bar (tqdm) with the loss and samples/s.
        callback: ``callback(epoch, history)`` after each epoch; returning True stops.
        initial_epoch: the epoch number to start at (for resuming a checkpoint); below ``epochs``.
        device: the GPU to train on; it must be the network's (``Network(device=…)``, or
            ``net.clone(device=…)`` to move it), None: the network's.
        warm_start: continue the optimiser of this network's last ``fit`` (``net.optimizer``:
            its velocity or Adam moments and step count) instead of starting a fresh one; it
            must be the optimiser named; ``lr``, if given, replaces its step size, its other
            hyper-parameters stay. An Optimizer instance given always continues itself.
        comm: an mpi4py communicator (or "world"): data-parallel training. Each rank
            passes its own rows (X, Y) and validation rows, and the same network;
            ``batch_size`` is the global batch, step k taking the global rows k·B …
            (k+1)·B − 1 of :func:`bpgpu.distributed.interleaved_order`; one all-reduce
            per step. Every rank gets the same weights and History; a reason to stop on
            any rank (Ctrl-C, ``max_time``, the callback) stops all at the end of the
            same epoch. ``shuffle`` permutes each rank's rows, seeded by (seed, epoch, rank).
        stop: ``stop()`` after each step; True stops there as Ctrl-C does (stop_reason
            "interrupted"): how a program that handles its own signals asks fit to stop.
        resume: a :class:`~bpgpu.position.Position` (``history.position`` of a stopped fit,
            or a checkpoint's ``position``): continue exactly where that run stopped, within
            an epoch or not, its early-stopping state included (the weights and optimiser
            must be that run's: its network and ``optimizer``); it sets ``initial_epoch``.
            With the same data, options and ``epochs``, the weights are the uninterrupted run's.
    """
    comm = distributed.communicator(comm)
    with distributed.Pact(comm) as pact:  # one rank's error or other settings: the same error on every rank
        _check_options(epochs, batch_size, max_time, target_loss, patience, validation_data,
                       on_nonfinite, chunk_size, initial_epoch, callback)
        if stop is not None and not callable(stop):
            raise TypeError(f"stop: expected a function stop() -> bool, got {stop!r}")
        _check_device(net, device)
        xp, backend = net.xp, net.backend
        if memory_budget is not None:
            chunk_size = net.chunk_size_for(memory_budget)
        X, Y = net.batch(X, Y)
        m = X.shape[0]
        if validation_data is not None:
            X_val, Y_val = net.batch(*validation_data, names=("validation_data[0]", "validation_data[1]"))
        if not isinstance(warm_start, bool):
            raise TypeError(f"warm_start: expected True or False, got {warm_start!r}")
        if warm_start and net.optimizer is not None and isinstance(optimizer, str):
            if net.optimizer.name != optimizer:
                raise ValueError(f"warm_start: the last fit used optimizer {net.optimizer.name!r}, got optimizer="
                                 f"{optimizer!r}; pass warm_start=False to start a fresh one")
            opt = net.optimizer
            if lr is not None:
                opt.lr = check.number("lr", lr, low=0.0, low_open=True)
        else:
            opt = optimizer_for(optimizer, lr, momentum=momentum, nesterov=nesterov, beta1=beta1, beta2=beta2, eps=eps)
        opt.check_params([net.params])  # before any weight changes
        pact.rows, pact.terms = m, distributed.training_terms(
            net, opt, epochs=epochs, initial_epoch=initial_epoch, batch_size=batch_size, shuffle=shuffle,
            max_time=max_time, target_loss=target_loss, patience=patience, on_nonfinite=on_nonfinite,
            validation=validation_data is not None)
    net.optimizer = opt
    if comm is None:
        bs = m if batch_size is None else min(int(batch_size), m)
        slices = [(s, min(s + bs, m)) for s in range(0, m, bs)]
        step_sizes = [b - a for a, b in slices]
    else:
        slices, step_sizes, _ = distributed.step_slices(comm.rank, pact.counts, batch_size)
    # Their exceptions are raised on every rank at the epoch's vote.
    callback, stop = distributed.held_back(comm, callback), distributed.held_back(comm, stop)

    history = History()
    start = Position.starting(initial_epoch, resume, epochs, step_sizes)
    watch = EarlyStopping(patience, start)
    part = (0, 0, [])  # (steps, samples, their J) of an epoch stopped within
    # Weights and optimiser state at the start of this epoch and of the one before (each
    # checked finite at the end of the epoch before it): a non-finite loss at an epoch's
    # first step means the weights it started with were already bad, if finite.
    snapshot, previous_snapshot = None, None
    bar = _progress(epochs - start.epoch) if verbose else None
    t0 = time.perf_counter()
    deadline = None if max_time is None else t0 + max_time
    stopping = False
    with backend.activate(), _Interrupt() as interrupt, backend.quiet_float_errors(), _closing(bar):
        for epoch in range(start.epoch, epochs):
            # The state two epochs back is no longer needed: its arrays take this one's copy.
            previous_snapshot, snapshot = snapshot, State.of(net, opt, reuse=previous_snapshot)
            Xe, Ye = _epoch_order(net, X, Y, epoch, shuffle and len(slices) > 1, comm)
            first, earlier = (start.step, start.losses) if epoch == start.epoch else (0, [])
            losses = []
            for a, b in slices[first:]:
                xb, yb = (Xe, Ye) if (a, b) == (0, m) else (Xe[a:b, :], Ye[a:b, :])
                J, chunk_size = _step_within_memory(net, opt, xb, yb, chunk_size, comm)
                losses.append(J)
                # Kept apart from interrupt.requested, so that a Ctrl-C after stop() is a first one.
                stopping = stopping or interrupt.requested or (stop is not None and bool(stop()))
                # Ranks must take the same steps: across ranks, stopping waits for the epoch's end.
                if comm is None and (stopping or (deadline is not None and time.perf_counter() > deadline)):
                    break
            done = first + len(losses)
            history.steps += len(losses)
            history.samples += sum(step_sizes[first:done])
            epoch_loss, bad, step_losses = _epoch_loss(earlier, losses, [net.params], step_sizes[:done], backend)
            if bad is not None:
                what, step = bad
                # A loss already non-finite at the epoch's first step condemns the weights
                # the epoch started with: go back one more epoch.
                before_this_epoch = what == "loss" and step == 0 and previous_snapshot is not None
                (previous_snapshot if before_this_epoch else snapshot).restore(net, opt)
                history.nonfinite_at = {"epoch": epoch, "step": step}
                history.stop_reason = "nonfinite"
                break
            if done < len(slices):  # stopped within the epoch: a part epoch, not a whole one
                part = (done, sum(step_sizes[:done]), step_losses)
                history.part = {"epoch": epoch, "steps": done, "samples": part[1], "loss": epoch_loss}
                history.stop_reason = "interrupted" if stopping or interrupt.requested else "max_time"
                break
            history.loss.append(epoch_loss)
            history.epochs += 1
            if validation_data is not None:
                history.val_loss.append(float(net.loss_of(X_val, Y_val, chunk_size, comm)))
                watch.improved(epoch, history.val_loss[-1], net, opt)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{epoch_loss:.4g}", samples_s=f"{history.samples / (time.perf_counter() - t0):.3g}")
            # What a checkpoint written by the callback needs: where the run stands, how long it took.
            history.position, history.elapsed = watch.position(epoch + 1), time.perf_counter() - t0
            asked = callback is not None and bool(callback(epoch, history))
            interrupted, late = stopping or interrupt.requested, deadline is not None and time.perf_counter() > deadline
            if comm is not None:
                interrupted, late, asked = comm.vote(interrupted, late, asked)
            history.stop_reason = _stop_reason(target_loss is not None and epoch_loss <= target_loss, watch.exhausted,
                                               interrupted, late, asked)
            if history.stop_reason == "early_stopping" and watch.best is not None:
                watch.best.restore(net, opt)  # None: no validation loss was ever finite; keep these
            if history.stop_reason:
                break
        else:
            history.stop_reason = "epochs"
    backend.synchronize()
    history.best_epoch = watch.best_epoch
    history.position = watch.position(start.epoch + history.epochs, part)
    history.elapsed = time.perf_counter() - t0
    if history.stop_reason == "nonfinite":
        message = history.divergence_message() + " (try a smaller lr)"
        if on_nonfinite == "raise":
            raise DivergenceError(message)
        warnings.warn(message, DivergenceWarning, stacklevel=3)
    return history


def _check_device(net, device) -> None:
    """``fit(device=)`` names the network's own device, or is None."""
    if device is None or check.number("device", device, low=0, integer=True) == net.device:
        return
    if net.device is None:
        raise ValueError(f"device: the network is on the CPU (backend {net.backend.name!r}), which has no devices; "
                         f"got device={device}: build it with backend='cupy' to train on a GPU")
    raise ValueError(f"device: the network's arrays are on device {net.device}, got device={device}; "
                     "train a copy there instead: net.clone(device=...)")


def _stop_reason(reached, exhausted, interrupted, late, asked) -> str:
    """Why training stops after this epoch ("" to go on): the run's own rules first (the
    target loss ``reached``, patience ``exhausted``), so a stop from outside that falls on
    the same epoch ends the run as the uninterrupted one ends, and a resume does not go on."""
    reasons = (("target_loss", reached), ("early_stopping", exhausted), ("interrupted", interrupted),
               ("max_time", late), ("callback", asked))
    return next((reason for reason, applies in reasons if applies), "")


def _epoch_order(net, X, Y, epoch, shuffle, comm):
    """(X, Y) in epoch ``epoch``'s order: permuted, seeded by (seed, epoch, rank), with
    ``shuffle``; rank 0 draws what a single process draws, so one rank trains as no comm does."""
    if not shuffle:
        return X, Y
    seed = [net.seed, epoch] + ([comm.rank] if comm is not None and comm.rank else [])
    perm = net.backend.asarray(np.random.default_rng(seed).permutation(X.shape[0]), "int64")
    return net.xp.take(X, perm, axis=0), net.xp.take(Y, perm, axis=0)


def optimizer_for(optimizer, lr=None, *, momentum=0.9, nesterov=False, beta1=0.9, beta2=0.999, eps=1e-8):
    """The Optimizer ``fit`` uses: ``optimizer`` itself if it is one, else the named one with
    its own hyper-parameters picked from the rest; ``lr`` None takes the name's default."""
    name = getattr(optimizer, "name", optimizer)
    own = {"momentum": dict(momentum=momentum, nesterov=nesterov),
           "adam": dict(beta1=beta1, beta2=beta2, eps=eps)}.get(name, {})
    return make_optimizer(optimizer, DEFAULT_LR.get(name, 0.1) if lr is None else lr, **own)


def _step_within_memory(net, opt, X, Y, chunk_size, comm=None):
    """(J, chunk_size): ``net.step``, retried in ever smaller chunks if the device runs out
    of memory; the chunk size that worked is kept for the steps after. A step that runs
    out of memory fails before its update (and before its all-reduce), so the weights are
    untouched."""
    while True:
        try:
            return net.step(X, Y, opt, chunk_size, comm), chunk_size
        except net.backend.out_of_memory:
            m = X.shape[0]
            smaller = max(1, (chunk_size or m) // 2)
            if smaller == chunk_size or m == 1:
                raise
        # Outside the except block, which still holds the failed attempt's arrays.
        net.release_buffers()
        net.backend.release_memory()
        warnings.warn(f"out of device memory for a batch of {m}; retrying with chunk_size={smaller} "
                      "(the same D, computed in parts)", RuntimeWarning, stacklevel=4)
        chunk_size = smaller


@contextlib.contextmanager
def _closing(bar):
    """Close the progress bar (if any) however training ends."""
    try:
        yield
    finally:
        if bar is not None:
            bar.close()


def _progress(total):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover — tqdm is a dependency; stay usable without it
        return None
    return tqdm(total=total, unit="epoch", dynamic_ncols=True)
