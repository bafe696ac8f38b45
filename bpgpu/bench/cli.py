"""``bpgpu bench`` (and ``python -m bpgpu.bench``): its options, and the run over every case."""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import itertools
import os
import platform
import shlex
import signal
import sys
import traceback

from .. import environment, plotting
from ..io.atomic import check_target
from ..backend import DTYPES, BackendUnavailable, get_backend
from ..validation import fits_in_memory
from ..cli.argtypes import at_least, names
from ..cli.stopping import Stopped, raising
from .case import run_case
from .peers import DEFAULT_PEERS, MODULES, PEERS
from .report import check_targets, write
from .runners import MEASURES
from .timing import DISTURBED, thread_limits, undisturbed
from .workloads import OPTIMIZERS, WORKLOADS, workload

DESCRIPTION = "Throughput of bpgpu's training steps against the GEMM ceiling, PyTorch and scikit-learn."
EPILOG = ("Measures, each the median of --repeats timings after a warm-up, on the same data and initial "
          "weights: fit (net.fit's own loop), step (one training step without fit's bookkeeping), forward "
          "(the forward pass), gemm (the backend's (m x w)(w x w) matrix product, w the widest layer: the "
          "practical ceiling), and, where installed, the same network trained by PyTorch (same device) and "
          "scikit-learn's MLP (CPU). A training step counts 6 x weights x batch FLOPs. "
          "Reports go to stdout as Markdown, and to --json/--markdown/--plot files.")


def _workloads_help() -> str:
    return "; ".join(f"{w.name} {'-'.join(map(str, w.sizes))} {w.activation}/{w.output} {w.loss}, batch {w.batch}"
                     for w in WORKLOADS.values())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bpgpu bench``, and its help's description and epilogue."""
    parser.description, parser.epilog = DESCRIPTION, EPILOG
    parser.add_argument("--workloads", type=names(WORKLOADS), default=list(WORKLOADS),
                        help=f"comma-separated workloads (default: all): {_workloads_help()}")
    parser.add_argument("--backends", type=names(("numpy", "cupy")), default=None,
                        help="numpy,cupy (default: those that work here)")
    parser.add_argument("--dtypes", type=names(DTYPES), default=["float32"], help="float32,float64 (default: float32)")
    parser.add_argument("--batch-sizes", type=names(kind=int), default=None,
                        help="batch sizes for every workload (default: each workload's own; with --plot, also "
                             "1/16 and 1/4 of it, so the plot has lines)")
    parser.add_argument("--peers", type=names(PEERS, allow_none=True), default=None,
                        help=f"{','.join(PEERS)} or none (default: {','.join(DEFAULT_PEERS)}, those installed)")
    parser.add_argument("--optimizers", type=names(OPTIMIZERS), default=["sgd"],
                        help="sgd,adam: what bpgpu and the peers train with, default hyper-parameters, each "
                             "workload's learning rate for it (default: sgd)")
    parser.add_argument("--measures", type=names(MEASURES), default=list(MEASURES),
                        help="what to time of bpgpu: fit,step,forward (default: all; the GEMM ceiling always)")
    parser.add_argument("--repeats", type=at_least(1, int), default=5, help="repeats per timing; the median is reported (default 5)")
    parser.add_argument("--rounds", type=at_least(1, int), default=1,
                        help="times each case's runners take turns, each time with --repeats repeats; more rounds "
                             "steady a machine whose speed drifts (default 1)")
    parser.add_argument("--min-time", type=at_least(0.0, float), default=0.2, help="seconds per repeat, at least (default 0.2)")
    parser.add_argument("--batches", type=at_least(1, int), default=4, help="distinct batches used in turn (default 4)")
    parser.add_argument("--threads", type=at_least(1, int), default=os.cpu_count(),
                        help="CPU threads for BLAS (threadpoolctl) and torch (default: all cores)")
    parser.add_argument("--seed", type=at_least(0, int), default=0, help="seeds the data and the initial weights (default 0)")
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="write the report as Markdown")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of samples/s against batch size, a line per "
                        "backend, dtype and peer (matplotlib)")
    parser.add_argument("--quiet-retries", type=at_least(0, int), default=0, metavar="N",
                        help="for shared machines: wait for other processes to go idle before each case, and "
                             f"run a case again, up to N times, when they used over {100 * DISTURBED:.0f}%% of the CPU")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and one short repeat: exercises everything, measures nothing (for CI)")


