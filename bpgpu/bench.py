"""Throughput of bpgpu's training steps against the GEMM ceiling, PyTorch and scikit-learn.

    bpgpu bench --workloads W1,W2 --dtypes float32,float64 --json bench.json --plot bench.png
    python -m bpgpu.bench --smoke            # tiny sizes, every code path once (no timing claims)

For each workload (DESIGN.md §5), backend, dtype and batch size m, on the same data — R
batches of m rows, staged on the device once and used in turn — from the same initial
weights, after a warm-up, with the device synchronised before every clock read, the
median over several repeats of:

- ``fit``: ``net.fit(X, Y, epochs=E, lr=η, batch_size=m, shuffle=False)`` (SGD) with X
  the R batches stacked: fit's own loop, which is what users run.
- ``step``: the bare step ``J, D = net._gradients(xb, yb); SGD(η).step(net._params, D, xp)``:
  fit without its bookkeeping, so ``fit − step`` is fit's overhead per step.
- ``forward``: the core forward pass ``net._forward(xb)`` (no input check).
- ``gemm``: the practical ceiling, the backend's ``A @ B`` with A (m × w) and B (w × w),
  w the workload's widest layer, counted as 2·m·w² FLOPs.
- ``torch``: the same network in PyTorch eager on the same device and threads, the initial
  weights copied in, ``torch.optim.SGD(lr=η)``, the same loss (mean squared error as
  1/(2m)·Σ(a − y)², or ``F.cross_entropy`` on the logits for softmax + cross-entropy),
  each epoch's R losses brought to the host together as fit does; forward under ``no_grad``.
- ``sklearn`` (CPU only): ``MLPRegressor``/``MLPClassifier.fit`` with ``warm_start`` from the
  same weights, ``solver="sgd"``, momentum 0, ``alpha=0``, ``batch_size=m``, ``shuffle=False``,
  ``max_iter=E`` epochs and a stopping rule that never fires: its own loop over the same batches.

A training step counts 6 × weights × m FLOPs and a forward pass 2 × weights × m, where
weights is the number of entries of all Thetas (biases included).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, replace

import numpy as np

from .backend import DTYPES, BackendUnavailable, get_backend
from .network import Network
from .optimizers import SGD

MEASURES = ("fit", "step", "forward")
PEERS = ("torch", "sklearn")


@dataclass(frozen=True)
class Workload:
    """A reference network and batch size (DESIGN.md §5)."""

    name: str
    sizes: tuple[int, ...]
    activation: str
    output: str
    loss: str
    batch: int
    lr: float
    bias: bool = True

    @property
    def weights(self) -> int:
        """Entries of all Thetas: Σ_l s(l+1)·(s(l) + bias)."""
        return sum(n_out * (n_in + self.bias) for n_in, n_out in zip(self.sizes, self.sizes[1:]))

    def network(self, backend="numpy", dtype="float32", seed=0) -> Network:
        net = Network(list(self.sizes), activation=self.activation, output=self.output, loss=self.loss,
                      bias=self.bias, backend=backend, dtype=dtype, seed=seed)
        if self.name == "W0":
            from .worked_example import THETAS

            net.set_thetas(THETAS)
        return net


WORKLOADS = {
    "W0": Workload("W0", (3, 2, 1), "identity", "sigmoid", "mse", batch=3, lr=0.5, bias=False),
    "W1": Workload("W1", (64, 64, 64, 1), "relu", "identity", "mse", batch=256, lr=1e-2),
    "W2": Workload("W2", (784, 1024, 1024, 10), "relu", "softmax", "cross_entropy", batch=1024, lr=1e-2),
    "W3": Workload("W3", (1024, 4096, 4096, 1024), "relu", "identity", "mse", batch=4096, lr=1e-3),
}
# Smoke mode: the same depths, activations and losses, small enough for CI.
SMOKE_SIZES = {"W0": (3, 2, 1), "W1": (64, 64, 64, 1), "W2": (49, 64, 64, 10), "W3": (64, 256, 256, 64)}
SMOKE_BATCH = 16

# (workload, backend, dtypes, against, at least): issue 4 (CPU) and issue 3 (GPU), at the
# workload's own batch size. "gemm": fit's GFLOP/s over the ceiling; "numpy": over NumPy's fit.
TARGETS = [
    ("W0", "numpy", ("float32",), "torch", 8.0),
    ("W1", "numpy", ("float32",), "torch", 1.9),
    ("W1", "numpy", ("float32",), "sklearn", 2.5),
    ("W2", "numpy", ("float32",), "torch", 1.1),
    ("W2", "numpy", ("float32", "float64"), "gemm", 0.90),
    ("W1", "cupy", ("float32",), "torch", 2.0),
    ("W2", "cupy", ("float32",), "torch", 1.0),
    ("W3", "cupy", ("float32",), "torch", 1.0),
    ("W3", "cupy", ("float32",), "gemm", 0.80),
    ("W3", "cupy", ("float32",), "numpy", 100.0),
]


def workload(name: str, smoke: bool = False) -> Workload:
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
        from .worked_example import T, X as X0

        X[:3], Y[:3, 0] = X0, T
    return X, Y, labels


# -- timing ----------------------------------------------------------------------------
#
# A runner is (run, sync, flops): ``run(steps)`` does about ``steps`` steps and returns how
# many it did, ``sync()`` waits for its device, and one step costs ``flops``.


def _clock(run, sync, steps) -> tuple[float, int]:
    sync()
    t0 = time.perf_counter()
    done = run(steps)
    sync()
    return time.perf_counter() - t0, done


def calibrate(run, sync, min_time: float) -> tuple[int, float, float | None]:
    """(steps, seconds per step, first repeat): after one warm-up call, the step count
    doubles until a call lasts min_time/4; ``steps`` then lasts about ``min_time``. The
    last call's seconds per step is also a first repeat when it lasted min_time already."""
    _clock(run, sync, 1)
    steps, (t, done) = 1, _clock(run, sync, 1)
    while t < min_time / 4:
        steps *= 2
        t, done = _clock(run, sync, steps)
    per_step = t / done
    return max(1, round(min_time / per_step)), per_step, per_step if t >= min_time else None


