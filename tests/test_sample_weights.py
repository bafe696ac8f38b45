"""Example weights sᵢ ≥ 0 (issue 23): J = (Σᵢ sᵢ·lossᵢ + ½λ‖W‖²) / Σᵢ sᵢ and its D, against an
independent per-example loop, rows given twice, central differences and PyTorch; unit
weights give the unweighted numbers bit for bit; chunks, shuffling, resuming and 2 ranks."""

import numpy as np
import pytest

import bpgpu
from bpgpu.batches import BatchPlan
from bpgpu.backend import get_backend
from bpgpu.weights import RowWeights
from mpirun import ROOT, run_ranks

LAM = 0.07
# (output, loss, units): every output delta of losses.OUTPUT_DELTA.
PAIRS = [("identity", "mse", 2), ("sigmoid", "mse", 2), ("tanh", "mse", 1), ("relu", "mse", 2),
         ("softmax", "mse", 3), ("sigmoid", "cross_entropy", 2), ("sigmoid", "cross_entropy", 1),
         ("softmax", "cross_entropy", 3)]


def problem(output, loss, k, m=9, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, 3))
    if output == "softmax" and loss == "cross_entropy":
        Y = np.eye(k)[rng.integers(0, k, m)]
    elif output == "softmax":
        Y = rng.uniform(size=(m, k))
        Y /= Y.sum(axis=1, keepdims=True)
    elif output == "sigmoid":
        Y = rng.uniform(size=(m, k)) if loss == "mse" else rng.integers(0, 2, (m, k)).astype(float)
    else:
        Y = rng.standard_normal((m, k))
    s = rng.uniform(0.0, 3.0, m)
    s[1] = 0.0
    net = bpgpu.Network([3, 4, k], activation="tanh", output=output, loss=loss, lam=LAM, seed=seed)
    return net, X, Y, s


def relative(got, want):
    return np.max(np.abs(np.asarray(got) - np.asarray(want))) / max(np.max(np.abs(want)), 1e-300)


# -- an independent reference: one example at a time ---------------------------------------

G = {"identity": lambda z: z, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh,
     "relu": lambda z: np.maximum(z, 0), "softmax": lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()}
G_PRIME = {"identity": lambda a: np.ones_like(a), "sigmoid": lambda a: a * (1 - a), "tanh": lambda a: 1 - a * a,
           "relu": lambda a: (a > 0).astype(float)}


def per_example_reference(thetas, output, loss, X, Y, s):
    """(J, D) by a plain loop over examples: each one's loss and gradient, times sᵢ, summed."""
    T0, T1 = thetas
    D0, D1, total = np.zeros_like(T0), np.zeros_like(T1), 0.0
    for x, y, si in zip(X, Y, s):
        h = np.tanh(T0 @ np.concatenate([[1.0], x]))
        a = G[output](T1 @ np.concatenate([[1.0], h]))
        e = a - y
        if loss == "mse":
            lossi = 0.5 * e @ e
            d2 = a * (e - e @ a) if output == "softmax" else e * G_PRIME[output](a)
        else:
            lossi = -np.sum(y * np.log(a) + ((1 - y) * np.log(1 - a) if output == "sigmoid" else 0))
            d2 = e
        d1 = (T1[:, 1:].T @ d2) * (1 - h * h)
        total += si * lossi
        D1 += si * np.outer(d2, np.concatenate([[1.0], h]))
        D0 += si * np.outer(d1, np.concatenate([[1.0], x]))
    W2 = np.sum(T0[:, 1:] ** 2) + np.sum(T1[:, 1:] ** 2)
    m = np.sum(s)
    D = [(Dl + LAM * np.hstack([np.zeros((T.shape[0], 1)), T[:, 1:]])) / m for Dl, T in ((D0, T0), (D1, T1))]
    return (total + 0.5 * LAM * W2) / m, D


@pytest.mark.parametrize("output,loss,k", PAIRS)
def test_weighted_J_and_D_equal_the_per_example_loop(output, loss, k):
    net, X, Y, s = problem(output, loss, k)
    J, D = net.loss_and_gradients(X, Y, sample_weight=s)
    J_ref, D_ref = per_example_reference(net.thetas, output, loss, X, Y, s)
    assert relative(J, J_ref) <= 1e-12
    for Dl, Dl_ref in zip(D, D_ref):
        assert relative(Dl, Dl_ref) <= 1e-12


@pytest.mark.parametrize("output,loss,k", PAIRS)
def test_weight_two_equals_the_row_given_twice(output, loss, k):
    net, X, Y, _ = problem(output, loss, k)
    s = np.ones(len(X))
    s[[2, 5]] = 2.0
    J, D = net.loss_and_gradients(X, Y, sample_weight=s)
    J2, D2 = net.loss_and_gradients(np.vstack([X, X[[2, 5]]]), np.vstack([Y, Y[[2, 5]]]))
    assert relative(J, J2) <= 1e-12
    for Dl, Dl2 in zip(D, D2):
        assert relative(Dl, Dl2) <= 1e-12


