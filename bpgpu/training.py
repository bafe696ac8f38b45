"""``fit``: the training loop as a short story over named parts.

The batch plan (:mod:`bpgpu.batches`), one epoch and its loss (:mod:`bpgpu.epoch`), the
stop rules (:mod:`bpgpu.stop_rules`), rollback on divergence and the resume Position
(:mod:`bpgpu.position`), the History (:mod:`bpgpu.history`). Data is staged on the device
once; inside an epoch nothing is brought to the host. docs/architecture.md has the long form.
"""

from __future__ import annotations

import contextlib
import warnings

from . import agreement, distributed, weights
from . import threads as cpu_threads
from . import validation as check
from .batches import BatchPlan
from .epoch import Epochs, epoch_loss
from .history import DivergenceError, DivergenceWarning, History  # noqa: F401 — their public home is here too
from .optimizers import CLASSES, make_optimizer
from .position import EarlyStopping, Position, Rollback
from .stop_rules import StopRules

ON_NONFINITE = ("stop", "raise")
VALIDATION_NAMES = ("validation_data[0]", "validation_data[1]")
DEFAULT_LR = {name: make_optimizer(name).lr for name in CLASSES}  # the classes' own defaults
# fit's arguments of old that belong to an optimiser: the optimiser whose they are.
DEPRECATED = {"momentum": "momentum", "nesterov": "momentum", "beta1": "adam", "beta2": "adam", "eps": "adam"}


