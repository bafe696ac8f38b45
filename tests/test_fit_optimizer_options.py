"""fit's optimiser: hyper-parameters on the optimiser object, names as shortcuts, and the
old keyword arguments (momentum, nesterov, beta1, beta2, eps) kept with a DeprecationWarning."""

import warnings

import numpy as np
import pytest

import bpgpu
from bpgpu import data
from bpgpu.training import DEFAULT_LR


def trained(**options):
    X, Y = data.spirals(60, 3, seed=1)
    net = bpgpu.Network([2, 6, 3], activation="tanh", output="softmax", loss="cross_entropy", seed=2)
    history = net.fit(X, Y, epochs=3, batch_size=16, **options)
    return net, history


@pytest.mark.parametrize("old, new", [
    (dict(optimizer="momentum", momentum=0.5, nesterov=True), bpgpu.Momentum(lr=0.1, momentum=0.5, nesterov=True)),
    (dict(optimizer="adam", beta1=0.8, beta2=0.99, eps=1e-6), bpgpu.Adam(lr=0.001, beta1=0.8, beta2=0.99, eps=1e-6)),
])
def test_old_keyword_arguments_warn_and_train_as_the_object_does(old, new):
    """fit(momentum=0.5) warns, naming bpgpu.Momentum(lr=..., momentum=0.5), and its weights are the object's"""
    cls = type(new).__name__
    with pytest.warns(DeprecationWarning, match=rf"pass optimizer=bpgpu\.{cls}\(lr=\.\.\., "):
        net_old, h_old = trained(**old)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        net_new, h_new = trained(optimizer=new)
    np.testing.assert_array_equal(net_old.params, net_new.params)
    assert h_old.loss == h_new.loss and net_old.optimizer.hyperparameters() == new.hyperparameters()


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_a_name_is_a_shortcut_with_the_default_lr(name):
    """optimizer="adam" is Adam with DEFAULT_LR["adam"] and default hyper-parameters, without a warning"""
    cls = {"sgd": bpgpu.SGD, "momentum": bpgpu.Momentum, "adam": bpgpu.Adam}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        by_name, _ = trained(optimizer=name)
    by_object, _ = trained(optimizer=cls(lr=DEFAULT_LR[name]))
    np.testing.assert_array_equal(by_name.params, by_object.params)
    assert by_name.optimizer.lr == DEFAULT_LR[name]


def test_an_unknown_keyword_is_still_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'beta3'"):
        trained(optimizer="adam", beta3=0.5)


def test_the_result_is_a_history():
    _, history = trained(optimizer="sgd")
    assert isinstance(history, bpgpu.History) and history.epochs == 3 and history.stop_reason == "epochs"