@pytest.mark.parametrize("output,loss,k", PAIRS)
def test_unit_weights_give_the_unweighted_numbers_bit_for_bit(output, loss, k):
    for dtype in ("float64", "float32"):
        net, X, Y, _ = problem(output, loss, k)
        net = net.clone(dtype=dtype)
        J, D = net.loss_and_gradients(X, Y)
        J1, D1 = net.loss_and_gradients(X, Y, sample_weight=np.ones(len(X)))
        assert J1 == J and all(np.array_equal(a, b) for a, b in zip(D1, D))


def test_unit_weights_train_the_unweighted_trajectory_bit_for_bit():
    """Shuffled mini-batches, chunks, Adam, λ > 0, float32: the same weights to the last bit"""
    net, X, Y, _ = problem("softmax", "cross_entropy", 3, m=23)
    for dtype in ("float64", "float32"):
        a, b = net.clone(dtype=dtype), net.clone(dtype=dtype)
        options = dict(epochs=4, batch_size=5, optimizer="adam", lr=0.01, chunk_size=2)
        ha = a.fit(X, Y, **options)
        hb = b.fit(X, Y, sample_weight=np.ones(len(X)), **options)
        assert np.array_equal(a.params, b.params) and ha.loss == hb.loss


def test_the_weighted_gradient_passes_the_gradient_check():
    net, X, Y, s = problem("sigmoid", "cross_entropy", 2)
    assert bpgpu.gradient_check(net, X, Y, sample_weight=s) < 1e-7
    # and the check sees the weights: D of other weights is wrong for this J
    _, D = net.loss_and_gradients(X, Y, sample_weight=s)
    _, D_unit = net.loss_and_gradients(X, Y)
    assert relative(D_unit[0], D[0]) > 1e-3


def test_weighted_J_and_D_equal_torch_with_a_weighted_loss():
    torch = pytest.importorskip("torch")
    net, X, Y, s = problem("softmax", "cross_entropy", 3)
    J, D = net.loss_and_gradients(X, Y, sample_weight=s)
    thetas = [torch.tensor(t, requires_grad=True) for t in net.thetas]
    h = torch.tanh(torch.tensor(X) @ thetas[0][:, 1:].T + thetas[0][:, 0])
    z = h @ thetas[1][:, 1:].T + thetas[1][:, 0]
    per_example = -(torch.tensor(Y) * torch.log_softmax(z, dim=1)).sum(dim=1)
    w = torch.tensor(s)
    l2 = sum((t[:, 1:] ** 2).sum() for t in thetas)
    loss = (w * per_example).sum() / w.sum() + 0.5 * LAM * l2 / w.sum()
    loss.backward()
    assert relative(J, loss.item()) <= 1e-12
    for Dl, t in zip(D, thetas):
        assert relative(Dl, t.grad.numpy()) <= 1e-12


@pytest.mark.parametrize("output,loss,k", [("identity", "mse", 2), ("softmax", "cross_entropy", 3)])
def test_chunks_add_up_to_the_whole_weighted_batch(output, loss, k):
    net, X, Y, s = problem(output, loss, k, m=11)
    J, D = net.loss_and_gradients(X, Y, sample_weight=s)
    for chunk in (1, 3, 4):
        Jc, Dc = net.loss_and_gradients(X, Y, sample_weight=s, chunk_size=chunk)
        assert relative(Jc, J) <= 1e-12
        assert all(relative(a, b) <= 1e-12 for a, b in zip(Dc, D))


def test_zero_weights_are_rows_left_out():
    """Full batch: training with some rows weighted 0 is training without them"""
    net, X, Y, _ = problem("identity", "mse", 2, m=12)
    s = np.ones(12)
    s[8:] = 0.0
    a, b = net.clone(), net.clone()
    a.fit(X, Y, sample_weight=s, epochs=20, optimizer="momentum", lr=0.1)
    b.fit(X[:8], Y[:8], epochs=20, optimizer="momentum", lr=0.1)
    assert relative(a.params, b.params) <= 1e-12


def test_full_batch_training_with_weight_two_equals_the_row_given_twice():
    net, X, Y, _ = problem("sigmoid", "cross_entropy", 1)
    s = np.ones(len(X))
    s[0] = 2.0
    a, b = net.clone(), net.clone()
    ha = a.fit(X, Y, sample_weight=s, epochs=25, optimizer="adam", lr=0.05)
    hb = b.fit(np.vstack([X, X[:1]]), np.vstack([Y, Y[:1]]), epochs=25, optimizer="adam", lr=0.05)
    assert relative(a.params, b.params) <= 1e-12 and relative(ha.loss, hb.loss) <= 1e-12


