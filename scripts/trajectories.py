"""Training trajectories of two commits compared: the weights after N steps, bit for bit.

    python scripts/trajectories.py BASE [HEAD] [--steps N] [--ranks 2]

BASE and HEAD are git revisions (HEAD defaults to the working tree). Each is exported
(``git archive``) to a temporary folder and imported in a subprocess, which trains the
matrix networks × optimisers × λ × chunking × dtypes from the same seed and data through
the public API (``Network``, ``batch``, ``step``, ``make_optimizer``); with ``--ranks 2``
a second matrix runs under ``mpiexec -n 2``, each rank stepping on its half of the rows.
Prints one row per case: "identical", or the largest relative difference of the weights.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = {  # name: (sizes, activation, output, loss, bias)
    "sig-mse": ([4, 8, 3], "sigmoid", "sigmoid", "mse", True),
    "relu-id": ([4, 8, 8, 1], "relu", "identity", "mse", True),
    "tanh-softmax-ce": ([4, 6, 3], "tanh", "softmax", "cross_entropy", True),
    "tanh-sig-ce-nobias": ([4, 6, 1], "tanh", "sigmoid", "cross_entropy", False),
    "softmax-mse": ([4, 5, 3], "relu", "softmax", "mse", True),
}
OPTIMIZERS = {"sgd": ("sgd", {}), "momentum": ("momentum", {}), "nesterov": ("momentum", {"nesterov": True}),
              "adam": ("adam", {})}
LAMS, CHUNKS, DTYPES = (0.0, 0.01), (None, 3), ("float64", "float32")
ROWS = 12


def cases(ranks: int):
    for net in NETWORKS:
        for opt in OPTIMIZERS:
            for lam in LAMS:
                for chunk in CHUNKS:
                    for dtype in DTYPES:
                        yield net, opt, lam, chunk, dtype, ranks


def train(case, steps: int, comm=None) -> np.ndarray:
    """The flat weights after ``steps`` full-batch steps of ``case``."""
    import bpgpu
    from bpgpu.optimizers import make_optimizer

    name, opt_name, lam, chunk, dtype, _ = case
    sizes, activation, output, loss, bias = NETWORKS[name]
    net = bpgpu.Network(sizes, activation=activation, output=output, loss=loss, lam=lam, bias=bias,
                        dtype=dtype, seed=5)
    rng = np.random.default_rng(11)
    X = rng.standard_normal((ROWS, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], ROWS)] if sizes[-1] > 1 else rng.integers(0, 2, (ROWS, 1))
    if comm is not None:
        share = slice(comm.rank * ROWS // comm.size, (comm.rank + 1) * ROWS // comm.size)
        X, Y = X[share], Y[share]
    X, Y = net.batch(X, Y.astype(float))
    kind, options = OPTIMIZERS[opt_name]
    opt = make_optimizer(kind, 0.05, **options)
    for _ in range(steps):
        net.step(X, Y, opt, chunk, comm)
    return np.array(net.backend.to_host(net.params), dtype=np.float64)


def child(out: str, steps: int, ranks: int) -> None:
    comm = None
    if ranks > 1:
        from bpgpu import distributed

        comm = distributed.communicator("world")
    results = {"|".join(map(str, case)): train(case, steps, comm) for case in cases(ranks)}
    if comm is None or comm.rank == 0:
        np.savez(out, **results)


def export(rev: str, into: Path) -> Path:
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_side(tree: Path, out: Path, steps: int, ranks: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(out), "--steps", str(steps),
               "--ranks", str(ranks)]
    if ranks > 1:
        command = [str(Path(sys.executable).with_name("mpiexec")), "-n", str(ranks)] + command
    subprocess.run(command, env=env, check=True, cwd=tree)
    with np.load(out) as saved:
        return dict(saved)


def compare(base: dict, head: dict) -> list[tuple[str, str]]:
    rows = []
    for key in base:
        a, b = base[key], head[key]
        if np.array_equal(a, b):
            rows.append((key, "identical"))
        else:
            rel = np.max(np.abs(a - b) / np.maximum(np.abs(a), np.finfo(np.float64).tiny))
            rows.append((key, f"max rel diff {rel:.2e}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?")
    parser.add_argument("head", nargs="?", default=None, help="a revision; default: the working tree")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.steps, args.ranks)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base_tree = export(args.base, tmp / "base")
        head_tree = ROOT if args.head is None else export(args.head, tmp / "head")
        rows = []
        for ranks in sorted({1, args.ranks}):
            rows += compare(run_side(base_tree, tmp / f"base{ranks}.npz", args.steps, ranks),
                            run_side(head_tree, tmp / f"head{ranks}.npz", args.steps, ranks))
    print("| network | optimizer | λ | chunk | dtype | ranks | weights after", args.steps, "steps |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key, verdict in rows:
        print("| " + " | ".join(key.split("|")) + f" | {verdict} |")
    moved = [r for r in rows if r[1] != "identical"]
    print(f"\n{len(rows) - len(moved)} of {len(rows)} cases bit-identical", file=sys.stderr)


if __name__ == "__main__":
    main()
