"""Peers: the same network, weights, data and device in PyTorch eager and scikit-learn's MLP.

- ``torch``: the initial weights copied in, ``torch.optim.SGD(lr=η)`` or
  ``torch.optim.Adam(lr=η, betas=(0.9, 0.999), eps=1e-8)`` (ε on √v̂, as ``bpgpu.Adam``), the same loss (mean
  squared error as 1/(2m)·Σ(a − y)², or ``F.cross_entropy`` on the logits for softmax +
  cross-entropy), each epoch's losses brought to the host together as fit does; forward
  under ``no_grad``; and PyTorch's own GEMM ceiling.
- ``torch_fused``: the same with ``fused=True`` optimisers (PyTorch's one-kernel SGD and Adam);
  ``torch_compile``: the same step under ``torch.compile`` (inductor fuses the element-wise
  work into generated C++), its compile time reported apart (``compile_s``), not in the rate.
- ``sklearn`` (CPU only): ``MLPRegressor``/``MLPClassifier.fit`` with ``warm_start`` from the
  same weights, ``solver="sgd"`` with momentum 0 or ``solver="adam"`` (its ε sits on the
  uncorrected √v: :class:`bpgpu.sklearn.ScikitAdam`'s numbers, not ``bpgpu.Adam``'s),
  ``alpha=0``, ``batch_size=m``, ``shuffle=False``, ``max_iter=E`` epochs and a stopping rule
  that never fires.

Each peer gives (what to report about it, {measure: runner}), or raises :class:`Skip`
saying why not.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from .runners import epochs_and_rows, gemm_runner
from .workloads import Workload

PEERS = ("torch", "torch_fused", "torch_compile", "sklearn")
# What a run compares against without --peers: torch_compile compiles for ~25 s a case, so it
# runs only when asked for.
DEFAULT_PEERS = ("torch", "torch_fused", "sklearn")
# The package each peer needs.
MODULES = {"torch": "torch", "torch_fused": "torch", "torch_compile": "torch", "sklearn": "sklearn"}


class Skip(Exception):
    """A peer cannot run this case; the message says why."""


def torch_model(w: Workload, thetas, device, dtype: str):
    """(model, loss_of): ``w``'s network in PyTorch with the host ``thetas`` copied in, and its
    loss J(a, y): 1/(2m)·Σ(a − y)², or ``F.cross_entropy`` on the logits (y the class
    indices) for softmax with cross-entropy, where the model leaves out the softmax."""
    import torch
    import torch.nn.functional as F

    if (w.output == "softmax") != (w.loss == "cross_entropy"):
        raise Skip(f"no PyTorch equivalent wired for output={w.output!r} with loss={w.loss!r}")
    tdtype = getattr(torch, dtype)
    modules = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
    layers = []
    for l, theta in enumerate(thetas):
        W = theta[:, 1:] if w.bias else theta
        linear = torch.nn.Linear(W.shape[1], W.shape[0], bias=w.bias, device=device, dtype=tdtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
            if w.bias:
                linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(theta[:, 0])))
        layers.append(linear)
        g = w.activation if l < len(thetas) - 1 else w.output
        if g in modules:
            layers.append(modules[g]())
    if w.loss == "cross_entropy":
        return torch.nn.Sequential(*layers), F.cross_entropy
    return torch.nn.Sequential(*layers), lambda a, y: 0.5 * (a - y).pow(2).sum() / a.shape[0]


def torch_optimizer(name: str, parameters, lr: float, fused: bool | None = None):
    """PyTorch's optimiser for bpgpu's ``name`` ("sgd" or "adam"), with bpgpu's defaults
    (``fused=True``: its one-kernel implementation)."""
    import torch

    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=fused)
    return torch.optim.SGD(parameters, lr=lr, fused=fused)


def torch_peer(w, thetas, X, Y, labels, m, dtype, on_gpu, threads, optimizer="sgd", variant="eager"):
    """PyTorch on the same network, weights (``thetas`` on the host), data, device and optimiser
    (one, kept throughout, as for bpgpu's bare step). ``variant``: "eager" (default optimisers),
    "fused" (``fused=True`` optimisers) or "compile" (the step under ``torch.compile``, inductor;
    compiled by two warm-up steps, timed apart as ``compile_s`` and left out of the rate)."""
    import time

    import torch

    if on_gpu and not torch.cuda.is_available():
        raise Skip("torch has no CUDA device")
    device = torch.device("cuda" if on_gpu else "cpu")
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        sync = torch.cuda.synchronize
    else:
        torch.set_num_threads(threads)
        sync = lambda: None  # noqa: E731 — the CPU runs eagerly
    model, loss_of = torch_model(w, thetas, device, dtype)

    def to_device(a, dtype=dtype):
        return torch.from_numpy(a).to(device=device, dtype=getattr(torch, dtype))

    Xt = to_device(X)
    Yt = to_device(labels, "int64") if w.loss == "cross_entropy" else to_device(Y)
    n_batches = X.shape[0] // m
    batches = [(Xt[i * m:(i + 1) * m], Yt[i * m:(i + 1) * m]) for i in range(n_batches)]
    opt = torch_optimizer(optimizer, model.parameters(), w.lr_for(optimizer), True if variant == "fused" else None)

    def one_step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = loss_of(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    info = {"device": torch.cuda.get_device_name() if on_gpu else f"cpu, {torch.get_num_threads()} threads",
            "variant": variant}
    if variant == "compile":
        one_step = torch.compile(one_step)
        start = time.perf_counter()
        for i in range(2):
            one_step(*batches[i % n_batches])
        sync()
        info["compile_s"] = time.perf_counter() - start

    def train(steps):
        losses = []
        for i in range(steps):
            loss = one_step(*batches[i % n_batches])
            losses.append(loss.detach())
            if len(losses) == n_batches or i == steps - 1:  # an epoch's losses reach the host together
                if not math.isfinite(float(torch.stack(losses).sum())):
                    raise RuntimeError(f"{w.name}: PyTorch training diverged")
                losses = []
        return steps

    def forward(steps):
        with torch.no_grad():
            for i in range(steps):
                a = model(batches[i % n_batches][0])
                if w.output == "softmax":
                    a = torch.softmax(a, dim=1)
        return steps

    if variant != "eager":
        return info, {"train": (train, sync, 6 * w.weights * m)}
    return info, {"train": (train, sync, 6 * w.weights * m), "forward": (forward, sync, 2 * w.weights * m),
                  "gemm": gemm_runner(to_device, sync, m, max(w.sizes), dtype)}


def sklearn_model(w: Workload, m: int, optimizer: str = "sgd"):
    """(model, which targets it takes: "labels" or "Y"): scikit-learn's MLP for ``w`` trained
    by plain SGD (or its Adam, default betas and ε) on batches of ``m`` rows in order; ``fit``
    runs ``max_iter`` epochs, never stopping early, and continues from the weights it has
    (warm start) with a fresh optimiser."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    activations = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic", "identity": "identity"}
    if not w.bias:
        raise Skip("scikit-learn's MLP always has biases; this network has none")
    if w.loss == "cross_entropy" and w.output == "softmax":
        if m < w.sizes[-1]:
            raise Skip(f"MLPClassifier's warm start needs every class in a batch: batch {m} < {w.sizes[-1]} classes")
        cls, targets = MLPClassifier, "labels"
    elif w.loss == "mse" and w.output == "identity":
        if w.sizes[-1] > 1:
            raise Skip(f"MLPRegressor's squared error averages over the {w.sizes[-1]} outputs too: a different loss")
        cls, targets = MLPRegressor, "Y"
    else:
        raise Skip(f"scikit-learn's MLP has no output={w.output!r} with loss={w.loss!r}")
    model = cls(hidden_layer_sizes=w.sizes[1:-1], activation=activations[w.activation], solver=optimizer,
                alpha=0.0, batch_size=m, learning_rate="constant", learning_rate_init=w.lr_for(optimizer),
                momentum=0.0, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                nesterovs_momentum=False, shuffle=False, tol=0.0, n_iter_no_change=10**9,
                early_stopping=False, warm_start=True, max_iter=1, random_state=0)
    return model, targets


