"""fit's behaviour that mutation testing (scripts/mutation_check.sh) showed no test held:
the exact refusal of each option, the defaults, the progress bar, memory_budget and
chunk_size reaching the step, max_time's deadline, Ctrl-C, and a huge but finite weight sum.
docs/testing.md lists the mutants and the equivalent ones.
"""

from __future__ import annotations

import os
import re
import signal
import warnings

import numpy as np
import pytest

import bpgpu

X4, Y4 = np.zeros((4, 2)), np.zeros((4, 1))
PAIR = (X4, Y4)

FIT_ERRORS = [
    (dict(epochs=0), ValueError, "epochs: expected a number >= 1, got 0"),
    (dict(epochs=1.5), TypeError, "epochs: expected an integer, got 1.5 (float)"),
    (dict(batch_size=0), ValueError, "batch_size: expected a number >= 1, got 0"),
    (dict(batch_size=2.5), TypeError, "batch_size: expected an integer, got 2.5 (float)"),
    (dict(max_time=0), ValueError, "max_time: expected a number > 0.0, got 0"),
    (dict(max_time=-1.0), ValueError, "max_time: expected a number > 0.0, got -1.0"),
    (dict(target_loss="a"), TypeError, "target_loss: expected a number, got 'a' (str)"),
    (dict(target_loss=float("nan")), ValueError, "target_loss: expected a finite number, got nan"),
    (dict(patience=0, validation_data=PAIR), ValueError, "patience: expected a number >= 1, got 0"),
    (dict(patience=1.5, validation_data=PAIR), TypeError, "patience: expected an integer, got 1.5 (float)"),
    (dict(chunk_size=0), ValueError, "chunk_size: expected a number >= 1, got 0"),
    (dict(chunk_size=1.5), TypeError, "chunk_size: expected an integer, got 1.5 (float)"),
    (dict(initial_epoch=-1), ValueError, "initial_epoch: expected a number >= 0, got -1"),
    (dict(initial_epoch=0.5), TypeError, "initial_epoch: expected an integer, got 0.5 (float)"),
    (dict(on_nonfinite="x"), ValueError, "on_nonfinite: expected one of ('stop', 'raise'), got 'x'"),
    (dict(callback=3), TypeError, "callback: expected a function callback(epoch, history), got 3"),
    (dict(patience=2), ValueError,
     "patience: early stopping watches the validation loss; pass validation_data=(X_val, Y_val) too"),
    (dict(validation_data=(X4,)), TypeError, "validation_data: expected a pair (X_val, Y_val), got tuple"),
    (dict(validation_data=X4), TypeError, "validation_data: expected a pair (X_val, Y_val), got ndarray"),
    (dict(validation_data=(np.zeros((4, 3)), Y4)), ValueError, "validation_data[0]: expected 2 columns, got shape (4, 3)"),
    (dict(validation_data=(X4, np.zeros((4, 2)))), ValueError, "validation_data[1]: expected 1 columns, got shape (4, 2)"),
    (dict(device=0), ValueError,
     "device: the network is on the CPU (backend 'numpy'), which has no devices; got device=0: build it with "
     "backend='cupy' to train on a GPU"),
    (dict(device=-1), ValueError, "device: expected a number >= 0, got -1"),
    (dict(device=0.5), TypeError, "device: expected an integer, got 0.5 (float)"),
    (dict(warm_start=1), TypeError, "warm_start: expected True or False, got 1"),
    (dict(memory_budget=0), ValueError, "memory_budget: expected a number >= 1, got 0"),
]


# Plain ids: str() of a dict holding arrays has line breaks, which broke mutmut's test names.
@pytest.mark.parametrize("options, error, message", FIT_ERRORS,
                         ids=[f"{i}-{'-'.join(options)}" for i, (options, _, _) in enumerate(FIT_ERRORS)])