def run(args: argparse.Namespace) -> int:
    """Run ``bpgpu bench``; 0 when every case ran, 1 when one failed or none could run, 2 when
    --plot is asked for without matplotlib."""
    if args.plot and not plotting.available():  # say so now, not after minutes of measuring
        print(f"bpgpu bench: --plot needs matplotlib, which is not installed: {plotting.INSTALL}", file=sys.stderr)
        return 2
    try:  # so is an output file that cannot be written: a symlink, a FIFO, a folder, no folder
        for path in filter(None, (args.json, args.markdown, args.plot)):
            check_target(path)
    except OSError as err:
        print(f"bpgpu bench: error: {err}", file=sys.stderr)
        return 1
    unavailable, backends = {}, []
    for name in args.backends or ["numpy", "cupy"]:
        try:
            backends.append(get_backend(name))
        except BackendUnavailable as err:
            unavailable[name] = str(err)
            if args.backends:
                print(f"bpgpu bench: skipping {name}: {err}", file=sys.stderr)
    peers = []
    for name in DEFAULT_PEERS if args.peers is None else args.peers:
        if importlib.util.find_spec(MODULES[name]) is None:
            unavailable[name] = f'{MODULES[name]} is not installed (pip install "bpgpu[compare]")'
        else:
            peers.append(name)
    try:  # sizes whose data cannot fit are refused now, in one line, not inside a case
        _check_memory(args)
    except ValueError as err:
        print(f"bpgpu bench: error: {err}", file=sys.stderr)
        return 1
    min_time, repeats, rounds = (0.0, 1, 1) if args.smoke else (args.min_time, args.repeats, args.rounds)
    results, stopped = [], None
    with thread_limits(args.threads):
        meta = {"command": _command_line(args), "commit": environment.commit(),
                "when": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "cpu": environment.cpu_name(), "cores": os.cpu_count(), "threads": args.threads,
                "platform": platform.platform(),
                "versions": environment.versions(backends), "backends": {b.name: b.describe() for b in backends},
                "unavailable": unavailable, "smoke": args.smoke, "min_time": min_time, "repeats": repeats, "rounds": rounds,
                "batches": args.batches, "measures": args.measures, "optimizers": args.optimizers,
                "tf32": f"off (torch allow_tf32=False; CUPY_TF32={os.environ.get('CUPY_TF32', 'unset')})"}
        try:  # a stopping signal or Ctrl-C ends the measuring; what was measured is still reported
            with raising():
                _measure_cases(args, backends, peers, dict(min_time=min_time, repeats=repeats, rounds=rounds), results)
        except (Stopped, KeyboardInterrupt) as stop:
            stopped = stop if isinstance(stop, Stopped) else Stopped(signal.SIGINT)
            meta["stopped"] = f"by {stopped} after {len(results)} case{'s' if len(results) != 1 else ''}"
            print(f"bpgpu bench: stopped {meta['stopped']}; reporting those", file=sys.stderr)
        meta["thread_pools"] = environment.thread_pools()  # now that the peers' libraries are loaded too
    report = {"meta": meta, "results": results, "targets": [] if args.smoke else check_targets(results)}
    held = []
    with raising(held=held):  # a signal now waits until the report is written
        print(write(report, json_path=args.json, markdown_path=args.markdown, plot_path=args.plot))
    stopped = stopped or (Stopped(held[0]) if held else None)
    if stopped is not None:
        return stopped.status
    return 0 if results and not any("error" in r for r in results) else 1


def _measure_cases(args, backends, peers, timing: dict, results: list) -> None:
    """Append to ``results`` each case's row (or its error) as it is measured."""
    for name in args.workloads:
        w = workload(name, args.smoke)
        for backend in backends:
            for dtype in args.dtypes:
                for m, opt in itertools.product(batch_sizes(args, w), args.optimizers):
                    print(f"bpgpu bench: {w.name} {backend.name} {dtype} batch {m} {opt}", file=sys.stderr, flush=True)
                    try:
                        results.append(undisturbed(lambda: run_case(
                            w, backend, dtype, m, peers=peers, measures=args.measures, n_batches=args.batches,
                            threads=args.threads, seed=args.seed, optimizer=opt, **timing), args.quiet_retries))
                    except Exception as err:  # one failed case must not lose the others' report
                        if isinstance(err, MemoryError):
                            print(f"bpgpu bench: {w.name} batch {m}: out of memory ({err})", file=sys.stderr)
                        else:
                            traceback.print_exc()
                        results.append({"workload": w.name, "backend": backend.name, "dtype": dtype, "batch": m,
                                        "optimizer": opt, "sizes": list(w.sizes),
                                        "error": f"{type(err).__name__}: {err}"})


def batch_sizes(args, w) -> list[int]:
    """The batch sizes workload ``w`` is measured at: --batch-sizes, else its own; with --plot,
    also 1/16 and 1/4 of its own (a line over batch sizes needs several, and smaller batches
    need no more memory)."""
    if args.batch_sizes:
        return list(args.batch_sizes)
    return sorted({max(1, w.batch // 16), max(1, w.batch // 4), w.batch}) if args.plot else [w.batch]


def _check_memory(args) -> None:
    """Refuse (ValueError) --batches × a batch size whose data cannot fit in memory: the host
    data (float64, X, Y and labels), its copy on the device, and a batch's activations."""
    for name in args.workloads:
        w = workload(name, args.smoke)
        for m in batch_sizes(args, w):
            rows = args.batches * m
            need = 2 * 8 * rows * (w.sizes[0] + w.sizes[-1] + 1) + 4 * 8 * m * sum(w.sizes)
            option = f"--batch-sizes {m} with --batches {args.batches}" if args.batch_sizes else \
                f"--batches {args.batches} with {w.name}'s batch size {m}"
            fits_in_memory(option, need, f"{rows:,} rows of {w.name}'s data")


def _command_line(args) -> str:
    """``bpgpu bench`` and the options this run was given."""
    argv = getattr(args, "argv", None)
    if argv is None:  # from the bpgpu command: sys.argv is [program, "bench", options…]
        argv = sys.argv[1:]
        argv = argv[argv.index("bench") + 1:] if "bench" in argv else argv
    return shlex.join(["bpgpu", "bench", *argv])


def main(argv=None) -> int:
    """``python -m bpgpu.bench``: the same as ``bpgpu bench``."""
    parser = argparse.ArgumentParser(prog="bpgpu bench")
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    return run(args)
