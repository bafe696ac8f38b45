"""Exact resume from any stop: a run stopped at any step (``max_time``, ``stop()``, a
callback), saved, loaded and resumed reaches bit for bit the weights, optimiser state,
losses and stopping point of the run that never stopped — for every optimiser, with and
without validation and patience."""

import numpy as np
import pytest

import bpgpu
from bpgpu.io import persistence
from bpgpu.position import Position

RELIABILITY = "resume"

OPTIMIZERS = {"sgd": lambda: bpgpu.SGD(lr=0.3), "momentum": lambda: bpgpu.Momentum(lr=0.05),
              "nesterov": lambda: bpgpu.Momentum(lr=0.05, nesterov=True), "adam": lambda: bpgpu.Adam(lr=0.03)}
EPOCHS = 14


def problem():
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((23, 3)), rng.random((23, 2))
    # Validation targets unrelated to X: the validation loss soon stops improving (patience acts).
    return X, Y, (rng.standard_normal((11, 3)), rng.random((11, 2)))


def network(dtype="float64"):
    return bpgpu.Network([3, 6, 2], activation="tanh", output="sigmoid", dtype=dtype, seed=3)


def fit_options(optimizer, watch):
    X, Y, validation = problem()
    options = dict(batch_size=5, optimizer=OPTIMIZERS[optimizer]())  # a fresh optimiser each call
    if watch == "validation":
        options["validation_data"] = validation
    elif watch == "patience":
        options.update(validation_data=validation, patience=2)
    return X, Y, options


def assert_same_run(net, opt, history, whole, whole_opt, whole_history):
    for got, expected in zip(net.thetas, whole.thetas, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert opt.t == whole_opt.t
    for key, arrays in whole_opt.state.items():
        np.testing.assert_array_equal(opt.state[key], arrays)
    assert (history["loss"], history["val_loss"]) == (whole_history.loss, whole_history.val_loss)
    assert (history["stop_reason"], history["best_epoch"]) == (whole_history.stop_reason, whole_history.best_epoch)


def uninterrupted(optimizer, watch):
    X, Y, options = fit_options(optimizer, watch)
    whole = network()
    whole_history = whole.fit(X, Y, epochs=EPOCHS, **options)
    return whole, whole.optimizer, whole_history


def merged(parts):
    return {"loss": [J for h in parts for J in h.loss], "val_loss": [J for h in parts for J in h.val_loss],
            "stop_reason": parts[-1].stop_reason, "best_epoch": parts[-1].best_epoch}


@pytest.mark.parametrize("watch", [None, "validation", "patience"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_stopped_after_every_step_and_resumed_from_its_file_is_the_uninterrupted_run(optimizer, watch, tmp_path):
    """max_time=1e-9 stops each fit after one step; each is saved with its position, loaded and resumed."""
    X, Y, options = fit_options(optimizer, watch)
    whole, whole_opt, whole_history = uninterrupted(optimizer, watch)
    net, opt, position, parts = network(), options.pop("optimizer"), None, []
    while True:
        history = net.fit(X, Y, epochs=EPOCHS, optimizer=opt, max_time=1e-9, resume=position, **options)
        parts.append(history)
        assert history.steps == 1 and history.epochs == (history.part is None)
        if history.stop_reason != "max_time" or history.position.epoch == EPOCHS:
            break
        persistence.save(net, tmp_path / "c.npz", optimizer=opt, position=history.position)
        c = persistence.load_checkpoint(tmp_path / "c.npz")
        net, opt, position = c.network, c.optimizer, c.position
    assert sum(h.steps for h in parts) == whole_history.steps and sum(h.epochs for h in parts) == whole_history.epochs
    # The last step passes the deadline too: the run ends as "max_time" after its last epoch.
    assert_same_run(net, opt, {**merged(parts), "stop_reason": whole_history.stop_reason if parts[-1].stop_reason
                               == "max_time" else parts[-1].stop_reason}, whole, whole_opt, whole_history)
    if watch == "patience":
        assert whole_history.stop_reason == "early_stopping" and whole_history.epochs < EPOCHS


@pytest.mark.parametrize("watch", [None, "patience"])
@pytest.mark.parametrize("stopped_by", ["stop", "callback"])
def test_stopped_by_stop_or_a_callback_resumes_exactly(stopped_by, watch):
    """stop() after step 7 (a part epoch: 5 steps an epoch), or a callback at epoch 2; resumed from history.position"""
    X, Y, options = fit_options("adam", watch)
    whole, whole_opt, whole_history = uninterrupted("adam", watch)
    net = network()
    steps = []
    how = {"stop": lambda: steps.append(1) or len(steps) == 7} if stopped_by == "stop" else \
        {"callback": lambda epoch, history: epoch == 2}
    first = net.fit(X, Y, epochs=EPOCHS, **options, **how)
    assert (first.epochs, first.part is not None) == ((1, True) if stopped_by == "stop" else (3, False))
    rest = net.fit(X, Y, epochs=EPOCHS, **{**options, "optimizer": net.optimizer}, resume=first.position)
    assert_same_run(net, net.optimizer, merged([first, rest]), whole, whole_opt, whole_history)


def test_a_part_epoch_is_reported_apart_with_its_own_loss():
    """7 steps of 5-example batches: epoch 1 stopped after 2 steps; its loss is the mean J of those 10 examples"""
    X, Y, options = fit_options("sgd", None)
    steps = []
    history = network().fit(X, Y, epochs=EPOCHS, **options, stop=lambda: steps.append(1) or len(steps) == 7)
    assert (history.epochs, history.steps, history.samples, len(history.loss)) == (1, 7, 33, 1)
    part = history.part
    assert (part["epoch"], part["steps"], part["samples"]) == (1, 2, 10)
    assert part["loss"] == pytest.approx(sum(history.position.losses) / 2, rel=1e-15)
    assert part["loss"] != pytest.approx(sum(history.position.losses) * 5 / 23)  # not weighted by the whole epoch


def test_a_resumed_part_epoch_must_fit_the_batches():
    X, Y, options = fit_options("sgd", None)
    history = network().fit(X, Y, epochs=EPOCHS, **options, max_time=1e-9)
    with pytest.raises(ValueError, match="resume: the run stopped after 1 steps"):
        network().fit(X, Y, epochs=EPOCHS, **{**options, "batch_size": 4}, resume=history.position)
    with pytest.raises(ValueError, match="initial_epoch: resume starts at epoch 0, got initial_epoch=3"):
        network().fit(X, Y, epochs=EPOCHS, **options, resume=history.position, initial_epoch=3)
    with pytest.raises(TypeError, match="resume: expected a bpgpu.position.Position"):
        network().fit(X, Y, epochs=EPOCHS, **options, resume=3)


@pytest.mark.parametrize("start", [dict(initial_epoch=5), dict(initial_epoch=6), dict(resume=Position(epoch=5))])
def test_no_epoch_left_to_train_is_refused(start):
    X, Y, options = fit_options("sgd", None)
    done = start.get("initial_epoch", 5)
    with pytest.raises(ValueError, match=f"epochs: expected more than the {done} epochs already done .*got epochs=5"):
        network().fit(X, Y, epochs=5, **options, **start)
