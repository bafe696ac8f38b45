"""loss="poisson": the half Poisson deviance with the log link (output "exp"), against
scikit-learn's MLPRegressor(loss="poisson") and torch's PoissonNLLLoss on the same weights."""

import warnings

import numpy as np
import pytest

import bpgpu

SIZES = [4, 6, 3, 2]


def problem(seed=0, m=30):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, SIZES[0]))
    Y = rng.poisson(1.5, (m, SIZES[-1])).astype(float)  # zeros included: 0·log 0 = 0
    net = bpgpu.Network(SIZES, activation="tanh", output="exp", loss="poisson", lam=0.3, seed=seed)
    net.set_thetas([0.5 * rng.standard_normal(t.shape) for t in net.thetas])
    return net, X, Y


def test_J_and_D_are_scikit_learns_on_the_same_weights():
    """J and D equal scikit-learn's _loss_grad_lbfgs for loss="poisson" (≤ 1e-12, float64)"""
    sk = pytest.importorskip("sklearn.neural_network")
    net, X, Y = problem()
    theirs = sk.MLPRegressor(loss="poisson", hidden_layer_sizes=SIZES[1:-1], activation="tanh", alpha=0.3,
                             solver="lbfgs", max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.fit(X, Y)  # sets out_activation_ = "exp" and the packing offsets
    coefs = [t[:, 1:].T for t in net.thetas]
    intercepts = [t[:, 0] for t in net.thetas]
    packed = np.hstack([a.ravel() for a in coefs + intercepts])
    n = len(coefs)
    J_theirs, g_theirs = theirs._loss_grad_lbfgs(packed, X, Y, None, [X] + [None] * n, [None] * n, [None] * n, [None] * n)
    J, D = net.loss_and_gradients(X, Y)
    ours = np.hstack([d[:, 1:].T.ravel() for d in D] + [d[:, 0] for d in D])
    assert J == pytest.approx(J_theirs, rel=1e-12)
    np.testing.assert_allclose(ours, g_theirs, rtol=1e-12, atol=1e-14)


def test_J_and_D_are_torchs_poisson_nll_up_to_its_constant():
    """torch's PoissonNLLLoss(log_input=True) is exp(z) − y·z; the deviance adds y·log y − y"""
    torch = pytest.importorskip("torch")
    net, X, Y = problem(1)
    net.lam = 0.0
    layers = []
    for theta in net.thetas:
        lin = torch.nn.Linear(theta.shape[1] - 1, theta.shape[0]).double()
        lin.weight.data, lin.bias.data = torch.tensor(theta[:, 1:]), torch.tensor(theta[:, 0])
        layers += [lin, torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers[:-1])
    z = model(torch.tensor(X))
    m = X.shape[0]
    nll = torch.nn.PoissonNLLLoss(log_input=True, reduction="sum")(z, torch.tensor(Y)) / m
    nll.backward()
    constant = float(np.sum(np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0)), 0.0) - Y)) / m
    J, D = net.loss_and_gradients(X, Y)
    assert J == pytest.approx(float(nll.detach()) + constant, rel=1e-12)
    for lin, d in zip(layers[::2], D):
        np.testing.assert_allclose(d[:, 1:], lin.weight.grad.numpy(), rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(d[:, 0], lin.bias.grad.numpy(), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(net.predict(X), np.exp(z.detach().numpy()), rtol=1e-13)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_gradient_check_passes(dtype):
    net, X, Y = problem(2)
    assert bpgpu.gradient_check(net.clone(dtype=dtype), X, Y) < 1e-7


def test_a_perfect_fit_costs_nothing():
    """The half deviance is 0 where a = y, and y = 0 contributes a (0·log 0 = 0)"""
    net = bpgpu.Network([1, 1], output="exp", loss="poisson", bias=True)
    net.set_thetas([[[np.log(3.0), 0.0]]])
    assert net.evaluate([[1.0], [2.0]], [[3.0], [3.0]]) == pytest.approx(0.0, abs=1e-15)
    assert net.evaluate([[1.0]], [[0.0]]) == pytest.approx(3.0, rel=1e-15)


def test_negative_targets_and_other_outputs_are_refused():
    net, X, Y = problem()
    Y[3, 1] = -2.0
    with pytest.raises(ValueError, match=r"Y: loss='poisson' expects targets ≥ 0 .*minimum of -2"):
        net.fit(X, Y, epochs=1)
    with pytest.raises(ValueError, match=r"output: loss='poisson' expects an output in \('exp',\), got 'identity'"):
        bpgpu.Network(SIZES, output="identity", loss="poisson")


def test_mlp_regressor_with_poisson_fits_counts_and_refuses_negative_targets():
    pytest.importorskip("sklearn")
    from bpgpu.sklearn import MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (200, 1))
    y = rng.poisson(np.exp(X[:, 0] + 1))
    est = MLPRegressor(loss="poisson", hidden_layer_sizes=(1,), activation="identity", alpha=0, solver="lbfgs",
                       tol=1e-7, random_state=1).fit(X, y)
    assert est.out_activation_ == "exp" and est.network_.loss == "poisson"
    assert np.all(est.predict(X) > 0)
    with pytest.raises(ValueError, match="y: loss='poisson' expects targets >= 0"):
        MLPRegressor(loss="poisson").fit(X, -y - 1.0)
