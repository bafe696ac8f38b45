"""Learning-rate schedules (bpgpu.schedules): what each does to an optimiser's lr."""

import numpy as np
import pytest

import bpgpu
from bpgpu import schedules


def test_invscaling_follows_its_formula():
    opt = bpgpu.SGD(0.3)
    rule = schedules.InvScaling(0.3, power_t=0.25)
    for seen in (0, 10, 1000):
        rule.epoch_ends(opt, seen)
        assert opt.lr == 0.3 / (seen + 1) ** 0.25
    assert rule.plateau(opt) is True and opt.lr == 0.3 / 1001**0.25


def test_adaptive_divides_on_a_plateau_until_min_lr():
    opt = bpgpu.SGD(1e-5)
    rule = schedules.Adaptive(factor=5.0, min_lr=1e-6)
    rule.epoch_ends(opt, 100)
    assert opt.lr == 1e-5
    assert rule.plateau(opt) is False and opt.lr == 1e-5 / 5
    assert rule.plateau(opt) is False and opt.lr == 1e-5 / 5 / 5
    assert rule.plateau(opt) is True and opt.lr == 1e-5 / 5 / 5  # at or below min_lr: stop, lr kept


def test_constant_never_changes_lr():
    opt = bpgpu.Adam(0.01)
    rule = schedules.SCHEDULES["constant"]()
    rule.epoch_ends(opt, 50)
    assert rule.plateau(opt) is True and opt.lr == 0.01


def test_a_schedule_drives_fit_through_its_callback():
    """The schedule changes the lr fit uses from the next epoch on: the same weights as
    fitting epoch by epoch with the scheduled lr set by hand."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((16, 3)), rng.random((16, 1))
    net, twin = bpgpu.Network([3, 4, 1], seed=1), bpgpu.Network([3, 4, 1], seed=1)
    opt, rule = bpgpu.SGD(0.5), schedules.InvScaling(0.5, power_t=0.5)
    net.fit(X, Y, epochs=3, optimizer=opt, callback=lambda e, h: rule.epoch_ends(opt, (e + 1) * 16))
    manual = bpgpu.SGD(0.5)
    for e in range(3):
        twin.fit(X, Y, epochs=1, optimizer=manual)
        manual.lr = 0.5 / ((e + 1) * 16 + 1) ** 0.5
    assert opt.lr == manual.lr
    for got, expected in zip(net.thetas, twin.thetas, strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("make, words", [(lambda: schedules.InvScaling(0.0), "lr0"),
                                          (lambda: schedules.Adaptive(factor=1.0), "factor"),
                                          (lambda: schedules.Adaptive(min_lr=-1), "min_lr")])
def test_bad_schedule_arguments_are_refused_naming_them(make, words):
    with pytest.raises(ValueError, match=words):
        make()


def test_plateau_counts_epochs_without_an_improvement_over_tol_as_scikit_learn_does():
    plateau = schedules.Plateau(tol=0.1, patience=2)
    # 1.0 is the best; 0.95 and 0.91 improve on it by less than tol (stale, the best moves); 0.5 resets.
    said = [plateau.update(loss) for loss in (1.0, 0.95, 0.91, 0.5, 0.45, 0.44, 0.43, 0.2)]
    assert said == [False, False, False, False, False, False, True, False]
    assert (plateau.best, plateau.stale) == (0.2, 0)
    again = schedules.Plateau(tol=0.1, patience=2, best=0.2, stale=2)  # its state carries over
    assert again.update(0.2) is True


def test_plateau_refuses_a_negative_tol_or_patience():
    with pytest.raises(ValueError, match="tol"):
        schedules.Plateau(tol=-1.0)
    with pytest.raises((ValueError, TypeError), match="patience"):
        schedules.Plateau(patience=1.5)
