"""Network behaviour that mutation testing (scripts/mutation_check.sh) showed no test held:
the memory promises of the flat-buffer step (kept buffers, chunks, the bounded cache),
chunk_size_for's arithmetic, config/clone, and the argument names in messages.

Each test here failed on at least one surviving mutant of bpgpu/network.py; docs/testing.md
lists the mutants and the equivalent ones that no test can tell apart.
"""

from __future__ import annotations

import numpy as np
import pytest

import bpgpu
from bpgpu.optimizers import SGD
from opcount import CountingBackend


def data(m, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n_in)), rng.standard_normal((m, n_out))


def test_chunk_size_for_is_the_budget_over_a_rows_bytes():
    """a row costs itemsize·(Σ sizes + 3·max sizes) bytes: [3, 5, 2] is 8·(10 + 15) = 200 in float64"""
    net64 = bpgpu.Network([3, 5, 2])
    assert net64.chunk_size_for(1000) == 5
    assert net64.chunk_size_for(1199) == 5  # rounded down: a chunk must fit
    assert net64.chunk_size_for(1200) == 6
    assert net64.chunk_size_for(199) == 1  # never 0 rows
    assert bpgpu.Network([3, 5, 2], dtype="float32").chunk_size_for(1000) == 10
    with pytest.raises(ValueError, match=r"^memory_budget: expected a number >= 1, got 0$"):
        net64.chunk_size_for(0)


def test_a_chunked_step_keeps_buffers_of_chunk_rows_only():
    """chunk_size=4 on 10 rows: the buffers kept are for 4 and 2 rows, never the whole batch"""
    net = bpgpu.Network([3, 5, 2])
    X, Y = net.batch(*data(10))
    net.step(X, Y, SGD(0.1), chunk_size=4)
    assert sorted(net._workspaces.kept) == [2, 4]


def test_steps_keep_their_buffers_and_one_off_calls_do_not():
    """a training step reuses the buffers of its batch size; loss_and_gradients keeps none"""
    net = bpgpu.Network([3, 5, 2])
    net.loss_and_gradients(*data(7))
    assert net._workspaces.kept == {}
    X, Y = net.batch(*data(6))
    net.step(X, Y, SGD(0.1))
    kept = net._workspaces.kept[6]
    net.step(X, Y, SGD(0.1))
    assert net._workspaces.kept[6] is kept


def test_at_most_four_batch_sizes_keep_buffers_the_oldest_dropped_first():
    net = bpgpu.Network([3, 5, 2])
    opt = SGD(0.1)
    for m in (2, 3, 4, 5, 6):
        X, Y = net.batch(*data(m))
        net.step(X, Y, opt)
    assert sorted(net._workspaces.kept) == [3, 4, 5, 6]


def test_the_least_recently_used_batch_size_gives_up_its_buffers():
    """sizes 2, 3, 4, 5 kept; 2 used again; a fifth size 6 evicts 3 (least recently used), not 2 (oldest inserted)"""
    net = bpgpu.Network([3, 5, 2])
    opt = SGD(0.1)
    batches = {m: net.batch(*data(m)) for m in (2, 3, 4, 5, 6)}
    for m in (2, 3, 4, 5):
        net.step(*batches[m], opt)
    kept = net._workspaces.kept[2]
    for m in (2, 6):
        net.step(*batches[m], opt)
    assert sorted(net._workspaces.kept) == [2, 4, 5, 6]
    assert net._workspaces.kept[2] is kept


def test_release_buffers_then_a_chunked_step_gives_the_same_D():
    net = bpgpu.Network([3, 5, 2], lam=0.1)
    X, Y = net.batch(*data(9))
    _, before = net.loss_and_gradients(X, Y, chunk_size=4)
    net.release_buffers()
    assert net._workspaces.kept == {}
    _, after = net.loss_and_gradients(X, Y, chunk_size=4)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_a_step_without_bias_allocates_nothing():
    """no bias: no vector of ones is made, and no bias gradient 1ᵀ·d computed into a new array"""
    backend = CountingBackend()
    net = bpgpu.Network([4, 6, 2], activation="tanh", output="identity", bias=False, backend=backend)
    X, Y = net.batch(*data(8, 4, 2))
    opt = SGD(0.1)
    for _ in range(2):
        net.step(X, Y, opt)
    with backend.counting() as tally:
        net.step(X, Y, opt)
    assert tally.allocations == 0, dict(tally.names)
    # a(l)·W(l)ᵀ for 2 layers, dᵀ·a(l) for 2, d·W(1), and J = ½‖d‖² as one dot product:
    # no 1ᵀ·d without a bias
    assert (tally.names["matmul"], tally.names["dot"]) == (5, 1), dict(tally.names)


