"""gradient_check must notice a wrong D. Each test wraps the public
``Network.loss_and_gradients`` (on the class: gradient_check works on a float64 clone of
the network it is given) so that it returns a D with one deliberate mistake, J left
right, and requires the error gradient_check reports to be about the size of the mistake.
"""

import numpy as np
import pytest

import bpgpu

CORRECT_TOL = 1e-7  # what tests/test_gradients.py accepts for a correct D


def problem(lam=0.5, bias=True, dtype="float64"):
    rng = np.random.default_rng(4)
    net = bpgpu.Network([3, 4, 2], activation="tanh", output="sigmoid", loss="cross_entropy",
                        lam=lam, bias=bias, dtype=dtype, seed=4)
    net.set_thetas([rng.standard_normal(s) for s in net.theta_shapes()])
    return net, rng.standard_normal((5, 3)), rng.random((5, 2))


def perturb(monkeypatch, change):
    """Make every Network's loss_and_gradients return ``change(net, m, D)`` as its D."""
    original = bpgpu.Network.loss_and_gradients

    def wrong(self, X, Y, *args, **kwargs):
        J, D = original(self, X, Y, *args, **kwargs)
        D = [np.array(self.backend.to_host(Dl), dtype=float) for Dl in D]
        change(self, np.shape(X)[0], D)
        return J, [self.backend.asarray(Dl, self.dtype) for Dl in D]

    monkeypatch.setattr(bpgpu.Network, "loss_and_gradients", wrong)


def true_D(net, X, Y):
    return [np.array(Dl) for Dl in net.loss_and_gradients(X, Y)[1]]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_correct_D_passes(dtype):
    net, X, Y = problem(dtype=dtype)
    assert bpgpu.gradient_check(net, X, Y) <= CORRECT_TOL


def test_lambda_term_doubled_in_D(monkeypatch):
    net, X, Y = problem()
    D = true_D(net, X, Y)
    scale = max(np.max(np.abs(Dl)) for Dl in D)
    mistake = max(np.max(np.abs(net.lam / 5 * np.array(t)[:, 1:])) for t in net.thetas)

    def double_lambda(self, m, D):
        for Dl, theta in zip(D, self.thetas):
            Dl[:, 1:] += self.lam / m * np.array(theta)[:, 1:]

    perturb(monkeypatch, double_lambda)
    error = bpgpu.gradient_check(net, X, Y)
    assert error == pytest.approx(mistake / scale, rel=1e-4)
    assert error > 0.05


def test_bias_regularised_in_D(monkeypatch):
    net, X, Y = problem()
    D = true_D(net, X, Y)
    scale = max(np.max(np.abs(Dl)) for Dl in D)
    mistake = max(np.max(np.abs(net.lam / 5 * np.array(t)[:, 0])) for t in net.thetas)

    def regularise_bias(self, m, D):
        for Dl, theta in zip(D, self.thetas):
            Dl[:, 0] += self.lam / m * np.array(theta)[:, 0]

    perturb(monkeypatch, regularise_bias)
    error = bpgpu.gradient_check(net, X, Y)
    assert error == pytest.approx(mistake / scale, rel=1e-4)
    assert error > 0.01


@pytest.mark.parametrize("layer, index", [(0, (0, 0)), (0, (3, 2)), (1, (1, 4))])
def test_one_entry_off_by_1e_4(monkeypatch, layer, index):
    net, X, Y = problem()
    scale = max(np.max(np.abs(Dl)) for Dl in true_D(net, X, Y))

    def off(self, m, D):
        D[layer][index] += 1e-4

    perturb(monkeypatch, off)
    error = bpgpu.gradient_check(net, X, Y)
    assert error == pytest.approx(1e-4 / scale, rel=1e-3)
    assert error > 100 * CORRECT_TOL


def test_float32_network_checked_with_the_same_mistake(monkeypatch):
    """A float32 network is checked in float64, so 1e-4 still stands out of the rounding."""
    net, X, Y = problem(dtype="float32")
    perturb(monkeypatch, lambda self, m, D: D[1].__setitem__((0, 0), D[1][0, 0] + 1e-4))
    assert bpgpu.gradient_check(net, X, Y) > 100 * CORRECT_TOL


@pytest.mark.parametrize("eps, error", [(0, ValueError), (-1e-6, ValueError), (float("nan"), ValueError),
                                        ("1e-6", TypeError)])
def test_eps_must_be_a_positive_number_and_the_message_names_it(eps, error):
    net, X, Y = problem()
    with pytest.raises(error, match=r"^eps: expected a "):
        bpgpu.gradient_check(net, X, Y, eps=eps)


def test_eps_sets_the_central_difference_step():
    """A huge step makes the central differences of a tanh/sigmoid network visibly wrong:
    the error gradient_check reports must grow with eps (it is not ignored)."""
    net, X, Y = problem()
    assert bpgpu.gradient_check(net, X, Y, eps=1e-6) <= CORRECT_TOL
    assert bpgpu.gradient_check(net, X, Y, eps=0.5) > 1e-3