def test_each_option_is_refused_by_name_before_training(options, error, message):
    net = bpgpu.Network([2, 1])
    before = net.thetas
    with pytest.raises(error) as raised:
        net.fit(X4, Y4, **{"epochs": 1, **options})
    assert str(raised.value) == message
    for a, b in zip(net.thetas, before):
        np.testing.assert_array_equal(a, b)


def test_the_smallest_allowed_values_are_allowed():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((5, 2)), rng.random((5, 1))
    history = bpgpu.Network([2, 1]).fit(X, Y, epochs=1, batch_size=1, chunk_size=1, patience=1,
                                        validation_data=(X, Y), initial_epoch=0)
    assert (history.epochs, history.steps) == (1, 5)


def test_defaults_are_100_epochs_quietly(capsys):
    history = bpgpu.Network([2, 1]).fit(X4, Y4)
    assert history.epochs == 100 and history.stop_reason == "epochs"
    assert capsys.readouterr().err == ""


def test_verbose_shows_a_closed_bar_over_the_epochs_left(capsys):
    bpgpu.Network([2, 1]).fit(X4, Y4, epochs=5, initial_epoch=2, verbose=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "5/" not in err
    assert re.search(r"[\d?]epoch/s|s/epoch", err), err  # the bar's unit
    assert err.endswith("\n")  # closed: tqdm ends the bar's line when it closes


@pytest.mark.parametrize("how", ["chunk_size", "memory_budget"])
def test_chunk_size_and_memory_budget_reach_the_step(how):
    """[3, 5, 2] float64 costs 200 bytes a row, so 800 bytes are chunks of 4: 10 rows in 4, 4, 2"""
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((10, 3)), rng.random((10, 2))
    net, plain = bpgpu.Network([3, 5, 2]), bpgpu.Network([3, 5, 2])
    net.fit(X, Y, epochs=2, **({"chunk_size": 4} if how == "chunk_size" else {"memory_budget": 800}))
    plain.fit(X, Y, epochs=2)
    assert sorted(net._workspaces.kept) == [2, 4]
    for a, b in zip(net.thetas, plain.thetas):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_adam_eps_reaches_the_optimiser():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((6, 2)), rng.random((6, 1))
    nets = [bpgpu.Network([2, 1]) for _ in range(2)]
    nets[0].fit(X, Y, epochs=1, optimizer="adam", lr=0.1)
    with pytest.warns(DeprecationWarning, match=r"bpgpu\.Adam\(lr=\.\.\., eps=1\.0\)"):  # fit's argument of old
        nets[1].fit(X, Y, epochs=1, optimizer="adam", lr=0.1, eps=1.0)
    assert nets[1].optimizer.eps == 1.0
    assert not np.allclose(nets[0].thetas[0], nets[1].thetas[0], rtol=1e-3)


def test_max_time_stops_within_the_epoch_after_the_step_that_passes_it():
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((5, 2)), rng.random((5, 1))
    history = bpgpu.Network([2, 1]).fit(X, Y, epochs=1000, batch_size=1, max_time=1e-9)
    assert (history.stop_reason, history.epochs, history.steps, history.samples) == ("max_time", 0, 1, 1)


def test_a_first_ctrl_c_stops_after_the_step_and_a_second_interrupts():
    """in the main thread over Python's default handler: the first SIGINT asks fit to stop,
    a second raises KeyboardInterrupt at once, and the default handler is back afterwards"""
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((5, 2)), rng.random((5, 1))

    def ctrl_c(epoch, history):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)

    def twice(epoch, history):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    # The default handler, whatever runs the tests installed: fit takes over only that one.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        try:
            history = bpgpu.Network([2, 1]).fit(X, Y, epochs=10, callback=ctrl_c)
        except KeyboardInterrupt:  # a failure, not an interrupted test run
            pytest.fail("the first Ctrl-C interrupted fit instead of asking it to stop")
        assert (history.stop_reason, history.epochs) == ("interrupted", 2)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            bpgpu.Network([2, 1]).fit(X, Y, epochs=10, callback=twice)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_programs_own_sigint_handler_is_left_alone():
    seen = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        history = bpgpu.Network([2, 1]).fit(X4, Y4, epochs=3,
                                            callback=lambda e, h: os.kill(os.getpid(), signal.SIGINT))
        assert history.stop_reason == "epochs" and seen == [signal.SIGINT] * 3
    finally:
        signal.signal(signal.SIGINT, previous)


