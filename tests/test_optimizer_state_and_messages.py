"""Optimiser behaviour that mutation testing (scripts/mutation_check.sh) showed no test held:
what a pickle carries, the names of the state a checkpoint saves, and the hyper-parameter
names in messages. docs/testing.md lists the mutants and the equivalent ones.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import bpgpu
from bpgpu.optimizers import SGD, Adam, Momentum, make_optimizer


def stepped(optimizer, sizes=(3, 4, 2)):
    rng = np.random.default_rng(0)
    net = bpgpu.Network(list(sizes), seed=1)
    X, Y = net.batch(rng.standard_normal((6, sizes[0])), rng.random((6, sizes[-1])))
    net.step(X, Y, optimizer)
    return net, X, Y


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Momentum(0.1, nesterov=True), lambda: Adam(0.1)])
def test_a_pickle_carries_no_scratch_vectors(make):
    """the work vectors are as big as the network: a pickle drops them (SGD's pickle of a
    30 000-weight network then holds no array at all)"""
    opt = make()
    stepped(opt, sizes=(100, 300, 2))
    state_bytes = sum(a.nbytes for a in opt.state.values())
    assert len(pickle.dumps(opt)) < state_bytes + 20_000
    assert set(opt.__getstate__()) == set(opt.__dict__)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_an_unpickled_optimizer_updates_the_same_network(optimizer):
    """pickled and loaded in the same process, the copy steps the very network the
    original stepped (same parameter vector): it must update it as the original would"""
    opt = make_optimizer(optimizer, 0.1)
    net, X, Y = stepped(opt)
    twin = net.clone()
    copy = pickle.loads(pickle.dumps(opt))
    net.step(X, Y, copy)
    twin.step(X, Y, opt)
    for got, expected in zip(net.thetas, twin.thetas, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(net.thetas[0], stepped(make_optimizer(optimizer, 0.1))[0].thetas[0])


@pytest.mark.parametrize("optimizer, keys", [("sgd", []), ("momentum", ["velocity"]), ("adam", ["m", "v"])])
def test_saved_state_names(optimizer, keys):
    """checkpoints store the state under these names; another name is another format"""
    opt = make_optimizer(optimizer, 0.1)
    stepped(opt)
    assert sorted(opt.state_dict(np.asarray)["state"]) == keys


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(beta1=1.0), ValueError, "beta1: expected a number in [0, 1), got 1.0"),
    (dict(beta2=1.0), ValueError, "beta2: expected a number in [0, 1), got 1.0"),
    (dict(beta1=-0.1), ValueError, "beta1: expected a number >= 0.0, got -0.1"),
    (dict(beta2=-0.1), ValueError, "beta2: expected a number >= 0.0, got -0.1"),
    (dict(beta1="0.9"), TypeError, "beta1: expected a number"),
    (dict(eps=0.0), ValueError, "eps: expected a number > 0.0, got 0.0"),
])
def test_adam_messages_name_the_hyperparameter(kwargs, error, message):
    with pytest.raises(error) as raised:
        Adam(0.1, **kwargs)
    assert str(raised.value).startswith(message), str(raised.value)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(momentum=1.0), ValueError, "momentum: expected a number in [0, 1), got 1.0"),
    (dict(momentum=-0.5), ValueError, "momentum: expected a number >= 0.0, got -0.5"),
])
def test_momentum_messages_name_the_hyperparameter(kwargs, error, message):
    with pytest.raises(error) as raised:
        Momentum(0.1, **kwargs)
    assert str(raised.value).startswith(message), str(raised.value)


def test_lr_message():
    with pytest.raises(ValueError) as raised:
        SGD(0.0)
    assert str(raised.value).startswith("lr: expected a number > 0.0, got 0.0")


def test_state_for_another_architecture_is_refused_naming_the_optimiser_and_the_state():
    opt = Adam(0.1)
    stepped(opt)
    other = bpgpu.Network([3, 5, 2])
    with pytest.raises(ValueError) as raised:
        opt.check_params(other.params, name="warm_start")
    assert str(raised.value).startswith("warm_start: this Adam's state 'm' was made for parameters of shape (26,), the network's are (32,)"), \
        str(raised.value)


def test_make_optimizer_names_the_argument():
    with pytest.raises(ValueError) as raised:
        make_optimizer("rmsprop", 0.1)
    assert str(raised.value).startswith("optimizer: expected one of ('sgd', 'momentum', 'adam')"), str(raised.value)


def test_each_update_is_fused_once_per_optimiser(monkeypatch):
    """the fused update is made when the optimiser is bound, not at every step: on CuPy
    making one compiles it"""
    from bpgpu.backend import NumpyBackend

    made, plain = [], NumpyBackend.fuse
    monkeypatch.setattr(NumpyBackend, "fuse", lambda self, fn: made.append(fn.__name__) or plain(self, fn))
    opt = SGD(0.1)
    net, X, Y = stepped(opt)
    net.step(X, Y, opt)
    net.step(X, Y, opt)
    assert made.count("sgd") == 1 and opt.t == 3


def test_one_sgd_steps_networks_of_the_same_shape_on_two_backends():
    """SGD keeps no state, so one may step several networks; its scratch vectors belong to
    the arrays they were made for, not to a shape (here a NumPy and an array-API network)"""
    pytest.importorskip("array_api_strict")
    opt = SGD(0.1)
    net, X, Y = stepped(opt)
    strict = net.clone(backend="array_api_strict")
    reference = net.clone()
    Xs, Ys = strict.batch(np.asarray(X), np.asarray(Y))
    strict.step(Xs, Ys, opt)
    reference.step(X, Y, SGD(0.1))
    for got, expected in zip(strict.thetas, reference.thetas, strict=True):
        np.testing.assert_allclose(np.asarray(strict.backend.to_host(got)), expected, rtol=1e-13, atol=0)
