"""bpgpu's own runners (fit, the bare step, the forward pass) and the GEMM ceiling.

A runner is ``(run, sync, flops)`` (see :mod:`bpgpu.bench.timing`). A training step counts
6 × weights × m FLOPs and a forward pass 2 × weights × m, where weights is the number of
entries of all Thetas (biases included).
"""

from __future__ import annotations

import numpy as np

from ..optimizers import make_optimizer

MEASURES = ("fit", "step", "forward")


def bare_step(net, optimizer, X, Y) -> None:
    """One training step of ``net`` on a device batch X (m, s0), Y (m, sL): the library's
    public :meth:`~bpgpu.Network.step` (D, then ``optimizer``'s in-place update), as ``fit``
    runs it but with no input check, no shuffling and no loss brought to the host."""
    net.step(X, Y, optimizer)


def bare_forward(net, X):
    """a(L) (m, sL) for a device batch X (m, s0), without the input check of ``net.forward``."""
    return net.output_of(X)


def epochs_and_rows(steps: int, m: int, n_batches: int) -> tuple[int, int]:
    """(epochs, rows) for about ``steps`` steps of m rows: part of one epoch, or whole epochs."""
    if steps < n_batches:
        return 1, steps * m
    return max(1, round(steps / n_batches)), n_batches * m


def bpgpu_runners(w, net, X, Y, m, measures=MEASURES, optimizer="sgd") -> dict:
    """Runners for fit, the bare step and the forward pass of ``net`` on device data X, Y
    (the workload ``w``'s batches of ``m`` rows, stacked), training with ``optimizer`` ("sgd"
    or "adam", default hyper-parameters) at the workload's learning rate for it.

    Each fit call starts a fresh optimiser, as a user's ``fit`` does (Adam's moments from
    zero; scikit-learn's ``fit`` does the same); the bare step keeps one optimiser throughout."""
    n_batches = X.shape[0] // m
    batches = [(X[i * m:(i + 1) * m], Y[i * m:(i + 1) * m]) for i in range(n_batches)]
    sync = net.backend.synchronize
    lr = w.lr_for(optimizer)

    def fit(steps):
        epochs, rows = epochs_and_rows(steps, m, n_batches)
        history = net.fit(X[:rows], Y[:rows], epochs=epochs, optimizer=optimizer, lr=lr, batch_size=m, shuffle=False)
        done = epochs * rows // m
        if history.stop_reason != "epochs" or history.steps != done:
            raise RuntimeError(f"{w.name}: fit stopped ({history.stop_reason}) after {history.steps} of {done} steps")
        return done

    stepper = make_optimizer(optimizer, lr)

    def step(steps):
        for i in range(steps):
            bare_step(net, stepper, *batches[i % n_batches])
        return steps

    def forward(steps):
        for i in range(steps):
            bare_forward(net, batches[i % n_batches][0])
        return steps

    runs = {"fit": (fit, sync, 6 * w.weights * m), "step": (step, sync, 6 * w.weights * m),
            "forward": (forward, sync, 2 * w.weights * m)}
    return {name: runs[name] for name in measures}


def gemm_runner(asarray, sync, m, width, dtype, seed=0):
    """(m × width)·(width × width) products, A rotated among 3 matrices: 2·m·width² FLOPs each."""
    rng = np.random.default_rng(seed)
    A = [asarray(rng.standard_normal((m, width)), dtype) for _ in range(3)]
    B = asarray(rng.standard_normal((width, width)), dtype)

    def run(steps):
        for i in range(steps):
            A[i % 3] @ B
        return steps

    return run, sync, 2 * m * width * width


def triad_runner(cores: int, n: int = 1 << 24):
    """The memory-bandwidth ceiling: a STREAM-like triad a ← b + s·c over ``n`` float32, its
    elements split among ``cores`` threads (NumPy releases the GIL). NumPy makes it two passes
    (a ← s·c, then a += b: c read, a written, a and b read, a written), so the third element is
    the bytes those move, 20·n, and the "gflops" measured are GB/s."""
    from concurrent.futures import ThreadPoolExecutor

    a, b, c = (np.full(n, 1.0, dtype=np.float32) for _ in range(3))
    parts = [slice(k * n // cores, (k + 1) * n // cores) for k in range(cores)]
    pool = ThreadPoolExecutor(cores)

    def triad(part):
        np.multiply(c[part], np.float32(0.5), out=a[part])
        a[part] += b[part]

    def run(steps):
        for _ in range(steps):
            list(pool.map(triad, parts))
        return steps

    return run, lambda: None, 20 * n