def test_the_weights_are_shuffled_with_their_rows():
    m = 17
    X = np.arange(m, dtype=float)[:, None]  # each row names itself
    s = np.random.default_rng(1).uniform(size=m)
    backend = get_backend("numpy")
    plan = BatchPlan(m, 4, True, seed=5, backend=backend)
    seen = []
    for Xk, _, wk in plan.batches(X, X, epoch=3, w=RowWeights.stage(s, backend, "float64")):
        rows = Xk[:, 0].astype(int)
        assert np.array_equal(wk.host, s[rows]) and np.array_equal(wk.s[:, 0], s[rows])
        assert np.array_equal(wk.root[:, 0], np.sqrt(s[rows])) and wk.total == np.sum(s[rows])
        seen += rows.tolist()
    assert sorted(seen) == list(range(m)) and seen != list(range(m))


def test_a_resumed_weighted_run_equals_the_uninterrupted_one():
    net, X, Y, s = problem("softmax", "cross_entropy", 3, m=20)
    options = dict(epochs=3, batch_size=3, optimizer="adam", lr=0.02, sample_weight=s, class_weight="balanced")
    whole = net.clone()
    whole.fit(X, Y, **options)
    steps = iter(range(100))
    part = net.clone()
    history = part.fit(X, Y, stop=lambda: next(steps) == 9, **options)
    assert history.stop_reason == "interrupted" and history.part
    part.fit(X, Y, resume=history.position, optimizer=part.optimizer,
             **{k: v for k, v in options.items() if k != "optimizer"})
    assert np.array_equal(part.params, whole.params)


# -- class weights -------------------------------------------------------------------------


def test_balanced_class_weights_are_scikit_learns():
    class_weight = pytest.importorskip("sklearn.utils.class_weight")
    labels = np.array([0, 2, 2, 0, 2, 2, 2, 0, 2])  # class 1 absent
    net, X, _, s = problem("softmax", "cross_entropy", 3)
    per_class = class_weight.compute_class_weight("balanced", classes=np.array([0, 2]), y=labels)
    want = np.where(labels == 0, per_class[0], per_class[1]) * s
    J, D = net.loss_and_gradients(X, np.eye(3)[labels], sample_weight=want)
    a, b = net.clone(), net.clone()
    a.fit(X, labels, sample_weight=s, class_weight="balanced", epochs=3)
    b.fit(X, labels, sample_weight=want, epochs=3)
    assert np.array_equal(a.params, b.params)


def test_class_weights_by_name_and_by_index():
    net, X, _, _ = problem("sigmoid", "cross_entropy", 1)
    labels = np.array(["cat", "dog", "dog", "cat", "dog", "cat", "cat", "dog", "dog"])
    given = np.where(labels == "dog", 3.0, 1.0)
    results = []
    for how in ({"dog": 3.0}, {1: 3.0}, None):
        twin = net.clone()
        twin.fit(X, labels, epochs=3, class_weight=how, sample_weight=None if how else given)
        results.append(twin.params)
    assert np.array_equal(results[0], results[2]) and np.array_equal(results[1], results[2])


@pytest.mark.parametrize("call,message", [
    (lambda net, X, Y: net.fit(X, Y, sample_weight=np.ones(4)), "sample_weight: expected one weight per row, shape (9,)"),
    (lambda net, X, Y: net.fit(X, Y, sample_weight=np.r_[np.ones(8), np.nan]), "finite weights >= 0, got nan at row 8"),
    (lambda net, X, Y: net.loss_and_gradients(X, Y, sample_weight=np.r_[-1.0, np.ones(8)]), "got -1.0 at row 0"),
    (lambda net, X, Y: net.fit(X, Y, sample_weight=np.zeros(9)), "sample_weight: the weights of a batch's rows sum to 0"),
    (lambda net, X, Y: net.fit(X, Y, sample_weight=np.r_[0.0, 0.0, np.ones(7)], batch_size=2, shuffle=False),
     "sum to 0"),
    (lambda net, X, Y: net.fit(X, Y, class_weight="even"), "class_weight: expected one of ('balanced',)"),
    (lambda net, X, Y: net.fit(X, Y, class_weight={"zebra": 2}), "class_weight: expected classes among 0, 1, 2"),
    (lambda net, X, Y: net.fit(X, Y, class_weight={0: -1}), "class_weight[0]: expected a number >= 0.0"),
])
def test_bad_weights_are_refused_naming_the_argument(call, message):
    net, X, Y, _ = problem("softmax", "cross_entropy", 3)
    with pytest.raises(ValueError) as err:
        call(net, X, Y)
    assert message in str(err.value)


def test_class_weight_needs_one_class_per_row():
    net, X, Y, _ = problem("identity", "mse", 2)
    with pytest.raises(ValueError, match="class_weight: expected a softmax output or one sigmoid unit"):
        net.fit(X, Y, class_weight="balanced")


def test_weighted_shards_train_as_one_process_on_all_rows():
    out = run_ranks(2, str(ROOT / "tests" / "mpi_weights.py"), cwd=ROOT)
    assert out.returncode == 0 and "ok: 2 ranks" in out.stdout, out.stdout + out.stderr