def measure(runs: dict, min_time: float, repeats: int, settle: float = 0.0, rounds: int = 1) -> dict:
    """{name: timing} for ``runs`` {name: (run, sync, …)}: the median seconds per step.

    In each of ``rounds`` rounds the runners take turns: each sleeps ``settle`` seconds, is
    warmed up (and calibrated, in the first round) and repeated ``repeats`` times. Turns,
    not interleaved calls: a CPU thread pool (OpenBLAS's, PyTorch's OpenMP) spins on for a
    while after its last call and slows whichever library runs next; the sleep lets it go
    idle. Rounds spread each runner's repeats over the whole measurement, so that a slow
    drift in the machine's speed touches all of them alike. Steps of a second or more get
    3 repeats at most, all in the first round.
    """
    plans, times = {}, {name: [] for name in runs}
    for r in range(rounds):
        for name, (run, sync, *_) in runs.items():
            if r == 0:
                time.sleep(settle)
                steps, per_step, first = plans[name] = calibrate(run, sync, min_time)
                times[name] += [] if first is None else [first]
            else:
                steps, per_step, _ = plans[name]
                if per_step >= 1.0:
                    continue
                time.sleep(settle)
                _clock(run, sync, steps)
            wanted = min(repeats, 3) if per_step >= 1.0 else repeats * (r + 1)
            while len(times[name]) < wanted:
                t, done = _clock(run, sync, steps)
                times[name].append(t / done)
    timings = {}
    for name, found in times.items():
        median = statistics.median(found)
        timings[name] = {"seconds": median, "steps": plans[name][0], "repeats": len(found),
                         "spread": (max(found) - min(found)) / median}
    return timings


