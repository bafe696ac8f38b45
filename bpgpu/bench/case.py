"""One case of the benchmark: bpgpu, its GEMM ceiling and the peers measured together.

All of them run on the same data — R batches of m rows, staged on the device once and used
in turn — from the same initial weights, with the device synchronised before every clock
read (see :mod:`bpgpu.bench.timing`).
"""

from __future__ import annotations

from ..backend import get_backend
from ..environment import cpu_name
from ..threads import cores
from .peers import DEFAULT_PEERS, PEERS, RUNNERS, Skip
from .runners import MEASURES, bpgpu_runners, gemm_runner, triad_runner
from .timing import measure
from .workloads import Workload, make_data


def run_case(w: Workload, backend, dtype: str, m: int, *, peers=DEFAULT_PEERS, measures=MEASURES, n_batches=4,
             threads=1, min_time=0.2, repeats=5, rounds=1, seed=0, optimizer="sgd") -> dict:
    """One row of the report: bpgpu on ``backend``, its GEMM ceiling, and each peer in ``peers``,
    bpgpu and the peers training with ``optimizer`` (one of OPTIMIZERS) at the workload's
    learning rate for it (see :func:`bpgpu.bench.timing.measure`)."""
    backend = get_backend(backend)
    net = w.network(backend, dtype, seed)
    thetas = [backend.to_host(t) for t in net.thetas]  # before any training: the peers' start
    X, Y, labels = make_data(w, m, n_batches, seed)
    on_gpu = backend.name == "cupy"
    width = max(w.sizes)
    row = {"workload": w.name, "sizes": list(w.sizes), "activation": w.activation, "output": w.output,
           "loss": w.loss, "backend": backend.name,
           "device": backend.describe() if on_gpu else f"{cpu_name()}, {threads} threads",
           "dtype": dtype, "batch": m, "optimizer": optimizer, "batches": n_batches, "weights": w.weights,
           "lr": w.lr_for(optimizer), "peers": {}}
    runs = bpgpu_runners(w, net, backend.asarray(X, dtype), backend.asarray(Y, dtype), m, measures, optimizer)
    runs["gemm"] = gemm_runner(backend.asarray, backend.synchronize, m, width, dtype, seed)
    if not on_gpu:
        runs["triad"] = triad_runner(min(threads, cores()))
    for name in peers:
        try:
            row["peers"][name], peer_runs = RUNNERS[name](w, thetas, X, Y, labels, m, dtype, on_gpu, threads, optimizer)
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