def test_lambda_zero_costs_no_operations():
    """λ = 0 skips the penalty: fewer operations a step than any λ > 0"""
    counts = {}
    for lam in (0.0, 0.1):
        backend = CountingBackend()
        net = bpgpu.Network([4, 6, 2], output="identity", lam=lam, backend=backend)
        X, Y = net.batch(*data(8, 4, 2))
        opt = SGD(0.1)
        net.step(X, Y, opt)
        with backend.counting() as tally:
            net.step(X, Y, opt)
        counts[lam] = tally.ops
    assert counts[0.0] < counts[0.1]


def test_evaluate_hands_its_chunk_size_on(monkeypatch):
    net = bpgpu.Network([3, 5, 2])
    X, Y = data(9)
    seen = []
    real = net.loss_of
    monkeypatch.setattr(net, "loss_of", lambda X, Y, chunk_size=None, comm=None, sample_weight=None:
                        seen.append(chunk_size) or real(X, Y, chunk_size, comm, sample_weight))
    chunked = net.evaluate(X, Y, chunk_size=4)
    assert seen == [4]
    assert chunked == pytest.approx(net.evaluate(X, Y), rel=1e-14)
    with pytest.raises(ValueError, match=r"^chunk_size: expected a number >= 1, got 0$"):
        net.evaluate(X, Y, chunk_size=0)


def test_forward_names_X_in_its_message():
    with pytest.raises(ValueError, match=r"^X: expected 3 columns"):
        bpgpu.Network([3, 5, 2]).forward(np.ones((2, 4)))


def test_config_rebuilds_dtype_seed_and_tf32_setting():
    net = bpgpu.Network([3, 5, 2], dtype="float32", seed=7, allow_tf32=False)
    cfg = net.config()
    assert (cfg["dtype"], cfg["seed"], cfg["allow_tf32"]) == ("float32", 7, False)
    twin = bpgpu.Network(**cfg)
    for a, b in zip(twin.thetas, net.thetas):
        np.testing.assert_array_equal(a, b)  # seed 7's weights, not seed 0's


def test_clone_keeps_the_backend_object_or_moves_to_the_one_named():
    backend = CountingBackend()  # a backend object, not a name: clone must keep this one
    net = bpgpu.Network([3, 5, 2], backend=backend)
    assert net.clone().backend is backend
    strict = net.clone(backend="array_api_strict")
    assert strict.backend.name == "array_api_strict"
    np.testing.assert_array_equal(np.asarray(strict.backend.to_host(strict.thetas[0])), net.thetas[0])
    assert net.clone(dtype="float32").dtype == "float32"


def test_clone_hands_the_device_on():
    """a device for a NumPy network is refused, so clone(device=...) must pass it on to be refused"""
    with pytest.raises(ValueError, match=r"^device: only backend='cupy'"):
        bpgpu.Network([3, 5, 2]).clone(backend="numpy", device=0)


