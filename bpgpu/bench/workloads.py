"""The reference workloads W0–W3, their smoke-sized twins, their data and the speed targets."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..network import Network


@dataclass(frozen=True)
class Workload:
    """A reference network, the batch size it is measured at and its learning rates: ``lr``
    for SGD, ``adam_lr`` for Adam (default betas and ε)."""

    name: str
    sizes: tuple[int, ...]
    activation: str
    output: str
    loss: str
    batch: int
    lr: float
    bias: bool = True
    adam_lr: float = 1e-3

    def lr_for(self, optimizer: str) -> float:
        """The learning rate this workload is trained with by ``optimizer`` (one of OPTIMIZERS)."""
        return {"sgd": self.lr, "adam": self.adam_lr}[optimizer]

    @property
    def weights(self) -> int:
        """Entries of all Thetas: Σ_l s(l+1)·(s(l) + bias)."""
        return sum(n_out * (n_in + self.bias) for n_in, n_out in zip(self.sizes, self.sizes[1:]))

    def network(self, backend="numpy", dtype="float32", seed=0) -> Network:
        net = Network(list(self.sizes), activation=self.activation, output=self.output, loss=self.loss,
                      bias=self.bias, backend=backend, dtype=dtype, seed=seed)
        if self.name == "W0":
            from ..worked_example import THETAS

            net.set_thetas(THETAS)
        return net


WORKLOADS = {
    "W0": Workload("W0", (3, 2, 1), "identity", "sigmoid", "mse", batch=3, lr=0.5, bias=False),
    "W1": Workload("W1", (64, 64, 64, 1), "relu", "identity", "mse", batch=256, lr=1e-2),
    "W2": Workload("W2", (784, 1024, 1024, 10), "relu", "softmax", "cross_entropy", batch=1024, lr=1e-2),
    "W3": Workload("W3", (1024, 4096, 4096, 1024), "relu", "identity", "mse", batch=4096, lr=1e-3, adam_lr=1e-4),
}
# The optimisers a case can train with: bpgpu's SGD(lr) and Adam(lr) (β1 0.9, β2 0.999, ε 1e-8 on
# the bias-corrected √v̂), PyTorch's torch.optim.SGD/Adam with the same, scikit-learn's solver.
OPTIMIZERS = ("sgd", "adam")
# Smoke mode: the same depths, activations and losses, small enough for CI.
SMOKE_SIZES = {"W0": (3, 2, 1), "W1": (64, 64, 64, 1), "W2": (49, 64, 64, 10), "W3": (64, 256, 256, 64)}
SMOKE_BATCH = 16

# (workload, backend, dtypes, optimizer, against, at least): issue 4 (CPU), issue 3 (GPU) and
# issue 11 (Adam on the CPU), at the workload's own batch size. "gemm": fit's GFLOP/s over the
# ceiling; "numpy": over NumPy's fit with the same optimiser.
TARGETS = [
    ("W0", "numpy", ("float32",), "sgd", "torch", 8.0),
    ("W1", "numpy", ("float32",), "sgd", "torch", 1.9),
    ("W1", "numpy", ("float32",), "sgd", "sklearn", 2.5),
    ("W2", "numpy", ("float32",), "sgd", "torch", 1.1),
    ("W2", "numpy", ("float32", "float64"), "sgd", "gemm", 0.90),
    ("W1", "numpy", ("float32",), "adam", "torch", 3.0),
    ("W2", "numpy", ("float32",), "adam", "torch", 1.2),
    ("W1", "cupy", ("float32",), "sgd", "torch", 2.0),
    ("W2", "cupy", ("float32",), "sgd", "torch", 1.0),
    ("W3", "cupy", ("float32",), "sgd", "torch", 1.0),
    ("W3", "cupy", ("float32",), "sgd", "gemm", 0.80),
    ("W3", "cupy", ("float32",), "sgd", "numpy", 100.0),
]


def workload(name: str, smoke: bool = False) -> Workload:
    """The workload ``name``, or its smoke-sized twin."""
    w = WORKLOADS[name]
    return replace(w, sizes=SMOKE_SIZES[name], batch=min(w.batch, SMOKE_BATCH)) if smoke else w


def make_data(w: Workload, m: int, n_batches: int, seed: int = 0):
    """Host float64 data for ``n_batches`` batches of ``m`` rows, stacked.

    Returns (X, Y, labels): X (n_batches·m, s0), Y (n_batches·m, sL), and for a softmax
    output the class indices (n_batches·m,) that Y one-hot encodes (every class in every
    batch when m ≥ sL), else None. W0's first batch is the seeds' worked example.
    """
    rng = np.random.default_rng(seed)
    rows, k = n_batches * m, w.sizes[-1]
    X = rng.standard_normal((rows, w.sizes[0]))
    labels = None
    if w.output == "softmax":
        labels = np.concatenate([rng.permutation(np.arange(m) % k) for _ in range(n_batches)])
        Y = np.eye(k)[labels]
    elif w.output == "sigmoid":
        Y = rng.uniform(0.1, 0.9, (rows, k))
    else:
        Y = rng.standard_normal((rows, k))
    if w.name == "W0" and m == 3:
        from ..worked_example import T, X as X0

        X[:3], Y[:3, 0] = X0, T
    return X, Y, labels
