"""J and D against an independent reference: plain NumPy, one example at a time, explicit
loops, written from the formulation in README.md and the chain rule. It shares no code with bpgpu (nothing
is imported from it here), so an error made consistently in bpgpu's J and D — λ doubled in
both, the bias column regularised in both — shows up here, where gradient_check (which
differentiates bpgpu's own J) cannot see it.

The output layer's delta is not the formulation's shortcut (a − y) but the chain rule
written out, ∂L/∂z_j = Σ_k ∂L/∂a_k · ∂a_k/∂z_j, with the activation's Jacobian (diagonal
for element-wise outputs, a_k(δ_kj − a_j) for softmax): so the shortcut is checked too.
"""

import math

import numpy as np
import pytest

import bpgpu

HIDDEN = ("sigmoid", "tanh", "relu", "identity")
OUTPUT_LOSSES = [(o, "mse") for o in ("sigmoid", "tanh", "relu", "identity", "softmax")] + \
                [("sigmoid", "cross_entropy"), ("softmax", "cross_entropy")]
TOL = 1e-12


# -- the reference: one example at a time, scalar loops ----------------------------------

def g(name, z):
    """a = g(z) for one layer's pre-activations z (a 1-D array)."""
    if name == "softmax":
        e = [math.exp(v - max(z)) for v in z]
        return np.array([v / sum(e) for v in e])
    f = {"sigmoid": lambda v: 1.0 / (1.0 + math.exp(-v)), "tanh": math.tanh,
         "relu": lambda v: v if v > 0 else 0.0, "identity": lambda v: v}[name]
    return np.array([f(v) for v in z])


def jacobian(name, z, a):
    """∂a_k/∂z_j (k, j) of one layer."""
    n = len(z)
    J = np.zeros((n, n))
    for k in range(n):
        for j in range(n):
            if name == "softmax":
                J[k, j] = a[k] * ((k == j) - a[j])
            elif k == j:
                J[k, j] = {"sigmoid": a[k] * (1 - a[k]), "tanh": 1 - a[k] ** 2,
                           "relu": 1.0 if z[k] > 0 else 0.0, "identity": 1.0}[name]
    return J


def example_loss(loss, output, a, y):
    """(L, ∂L/∂a) of one example."""
    if loss == "mse":
        return sum(0.5 * (a[k] - y[k]) ** 2 for k in range(len(a))), np.array([a[k] - y[k] for k in range(len(a))])
    if output == "sigmoid":
        L = -sum(y[k] * math.log(a[k]) + (1 - y[k]) * math.log(1 - a[k]) for k in range(len(a)))
        return L, np.array([-y[k] / a[k] + (1 - y[k]) / (1 - a[k]) for k in range(len(a))])
    return -sum(y[k] * math.log(a[k]) for k in range(len(a))), np.array([-y[k] / a[k] for k in range(len(a))])


def reference(thetas, X, Y, activations, output, loss, lam, bias):
    """(J, D, A): the regularised loss, D(l) shaped like Theta(l), and the outputs a(L)."""
    L, m = len(thetas), len(X)
    splits = [(t[:, 0], t[:, 1:]) if bias else (np.zeros(t.shape[0]), t) for t in thetas]
    names = list(activations) + [output]
    Delta = [np.zeros_like(t) for t in thetas]
    total, outputs = 0.0, []
    for x, y in zip(X, Y):
        a, zs, As = np.array(x, dtype=float), [], [np.array(x, dtype=float)]
        for (b, W), name in zip(splits, names):
            z = np.array([b[k] + sum(W[k, j] * a[j] for j in range(W.shape[1])) for k in range(W.shape[0])])
            a = g(name, z)
            zs.append(z)
            As.append(a)
        outputs.append(a)
        Li, dL_da = example_loss(loss, output, a, y)
        total += Li
        Jac = jacobian(output, zs[-1], a)
        d = np.array([sum(dL_da[k] * Jac[k, j] for k in range(len(a))) for j in range(len(a))])
        for l in range(L - 1, -1, -1):
            a_prev = As[l]
            for k in range(len(d)):
                col = 0
                if bias:
                    Delta[l][k, 0] += d[k]
                    col = 1
                for j in range(len(a_prev)):
                    Delta[l][k, col + j] += d[k] * a_prev[j]
            if l > 0:
                W = splits[l][1]
                Jh = jacobian(names[l - 1], zs[l - 1], As[l])
                d = np.array([sum(d[k] * W[k, j] for k in range(len(d))) * Jh[j, j] for j in range(W.shape[1])])
    penalty = sum(float(np.sum(W ** 2)) for _, W in splits)
    J = total / m + lam / (2 * m) * penalty
    D = []
    for (b, W), Dl in zip(splits, Delta):
        reg = np.hstack([np.zeros((W.shape[0], 1)), W]) if bias else W
        D.append((Dl + lam * reg) / m)
    return J, D, np.array(outputs)