# Each argument named first in its message, exactly: tests elsewhere match a substring, which a
# renamed argument ("XXlossXX") still contains.
CONSTRUCTOR_ERRORS = [
    (dict(activation="bad"), ValueError, "activation: expected one of"),
    (dict(activation=["relu", "tanh"]), ValueError, "activation: expected one name or 1"),
    (dict(output="bad"), ValueError, "output: expected one of"),
    (dict(loss="bad"), ValueError, "loss: expected one of"),
    (dict(loss="cross_entropy", output="identity"), ValueError, "output: loss='cross_entropy' expects"),
    (dict(output="softmax", sizes=[3, 1]), ValueError, "output: 'softmax' expects at least 2 output units"),
    (dict(lam=-1), ValueError, "lam: expected a number >= 0.0, got -1"),
    (dict(bias=1), TypeError, "bias: expected True or False, got 1"),
    (dict(dtype="float16"), ValueError, "dtype: expected one of"),
    (dict(device=-1), ValueError, "device: expected a number >= 0, got -1"),
    (dict(device=1.5), TypeError, "device: expected an integer"),
    (dict(backend="bad"), ValueError, "backend: expected one of"),
    (dict(backend="nump"), ValueError, "backend: expected one of ('numpy', 'cupy', 'auto', 'array_api_strict'), "
                                       "got 'nump' (did you mean 'numpy'?)"),
    (dict(seed=-1), ValueError, "seed: expected a number >= 0, got -1"),
    (dict(allow_tf32=1), TypeError, "allow_tf32: expected True, False or None, got 1"),
]


@pytest.mark.parametrize("kwargs, error, message", CONSTRUCTOR_ERRORS, ids=lambda c: str(c)[:40])
def test_constructor_messages_start_with_the_argument(kwargs, error, message):
    kwargs = dict(kwargs)
    sizes = kwargs.pop("sizes", [3, 4, 2])
    with pytest.raises(error) as raised:
        bpgpu.Network(sizes, **kwargs)
    assert str(raised.value).startswith(message), str(raised.value)


def test_default_seed_is_0():
    for a, b in zip(bpgpu.Network([3, 4, 2]).thetas, bpgpu.Network([3, 4, 2], seed=0).thetas):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(bpgpu.Network([3, 4, 2]).thetas[0], bpgpu.Network([3, 4, 2], seed=1).thetas[0])


def test_initial_weights_are_glorot_uniform_or_he_normal_into_relu_with_zero_biases():
    """the constructor's documented initialisation, drawn on the host from default_rng(seed)"""
    sizes = [4, 6, 5, 3]
    net = bpgpu.Network(sizes, activation=["relu", "tanh"], output="sigmoid", seed=5)
    rng = np.random.default_rng(5)
    he = rng.standard_normal((6, 4)) * np.sqrt(2.0 / 4)
    glorot = [rng.uniform(-np.sqrt(6.0 / 11), np.sqrt(6.0 / 11), (5, 6)),
              rng.uniform(-np.sqrt(6.0 / 8), np.sqrt(6.0 / 8), (3, 5))]
    for theta, W in zip(net.thetas, [he] + glorot, strict=True):
        np.testing.assert_array_equal(theta[:, 0], 0.0)
        np.testing.assert_allclose(theta[:, 1:], W, rtol=1e-15, atol=0)


class TF32Recorder(CountingBackend):
    def __init__(self):
        super().__init__()
        self.tf32 = []

    def set_tf32(self, allowed):
        self.tf32.append(allowed)


@pytest.mark.parametrize("allow_tf32, calls", [(None, []), (False, [False]), (True, [True])])
def test_allow_tf32_none_leaves_the_setting_alone(allow_tf32, calls):
    backend = TF32Recorder()
    bpgpu.Network([3, 2], backend=backend, allow_tf32=allow_tf32)
    assert backend.tf32 == calls


def test_a_new_network_has_no_optimiser_to_continue():
    """warm_start on a network never fitted starts a fresh optimiser"""
    net = bpgpu.Network([3, 2])
    assert net.optimizer is None
    net.fit(*data(4, 3, 2), epochs=1, optimizer="adam", warm_start=True)
    assert net.optimizer.t == 1


def test_split_takes_host_vectors_on_any_backend():
    """split (and param_shapes, which splits a host vector) on an array-API network"""
    pytest.importorskip("array_api_strict")
    net = bpgpu.Network([3, 4, 2], backend="array_api_strict")
    assert net.param_shapes() == [(4, 3), (4,), (2, 4), (2,)]
    W0, b0, W1, b1 = net.split(np.arange(net.n_params, dtype=float))
    assert W0[1, 0] == 3 and b0[0] == 20 and W1[0, 0] == 12 and b1[1] == 25
