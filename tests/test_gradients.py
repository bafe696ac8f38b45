"""Backpropagation's D against central differences, against PyTorch autograd, and chunked
against unchunked.

``bpgpu.gradient_check`` is relative to the largest gradient; in float64 it must be
≤ 1e-7. Relu and a relu output are not differentiable at z = 0: every network here is
checked to keep each relu pre-activation at least ``KINK_MARGIN`` away from 0, far more
than a perturbation of 1e-6 in one weight can move it, so the central differences
never straddle a kink. (Hypothesis rejects the rare draws that come closer.)

Central differences lose about ε_mach·J/eps to rounding, so where every gradient is
tiny against J they measure their own rounding, not backpropagation: random draws with
max|D| < 0.01·J (~3 % of them) are rejected too. Over 1,500 accepted draws the worst
error was 5e-9.
"""

import numpy as np
import pytest

import bpgpu
from bpgpu.activations import HIDDEN, OUTPUT_ACTIVATIONS, OUTPUTS
from bpgpu.losses import CROSS_ENTROPY_OUTPUTS
from parity import relative_error, targets

GRADCHECK_TOL = 1e-7
KINK_MARGIN = 1e-3
OUTPUT_LOSSES = ([(output, "mse") for output in OUTPUTS]
                 + [(output, "cross_entropy") for output in CROSS_ENTROPY_OUTPUTS])