def fit(net, X, Y, *, epochs=100, lr=None, batch_size=None, optimizer="sgd", shuffle=True, max_time=None,
        target_loss=None, validation_data=None, patience=None, chunk_size=None, memory_budget=None,
        on_nonfinite="stop", verbose=False, callback=None, initial_epoch=0, device=None, warm_start=False,
        comm=None, stop=None, resume=None, threads=None, sample_weight=None, class_weight=None, **deprecated):
    """Train ``net`` on (X, Y) by backpropagation; returns a :class:`History`.

    Args:
        X, Y: (m, sizes[0]) inputs and (m, sizes[-1]) targets.
        epochs: the epoch count to reach, including the ``initial_epoch`` epochs already done.
        lr: learning rate η of a named optimiser; default 0.5 for sgd (the seeds' η), 0.1
            momentum, 0.001 adam.
        batch_size: examples per step; None = the whole batch (batch gradient descent).
        optimizer: "sgd", "momentum", "adam" (their default hyper-parameters), or an
            :class:`~bpgpu.optimizers.Optimizer` such as ``bpgpu.Adam(lr=1e-3, beta1=0.8)``,
            which keeps its own lr, hyper-parameters and state (``lr`` is then ignored).
            ``momentum``, ``nesterov``, ``beta1``, ``beta2``, ``eps`` given to fit still work,
            deprecated (a DeprecationWarning names the optimiser object to build instead).
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
            ``batch_size`` is the global batch (:class:`~bpgpu.batches.BatchPlan`); one
            all-reduce per step. Every rank gets the same weights and History; a reason to
            stop on any rank stops all at the end of the same epoch. ``shuffle`` permutes
            each rank's rows, seeded by (seed, epoch, rank).
        stop: ``stop()`` after each step; True stops there as Ctrl-C does (stop_reason
            "interrupted"): how a program that handles its own signals asks fit to stop.
        resume: a :class:`~bpgpu.position.Position` (``history.position`` of a stopped fit,
            or a checkpoint's ``position``): continue exactly where that run stopped, within
            an epoch or not, its early-stopping state included (the weights and optimiser
            must be that run's: its network and ``optimizer``); it sets ``initial_epoch``.
            With the same data, options and ``epochs``, the weights are the uninterrupted run's.
        threads: CPU threads for matrix products and element-wise loops (capped at the cores);
            None: :func:`bpgpu.set_threads`' count if set, else decided from the step's shapes.
        sample_weight: (m,) weights sᵢ ≥ 0, shuffled with their rows: each step minimises
            (Σᵢ sᵢ·lossᵢ + ½λ‖W‖²) / Σᵢ sᵢ over its rows (scikit-learn's objective); a step
            whose weights sum to 0 is refused, as scikit-learn does. None: every weight 1.
        class_weight: "balanced" (m / (k·count) for each of the k classes present) or
            {class index or name: weight} (1 for classes not named), multiplying
            ``sample_weight``; for a softmax output or one sigmoid unit. Under MPI "balanced"
            counts every rank's rows.
    """
    comm = distributed.communicator(comm)
    with agreement.Pact(comm) as pact:  # one rank's error or other settings: the same error on every rank
        chunk_size = _check_options(net, epochs, batch_size, max_time, target_loss, patience, validation_data,
                                    on_nonfinite, chunk_size, memory_budget, initial_epoch, callback, stop, device)
        X, Y = net.batch(X, Y)
        w = weights.Pending(sample_weight, class_weight, Y, net)
        val = None if validation_data is None else net.batch(*validation_data, names=VALIDATION_NAMES)
        opt = _optimizer(net, optimizer, lr, warm_start, deprecated)
        pact.rows, pact.terms = X.shape[0], lambda: agreement.training_terms(
            net, opt, epochs=epochs, initial_epoch=initial_epoch, batch_size=batch_size, shuffle=shuffle,
            max_time=max_time, target_loss=target_loss, patience=patience, on_nonfinite=on_nonfinite,
            validation=validation_data is not None, balanced=isinstance(class_weight, str))
    net.optimizer, callback, stop = opt, agreement.held_back(comm, callback), agreement.held_back(comm, stop)
    plan = BatchPlan(X.shape[0], batch_size, shuffle, net.seed, net.backend, comm, pact.counts)
    steps, history = Epochs(net, opt, X, Y, plan, chunk_size, comm, w.stage(net.backend, net.dtype, comm)), History()
    start = Position.starting(initial_epoch, resume, epochs, plan.sizes)
    if resume is not None:
        net.dropout_draws = start.dropout_draws  # the masks continue where the stopped run's did
    watch, rollback, part = EarlyStopping(patience, start, net), Rollback(), (0, 0, [])  # part: (steps, rows, J)
    rules = StopRules(target_loss=target_loss, max_time=max_time, stop=stop, comm=comm)
    with net.backend.activate(), rules, net.backend.quiet_float_errors(), _threads(threads, net, plan), \
            _progress(verbose, epochs - start.epoch) as bar:
        for epoch in range(start.epoch, epochs):
            rollback.keep(net, opt)
            first, earlier = (start.step, start.losses) if epoch == start.epoch else (0, [])
            losses = steps.run(epoch, first, rules)
            done = first + len(losses)
            history.steps, history.samples = history.steps + len(losses), history.samples + sum(plan.sizes[first:done])
            result = epoch_loss(earlier, losses, [net.params], plan.sizes[:done], net.backend)
            if result.nonfinite is not None:
                rollback.restore(net, opt, result.nonfinite)
                history.nonfinite_at, history.stop_reason = {"epoch": epoch, "step": result.nonfinite[1]}, "nonfinite"
                break
            if done < plan.steps:  # stopped within the epoch: a part epoch, not a whole one
                part = (done, sum(plan.sizes[:done]), result.steps)
                history.part = {"epoch": epoch, "steps": done, "samples": part[1], "loss": result.loss}
                history.stop_reason = rules.within_epoch()
                break
            if val is not None:
                history.val_loss.append(float(net.loss_of(*val, steps.chunk_size, comm)))
                watch.improved(epoch, history.val_loss[-1], net, opt)
            history.stop_reason = _after_epoch(history, epoch, result.loss, watch, rules, callback, bar)
            if history.stop_reason == "early_stopping" and watch.best is not None:
                watch.best.restore(net, opt)  # None: no validation loss was ever finite; keep these
            if history.stop_reason:
                break
        else:
            history.stop_reason = "epochs"
    net.backend.synchronize()
    return _finished(history, watch, rules, watch.position(start.epoch + history.epochs, part), on_nonfinite)


def _threads(threads, net, plan):
    """The thread count of this fit's products and loops (:mod:`bpgpu.threads`), held while it runs."""
    return cpu_threads.limited(cpu_threads.for_fit(threads, net.sizes, max(plan.sizes, default=1)))


def _after_epoch(history, epoch, loss, watch, rules, callback, bar) -> str:
    """After whole epoch ``epoch`` (its validation loss already watched): its ``loss`` into
    ``history``, the progress bar, where the run stands (what a checkpoint written by the
    callback needs), the callback, and then why training stops here ("" to go on)."""
    history.loss.append(loss)
    history.epochs += 1
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=f"{history.loss[-1]:.4g}", samples_s=f"{history.samples / rules.elapsed():.3g}")
    history.position, history.elapsed, history.best_epoch = watch.position(epoch + 1), rules.elapsed(), watch.best_epoch
    asked = callback is not None and bool(callback(epoch, history))
    return rules.after_epoch(history.loss[-1], watch.exhausted, asked)


