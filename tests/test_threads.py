"""The CPU thread count: decided from the step's shapes, set by fit(threads=), bpgpu.set_threads
and --threads, never more than the cores (bpgpu/threads.py)."""

from __future__ import annotations

import numpy as np
import pytest

import bpgpu
from bpgpu import threads
from bpgpu.cli import main

pytest.importorskip("threadpoolctl", reason="the BLAS thread count is set through threadpoolctl")


@pytest.fixture(autouse=True)
def every_core_after():
    yield
    threads.set_threads(None)


def test_small_products_get_one_thread_large_ones_every_core():
    """W0, W1 at batch 64 (largest product 0.5 MFLOP): one thread; W2 at 64, W1 at 1024: every core"""
    assert threads.for_step([3, 2, 1], 3) == 1
    assert threads.for_step([64, 64, 64, 1], 64) == 1
    assert threads.for_step([784, 1024, 1024, 10], 64) == threads.cores()
    assert threads.for_step([64, 64, 64, 1], 1024) == threads.cores()


def _inside_fit(**options):
    """(BLAS threads, element-wise threads) seen from within a fit's first epoch."""
    seen = []
    net = bpgpu.Network([4, 8, 1], activation="relu", output="identity", seed=0)
    rng = np.random.default_rng(0)

    def look(epoch, history):
        seen.append((threads.blas_threads(), threads.elementwise()))

    net.fit(rng.standard_normal((16, 4)), rng.standard_normal((16, 1)), epochs=1, callback=look, **options)
    return seen[0]


def test_fit_runs_with_the_threads_asked_and_restores_them_after():
    threads.set_threads(None)
    before = threads.blas_threads()
    assert _inside_fit(threads=1) == (1, 1)
    assert threads.blas_threads() == before


def test_by_default_a_small_fit_runs_on_one_thread():
    assert _inside_fit() == (1, 1)


def test_never_more_threads_than_cores():
    """threads=64 on this machine: BLAS and the loops each get at most the cores, and they never
    nest (a loop's threads call no BLAS), so at most that many threads work at once"""
    blas, loops = _inside_fit(threads=64)
    assert blas <= threads.cores() and loops <= threads.cores()
    threads.set_threads(64)
    assert threads.elementwise() == threads.cores() and threads.blas_threads() <= threads.cores()


def test_set_threads_holds_for_later_fits_and_none_goes_back_to_every_core():
    threads.set_threads(1)
    assert threads.blas_threads() == 1 and threads.elementwise() == 1
    assert threads.for_fit(None, [784, 1024, 10], 1024) is None  # the setting stands
    threads.set_threads(None)
    assert threads.elementwise() == threads.cores()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_count_is_a_clear_error_naming_threads(bad):
    with pytest.raises(ValueError, match=r"^threads: expected a whole number of threads >= 1.*got"):
        _inside_fit(threads=bad)
    with pytest.raises(ValueError, match=r"^threads:"):
        bpgpu.set_threads(bad)


def test_cli_threads_is_set_before_the_command_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status = main(["train", "--threads", "1", "--data", "xor", "--sizes", "2,4,1", "--epochs", "2", "--quiet",
                   "--no-plot", "--out", "run"])
    assert status == 0, capsys.readouterr().err
    assert threads.elementwise() == 1 and threads.blas_threads() == 1


def test_cli_threads_below_one_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--threads", "0"])
    assert stop.value.code == 2 and "--threads" in capsys.readouterr().err
