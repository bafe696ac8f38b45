"""Throughput of bpgpu's training steps against the GEMM ceiling, PyTorch and scikit-learn.

    bpgpu bench --workloads W1,W2 --dtypes float32,float64 --json bench.json --plot bench.png
    python -m bpgpu.bench --smoke            # tiny sizes, every code path once (no timing claims)

For each workload (:mod:`~bpgpu.bench.workloads`), backend, dtype, batch size m and optimiser
(``--optimizers``: SGD, Adam; bpgpu and the peers alike), on the
same data — R batches of m rows, staged on the device once and used in turn — from the same
initial weights, after a warm-up, with the device synchronised before every clock read, the
median over several repeats of:

- ``fit``: ``net.fit(X, Y, epochs=E, optimizer=…, lr=η, batch_size=m, shuffle=False)`` with X
  the R batches stacked: fit's own loop, which is what users run.
- ``step``: the bare step (:func:`~bpgpu.bench.runners.bare_step`): fit without its
  bookkeeping, so ``fit − step`` is fit's overhead per step.
- ``forward``: the core forward pass (no input check).
- ``gemm``: the practical ceiling, the backend's ``A @ B`` with A (m × w) and B (w × w),
  w the workload's widest layer, counted as 2·m·w² FLOPs.
- ``torch`` and ``sklearn``: the same network in PyTorch eager and scikit-learn's MLP
  (:mod:`~bpgpu.bench.peers`).

The rooms: ``workloads`` (W0–W3, their data, the targets), ``timing`` (calibration, turns,
load detection), ``runners`` (bpgpu's and the GEMM's), ``peers`` (PyTorch, scikit-learn),
``case`` (one row), ``report`` (Markdown, JSON, plot), ``cli`` (the options and the run).
"""

from .case import ratios, run_case
from .cli import add_arguments, main, run
from .peers import PEERS, Skip, sklearn_fit, sklearn_model, sklearn_set_thetas, torch_model, torch_optimizer
from .report import check_targets, markdown, targets_markdown
from .runners import MEASURES
from .timing import measure
from .workloads import OPTIMIZERS, SMOKE_BATCH, SMOKE_SIZES, TARGETS, WORKLOADS, Workload, make_data, workload

__all__ = ["Workload", "WORKLOADS", "SMOKE_SIZES", "SMOKE_BATCH", "TARGETS", "OPTIMIZERS", "workload", "make_data",
           "MEASURES", "PEERS", "Skip", "torch_model", "torch_optimizer", "sklearn_model", "sklearn_fit", "sklearn_set_thetas", "measure", "run_case",
           "ratios", "check_targets", "markdown", "targets_markdown", "add_arguments", "run", "main"]
