"""dropout=: inverted dropout of hidden units, masks drawn on the device from the seed, the
same masks in the backward pass, none in forward/predict/evaluate; checked against central
differences and torch with the masks held fixed, resumed exactly, saved with the model."""

import numpy as np
import pytest

import bpgpu

SIZES = [4, 7, 5, 2]


def problem(dropout=(0.3, 0.5), seed=0, m=24, **kw):
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((m, SIZES[0])), rng.random((m, SIZES[-1]))
    kw = {"activation": ["relu", "sigmoid"], "output": "identity", **kw}
    return bpgpu.Network(SIZES, dropout=list(dropout), seed=seed, **kw), X, Y


def test_masks_keep_each_unit_with_probability_one_minus_p_scaled():
    net, _, _ = problem((0.25, 0.0))
    M, none = net.dropout_masks(4000)
    assert none is None and M.shape == (4000, 7)
    assert set(np.unique(M)) == {0.0, 1.0 / 0.75}
    assert abs(np.mean(M > 0) - 0.75) < 0.02  # 28,000 draws: 5 standard deviations
    again, _ = net.dropout_masks(4000)
    assert not np.array_equal(M, again)  # each draw its own
    twin, _, _ = problem((0.25, 0.0))
    assert np.array_equal(twin.dropout_masks(4000)[0], M)  # the seed decides


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "identity"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_gradient_check_passes_with_the_masks_held(activation, dtype):
    net, X, Y = problem(activation=activation, dtype=dtype)
    assert bpgpu.gradient_check(net, X, Y) < 1e-7


def test_a_one_unit_layer_under_dropout_takes_the_mask():
    """The one-unit shortcut (an outer product joined with g′) is skipped for a masked layer"""
    rng = np.random.default_rng(3)
    net = bpgpu.Network([3, 4, 1, 2], activation="tanh", output="identity", dropout=0.5)
    assert bpgpu.gradient_check(net, rng.standard_normal((9, 3)), rng.random((9, 2))) < 1e-7


def test_J_and_D_are_torchs_with_the_same_masks():
    torch = pytest.importorskip("torch")
    net, X, Y = problem(lam=0.0)
    masks = net.dropout_masks(X.shape[0])
    J, D = net.loss_and_gradients(X, Y, masks=masks)
    lins = []
    for theta in net.thetas:
        lin = torch.nn.Linear(theta.shape[1] - 1, theta.shape[0]).double()
        lin.weight.data, lin.bias.data = torch.tensor(theta[:, 1:]), torch.tensor(theta[:, 0])
        lins.append(lin)
    a = torch.tensor(X)
    for lin, g, M in zip(lins[:-1], (torch.relu, torch.sigmoid), masks):
        a = g(lin(a)) * torch.tensor(M)  # torch's dropout: input · mask/(1 − p)
    out = lins[-1](a)
    loss = 0.5 * ((out - torch.tensor(Y)) ** 2).sum() / X.shape[0]
    loss.backward()
    assert J == pytest.approx(float(loss.detach()), rel=1e-12)
    for lin, d in zip(lins, D):
        np.testing.assert_allclose(d[:, 1:], lin.weight.grad.numpy(), rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(d[:, 0], lin.bias.grad.numpy(), rtol=1e-11, atol=1e-14)


def test_forward_predict_and_evaluate_use_no_dropout():
    net, X, Y = problem()
    plain = bpgpu.Network(SIZES, activation=["relu", "sigmoid"], output="identity", seed=0)
    assert np.array_equal(net.predict(X), plain.predict(X))
    assert net.evaluate(X, Y) == plain.evaluate(X, Y)
    assert net.dropout_draws == 0  # nothing drawn
    J, _ = net.loss_and_gradients(X, Y)  # the training gradient: draws
    assert net.dropout_draws == 1 and J != plain.evaluate(X, Y)


def test_a_chunked_step_takes_the_same_masks():
    net, X, Y = problem()
    masks = net.dropout_masks(X.shape[0])
    J, D = net.loss_and_gradients(X, Y, masks=masks)
    Jc, Dc = net.loss_and_gradients(X, Y, masks=masks, chunk_size=5)
    assert Jc == pytest.approx(J, rel=1e-14)
    for d, dc in zip(D, Dc):
        np.testing.assert_allclose(dc, d, rtol=1e-13, atol=1e-16)


def test_training_steps_draw_new_masks_and_a_seed_repeats_them():
    a, X, Y = problem()
    b, _, _ = problem()
    ha = a.fit(X, Y, epochs=3, batch_size=8, lr=0.1)
    hb = b.fit(X, Y, epochs=3, batch_size=8, lr=0.1)
    assert a.dropout_draws == 9 and ha.loss == hb.loss and np.array_equal(a.params, b.params)
    c, _, _ = problem((0.0, 0.0))
    assert c.fit(X, Y, epochs=3, batch_size=8, lr=0.1).loss != ha.loss


def test_a_run_resumed_from_a_checkpoint_is_the_uninterrupted_one(tmp_path):
    """The Position carries the masks' draw count, so the resumed run draws the same masks"""
    whole, X, Y = problem()
    h_whole = whole.fit(X, Y, epochs=6, batch_size=7, optimizer="adam", lr=0.01)
    first, _, _ = problem()
    h_first = first.fit(X, Y, epochs=3, batch_size=7, optimizer="adam", lr=0.01)
    assert h_first.position.dropout_draws == 12
    bpgpu.save(first, tmp_path / "m.npz", optimizer=first.optimizer, position=h_first.position)
    ck = bpgpu.load_checkpoint(tmp_path / "m.npz")
    assert ck.network.dropout == [0.3, 0.5] and ck.position.dropout_draws == 12
    h_rest = ck.network.fit(X, Y, epochs=6, batch_size=7, optimizer=ck.optimizer, resume=ck.position)
    assert h_rest.loss == h_whole.loss[3:]
    assert np.array_equal(ck.network.params, whole.params)


def test_saved_with_the_model_and_absent_from_a_model_without(tmp_path):
    net, X, _ = problem((0.2, 0.0))
    bpgpu.save(net, tmp_path / "d.npz")
    back = bpgpu.load(tmp_path / "d.npz")
    assert back.dropout == [0.2, 0.0] and np.array_equal(back.predict(X), net.predict(X))
    assert "dropout" not in bpgpu.Network(SIZES).config()  # older bpgpu still reads those files


@pytest.mark.parametrize("dropout, message", [
    (1.0, r"dropout: expected rates in \[0, 1\).*got 1.0"),
    ([0.1], r"dropout: expected one rate or 2 \(one per hidden layer\), got 1"),
    ("0.5", r"dropout: expected rates in \[0, 1\).*got '0.5'"),
])
def test_bad_rates_are_refused(dropout, message):
    with pytest.raises(ValueError, match=message):
        bpgpu.Network(SIZES, dropout=dropout)


def test_masks_of_the_wrong_shape_are_refused():
    net, X, Y = problem()
    with pytest.raises(ValueError, match=r"masks: expected arrays of shape \(24, 7\)"):
        net.loss_and_gradients(X, Y, masks=[np.ones((3, 7)), None])
