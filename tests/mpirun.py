"""Launching tests under MPI: ``run_ranks(n, args…)`` runs ``mpiexec -n n python args…``,
or skips the test, saying why, where MPI cannot start."""

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def mpiexec():
    """mpiexec beside this Python (a venv with the mpi extra), else on PATH."""
    beside = Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else shutil.which("mpiexec")


ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1"}  # one BLAS thread per rank: ranks share the cores


@functools.lru_cache(maxsize=None)
def why_not() -> str | None:
    """None where mpiexec starts an mpi4py program here, else the reason it does not."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return 'the MPI tests need mpi4py and an MPI library: pip install ".[mpi]"'
    if mpiexec() is None:
        return 'no mpiexec beside Python or on PATH: pip install ".[mpi]"'
    probe = subprocess.run([mpiexec(), "-n", "1", sys.executable, "-c", "from mpi4py import MPI"],
                           capture_output=True, text=True, env=ENV, timeout=60)
    if probe.returncode != 0:
        return f"MPI cannot start here: {(probe.stderr or probe.stdout).strip()[-300:]}"
    return None


def run_ranks(n, *args, cwd=None, timeout=120):
    """``mpiexec -n n python args…`` (a CompletedProcess), or the test skipped where MPI cannot start."""
    if why_not():
        pytest.skip(why_not())
    return subprocess.run([mpiexec(), "-n", str(n), sys.executable, *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=timeout)
