"""Data parallelism: the interleaving and the communicator here, exactness under mpiexec
(tests/mpi_exactness.py, launched with 2 and 3 ranks)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bpgpu
from bpgpu import distributed

from mpirun import run_ranks

ROOT = Path(__file__).resolve().parents[1]


def test_equal_shards_interleave_round_robin():
    ranks, local = distributed.interleaved_order([3, 3])
    assert list(zip(ranks, local)) == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]


def test_unequal_shards_interleave_by_their_rows_midpoints():
    """Rank 0's 2 rows sit at 1/4, 3/4, rank 1's 3 rows at 1/6, 1/2, 5/6 (written out here)."""
    ranks, local = distributed.interleaved_order([2, 3])
    assert list(zip(ranks.tolist(), local.tolist())) == [(1, 0), (0, 0), (1, 1), (0, 1), (1, 2)]


def test_each_step_takes_the_global_batch_in_proportion_to_the_ranks_rows():
    counts, B = [10, 20, 30], 12
    plans = [distributed.step_slices(r, counts, B) for r in range(3)]
    sizes = plans[0][1]
    assert sizes == [12] * 5 and all(p[1] == sizes and p[2] == 60 for p in plans)
    for k in range(5):
        assert [b - a for a, b in (p[0][k] for p in plans)] == [2, 4, 6]
    for r, p in enumerate(plans):  # consecutive blocks covering each rank's rows once
        assert p[0][0][0] == 0 and p[0][-1][1] == counts[r]
        assert all(p[0][k][1] == p[0][k + 1][0] for k in range(4))


def test_full_batch_is_one_step_of_every_row():
    assert distributed.step_slices(1, [4, 7], None) == ([(0, 7)], [11], 11)


def test_shard_blocks_differ_by_at_most_one_row():
    blocks = [distributed.shard(10, r, 4) for r in range(4)]
    assert blocks == [(0, 3), (3, 6), (6, 8), (8, 10)]


def test_launcher_detected_from_its_environment():
    assert distributed.launched_by_mpi({"PMI_SIZE": "4"})
    assert distributed.launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "2"})
    assert not distributed.launched_by_mpi({"PMI_SIZE": "1"}) and not distributed.launched_by_mpi({})


def test_one_rank_trains_as_no_communicator_does():
    X, Y = bpgpu.data.spirals(60, classes=3, seed=1)
    nets = [bpgpu.Network([2, 8, 3], output="softmax", loss="cross_entropy", lam=0.01, seed=2) for _ in range(2)]
    h0 = nets[0].fit(X, Y, epochs=5, batch_size=16, optimizer="adam", lr=0.01)
    h1 = nets[1].fit(X, Y, epochs=5, batch_size=16, optimizer="adam", lr=0.01, comm=distributed.SingleProcess())
    np.testing.assert_allclose(nets[1].params, nets[0].params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h1.loss, h0.loss, rtol=1e-12)


def test_a_comm_of_the_wrong_kind_is_refused():
    net = bpgpu.Network([2, 1])
    with pytest.raises(TypeError, match="comm: expected an mpi4py communicator"):
        net.fit([[0, 0]], [0], epochs=1, comm=42)


def _python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_the_steps_host_buffer_is_made_once_whatever_else_is_summed_between_steps():
    """Steps sum D through one kept (on CuPy page-locked) host buffer; a validation loss or
    an evaluation in between sums two numbers without taking its place, so the next step
    makes no new buffer (it did, every epoch)."""
    from bpgpu.backend import NumpyBackend

    class Made(NumpyBackend):
        buffers = 0

        def host_buffer(self, n, dtype):
            Made.buffers += 1
            return super().host_buffer(n, dtype)

    class TwoAlike(distributed.Communicator):  # two ranks holding the same numbers
        size = 2

        def allreduce_sum(self, buf):
            buf *= 2

    comm, backend, D = TwoAlike(), Made(), np.arange(5.0)
    for _ in range(3):
        assert distributed.sum_over_ranks(comm, backend, D, 1.0, 3) == [2.0, 6.0]
        assert distributed.sum_over_ranks(comm, backend, None, 0.25, 10) == [0.5, 20.0]
    np.testing.assert_array_equal(D, np.arange(5.0) * 8)
    assert Made.buffers == 1


def test_import_bpgpu_does_not_import_mpi4py():
    out = _python("import sys, bpgpu; print('mpi4py' in sys.modules)")
    assert out.stdout.strip() == "False", out.stderr


def test_without_mpi4py_comm_says_what_to_install():
    out = _python("import sys; sys.modules['mpi4py'] = None\n"
                  "import bpgpu\n"
                  "try:\n bpgpu.Network([2, 1]).fit([[0, 0]], [0], epochs=1, comm='world')\n"
                  "except ImportError as e:\n print(e)")
    assert out.stdout.strip() == distributed.INSTALL_HINT, out.stderr


@pytest.mark.parametrize("ranks", [2, 3])
def test_shards_train_exactly_as_one_process_on_all_rows(ranks):
    out = run_ranks(ranks, str(ROOT / "tests" / "mpi_exactness.py"), cwd=ROOT)
    assert out.returncode == 0 and f"ok: {ranks} ranks" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("metric", ["accuracy", "r2"])
def test_the_commands_metric_from_sums_equals_the_direct_one(metric):
    from bpgpu.cli import ranks

    X, labels = bpgpu.data.blobs(50, 3, 4, seed=5)
    net = bpgpu.Network([4, 6, 3], output="softmax", loss="cross_entropy", seed=1)
    Y = labels if metric == "accuracy" else net.forward(X) + 0.1 * np.random.default_rng(0).standard_normal((50, 3))
    # rows=7: the sums are taken over chunks, as over ranks.
    got = ranks.scorer(distributed.SingleProcess())(net, X, Y, metric, rows=7)
    assert got == pytest.approx(bpgpu.metrics.score(net, X, Y, metric), rel=1e-12)


def test_the_commands_standardizer_from_sums_equals_the_direct_one():
    from bpgpu.backend import get_backend
    from bpgpu.cli import ranks

    X = np.random.default_rng(2).standard_normal((40, 3)) * [1.0, 5.0, 0.0] + [0.0, 3.0, 7.0]
    got, want = ranks.standardizer(distributed.SingleProcess(), X, get_backend("numpy")), bpgpu.Standardizer().fit(X)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12)
    np.testing.assert_allclose(got.std, want.std, rtol=1e-12)


def test_the_commands_standardizer_of_huge_inputs_is_finite_as_the_direct_one():
    """Inputs near 1e160 square past float64's range: σ came out inf under MPI alone."""
    from bpgpu.backend import get_backend
    from bpgpu.cli import ranks

    X = np.array([[1e160, -3.0], [3e160, 5.0], [2e160, 1.0]])
    got, want = ranks.standardizer(distributed.SingleProcess(), X, get_backend("numpy")), bpgpu.Standardizer().fit(X)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12)
    np.testing.assert_allclose(got.std, want.std, rtol=1e-12)
    assert np.isfinite(got.std).all()


