"""bpgpu's table reader beside pandas' read_csv on the same CSV, in one run.

    python benchmarks/read_csv.py                     # 150k × 51 numbers, about 25 MB
    python benchmarks/read_csv.py --rows 20000 --rounds 3 --json out.json

Time: the readers take turns (each leading in turn) with a pause between, each in this
process; the ratios are taken round by round, so a machine busy with other work slows both
sides alike. Two bpgpu readers: with pandas installed and imported (its C reader, as for a
program that holds DataFrames, or a file of 64 MB or more), and without (NumPy's reader, as
the command line reads a smaller file). Two pandas readers: its default, which parses integer columns as int64, and
asked for float64 throughout, as bpgpu reads. Memory: each reader runs once in a fresh
subprocess under tracemalloc (NumPy and pandas report their arrays to it); the peak is
compared with the data's size as float64 (rows × columns × 8 bytes).

The file: ``--rows`` rows of 50 inputs and one target under a header, integers 0–99 and
two-decimal fractions, as a table of counts and rates looks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
READERS = {
    "bpgpu": "from bpgpu.cli.tables import read_table\nvalues = read_table(PATH).values",
    # bpgpu where pandas is not installed: NumPy's reader (an import of pandas fails meanwhile).
    "bpgpu-numpy": ("import sys\nfrom bpgpu.cli.tables import read_table\nhidden = sys.modules.pop('pandas', None)\n"
                    "sys.modules['pandas'] = None\ntry:\n    values = read_table(PATH).values\nfinally:\n"
                    "    del sys.modules['pandas']\n    if hidden is not None:\n        sys.modules['pandas'] = hidden"),
    "pandas": "import pandas\nvalues = pandas.read_csv(PATH).to_numpy()",
    # pandas asked for what bpgpu makes, float64 throughout: its default parses integer columns as int64.
    "pandas-float64": "import numpy, pandas\nvalues = pandas.read_csv(PATH, dtype=numpy.float64).to_numpy()",
}


def write_csv(path: Path, rows: int, columns: int = 51, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 100, (rows, columns)).astype(float)
    table[:, :10] = np.round(rng.random((rows, 10)), 2)
    header = ",".join([f"f{j}" for j in range(columns - 1)] + ["y"])
    np.savetxt(path, table, delimiter=",", fmt="%.10g", header=header, comments="")


def run_reader(name: str, path: Path) -> float:
    """Seconds one read of ``path`` by reader ``name`` took."""
    start = time.perf_counter()
    exec(READERS[name], {"PATH": str(path)})
    return time.perf_counter() - start


def peak_bytes(name: str, path: Path) -> int:
    """tracemalloc's peak while reader ``name`` reads ``path``, in a fresh process (imports before the start)."""
    script = (f"import sys, tracemalloc\nsys.path.insert(0, {str(ROOT)!r})\nimport numpy, bpgpu.cli.tables\n"
              + ("import pandas\n" if name != "bpgpu-numpy" else "")
              + f"PATH = {str(path)!r}\ntracemalloc.start()\n{READERS[name]}\n"
              "print(tracemalloc.get_traced_memory()[1])\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def measure(path: Path, rounds: int, pause: float) -> dict:
    """Each reader's times, and bpgpu's time over each pandas reader's, round by round."""
    times = {name: [] for name in READERS}
    for turn in range(rounds):
        order = list(READERS)[turn % len(READERS):] + list(READERS)[:turn % len(READERS)]  # each leads in turn
        for name in order:
            time.sleep(pause)
            times[name].append(run_reader(name, path))
    ratios = {name: [b / t for b, t in zip(times["bpgpu"], times[name])] for name in READERS if name != "bpgpu"}
    return {"times": times, "ratios": ratios}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=150_000)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--pause", type=float, default=0.5, help="seconds between two reads")
    p.add_argument("--csv", type=Path, help="read this file instead of writing one")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = args.csv or Path(folder) / "table.csv"
        if args.csv is None:
            write_csv(path, args.rows)
        sys.path.insert(0, str(ROOT))
        import pandas  # noqa: F401 — imported first, as in a program that holds DataFrames: bpgpu reads through it
        from bpgpu.cli.tables import read_table
        m, n = read_table(path).values.shape
        result = measure(path, args.rounds, args.pause)
        result.update(file=str(args.csv or f"{args.rows} × 51 generated"), megabytes=path.stat().st_size / 1e6,
                      float64_bytes=m * n * 8, peak={name: peak_bytes(name, path) for name in READERS})
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


def report(r: dict) -> None:
    ratios, size = r["ratios"], r["float64_bytes"]
    print(f"{r['file']}: {r['megabytes']:.1f} MB of CSV, {size / 1e6:.1f} MB as float64")
    for name, times in r["times"].items():
        print(f"  {name:14s} {statistics.median(times):.3f} s median, {min(times):.3f}–{max(times):.3f} s over "
              f"{len(times)} reads; peak memory {r['peak'][name] / 1e6:.0f} MB = {r['peak'][name] / size:.2f}× float64")
    for name, each in ratios.items():
        print(f"  bpgpu / {name} time, round by round: median {statistics.median(each):.2f}, "
              f"range {min(each):.2f}–{max(each):.2f}")


if __name__ == "__main__":
    sys.exit(main())