# -- comparisons -----------------------------------------------------------------------

def rel(got, ref):
    got, ref = np.asarray(got, dtype=float), np.asarray(ref, dtype=float)
    assert got.shape == ref.shape
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-300))


def random_problem(activation, output, loss, bias, seed, lam=0.3):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 4))  # weight layers: 0–2 hidden layers
    sizes = [int(s) for s in rng.integers(1, 5, depth + 1)]
    if output == "softmax":
        sizes[-1] = max(sizes[-1], 2)
    activations = [activation] * (depth - 1)
    net = bpgpu.Network(sizes, activation=activations, output=output, loss=loss, lam=lam, bias=bias, seed=seed)
    thetas = [0.8 * rng.standard_normal(s) for s in net.theta_shapes()]
    net.set_thetas(thetas)
    m = int(rng.integers(1, 7))
    X = rng.standard_normal((m, sizes[0]))
    if output == "softmax":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
        if loss == "mse":
            Y = rng.random((m, sizes[-1]))
    else:
        Y = rng.random((m, sizes[-1]))
    return net, thetas, X, Y, activations


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("output, loss", OUTPUT_LOSSES, ids=[f"{o}-{l}" for o, l in OUTPUT_LOSSES])
@pytest.mark.parametrize("activation", HIDDEN)
def test_J_and_D_match_the_per_example_reference(activation, output, loss, bias, seed):
    net, thetas, X, Y, activations = random_problem(activation, output, loss, bias, seed)
    J_ref, D_ref, A_ref = reference(thetas, X, Y, activations, output, loss, net.lam, bias)
    J, D = net.loss_and_gradients(X, Y)
    assert rel(net.predict(X), A_ref) <= TOL
    assert rel(J, J_ref) <= TOL
    assert rel(net.evaluate(X, Y), J_ref) <= TOL
    for Dl, Dl_ref in zip(D, D_ref, strict=True):
        assert rel(Dl, Dl_ref) <= TOL


@pytest.mark.parametrize("output, loss", OUTPUT_LOSSES, ids=[f"{o}-{l}" for o, l in OUTPUT_LOSSES])
def test_one_sgd_step_of_fit_uses_the_reference_D(output, loss):
    """fit's full-batch SGD step is Theta − η·D with the reference D, and its History
    records the reference J (the loss before the update)."""
    net, thetas, X, Y, activations = random_problem("tanh", output, loss, True, seed=7, lam=0.5)
    J_ref, D_ref, _ = reference(thetas, X, Y, activations, output, loss, net.lam, True)
    history = net.fit(X, Y, epochs=1, lr=0.1, batch_size=None, optimizer="sgd")
    assert rel(history.loss[0], J_ref) <= TOL
    for theta, t0, Dl in zip(net.thetas, thetas, D_ref, strict=True):
        assert rel(theta, t0 - 0.1 * Dl) <= TOL


def test_reference_itself_against_central_differences():
    """The reference's D is the derivative of its own J (so it is no copy of a mistake)."""
    rng = np.random.default_rng(0)
    thetas = [rng.standard_normal((3, 3)), rng.standard_normal((2, 4))]
    X, Y = rng.standard_normal((4, 2)), np.eye(2)[[0, 1, 1, 0]]
    args = (["tanh"], "softmax", "cross_entropy", 0.7, True)
    _, D, _ = reference(thetas, X, Y, *args)
    for l, theta in enumerate(thetas):
        for idx in np.ndindex(theta.shape):
            up = [t.copy() for t in thetas]
            down = [t.copy() for t in thetas]
            up[l][idx] += 1e-6
            down[l][idx] -= 1e-6
            numeric = (reference(up, X, Y, *args)[0] - reference(down, X, Y, *args)[0]) / 2e-6
            assert abs(numeric - D[l][idx]) <= 1e-8


