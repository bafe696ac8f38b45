"""bpgpu.activations.register and bpgpu.losses.register: functions written like the built-ins,
checked at registration, trained through (gradient check, torch), saved by name, and a model
that names an unregistered one refused with what to register."""

import numpy as np
import pytest

import bpgpu
from bpgpu import activations, losses

from custom_functions import DELTA, huber, huber_prime, register_examples, softplus, softplus_prime

register_examples()


def problem(seed=0, m=20, outputs=2):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, 3)), rng.random((m, outputs))


@pytest.mark.parametrize("output, loss", [("identity", "my_huber"), ("sigmoid", "my_huber"), ("softmax", "my_huber"),
                                          ("my_softplus", "mse"), ("my_softplus", "my_huber")])
def test_the_gradient_check_passes(output, loss):
    X, Y = problem()
    net = bpgpu.Network([3, 5, 4, 2], activation=["my_softplus", "tanh"], output=output, loss=loss, lam=0.1,
                        dropout=[0.2, 0.0])
    assert bpgpu.gradient_check(net, X, 3 * Y) < 1e-7  # 3·Y: some errors beyond δ


def test_J_and_D_are_torchs_softplus_and_huber():
    torch = pytest.importorskip("torch")
    X, Y = problem(1)
    Y = 4 * Y - 2
    net = bpgpu.Network([3, 5, 2], activation="my_softplus", output="identity", loss="my_huber")
    J, D = net.loss_and_gradients(X, Y)
    lins = []
    for theta in net.thetas:
        lin = torch.nn.Linear(theta.shape[1] - 1, theta.shape[0]).double()
        lin.weight.data, lin.bias.data = torch.tensor(theta[:, 1:]), torch.tensor(theta[:, 0])
        lins.append(lin)
    out = lins[1](torch.nn.functional.softplus(lins[0](torch.tensor(X))))
    loss = torch.nn.HuberLoss(reduction="sum", delta=DELTA)(out, torch.tensor(Y)) / X.shape[0]
    loss.backward()
    assert J == pytest.approx(float(loss.detach()), rel=1e-12)
    for lin, d in zip(lins, D):
        np.testing.assert_allclose(d[:, 1:], lin.weight.grad.numpy(), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(d[:, 0], lin.bias.grad.numpy(), rtol=1e-10, atol=1e-14)


def _wrong_prime(xp, d, a):
    d *= a  # softplus′ is 1 − e^−a, not a


def _wrong_huber_prime(xp, a, y, d):
    xp.subtract(a, y, out=d)  # unclipped


def test_a_wrong_derivative_is_refused_at_registration_naming_where():
    with pytest.raises(ValueError, match=r"derivative: 'bad_softplus''s derivative disagrees with central "
                                         r"differences at z = 2.914: got 2.96655, expected 0.94852"):
        activations.register("bad_softplus", softplus, _wrong_prime)
    with pytest.raises(ValueError, match="derivative: 'bad_huber''s derivative disagrees .* at a ="):
        losses.register("bad_huber", lambda xp, a, y, out: huber(xp, 40 * a, 40 * y, out), _wrong_huber_prime)
    assert "bad_softplus" not in activations.hidden() and "bad_huber" not in losses.names()


def _tanh_without_bias(xp, z, b):
    xp.tanh(z, out=z)


def test_names_and_functions_are_checked():
    with pytest.raises(ValueError, match="name: 'relu' is a built-in activation"):
        activations.register("relu", softplus, softplus_prime)
    with pytest.raises(ValueError, match="name: 'mse' is a built-in loss"):
        losses.register("mse", huber, huber_prime)
    with pytest.raises(TypeError, match="derivative: expected a function"):
        activations.register("soft", softplus, None)
    with pytest.raises(ValueError, match="forward: 'nobias' must compute g\\(z \\+ b\\)"):
        activations.register("nobias", _tanh_without_bias, activations.tanh_prime)


def test_a_saved_model_names_them_and_loading_without_the_registration_says_what_to_register(tmp_path, monkeypatch):
    X, Y = problem()
    net = bpgpu.Network([3, 4, 2], activation="my_softplus", output="identity", loss="my_huber")
    net.fit(X, Y, epochs=2)
    bpgpu.save(net, tmp_path / "m.npz")
    back = bpgpu.load(tmp_path / "m.npz")
    assert back.activations == ["my_softplus"] and back.loss == "my_huber"
    assert np.array_equal(back.predict(X), net.predict(X))
    monkeypatch.delitem(losses.REGISTERED, "my_huber")
    with pytest.raises(ValueError, match=r"loss: expected one of .*got 'my_huber'; one of your own must be registered "
                                         r"first.*bpgpu.losses.register\(name, ...\)"):
        bpgpu.load(tmp_path / "m.npz")
    monkeypatch.delitem(activations.REGISTERED, "my_softplus")
    with pytest.raises(ValueError, match=r"activation: .*got 'my_softplus'.*bpgpu.activations.register\(name, ...\)"):
        bpgpu.Network([3, 4, 2], activation="my_softplus")