def test_weights_whose_sum_overflows_are_not_a_divergence():
    """each weight finite (1e308) but Σ inf: fit looks at the weights one by one and goes on;
    the relu layer is dead (negative weights, positive inputs), so the loss stays finite"""
    net = bpgpu.Network([1, 2, 1], activation="relu", output="identity", bias=False)
    net.set_thetas([[[-1.0], [-1.0]], [[1e308, 1e308]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = net.fit(np.ones((3, 1)), np.zeros((3, 1)), epochs=2, lr=0.1)
    assert history.stop_reason == "epochs" and history.nonfinite_at is None
    np.testing.assert_array_equal(net.thetas[1], [[1e308, 1e308]])


def test_the_divergence_warning_says_what_happened_and_what_to_do():
    net = bpgpu.Network([2, 3, 1], output="identity")
    X = np.full((4, 2), 1e3)
    with pytest.warns(bpgpu.training.DivergenceWarning) as caught:
        net.fit(X, np.zeros((4, 1)), epochs=50, lr=1e6)
    message = str(caught[0].message)
    assert message.startswith("training diverged: non-finite loss or weights at epoch ")
    assert message.endswith("; the last good weights were restored (try a smaller lr)")


def test_optimizer_for_defaults_are_the_textbook_ones():
    from bpgpu.training import optimizer_for

    momentum, adam = optimizer_for("momentum"), optimizer_for("adam")
    assert (momentum.lr, momentum.momentum, momentum.nesterov) == (0.1, 0.9, False)
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps) == (0.001, 0.9, 0.999, 1e-8)
    assert optimizer_for("sgd").lr == 0.5


def test_patience_counts_epochs_whose_validation_loss_is_never_finite():
    """patience=2 and a validation loss that is inf from the start: two epochs, then stop"""
    X = np.ones((4, 2))
    history = bpgpu.Network([2, 1], output="identity").fit(
        X, np.zeros((4, 1)), epochs=10, validation_data=(X, np.full((4, 1), 1e300)), patience=2)
    assert (history.epochs, history.stop_reason, history.best_epoch) == (2, "early_stopping", None)


def test_out_of_memory_on_two_rows_retries_one_at_a_time_and_says_so(monkeypatch):
    """the fallback goes down to one row (a batch of 2 is not yet the end), and its warning
    says so in these words (which line it points at is not asserted: mutmut's trampolines
    add stack frames, so a stacklevel check would fail every mutant run)"""
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((2, 2)), rng.random((2, 1))
    net, twin = bpgpu.Network([2, 1]), bpgpu.Network([2, 1])
    real = net.step

    def step(X, Y, optimizer, chunk_size=None, comm=None, sample_weight=None):
        if min(chunk_size or X.shape[0], X.shape[0]) > 1:
            raise MemoryError("out of memory")
        return real(X, Y, optimizer, chunk_size, comm, sample_weight)

    monkeypatch.setattr(net, "step", step)
    with pytest.warns(RuntimeWarning) as caught:
        net.fit(X, Y, epochs=2)
    twin.fit(X, Y, epochs=2)
    assert str(caught[0].message) == ("out of device memory for a batch of 2; retrying with chunk_size=1 "
                                      "(the same D, computed in parts)")
    for a, b in zip(net.thetas, twin.thetas):
        np.testing.assert_allclose(a, b, rtol=1e-12)