# -- closed forms, small enough to check by hand ------------------------------------------

def test_one_linear_unit_with_lambda():
    """a = b + w·x, mse, λ = 2, x = (1, 2), y = (1, 0), b = 0.5, w = 1 (m = 2):
    e = a − y = (0.5, 2.5)
    J   = (0.5² + 2.5²)/(2·2) + λ/(2·2)·w²  = 1.625 + 0.5  = 2.125   (b not regularised)
    D_b = (0.5 + 2.5)/2                      = 1.5
    D_w = (0.5·1 + 2.5·2)/2 + λ·w/2          = 2.75 + 1.0  = 3.75
    """
    net = bpgpu.Network([1, 1], output="identity", loss="mse", lam=2.0)
    net.set_thetas([[[0.5, 1.0]]])
    J, D = net.loss_and_gradients([[1.0], [2.0]], [[1.0], [0.0]])
    assert J == pytest.approx(2.125, rel=1e-15)
    np.testing.assert_allclose(D[0], [[1.5, 3.75]], rtol=1e-15)
    assert net.evaluate([[1.0], [2.0]], [[1.0], [0.0]]) == pytest.approx(2.125, rel=1e-15)


def test_regularisation_never_touches_the_bias():
    """W = 0: λ changes neither J nor D, whatever the bias (here b = 3, so a regularised
    bias would add λ/(2m)·9 to J and λ·3/m to D_b)."""
    X, Y = [[1.0, -2.0], [0.5, 0.5]], [[0.2], [0.7]]
    values = []
    for lam in (0.0, 1.0):
        net = bpgpu.Network([2, 1], output="identity", loss="mse", lam=lam)
        net.set_thetas([[[3.0, 0.0, 0.0]]])
        values.append(net.loss_and_gradients(X, Y))
    (J0, D0), (J1, D1) = values
    assert J1 == J0 == pytest.approx(((3 - 0.2) ** 2 + (3 - 0.7) ** 2) / 4, rel=1e-15)
    np.testing.assert_array_equal(D1[0], D0[0])


def test_one_sigmoid_unit_with_cross_entropy_and_lambda():
    """x = (1, −1), w = (2, 2), b = 0: z = 0, a = ½; y = 1, m = 1, λ = 0.5:
    J   = −log ½ + λ/2·‖w‖² = log 2 + 2
    D_b = a − y = −½;   D_w = (a − y)·x + λ·w = (−½, ½) + (1, 1) = (½, 3/2)
    """
    net = bpgpu.Network([2, 1], output="sigmoid", loss="cross_entropy", lam=0.5)
    net.set_thetas([[[0.0, 2.0, 2.0]]])
    J, D = net.loss_and_gradients([[1.0, -1.0]], [[1.0]])
    assert J == pytest.approx(math.log(2) + 2, rel=1e-15)
    np.testing.assert_allclose(D[0], [[-0.5, 0.5, 1.5]], rtol=1e-15)


def test_two_layer_identity_network_without_bias_by_hand():
    """[1, 1, 1], identity everywhere, no bias: a = w2·w1·x. w1 = 2, w2 = 3, x = 1, y = 4,
    λ = 1, m = 1:  e = 6 − 4 = 2;  J = ½·2² + ½·(2² + 3²) = 2 + 6.5 = 8.5
    D_w2 = e·(w1·x) + λ·w2 = 4 + 3 = 7;   D_w1 = e·w2·x + λ·w1 = 6 + 2 = 8
    """
    net = bpgpu.Network([1, 1, 1], activation="identity", output="identity", loss="mse", lam=1.0, bias=False)
    net.set_thetas([[[2.0]], [[3.0]]])
    J, D = net.loss_and_gradients([[1.0]], [[4.0]])
    assert J == pytest.approx(8.5, rel=1e-15)
    assert float(D[0][0, 0]) == pytest.approx(8.0, rel=1e-15)
    assert float(D[1][0, 0]) == pytest.approx(7.0, rel=1e-15)
