"""One Adam update over a flat float32 vector, paired turn by turn: bpgpu's fused function run
as plain NumPy, as the compiled loop (bpgpu/compiled.py), and torch.optim.Adam (default and
fused=True). Prints the median and the range of each, in ms, and the bytes each moves.

    PYTHONPATH=$PWD python benchmarks/adam_update.py [--n 1863690] [--turns 40] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bpgpu import compiled, optimizers


def _bpgpu_update(n, loop: bool):
    rng = np.random.default_rng(0)
    theta, D = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    scratch = [None, None] if loop else [np.empty(n, np.float32), np.empty(n, np.float32)]
    scalars = np.array([0.9, 0.1, 0.999, 0.001, 1e-3, 1e-8], np.float32)
    views = [scalars[i, ...] for i in range(6)]
    fn = compiled.fuse(optimizers.adam) if loop else (lambda *a: optimizers.adam(np, *a))
    return lambda: fn(theta, D, m, v, *scratch, *views)


def _torch_update(n, fused: bool):
    import torch

    p = torch.nn.Parameter(torch.randn(n))
    p.grad = torch.randn(n)
    opt = torch.optim.Adam([p], lr=1e-3, fused=fused)
    return lambda: opt.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_863_690)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    cases = {"numpy op by op": _bpgpu_update(args.n, False), "compiled loop": _bpgpu_update(args.n, True)}
    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        cases["torch Adam"] = _torch_update(args.n, False)
        cases["torch Adam fused"] = _torch_update(args.n, True)
    except ImportError:
        pass
    if args.threads:
        import numba

        numba.set_num_threads(args.threads)
    times = {name: [] for name in cases}
    for run in cases.values():  # warm: compile, first touch
        run(), run()
    for _ in range(args.turns):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    # Adam reads theta, D, m, v and writes theta, m, v: 7 passes of 4 bytes an element.
    print(f"Adam update over {args.n:,} float32, {args.turns} turns; one pass of 7 × 4 B each = "
          f"{7 * 4 * args.n / 1e6:.1f} MB")
    for name, t in times.items():
        t = sorted(x * 1e3 for x in t)
        print(f"  {name:18s} median {statistics.median(t):7.3f} ms  range {t[0]:.3f}–{t[-1]:.3f}  "
              f"{7 * 4 * args.n / statistics.median(t) / 1e6:6.1f} GB/s effective")


if __name__ == "__main__":
    main()