def _epochs_and_rows(steps: int, m: int, n_batches: int) -> tuple[int, int]:
    """(epochs, rows) for about ``steps`` steps of m rows: part of one epoch, or whole epochs."""
    if steps < n_batches:
        return 1, steps * m
    return max(1, round(steps / n_batches)), n_batches * m


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# -- bpgpu ---------------------------------------------------------------------------------


def _bpgpu_runners(w, net, X, Y, m, measures) -> dict:
    """Runners for fit, the bare step and the forward pass of ``net`` on device data X, Y."""
    n_batches = X.shape[0] // m
    batches = [(X[i * m:(i + 1) * m], Y[i * m:(i + 1) * m]) for i in range(n_batches)]
    sync = net.backend.synchronize

    def fit(steps):
        epochs, rows = _epochs_and_rows(steps, m, n_batches)
        history = net.fit(X[:rows], Y[:rows], epochs=epochs, lr=w.lr, batch_size=m, shuffle=False)
        done = epochs * rows // m
        if history.stop_reason != "epochs" or history.steps != done:
            raise RuntimeError(f"{w.name}: fit stopped ({history.stop_reason}) after {history.steps} of {done} steps")
        return done

    optimizer = SGD(w.lr)

    def step(steps):
        for i in range(steps):
            xb, yb = batches[i % n_batches]
            _, D = net._gradients(xb, yb)
            optimizer.step(net._params, D, net.xp)  # as fit's step does
        return steps

    def forward(steps):
        for i in range(steps):
            net._forward(batches[i % n_batches][0])
        return steps

    runs = {"fit": (fit, sync, 6 * w.weights * m), "step": (step, sync, 6 * w.weights * m),
            "forward": (forward, sync, 2 * w.weights * m)}
    return {name: runs[name] for name in measures}


def _gemm_runner(asarray, sync, m, width, dtype, seed=0):
    """(m × width)·(width × width) products, A rotated among 3 matrices."""
    rng = np.random.default_rng(seed)
    A = [asarray(rng.standard_normal((m, width)), dtype) for _ in range(3)]
    B = asarray(rng.standard_normal((width, width)), dtype)

    def run(steps):
        for i in range(steps):
            A[i % 3] @ B
        return steps

    return run, sync, 2 * m * width * width


# -- peers ---------------------------------------------------------------------------------
#
# Each peer gives (what to report about it, {measure: runner}), or raises Skip saying why not.


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


def _torch_peer(w, thetas, X, Y, labels, m, dtype, on_gpu, threads):
    """PyTorch eager on the same network, weights (``thetas`` on the host), data and device."""
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
    optimizer = torch.optim.SGD(model.parameters(), lr=w.lr)

    def train(steps):
        losses = []
        for i in range(steps):
            xb, yb = batches[i % n_batches]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_of(model(xb), yb)
            loss.backward()
            optimizer.step()
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

    info = {"device": torch.cuda.get_device_name() if on_gpu else f"cpu, {torch.get_num_threads()} threads"}
    return info, {"train": (train, sync, 6 * w.weights * m), "forward": (forward, sync, 2 * w.weights * m),
                  "gemm": _gemm_runner(to_device, sync, m, max(w.sizes), dtype)}