def _check_options(net, epochs, batch_size, max_time, target_loss, patience, validation_data, on_nonfinite,
                   chunk_size, memory_budget, initial_epoch, callback, stop, device) -> int | None:
    """Refuse what fit cannot do, naming the argument; returns the chunk size (``memory_budget``'s where given)."""
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
    if stop is not None and not callable(stop):
        raise TypeError(f"stop: expected a function stop() -> bool, got {stop!r}")
    _check_device(net, device)
    return chunk_size if memory_budget is None else net.chunk_size_for(memory_budget)


def _check_device(net, device) -> None:
    """``fit(device=)`` names the network's own device, or is None."""
    if device is None or check.number("device", device, low=0, integer=True) == net.device:
        return
    if net.device is None:
        raise ValueError(f"device: the network is on the CPU (backend {net.backend.name!r}), which has no devices; "
                         f"got device={device}: build it with backend='cupy' to train on a GPU")
    raise ValueError(f"device: the network's arrays are on device {net.device}, got device={device}; "
                     "train a copy there instead: net.clone(device=...)")


def _optimizer(net, optimizer, lr, warm_start, deprecated: dict):
    """The optimiser this fit steps: ``net.optimizer`` continued (``warm_start``), else
    :func:`optimizer_for`; checked against the network's parameters before any weight changes."""
    own = _deprecated(deprecated, optimizer)
    if check.flag("warm_start", warm_start) and net.optimizer is not None and isinstance(optimizer, str):
        if net.optimizer.name != optimizer:
            raise ValueError(f"warm_start: the last fit used optimizer {net.optimizer.name!r}, got optimizer="
                             f"{optimizer!r}; pass warm_start=False to start a fresh one")
        opt = net.optimizer
        if lr is not None:
            opt.lr = check.number("lr", lr, low=0.0, low_open=True)
    else:
        opt = optimizer_for(optimizer, lr, **own)
    opt.check_params(net.params)
    return opt


def _deprecated(given: dict, optimizer) -> dict:
    """fit's optimiser arguments of old (``momentum=``, ``beta1=``, …): still applied to a named
    optimiser, with a DeprecationWarning naming the optimiser object that takes them now."""
    unknown = [k for k in given if k not in DEPRECATED]
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {unknown[0]!r}")
    if given:
        cls = CLASSES[DEPRECATED[next(iter(given))]].__name__
        args = ", ".join(f"{k}={v!r}" for k, v in given.items())
        warnings.warn(f"fit({args}): optimiser hyper-parameters as fit's arguments are deprecated; pass "
                      f"optimizer=bpgpu.{cls}(lr=..., {args}) instead", DeprecationWarning, stacklevel=5)
    return given


def optimizer_for(optimizer, lr=None, **options):
    """The Optimizer ``fit`` uses: ``optimizer`` itself if it is one, else the named one with
    those of ``options`` (momentum, nesterov, beta1, beta2, eps) that are its own, its class's
    defaults for the rest; ``lr`` None takes the class's default."""
    name = getattr(optimizer, "name", optimizer)
    return make_optimizer(optimizer, lr, **{k: v for k, v in options.items() if DEPRECATED[k] == name})


def _finished(history, watch, rules, position, on_nonfinite: str):
    """``history`` completed (best epoch, time, where the run stands); a run stopped on a
    non-finite loss or weight raises DivergenceError or warns."""
    history.best_epoch, history.elapsed, history.position = watch.best_epoch, rules.elapsed(), position
    if history.stop_reason == "nonfinite":
        message = history.divergence_message() + " (try a smaller lr)"
        if on_nonfinite == "raise":
            raise DivergenceError(message)
        warnings.warn(message, DivergenceWarning, stacklevel=4)
    return history


@contextlib.contextmanager
def _progress(verbose: bool, total: int):
    """A tqdm progress bar of ``total`` epochs (None without ``verbose`` or tqdm), closed
    however training ends."""
    bar = None
    if verbose:
        try:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, unit="epoch", dynamic_ncols=True)
        except ImportError:  # pragma: no cover — tqdm is a dependency; stay usable without it
            pass
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()