def test_mpi4py_without_an_mpi_library_says_what_to_install(tmp_path):
    """mpi4py raises RuntimeError (not ImportError) when it finds no MPI library to load."""
    (tmp_path / "mpi4py").mkdir()
    (tmp_path / "mpi4py" / "__init__.py").write_text("")
    (tmp_path / "mpi4py" / "MPI.py").write_text("raise RuntimeError('cannot load MPI library')\n")
    out = _python("import bpgpu\n"
                  "try:\n bpgpu.Network([2, 1]).fit([[0, 0]], [0], epochs=1, comm='world')\n"
                  "except ImportError as e:\n print(e)", PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    assert out.stdout.strip() == f"{distributed.INSTALL_HINT} (RuntimeError: cannot load MPI library)", out.stderr


def test_device_vectors_travel_through_one_kept_host_buffer():
    """No new host or device array per step: sum_over_ranks copies a CuPy vector into the
    page-locked buffer the backend made once (``get(out=)``), and back (``set``)."""
    from bpgpu.backend import CupyBackend

    class DeviceVector(np.ndarray):  # a stand-in cupy.ndarray: its two copies to and from the host
        def get(self, out):
            np.copyto(out, self)

        def set(self, host):
            np.copyto(self, host)

    class Device(CupyBackend):  # CuPy's copies, without a GPU: every other way to the host is refused
        made = []

        def __init__(self):
            self.xp = np

        def host_buffer(self, n, dtype):  # cupyx.empty_pinned needs a driver
            self.made.append(np.zeros(n, dtype))
            return self.made[-1]

        def to_host(self, a):
            raise AssertionError("a new host array")

        def asarray(self, a, dtype):
            raise AssertionError("a new device array")

    backend, comm = Device(), distributed.SingleProcess()
    flat = np.arange(5.0).view(DeviceVector)
    for step in range(3):
        assert distributed.sum_over_ranks(comm, backend, flat, 2.0, step) == [2.0, float(step)]
    np.testing.assert_array_equal(flat, np.arange(5.0))
    assert len(Device.made) == 1 and Device.made[0] is comm.buffer(7, np.float64)