def sklearn_model(w: Workload, m: int):
    """(model, which targets it takes: "labels" or "Y"): scikit-learn's MLP for ``w`` trained
    by plain SGD on batches of ``m`` rows in order; ``fit`` runs ``max_iter`` epochs, never
    stopping early, and continues from the weights it has (warm start)."""
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
    model = cls(hidden_layer_sizes=w.sizes[1:-1], activation=activations[w.activation], solver="sgd",
                alpha=0.0, batch_size=m, learning_rate="constant", learning_rate_init=w.lr, momentum=0.0,
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


def _sklearn_peer(w, thetas, X, Y, labels, m, dtype, on_gpu, threads):
    """scikit-learn's MLP, its own ``fit`` loop, from the same weights on the same batches."""
    if on_gpu:
        raise Skip("scikit-learn runs on the CPU only")
    model, targets = sklearn_model(w, m)
    X = X.astype(dtype)
    y = labels if targets == "labels" else Y[:, 0].astype(dtype)
    n_batches = X.shape[0] // m

    def fit(steps):
        epochs, rows = _epochs_and_rows(steps, m, n_batches)
        seen = model.t_
        sklearn_fit(model, X[:rows], y[:rows], epochs)
        if model.t_ - seen != epochs * rows or not math.isfinite(model.loss_curve_[-1]):
            raise RuntimeError(f"{w.name}: scikit-learn stopped early or diverged")
        return epochs * rows // m

    sklearn_fit(model, X[:m], y[:m], 1)  # builds the model; its weights are then replaced
    sklearn_set_thetas(model, thetas, dtype)
    return {"device": "cpu", "dtype": str(model.coefs_[0].dtype)}, {"train": (fit, lambda: None, 6 * w.weights * m)}


_PEERS = {"torch": _torch_peer, "sklearn": _sklearn_peer}


# -- one case ------------------------------------------------------------------------------


def run_case(w: Workload, backend, dtype: str, m: int, *, peers=PEERS, measures=MEASURES, n_batches=4,
             threads=1, min_time=0.2, repeats=5, rounds=1, seed=0) -> dict:
    """One row of the report: bpgpu on ``backend``, its GEMM ceiling, and each peer in ``peers``
    (see :func:`measure`)."""
    backend = get_backend(backend)
    net = w.network(backend, dtype, seed)
    thetas = [backend.to_host(t) for t in net.thetas]  # before any training: the peers' start
    X, Y, labels = make_data(w, m, n_batches, seed)
    on_gpu = backend.name == "cupy"
    width = max(w.sizes)
    row = {"workload": w.name, "sizes": list(w.sizes), "activation": w.activation, "output": w.output,
           "loss": w.loss, "backend": backend.name,
           "device": backend.describe() if on_gpu else f"{_cpu_name()}, {threads} threads",
           "dtype": dtype, "batch": m, "batches": n_batches, "weights": w.weights, "lr": w.lr, "peers": {}}
    runs = _bpgpu_runners(w, net, backend.asarray(X, dtype), backend.asarray(Y, dtype), m, measures)
    runs["gemm"] = _gemm_runner(backend.asarray, backend.synchronize, m, width, dtype, seed)
    for name in peers:
        try:
            row["peers"][name], peer_runs = _PEERS[name](w, thetas, X, Y, labels, m, dtype, on_gpu, threads)
        except Skip as why:
            row["peers"][name] = {"skipped": str(why)}
            continue
        runs.update({f"{name}.{what}": runner for what, runner in peer_runs.items()})
    settle = 0.3 if min_time > 0 and not on_gpu else 0.0
    for key, timing in measure(runs, min_time, repeats, settle, rounds).items():
        peer, _, what = key.rpartition(".")
        seconds = timing["seconds"]
        (row["peers"][peer] if peer else row)[what] = \
            {**timing, "samples_per_s": m / seconds, "gflops": runs[key][2] / seconds / 1e9}
    for where in [row] + [p for p in row["peers"].values() if "gemm" in p]:
        where["gemm"]["shape"] = [m, width, width]
    del runs
    backend.release_memory()
    row["ratios"] = ratios(row)
    return row


def ratios(row: dict) -> dict:
    """fit against the GEMM ceiling (GFLOP/s) and against each peer (samples/s); forward against torch's."""
    out = {}
    peers = row.get("peers", {})
    if "fit" in row:
        out["gemm"] = row["fit"]["gflops"] / row["gemm"]["gflops"]
        for name in PEERS:
            if "train" in peers.get(name, {}):
                out[name] = row["fit"]["samples_per_s"] / peers[name]["train"]["samples_per_s"]
    if "forward" in row and "forward" in peers.get("torch", {}):
        out["torch_forward"] = row["forward"]["samples_per_s"] / peers["torch"]["forward"]["samples_per_s"]
    return out


def check_targets(results: list[dict]) -> list[dict]:
    """Each target of ``TARGETS`` that ``results`` can judge, with the measured value and whether it is met."""
    def find(name, backend, dtype):
        batch = WORKLOADS[name].batch
        for r in results:
            if (r["workload"], r["backend"], r["dtype"], r["batch"], r["sizes"]) == \
                    (name, backend, dtype, batch, list(WORKLOADS[name].sizes)) and "error" not in r:
                return r
        return None

    out = []
    for name, backend, dtypes, against, goal in TARGETS:
        for dtype in dtypes:
            row = find(name, backend, dtype)
            if row is None:
                continue
            if against == "numpy":
                cpu = find(name, "numpy", dtype)
                value = row["fit"]["samples_per_s"] / cpu["fit"]["samples_per_s"] \
                    if cpu and "fit" in cpu and "fit" in row else None
            else:
                value = row["ratios"].get(against)
            out.append({"workload": name, "backend": backend, "dtype": dtype, "against": against, "goal": goal,
                        "value": value, "met": None if value is None else value >= goal})
    return out


# -- reporting -----------------------------------------------------------------------------


def _fmt(x) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _get(row, *keys):
    for k in keys:
        if not isinstance(row, dict) or k not in row:
            return None
        row = row[k]
    return row


def _us(timing):
    return None if timing is None else timing["seconds"] * 1e6


COLUMNS = [
    ("workload", lambda r: r["workload"]),
    ("backend", lambda r: r["backend"]),
    ("dtype", lambda r: r["dtype"]),
    ("batch", lambda r: str(r["batch"])),
    ("fit µs/step", lambda r: _fmt(_us(r.get("fit")))),
    ("fit samples/s", lambda r: _fmt(_get(r, "fit", "samples_per_s"))),
    ("fit GFLOP/s", lambda r: _fmt(_get(r, "fit", "gflops"))),
    ("GEMM GFLOP/s", lambda r: _fmt(_get(r, "gemm", "gflops"))),
    ("% GEMM", lambda r: _fmt(None if _get(r, "ratios", "gemm") is None else 100 * r["ratios"]["gemm"])),
    ("step µs", lambda r: _fmt(_us(r.get("step")))),
    ("fit − step µs", lambda r: _fmt(None if "fit" not in r or "step" not in r else _us(r["fit"]) - _us(r["step"]))),
    ("fwd samples/s", lambda r: _fmt(_get(r, "forward", "samples_per_s"))),
    ("torch µs/step", lambda r: _fmt(_us(_get(r, "peers", "torch", "train")))),
    ("× torch", lambda r: _fmt(_get(r, "ratios", "torch"))),
    ("× torch fwd", lambda r: _fmt(_get(r, "ratios", "torch_forward"))),
    ("sklearn µs/step", lambda r: _fmt(_us(_get(r, "peers", "sklearn", "train")))),
    ("× sklearn", lambda r: _fmt(_get(r, "ratios", "sklearn"))),
    ("others' CPU %", lambda r: _fmt(None if r.get("others_cpu") is None else 100 * r["others_cpu"])),
]


def markdown(report: dict) -> str:
    """The report as Markdown: the machine, a table with one row per case, notes, and the targets."""
    meta, results = report["meta"], report["results"]
    lines = [f"- command: `{meta['command']}`" + (f" at {meta['commit']}" if meta.get("commit") else ""),
             f"- machine: {meta['cpu']} ({meta['cores']} cores), {meta['threads']} threads; {meta['platform']}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())]
    if meta.get("thread_pools"):
        lines.append("- thread pools: " + "; ".join(meta["thread_pools"]))
    lines += [f"- {name}: {what}" for name, what in meta["backends"].items()]
    lines += [f"- unavailable: {name}: {why}" for name, why in meta["unavailable"].items()]
    if meta["smoke"]:
        lines.append("- smoke mode: tiny sizes, one repeat; the numbers below are not measurements")
    lines += ["", "| " + " | ".join(h for h, _ in COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)] if results \
        else ["", "No results."]
    for r in results:
        if "error" in r:
            cells = [r["workload"], r["backend"], r["dtype"], str(r["batch"]), f"error: {r['error']}"]
            cells += [""] * (len(COLUMNS) - len(cells))
        else:
            cells = [cell(r) for _, cell in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    skipped = sorted({f"{name} on {r['workload']} ({r['backend']}): {p['skipped']}"
                      for r in results for name, p in r.get("peers", {}).items() if "skipped" in p})
    lines += [""] + [f"- skipped: {s}" for s in skipped]
    disturbed = [r for r in results if (r.get("others_cpu") or 0.0) > DISTURBED]
    if disturbed:
        lines.append(f"- **{len(disturbed)} of {len(results)} rows ran while other processes took over "
                     f"{DISTURBED:.0%} of the CPU (last column): their timings are not reliable**")
    if report.get("targets"):
        lines += ["", targets_markdown(report["targets"])]
    return "\n".join(lines) + "\n"


def targets_markdown(targets: list[dict]) -> str:
    """A Markdown table of :func:`check_targets`' verdicts."""
    lines = ["| target | measured | met |", "| --- | --- | --- |"]
    for t in targets:
        what = {"gemm": "of the GEMM ceiling", "numpy": "× bpgpu on NumPy"}.get(t["against"], f"× {t['against']}")
        goal = f"{100 * t['goal']:.0f} %" if t["against"] == "gemm" else f"{t['goal']:g}"
        value = "–" if t["value"] is None else \
            (f"{100 * t['value']:.0f} %" if t["against"] == "gemm" else f"{t['value']:.2f}")
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['workload']} {t['backend']} {t['dtype']}: ≥ {goal} {what} | {value} | {met} |")
    return "\n".join(lines)


def plot(results: list[dict], path) -> None:
    """A PNG of training samples/s against batch size: one panel per workload, one line per
    backend and peer (CPU and GPU together)."""
    from matplotlib.figure import Figure

    names = sorted({r["workload"] for r in results if "error" not in r})
    fig = Figure(figsize=(5 * max(1, len(names)), 4), layout="constrained")
    axes = fig.subplots(1, max(1, len(names)), squeeze=False)[0]
    for ax, name in zip(axes, names):
        lines: dict[str, list] = {}
        for r in results:
            if r["workload"] != name or "error" in r:
                continue
            if "fit" in r:
                lines.setdefault(f"bpgpu {r['backend']} {r['dtype']}", []).append((r["batch"], r["fit"]["samples_per_s"]))
            for peer, p in r["peers"].items():
                if "train" in p:
                    where = "cuda" if r["backend"] == "cupy" else "cpu"
                    lines.setdefault(f"{peer} {where} {r['dtype']}", []).append((r["batch"], p["train"]["samples_per_s"]))
        for label, points in sorted(lines.items()):
            batch, rate = zip(*sorted(points))
            ax.plot(batch, rate, marker="o", linestyle="--" if label.startswith(PEERS) else "-", label=label)
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="training samples/s", title=name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=120)


# -- other work on the machine --------------------------------------------------------------

DISTURBED = 0.10  # other processes' share of the CPU above which a case's timings are suspect


def _cpu_sample():
    """(time, busy ticks of all CPUs, ticks of this process) from Linux's /proc, or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]  # user … steal
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    return time.monotonic(), sum(ticks) - ticks[3] - ticks[4], int(own[11]) + int(own[12])  # − idle, iowait


def others_cpu(since) -> float | None:
    """The share of all cores' time that other processes (and the hypervisor) took since ``since``,
    a :func:`_cpu_sample`; None where it cannot be known."""
    now = _cpu_sample()
    if since is None or now is None or now[0] <= since[0]:
        return None
    capacity = (now[0] - since[0]) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
    return max(0.0, ((now[1] - since[1]) - (now[2] - since[2])) / capacity)


def _wait_for_quiet(patience=120.0) -> None:
    """Wait, at most ``patience`` seconds, for a second in which other processes use under half
    of DISTURBED of the CPU."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        since = _cpu_sample()
        time.sleep(1.0)
        share = others_cpu(since)
        if share is None or share < DISTURBED / 2:
            return


def _undisturbed(case, retries: int) -> dict:
    """``case()``'s row with ``others_cpu`` recorded; with ``retries``, waits for quiet first and
    runs it again while other processes disturbed it, keeping the least disturbed row."""
    rows = []
    for attempt in range(retries + 1):
        if retries:
            _wait_for_quiet()
        since = _cpu_sample()
        row = case()
        row["others_cpu"] = others_cpu(since)
        rows.append(row)
        if row["others_cpu"] is None or row["others_cpu"] <= DISTURBED:
            break
        if attempt < retries:
            print(f"bpgpu bench: other processes took {row['others_cpu']:.0%} of the CPU; running it again",
                  file=sys.stderr, flush=True)
    return min(rows, key=lambda r: r["others_cpu"] or 0.0)


# -- command line --------------------------------------------------------------------------


def _versions(backends) -> dict:
    from . import __version__
    from .environment import cuda_versions, package_version

    found = {"python": platform.python_version(), "bpgpu": __version__, "numpy": np.__version__}
    for name in ("cupy", "torch", "scikit-learn", "threadpoolctl", "matplotlib"):
        version = package_version(name)
        if version is not None:
            found[name] = version
    for b in backends:
        if b.name == "cupy":
            found.update(cuda_versions(b.xp))
    return found


def _commit() -> str | None:
    """The git commit of the code being measured ("+" when the tree has changes), if known."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+" if dirty else "")


def _thread_limits(threads):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


def _thread_pools() -> list[str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed: BLAS threads not reported"]
    return [f"{p['internal_api']} {p.get('version') or ''} ({p['num_threads']} threads, {os.path.basename(p['filepath'])})"
            for p in threadpool_info()]


def _command_line(args) -> str:
    """``bpgpu bench`` and the options this run was given."""
    argv = getattr(args, "argv", None)
    if argv is None:  # from the bpgpu command: sys.argv is [program, "bench", options…]
        argv = sys.argv[1:]
        argv = argv[argv.index("bench") + 1:] if "bench" in argv else argv
    return shlex.join(["bpgpu", "bench", *argv])


def _list(choices=None, kind=str, allow_none=False):
    def parse(text):
        if allow_none and text.strip() == "none":
            return []
        try:
            items = [kind(t.strip()) for t in text.split(",") if t.strip()]
        except ValueError:
            items = []
        if not items or any(choices is not None and i not in choices for i in items) or \
                any(kind is int and i < 1 for i in items):
            what = f"names from {', '.join(choices)}" if choices else "positive integers"
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}")
        return items
    return parse


def _at_least(low, kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value >= low:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'} >= {low}, got {text!r}")
        return value
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bpgpu bench``."""
    parser.add_argument("--workloads", type=_list(WORKLOADS), default=list(WORKLOADS),
                        help="comma-separated workloads of DESIGN.md §5 (default: W0,W1,W2,W3)")
    parser.add_argument("--backends", type=_list(("numpy", "cupy")), default=None,
                        help="numpy,cupy (default: those that work here)")
    parser.add_argument("--dtypes", type=_list(DTYPES), default=["float32"], help="float32,float64 (default: float32)")
    parser.add_argument("--batch-sizes", type=_list(kind=int), default=None,
                        help="batch sizes for every workload (default: each workload's own)")
    parser.add_argument("--peers", type=_list(PEERS, allow_none=True), default=None,
                        help="torch,sklearn or none (default: those installed)")
    parser.add_argument("--measures", type=_list(MEASURES), default=list(MEASURES),
                        help="what to time of bpgpu: fit,step,forward (default: all; the GEMM ceiling always)")
    parser.add_argument("--repeats", type=_at_least(1, int), default=5, help="repeats per timing; the median is reported (default 5)")
    parser.add_argument("--rounds", type=_at_least(1, int), default=1,
                        help="times each case's runners take turns, each time with --repeats repeats; more rounds "
                             "steady a machine whose speed drifts (default 1)")
    parser.add_argument("--min-time", type=_at_least(0.0, float), default=0.2, help="seconds per repeat, at least (default 0.2)")
    parser.add_argument("--batches", type=_at_least(1, int), default=4, help="distinct batches used in turn (default 4)")
    parser.add_argument("--threads", type=_at_least(1, int), default=os.cpu_count(),
                        help="CPU threads for BLAS (threadpoolctl) and torch (default: all cores)")
    parser.add_argument("--seed", type=_at_least(0, int), default=0)
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="write the report as Markdown")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of samples/s against batch size (matplotlib)")
    parser.add_argument("--quiet-retries", type=_at_least(0, int), default=0, metavar="N",
                        help="for shared machines: wait for other processes to go idle before each case, and "
                             f"run a case again, up to N times, when they used over {100 * DISTURBED:.0f}%% of the CPU")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and one short repeat: exercises everything, measures nothing (for CI)")


