"""The ``bpgpu`` command: train, predict, evaluate, export, bench, example, info.

    bpgpu train --data spirals --sizes 2,64,64,3 --activation relu --epochs 300 --out runs/demo
    bpgpu predict runs/demo/model.npz --input X.csv --output Y.csv
    bpgpu evaluate runs/demo/model.npz --data test.csv --plot confusion.png
    bpgpu export runs/demo/model.npz model.onnx

Printing is best effort (``streams``): a closed stdout or stderr never stops a command's
work; a command whose product is what it prints exits 141 when its reader left early,
like a filter killed by SIGPIPE, while ``train`` (whose product is its files) exits as
its run went.

Every failure a user can cause (a missing file, a bad column, sizes that do not fit
the data, an unknown option value) ends as one line on stderr and a non-zero exit:
1 for errors, 2 for bad usage, 130 for Ctrl-C outside training. Ctrl-C, SIGTERM or
SIGHUP *during* training stops after the current step, saves the run, says so in one
line on stderr and exits 128 + the signal's number (130, 143, 129): see ``signals``.

One module per subcommand, each with ``add_arguments(parser)`` and ``run(args)``;
``tables`` reads and writes the data files they share.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings

from ..backend import BackendUnavailable
from ..threads import set_threads
from ..training import DivergenceError
from . import evaluate, example, export, info, predict, train
from .argtypes import at_least
from .errors import CLIError, one_line
from .streams import best_effort

__all__ = ["main", "build_parser", "CLIError"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not the usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv=None) -> int:
    """Run the ``bpgpu`` command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    with warnings.catch_warnings(), best_effort() as stdout:
        warnings.showwarning = _one_line_warning
        try:
            if getattr(args, "threads", None) and args.command != "bench":  # bench sets its own per case
                set_threads(args.threads)
            status = args.run(args)
            stdout.flush()  # a write that fails, fails now, while the status can still say so
            if stdout.lost is None or args.progress_only:  # train's printing is only progress
                return status
            if stdout.lost.errno == errno.EPIPE:  # its reader left early (`bpgpu predict … | head`):
                return 141                        # the status of a filter killed by SIGPIPE
            return _fail(f"{args.prog}: error: could not write the output ({stdout.lost.strerror or stdout.lost})")
        except (CLIError, ValueError, TypeError, OSError, BackendUnavailable, DivergenceError) as err:
            return _fail(f"{args.prog}: error: {one_line(err)}")
        except KeyboardInterrupt:
            return _fail(f"{args.prog}: interrupted", 130)
        except Exception as err:  # never a traceback for a user, unless asked for
            if os.environ.get("BPGPU_DEBUG"):
                raise
            return _fail(f"{args.prog}: internal error: {type(err).__name__}: {one_line(err)} "
                         "(rerun with BPGPU_DEBUG=1 for the traceback, and please report it)")


def _fail(message: str, status: int = 1) -> int:
    print(message, file=sys.stderr)
    return status


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"bpgpu: warning: {one_line(message)}", file=sys.stderr)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``bpgpu`` parser. ``command`` is the subcommand about to run: only ``bench``
    imports the benchmark package, so the other commands start without it."""
    from .. import __version__

    parser = _Parser(prog="bpgpu", description="Train fully-connected networks by backpropagation "
                     "on NumPy (CPU) or CuPy (CUDA GPU).")
    parser.add_argument("--version", action="version", version=f"bpgpu {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    def add(name, run, help, description=None, progress_only=False, threads=False):
        sub = commands.add_parser(name, help=help, description=description or help)
        sub.set_defaults(run=run, prog=f"bpgpu {name}", progress_only=progress_only)
        if threads:
            sub.add_argument("--threads", type=at_least(1, int), help="CPU threads for matrix products and "
                             "element-wise loops, at most the cores (default: decided from the work)")
        return sub

    train.add_arguments(add("train", train.run, "train a network on synthetic or file data",
                            "Train a network. Options left out on --resume come from the checkpoint.",
                            progress_only=True, threads=True))
    predict.add_arguments(add("predict", predict.run, "run a saved model on inputs from a file", threads=True))
    evaluate.add_arguments(add("evaluate", evaluate.run, "a saved model's loss and accuracy or R² on a labelled file "
                               "(a classifier's confusion matrix and per-class precision, recall, F1)", threads=True))
    export.add_arguments(add("export", export.run, "write a saved model as an ONNX graph (input and target scaling included)"))
    bench = add("bench", _bench, "benchmark bpgpu (and PyTorch, scikit-learn) on reference workloads")
    if command == "bench":
        module = _bench_cli()
        if module is not None:
            module.add_arguments(bench)
    add("example", example.run, "the seeds' worked example: the page's figures beside the exact ones")
    add("info", info.run, "versions, backends, CUDA devices and the BLAS NumPy uses")
    return parser


def _bench_cli():
    """bpgpu.bench.cli, or None where this installation lacks the benchmark package."""
    try:
        from ..bench import cli
    except ModuleNotFoundError as err:
        if err.name != "bpgpu.bench":
            raise
        return None
    return cli


def _bench(args) -> int:
    module = _bench_cli()
    if module is None:
        raise CLIError("benchmarks are not available in this installation (bpgpu/bench/ is missing)")
    return module.run(args)