def sklearn_fit(model, X, y, epochs: int) -> None:
    """``epochs`` epochs of ``model.fit`` on (X, y), without the warning that it did not converge."""
    from sklearn.exceptions import ConvergenceWarning

    model.set_params(max_iter=epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)


def sklearn_set_thetas(model, thetas, dtype: str) -> None:
    """Replace a fitted MLP's weights by the host ``thetas`` ([b | W] each)."""
    model.coefs_ = [np.ascontiguousarray(t[:, 1:].T, dtype=dtype) for t in thetas]
    model.intercepts_ = [np.ascontiguousarray(t[:, 0], dtype=dtype) for t in thetas]


def sklearn_peer(w, thetas, X, Y, labels, m, dtype, on_gpu, threads, optimizer="sgd"):
    """scikit-learn's MLP, its own ``fit`` loop, from the same weights on the same batches."""
    if on_gpu:
        raise Skip("scikit-learn runs on the CPU only")
    model, targets = sklearn_model(w, m, optimizer)
    X = X.astype(dtype)
    y = labels if targets == "labels" else Y[:, 0].astype(dtype)
    n_batches = X.shape[0] // m

    def fit(steps):
        epochs, rows = epochs_and_rows(steps, m, n_batches)
        seen = model.t_
        sklearn_fit(model, X[:rows], y[:rows], epochs)
        if model.t_ - seen != epochs * rows or not math.isfinite(model.loss_curve_[-1]):
            raise RuntimeError(f"{w.name}: scikit-learn stopped early or diverged")
        return epochs * rows // m

    sklearn_fit(model, X[:m], y[:m], 1)  # builds the model; its weights are then replaced
    sklearn_set_thetas(model, thetas, dtype)
    info = {"device": "cpu", "dtype": str(model.coefs_[0].dtype), "solver": optimizer}
    if optimizer == "adam":
        info["note"] = "ε on the uncorrected √v (bpgpu.sklearn.ScikitAdam's numbers, not bpgpu.Adam's)"
    return info, {"train": (fit, lambda: None, 6 * w.weights * m)}


RUNNERS = {"torch": torch_peer, "torch_fused": functools.partial(torch_peer, variant="fused"),
           "torch_compile": functools.partial(torch_peer, variant="compile"), "sklearn": sklearn_peer}
