"""Strong scaling of data-parallel training here, and a model of larger runs (docs/scaling.md).

    python benchmarks/scaling.py                      # measure W1–W3, print and save the tables
    python benchmarks/scaling.py --model results.json # only the model, from saved measurements

For each workload it runs the same global batch (float32, SGD) as 1 rank × 2 BLAS threads
(one plain process, no MPI) and as 2 ranks × 1 thread each (``mpiexec -n 2``), the two in
turns, keeping each one's best of ``--rounds``; each rank also times the all-reduce of the
flat gradient alone (bpgpu's deterministic reduce-scatter + all-gather, and MPI_Allreduce
for comparison). The model predicts ring all-reduce efficiency at P ranks:

    T_comm = 2·(P−1)/P · bytes / bandwidth,   efficiency = T_compute / (T_compute + T_comm)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STEPS = {"W1": 300, "W2": 10, "W3": 2}
LINKS = {"NVLink-class, 25 GB/s": 25e9, "100 Gb/s Ethernet, 12.5 GB/s": 12.5e9}
# A stated assumption, not a measurement: an H100's float32 (non-tensor-core) matrix
# products at about half of the 67 TFLOP/s peak.
GPU_FLOPS = 35e12


def worker(name: str, steps: int) -> None:
    """Under mpiexec (or alone): time ``steps`` training steps of the workload's global batch
    split over the ranks, and the all-reduce alone; rank 0 prints one JSON line."""
    from bpgpu import distributed
    from bpgpu.bench.workloads import make_data, workload
    from bpgpu.optimizers import SGD

    w = workload(name)
    comm = distributed.world() if distributed.launched_by_mpi() else None
    rank, P = (comm.rank, comm.size) if comm else (0, 1)
    X, Y, _ = make_data(w, w.batch, 1)
    start, stop = distributed.shard(w.batch, rank, P)
    net = w.network(dtype="float32")
    X, Y = net.batch(X[start:stop], Y[start:stop])
    opt = SGD(w.lr)

    def clock(run, times):
        run()  # warm: buffers made, pages touched
        if comm:
            comm.barrier()
        t0 = time.perf_counter()
        for _ in range(times):
            run()
        if comm:
            comm.barrier()
        return (time.perf_counter() - t0) / times

    step = clock(lambda: net.step(X, Y, opt, comm=comm), steps)
    flat = net.xp.zeros(net.n_params, dtype=net.xp.float32)
    reps = max(3, steps)
    reduce = clock(lambda: distributed.sum_over_ranks(comm, net.backend, flat, 0.0, 0), reps) if comm else 0.0
    allreduce = 0.0
    if comm:
        from mpi4py import MPI

        buf = np.zeros(net.n_params + 2, dtype=np.float32)
        allreduce = clock(lambda: comm.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM), reps)
    if rank == 0:
        print(json.dumps({"workload": name, "ranks": P, "threads": os.environ.get("OMP_NUM_THREADS"),
                          "batch": w.batch, "params": net.n_params, "bytes": 4 * (net.n_params + 2),
                          "flop": 6 * w.weights * w.batch, "step_s": step, "allreduce_s": reduce,
                          "mpi_allreduce_s": allreduce}))


def launch(name: str, ranks: int, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **{v: str(threads) for v in
           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    command = [sys.executable, __file__, "--worker", name, "--steps", str(STEPS[name])]
    if ranks > 1:
        command = [str(Path(sys.executable).with_name("mpiexec")), "-n", str(ranks)] + command
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(names, rounds: int) -> list[dict]:
    """Best step time of each configuration over ``rounds`` turns (a shared machine's
    other work only ever slows a run down)."""
    rows = []
    for name in names:
        best = {}
        for _ in range(rounds):
            for ranks, threads in ((1, 2), (2, 1)):
                r = launch(name, ranks, threads)
                if ranks not in best or r["step_s"] < best[ranks]["step_s"]:
                    best[ranks] = r
        one, two = best[1], best[2]
        two["efficiency"] = one["step_s"] / two["step_s"]
        rows += [one, two]
    return rows


def tables(rows: list[dict]) -> str:
    lines = ["| workload | ranks × threads | step (ms) | samples/s | GFLOP/s | all-reduce bytes/step | "
             "all-reduce (ms): bpgpu / MPI_Allreduce | efficiency |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['ranks']} × {r['threads']} | {r['step_s'] * 1e3:.2f} | "
                     f"{r['batch'] / r['step_s']:,.0f} | {r['flop'] / r['step_s'] / 1e9:.1f} | "
                     f"{r['bytes'] / 1e6:.2f} MB | "
                     + (f"{r['allreduce_s'] * 1e3:.2f} / {r['mpi_allreduce_s'] * 1e3:.2f} | {r['efficiency']:.0%} |"
                        if r["ranks"] > 1 else "— | — |"))
    return "\n".join(lines)


def model(rows: list[dict]) -> str:
    """Predicted communication share and efficiency at P = 8 and 64 for W2 and W3, compute
    from the 1-rank CPU measurement here or from GPU_FLOPS: strong scaling (the workload's
    batch split over P ranks: compute/P per rank) and weak (that batch on every rank)."""
    lines = ["| workload | compute per step of the batch | link | P | T_comm (ms) | strong: comm share | "
             "strong: efficiency | weak: comm share | weak: efficiency |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["ranks"] != 1 or r["workload"] not in ("W2", "W3"):
            continue
        for source, compute in ((f"measured here (CPU, 2 threads): {r['step_s'] * 1e3:.0f} ms", r["step_s"]),
                                (f"assumed GPU, {GPU_FLOPS / 1e12:.0f} TFLOP/s: {r['flop'] / GPU_FLOPS * 1e3:.1f} ms",
                                 r["flop"] / GPU_FLOPS)):
            for link, bandwidth in LINKS.items():
                for P in (8, 64):
                    comm = 2 * (P - 1) / P * r["bytes"] / bandwidth
                    shares = [comm / (comm + c) for c in (compute / P, compute)]
                    lines.append(f"| {r['workload']} | {source} | {link} | {P} | {comm * 1e3:.2f} | "
                                 + " | ".join(f"{s:.1%} | {1 - s:.1%}" for s in shares) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="W1,W2,W3")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "scaling.json"))
    p.add_argument("--model", metavar="JSON", help="only print the model from saved measurements")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a.worker, a.steps)
    if a.model:
        rows = json.loads(Path(a.model).read_text())["rows"]
    else:
        rows = measure(a.workloads.split(","), a.rounds)
        from bpgpu.environment import cpu_name

        Path(a.json).write_text(json.dumps({"cpu": cpu_name(), "cores": os.cpu_count(), "rows": rows}, indent=1) + "\n")
        print(tables(rows))
    print(model(rows))


if __name__ == "__main__":
    main()