def run(args: argparse.Namespace) -> int:
    """Run ``bpgpu bench``; 0 when every case ran, 1 when one failed or none could run, 2 when
    --plot is asked for without matplotlib."""
    from importlib.util import find_spec

    if args.plot and find_spec("matplotlib") is None:  # say so now, not after minutes of measuring
        print('bpgpu bench: --plot needs matplotlib, which is not installed: pip install "bpgpu[plot]"', file=sys.stderr)
        return 2
    unavailable, backends = {}, []
    for name in args.backends or ["numpy", "cupy"]:
        try:
            backends.append(get_backend(name))
        except BackendUnavailable as err:
            unavailable[name] = str(err)
            if args.backends:
                print(f"bpgpu bench: skipping {name}: {err}", file=sys.stderr)
    peers = []
    for name in PEERS if args.peers is None else args.peers:
        if find_spec(name) is None:
            unavailable[name] = f'{name} is not installed (pip install "bpgpu[compare]")'
        else:
            peers.append(name)
    min_time, repeats, rounds = (0.0, 1, 1) if args.smoke else (args.min_time, args.repeats, args.rounds)
    results = []
    with _thread_limits(args.threads):
        meta = {"command": _command_line(args), "commit": _commit(),
                "when": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "cpu": _cpu_name(), "cores": os.cpu_count(), "threads": args.threads,
                "platform": platform.platform(),
                "versions": _versions(backends), "backends": {b.name: b.describe() for b in backends},
                "unavailable": unavailable, "smoke": args.smoke, "min_time": min_time, "repeats": repeats, "rounds": rounds,
                "batches": args.batches, "measures": args.measures,
                "tf32": f"off (torch allow_tf32=False; CUPY_TF32={os.environ.get('CUPY_TF32', 'unset')})"}
        for name in args.workloads:
            w = workload(name, args.smoke)
            for backend in backends:
                for dtype in args.dtypes:
                    for m in args.batch_sizes or [w.batch]:
                        print(f"bpgpu bench: {w.name} {backend.name} {dtype} batch {m}", file=sys.stderr, flush=True)
                        try:
                            results.append(_undisturbed(lambda: run_case(
                                w, backend, dtype, m, peers=peers, measures=args.measures, n_batches=args.batches,
                                threads=args.threads, min_time=min_time, repeats=repeats, rounds=rounds, seed=args.seed),
                                args.quiet_retries))
                        except Exception as err:  # one failed case must not lose the others' report
                            import traceback

                            traceback.print_exc()
                            results.append({"workload": w.name, "backend": backend.name, "dtype": dtype, "batch": m,
                                            "sizes": list(w.sizes), "error": f"{type(err).__name__}: {err}"})
        meta["thread_pools"] = _thread_pools()  # now that the peers' libraries are loaded too
    report = {"meta": meta, "results": results, "targets": [] if args.smoke else check_targets(results)}
    text = markdown(report)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.plot and results:
        plot(results, args.plot)
    return 0 if results and not any("error" in r for r in results) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bpgpu bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