def random_network(config, m, seed, dtype="float64", scale=0.8):
    """(net, X, Y): weights and biases N(0, scale²), inputs N(0, 1), targets valid for the loss."""
    net = bpgpu.Network(**config, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    net.set_thetas([scale * rng.standard_normal(shape) for shape in net.theta_shapes()])
    X = rng.standard_normal((m, net.sizes[0]))
    return net, X, targets(rng, net.output, m, net.sizes[-1])


def kink_distance(net, X) -> float:
    """The smallest |z| over every relu unit (hidden or output) and example; inf if none.

    Recomputes the forward pass on the host, independently of the core."""
    a, closest = np.asarray(X, dtype=float), np.inf
    for l, theta in enumerate(net.thetas):
        theta = net.backend.to_host(theta).astype(float)
        b, W = (theta[:, 0], theta[:, 1:]) if net.bias else (0.0, theta)
        z = a @ W.T + b
        g = (net.activations + [net.output])[l]
        if g == "relu":
            closest = min(closest, float(np.min(np.abs(z))))
        a = OUTPUT_ACTIVATIONS[g](z, np)
    return closest


def away_from_kinks(config, m):
    """``random_network`` for the first seed from 11 on whose relu units keep KINK_MARGIN
    (a relu layer without bias whose inputs are all 0 puts z exactly at the kink)."""
    for seed in range(11, 111):
        net, X, Y = random_network(config, m, seed)
        if kink_distance(net, X) >= KINK_MARGIN:
            return net, X, Y
    raise AssertionError(f"no seed keeps {config} away from relu's kink")


@pytest.fixture
def hypothesis():
    """The hypothesis module, imported by the tests that use it (the others in this file
    run without it)."""
    return pytest.importorskip("hypothesis")


def architectures(st):
    """A strategy for Network arguments: 1–3 layers of 1–4 units, an activation per hidden
    layer, a valid output/loss pair, bias or not, λ (``st``: hypothesis.strategies)."""

    @st.composite
    def architecture(draw):
        depth = draw(st.integers(1, 3))
        sizes = draw(st.lists(st.integers(1, 4), min_size=depth + 1, max_size=depth + 1))
        output, loss = draw(st.sampled_from(OUTPUT_LOSSES))
        if output == "softmax":
            sizes[-1] = max(sizes[-1], 2)
        activation = draw(st.lists(st.sampled_from(HIDDEN), min_size=depth - 1, max_size=depth - 1))
        return dict(sizes=sizes, activation=activation, output=output, loss=loss,
                    bias=draw(st.booleans()), lam=draw(st.sampled_from([0.0, 0.1, 1.0])))

    return architecture()


def test_gradient_check_random_architectures(hypothesis):
    st, assume = hypothesis.strategies, hypothesis.assume

    @hypothesis.settings(max_examples=200)
    @hypothesis.given(config=architectures(st), m=st.integers(1, 6), seed=st.integers(0, 2**32 - 1),
                      dtype=st.sampled_from(["float64", "float32"]))
    def check(config, m, seed, dtype):
        # A float32 network is checked in float64 (gradient_check clones it): its formulas, not its rounding.
        net, X, Y = random_network(config, m, seed, dtype)
        assume(kink_distance(net, X) >= KINK_MARGIN)
        J, D = net.loss_and_gradients(X, Y)
        assume(max(float(np.max(np.abs(Dl))) for Dl in D) >= 0.01 * J)
        assert bpgpu.gradient_check(net, X, Y) <= GRADCHECK_TOL

    check()


@pytest.mark.parametrize("lam", [0.0, 0.5])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("output, loss", OUTPUT_LOSSES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_gradient_check_every_combination(activation, output, loss, bias, lam):
    config = dict(sizes=[3, 4, 3, 3], activation=activation, output=output, loss=loss, bias=bias, lam=lam)
    net, X, Y = away_from_kinks(config, m=5)
    assert bpgpu.gradient_check(net, X, Y) <= GRADCHECK_TOL


@pytest.mark.parametrize("output", sorted(set(OUTPUTS) - set(CROSS_ENTROPY_OUTPUTS)))
def test_cross_entropy_needs_a_sigmoid_or_softmax_output(output):
    with pytest.raises(ValueError, match=r"output: loss='cross_entropy' expects an output in .*got '" + output):
        bpgpu.Network([2, 3, 2], output=output, loss="cross_entropy")


def test_chunked_D_equals_unchunked(hypothesis):
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=60)
    @hypothesis.given(config=architectures(st), m=st.integers(1, 40), chunk_size=st.integers(1, 50),
                      seed=st.integers(0, 2**32 - 1))
    def check(config, m, chunk_size, seed):
        net, X, Y = random_network(config, m, seed)
        J, D = net.loss_and_gradients(X, Y)
        Jc, Dc = net.loss_and_gradients(X, Y, chunk_size=chunk_size)
        assert relative_error(Jc, J) <= 1e-12
        for Dl, Dcl in zip(D, Dc, strict=True):
            assert relative_error(Dcl, Dl) <= 1e-12
        assert relative_error(net.evaluate(X, Y, chunk_size=chunk_size), J) <= 1e-12

    check()


# -- PyTorch float64 autograd as an independent reference (micrograd's test style) --------

TORCH_CONFIGS = [
    dict(sizes=[4, 5, 3], activation="tanh", output="sigmoid", loss="mse"),
    dict(sizes=[4, 5, 4, 3], activation="relu", output="softmax", loss="cross_entropy", lam=0.1),
    dict(sizes=[4, 5, 3], activation="sigmoid", output="softmax", loss="mse", bias=False),
    dict(sizes=[4, 6, 2], activation="identity", output="sigmoid", loss="cross_entropy", lam=0.5),
    dict(sizes=[4, 5, 5, 1], activation=["relu", "tanh"], output="identity", loss="mse", lam=0.01),
    dict(sizes=[4, 3, 2], activation="sigmoid", output="relu", loss="mse", bias=False, lam=0.2),
]


def torch_loss(torch, net, thetas, X, Y):
    """(J, a(L)) written out in PyTorch, from the formulation in README.md."""
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
           "identity": lambda z: z, "softmax": lambda z: torch.softmax(z, dim=1)}
    m, a = X.shape[0], X
    weights = []
    for theta, g in zip(thetas, net.activations + [net.output], strict=True):
        W = theta[:, 1:] if net.bias else theta
        z = a @ W.T + (theta[:, 0] if net.bias else 0.0)
        a = act[g](z)
        weights.append(W)
    if net.loss == "mse":
        J = 0.5 * ((a - Y) ** 2).sum() / m
    elif net.output == "sigmoid":
        J = torch.nn.functional.binary_cross_entropy_with_logits(z, Y, reduction="sum") / m
    else:
        J = -(Y * torch.log_softmax(z, dim=1)).sum() / m
    return J + net.lam / (2 * m) * sum((W**2).sum() for W in weights), a


@pytest.mark.parametrize("config", TORCH_CONFIGS, ids=lambda c: f"{c['activation']}-{c['output']}-{c['loss']}")
def test_J_and_D_match_pytorch_autograd(config):
    torch = pytest.importorskip("torch")
    net, X, Y = away_from_kinks(config, m=7)
    thetas = [torch.tensor(t, dtype=torch.float64, requires_grad=True) for t in net.thetas]
    J_ref, A_ref = torch_loss(torch, net, thetas, torch.tensor(X), torch.tensor(Y))
    J_ref.backward()
    J, D = net.loss_and_gradients(X, Y)
    assert relative_error(net.forward(X), A_ref.detach().numpy()) <= 1e-12
    assert relative_error(J, J_ref.item()) <= 1e-12
    for Dl, theta in zip(D, thetas, strict=True):
        assert relative_error(Dl, theta.grad.numpy()) <= 1e-12
