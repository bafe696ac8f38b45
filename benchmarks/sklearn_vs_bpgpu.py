"""bpgpu.sklearn against sklearn.neural_network: the same recipe, the same process.

Each workload fits both libraries' MLPClassifier/MLPRegressor with identical parameters (adam,
a fixed number of epochs: tol=0 and n_iter_no_change=inf so neither stops early, the same
batch size, random_state=0) and reports the best of ``--repeats`` fit times, samples/s, the
speed-up, and the final training loss and score of each (a check that both did the same work).
bpgpu runs on NumPy and, where CuPy and a CUDA device work, on CuPy too.

    PYTHONPATH=$PWD python benchmarks/sklearn_vs_bpgpu.py --out benchmarks/results/sklearn
    PYTHONPATH=$PWD python benchmarks/sklearn_vs_bpgpu.py --quick      # smoke run, tiny sizes

Workloads (BENCHMARKS.md's sizes): digits (1797×64, hidden 100, 10 classes, batch 200),
W1 (64-64-64-1 relu regression, batch 256), W2 (784-1024-1024-10 relu softmax, batch 1024).
Take timings on a quiet machine; the report records the versions and thread counts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import bpgpu
from bpgpu.backend import BackendUnavailable, get_backend


def workloads(quick: bool):
    """{name: (kind, X, y, hidden, batch_size, epochs)}; synthetic data is seeded."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(0)
    X_digits, y_digits = load_digits(return_X_y=True)
    m1, m2 = (512, 256) if quick else (65536, 8192)
    X1 = rng.standard_normal((m1, 64))
    W1 = rng.standard_normal((64, 1)) / 8
    y1 = np.tanh(X1 @ W1).ravel()
    n2 = 64 if quick else 784
    X2 = rng.standard_normal((m2, n2))
    y2 = np.argmax(X2 @ rng.standard_normal((n2, 10)), axis=1)
    return {
        "digits": ("classifier", X_digits / 16.0, y_digits, (100,), 200, 5 if quick else 50),
        "W1": ("regressor", X1, y1, (64, 64), 256, 2 if quick else 10),
        "W2": ("classifier", X2, y2, (64, 64) if quick else (1024, 1024), 1024, 1 if quick else 3),
    }


def time_fit(make, X, y, repeats):
    """(best seconds, fitted estimator) over ``repeats`` fits of fresh estimators."""
    best, est = float("inf"), None
    for _ in range(repeats):
        est = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the recipe
            t0 = time.perf_counter()
            est.fit(X, y)
            best = min(best, time.perf_counter() - t0)
    return best, est


def run(quick: bool, repeats: int, dtype: str, backends: list[str]) -> dict:
    from sklearn import neural_network as skl

    from bpgpu import sklearn as bps

    rows = []
    for name, (kind, X, y, hidden, batch, epochs) in workloads(quick).items():
        X = X.astype(dtype)
        cls = "MLPClassifier" if kind == "classifier" else "MLPRegressor"
        recipe = dict(hidden_layer_sizes=hidden, activation="relu", solver="adam", alpha=1e-4, batch_size=batch,
                      learning_rate_init=1e-3, max_iter=epochs, tol=0.0, n_iter_no_change=np.inf,
                      shuffle=True, random_state=0)
        seconds, ref = time_fit(lambda: getattr(skl, cls)(**recipe), X, y, repeats)
        samples = X.shape[0] * epochs
        row = {"workload": name, "sizes": [X.shape[1], *hidden, ref.n_outputs_], "samples": X.shape[0],
               "epochs": epochs, "batch_size": batch, "sklearn_s": seconds, "sklearn_samples_s": samples / seconds,
               "sklearn_loss": ref.loss_, "sklearn_score": ref.score(X, y)}
        for backend in backends:
            secs, est = time_fit(lambda: getattr(bps, cls)(backend=backend, **recipe), X, y, repeats)
            row.update({f"bpgpu_{backend}_s": secs, f"bpgpu_{backend}_samples_s": samples / secs,
                        f"speedup_{backend}": seconds / secs, f"bpgpu_{backend}_loss": est.loss_,
                        f"bpgpu_{backend}_score": est.score(X, y)})
        rows.append(row)
        print(_line(row, backends), flush=True)
    return {"rows": rows, "backends": backends, "dtype": dtype, "repeats": repeats, "quick": quick,
            "environment": environment(backends)}


def environment(backends) -> dict:
    from bpgpu.environment import package_version

    env = {"python": sys.version.split()[0], "platform": platform.platform(), "processor": platform.processor(),
           "cpu_count": os.cpu_count(), "bpgpu": bpgpu.__version__,
           **{p: package_version(p) for p in ("numpy", "scikit-learn", "scipy", "cupy")},
           "backends": {b: get_backend(b).describe() for b in backends}}
    try:
        from threadpoolctl import threadpool_info

        env["blas_threads"] = [(i.get("internal_api"), i.get("num_threads")) for i in threadpool_info()]
    except ImportError:
        pass
    return env


def _line(row, backends) -> str:
    parts = [f"{row['workload']:>6}: scikit-learn {row['sklearn_s']:.3f} s"]
    parts += [f"bpgpu[{b}] {row[f'bpgpu_{b}_s']:.3f} s ({row[f'speedup_{b}']:.2f}×)" for b in backends]
    return ", ".join(parts)


def markdown(report) -> str:
    backends = report["backends"]
    head = ["workload", "sizes", "samples × epochs", "scikit-learn s"]
    head += [h for b in backends for h in (f"bpgpu {b} s", f"speed-up {b}")]
    head += ["loss sklearn / " + " / ".join(backends), "score sklearn / " + " / ".join(backends)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in report["rows"]:
        cells = [r["workload"], "-".join(map(str, r["sizes"])), f"{r['samples']} × {r['epochs']}",
                 f"{r['sklearn_s']:.3f}"]
        cells += [c for b in backends for c in (f"{r[f'bpgpu_{b}_s']:.3f}", f"{r[f'speedup_{b}']:.2f}×")]
        cells.append(" / ".join(f"{x:.4g}" for x in [r["sklearn_loss"]] + [r[f"bpgpu_{b}_loss"] for b in backends]))
        cells.append(" / ".join(f"{x:.3f}" for x in [r["sklearn_score"]] + [r[f"bpgpu_{b}_score"] for b in backends]))
        lines.append("| " + " | ".join(cells) + " |")
    env = report["environment"]
    lines += ["", f"{report['dtype']}, best of {report['repeats']}; Python {env['python']}, NumPy {env['numpy']}, "
              f"scikit-learn {env['scikit-learn']}, scipy {env['scipy']}, CuPy {env['cupy']}; {env['platform']}, "
              f"{env['cpu_count']} CPUs; BLAS threads {env.get('blas_threads', 'unknown')}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that it runs, measure nothing")
    parser.add_argument("--repeats", type=int, default=3, help="fits per library and workload; the best counts")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--backends", default="numpy,cupy",
                        help="bpgpu backends to try; unavailable ones are skipped, saying why")
    parser.add_argument("--out", type=Path, help="folder for sklearn_vs_bpgpu.json and .md")
    args = parser.parse_args(argv)
    backends = []
    for name in args.backends.split(","):
        try:
            get_backend(name)
            backends.append(name)
        except BackendUnavailable as err:
            print(f"skipping backend {name!r}: {err}", file=sys.stderr)
    report = run(args.quick, args.repeats, args.dtype, backends)
    table = markdown(report)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "sklearn_vs_bpgpu.json").write_text(json.dumps(report, indent=2, default=str))
        (args.out / "sklearn_vs_bpgpu.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
