"""``mpiexec -n P bpgpu train``: each rank reads its block of the file, rank 0 alone prints
and writes, the result is one process's, and a checkpoint resumes on another rank count."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bpgpu
from bpgpu import distributed

from mpirun import ROOT, run_ranks

TRAIN = ["-m", "bpgpu", "train", "--data", "table.npy", "--target", "-1", "--sizes", "4,6,1", "--lam", "0.01",
         "--standardize", "--batch-size", "full", "--quiet", "--no-plot"]


def table(folder: Path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((53, 4))
    np.save(folder / "table.npy", np.hstack([X, np.tanh(X @ [[1.0], [-2.0], [0.5], [0.0]])]))


def train(folder, ranks, *more):
    if ranks == 1:
        out = subprocess.run([sys.executable, *TRAIN, *more], capture_output=True, text=True, cwd=folder,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    else:
        out = run_ranks(ranks, *TRAIN, *more, cwd=folder)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_ranks_train_a_file_as_one_process_and_rank_0_alone_writes(tmp_path):
    table(tmp_path)
    more = ["--lr-schedule", "invscaling", "--standardize-target"]  # over every rank's examples, as one process
    train(tmp_path, 1, "--epochs", "4", "--out", "one", *more)
    shown = train(tmp_path, 2, "--epochs", "4", "--out", "two", "--checkpoint-every", "2", *more)
    assert shown.count("training 4-6-1") == 1 and "over 2 ranks" in shown
    one, two = (bpgpu.load_checkpoint(tmp_path / d / "model.npz") for d in ("one", "two"))
    np.testing.assert_allclose(two.target_scaler.std, one.target_scaler.std, rtol=1e-14)
    one, two = one.network, two.network
    np.testing.assert_allclose(two.params, one.params, rtol=0, atol=1e-12 * float(np.max(np.abs(one.params))))
    history = json.loads((tmp_path / "two" / "history.json").read_text())
    alone = json.loads((tmp_path / "one" / "history.json").read_text())
    assert history["ranks"] == 2 and history["samples"] == 4 * 53
    np.testing.assert_allclose(history["r2"], alone["r2"], rtol=1e-9)  # R² over every rank's rows
    np.testing.assert_allclose(history["loss"], alone["loss"], rtol=1e-12)
    assert history["lr"] == alone["lr"] and alone["lr"][1] == 0.001 / 54**0.5

    # The same checkpoint continues on three ranks, then on one.
    train(tmp_path, 3, "--resume", "two/checkpoint.npz", "--epochs", "6", "--out", "three")
    assert json.loads((tmp_path / "three" / "history.json").read_text())["ranks"] == 3
    train(tmp_path, 1, "--resume", "three/model.npz", "--epochs", "7", "--out", "again")
    history = json.loads((tmp_path / "again" / "history.json").read_text())
    assert (history["ranks"], history["epochs"], len(history["loss"])) == (1, 7, 7)


def test_distributed_without_mpi4py_says_what_to_install(tmp_path):
    table(tmp_path)
    code = ("import sys; sys.modules['mpi4py'] = None\nfrom bpgpu.cli import main\n"
            f"sys.exit(main({TRAIN[2:] + ['--epochs', '1', '--distributed']!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 1 and out.stderr.strip() == f"bpgpu train: error: --distributed: {distributed.INSTALL_HINT}"


def test_a_failure_on_one_rank_ends_every_rank_saying_which(tmp_path):
    table(tmp_path)
    code = ("import sys\nfrom mpi4py import MPI\nimport bpgpu.cli.train as train\n"
            "from bpgpu.cli.errors import CLIError\nreal = train.training_data\n"
            "def failing(o, backend, *rank, **columns):\n"
            "    if MPI.COMM_WORLD.rank == 1:\n        raise CLIError('disk on fire')\n"
            "    return real(o, backend, *rank, **columns)\n"
            "train.training_data = failing\nfrom bpgpu.cli import main\n"
            f"sys.exit(main({TRAIN[2:] + ['--epochs', '50']!r}))")
    out = run_ranks(2, "-c", code, cwd=tmp_path, timeout=60)
    assert out.returncode != 0 and "bpgpu train: rank 1 of 2: error: disk on fire" in out.stderr, out.stderr


def test_a_rank_that_aborts_is_heard_every_time(tmp_path):
    """MPICH's launcher kills every rank on MPI_Abort without reading their pipes further: a
    rank's last line was lost in 23 of 200 bare aborts here (and once in CI). The abort waits
    for the pipes to empty; 20 aborts all heard (through bpgpu a line is lost less often than
    bare: the next test checks the order itself)."""
    code = ("import sys\nfrom bpgpu import distributed\ncomm = distributed.world()\n"
            "if comm.rank == 1:\n    print('last words', file=sys.stderr, flush=True)\n    comm.abort(3)\n"
            "comm.meet()\n")
    heard = [run_ranks(2, "-c", code, cwd=tmp_path, timeout=60) for _ in range(20)]
    assert [(out.returncode, "last words" in out.stderr) for out in heard] == [(3, True)] * 20


def test_an_abort_drains_standard_output_and_error_first(monkeypatch):
    """The order the launcher needs, checked without MPI (the 20 real aborts above miss a lost
    line now and then: it is lost in about 1 abort in 9)."""
    said = []

    class World:
        def Abort(self, status):
            said.append(("Abort", status))

    comm = object.__new__(distributed.MPICommunicator)  # no MPI needed to call abort
    comm.comm = World()
    monkeypatch.setattr(distributed, "_drained", lambda fd: said.append(("drained", fd)))
    comm.abort(3)
    assert said == [("drained", 1), ("drained", 2), ("Abort", 3)]


def test_an_abort_waits_for_the_pipe_to_empty_and_no_longer_than_its_limit():
    import threading

    read, write = os.pipe()
    try:
        os.write(write, b"x" * 1000)
        distributed._drained(write, limit=0.01)  # nobody reads: gives up
        assert distributed._unread(write) == 1000
        reader = threading.Thread(target=os.read, args=(read, 1000))
        reader.start()
        distributed._drained(write, limit=60)
        reader.join()
        assert distributed._unread(write) == 0
    finally:
        os.close(read)
        os.close(write)
    with open(os.devnull, "w") as devnull:
        distributed._drained(devnull.fileno(), limit=60)  # not a pipe: at once


def test_a_signal_to_one_rank_stops_every_rank_and_rank_0_saves(tmp_path):
    """SIGTERM to rank 1 alone: every rank stops at the same epoch (the epoch-end vote),
    rank 0 saves the run and says it was stopped by a signal to one of the ranks; the
    job's status is rank 1's 143."""
    import signal
    import time

    from mpirun import ENV, mpiexec, why_not

    if why_not():
        import pytest
        pytest.skip(why_not())
    launcher = ("import os, sys; open(f'pid.{os.environ[\"PMI_RANK\"]}', 'w').write(str(os.getpid()))\n"
                "from bpgpu.cli import main; sys.exit(main(sys.argv[1:]))")
    args = ["train", "--data", "spirals", "--samples", "600", "--sizes", "2,16,3", "--epochs", "100000",
            "--batch-size", "32", "--log-every", "1", "--no-plot", "--out", "run"]
    job = subprocess.Popen([mpiexec(), "-n", "2", sys.executable, "-c", launcher, *args], cwd=tmp_path,
                           env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "pid.1").exists() or "epoch" not in job.stdout.readline():
            assert time.monotonic() < deadline and job.poll() is None, "training did not start"
        os.kill(int((tmp_path / "pid.1").read_text()), signal.SIGTERM)
        out, err = job.communicate(timeout=60)
    finally:
        job.kill()
    assert job.returncode == 143, err
    assert "stopped by a stopping signal to one of the ranks" in err and "saved run/model.npz" in err, err
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["stop_reason"] == "interrupted" and history["ranks"] == 2
    assert bpgpu.load(tmp_path / "run" / "model.npz").sizes == [2, 16, 3]


def test_ranks_started_with_different_options_say_so_in_one_line(tmp_path):
    """Once a page of MPICH's errors from a collective of the wrong size, or a hang."""
    table(tmp_path)
    code = ("import os, sys\nfrom bpgpu.cli import main\nargs = sys.argv[1:]\n"
            "if os.environ['PMI_RANK'] == '1':\n    args[args.index('--epochs') + 1] = '5'\n"
            "sys.exit(main(args))")
    out = run_ranks(2, "-c", code, *TRAIN[2:], "--epochs", "4", cwd=tmp_path, timeout=60)
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip() == ("bpgpu train: error: every rank must be started with the same options; "
                                  "--epochs: 4 on rank 0, 5 on rank 1"), out.stderr


def test_ranks_score_classes_over_every_ranks_rows(tmp_path):
    """Accuracy is the right answers of every rank over the rows of every rank (over one
    rank's rows it would be about P times too high)."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((61, 4))
    labels = np.argmax(X[:, :3] + 0.5 * X[:, 3:], axis=1)
    np.save(tmp_path / "classes.npy", np.hstack([X, labels[:, None]]))
    args = ["--data", "classes.npy", "--one-hot", "--sizes", "4,6,3", "--epochs", "3", "--batch-size", "full"]
    train(tmp_path, 1, *args, "--out", "one")
    train(tmp_path, 2, *args, "--out", "two")
    one, two = (json.loads((tmp_path / d / "history.json").read_text()) for d in ("one", "two"))
    assert two["metric"] == "accuracy" and len(two["accuracy"]) == 3 and max(two["accuracy"]) <= 1.0
    np.testing.assert_allclose(two["accuracy"], one["accuracy"], rtol=1e-12)


def test_fewer_rows_than_ranks_are_counted_not_called_none(tmp_path):
    np.save(tmp_path / "two.npy", np.arange(10.0).reshape(2, 5))
    out = run_ranks(3, *TRAIN, "--data", "two.npy", "--epochs", "1", cwd=tmp_path, timeout=60)
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip() == ("bpgpu train: error: --data two.npy: 2 examples for 3 ranks; every rank needs "
                                  "at least one: start at most 2 ranks"), out.stderr


@pytest.mark.parametrize("suffix, value, message", [
    (".npy", 1e39, "row 40: input 1e+39 overflows float32"),
    (".csv", 1e39, "row 40: input 1e+39 overflows float32"),
    (".npy", np.nan, "row 40, column 2: expected a finite number, got nan"),
])
def test_a_rank_names_the_files_row_not_its_blocks(tmp_path, suffix, value, message):
    """Under MPI each rank reads its block of rows; a bad value in rank 1's block is named by its
    row in the file (40 of 53), not by its place in the block"""
    rng = np.random.default_rng(0)
    rows = np.hstack([rng.standard_normal((53, 4)), rng.standard_normal((53, 1))])
    rows[39, 2] = value
    path = tmp_path / f"bad{suffix}"
    if suffix == ".npy":
        np.save(path, rows)
    else:
        np.savetxt(path, rows, delimiter=",", header="a,b,c,d,y", comments="")
    out = run_ranks(2, *TRAIN[:3], "--data", path.name, *TRAIN[5:], "--dtype", "float32",
                    "--epochs", "1", cwd=tmp_path, timeout=60)
    assert out.returncode != 0
    assert f"{path.name}: {message}" in out.stderr, out.stderr


def test_ranks_refuse_data_from_stdin_instead_of_waiting_for_it(tmp_path):
    """mpiexec passes stdin to rank 0 alone: with a whole file on stdin rank 0 read it and the
    other ranks waited for theirs for ever (killed here at the timeout, ranks and all)"""
    from mpirun import ENV, mpiexec, why_not

    if why_not():
        pytest.skip(why_not())
    table(tmp_path)
    np.savetxt(tmp_path / "table.csv", np.load(tmp_path / "table.npy"), delimiter=",")
    with open(tmp_path / "table.csv") as stdin:
        job = subprocess.Popen([mpiexec(), "-n", "2", sys.executable, *TRAIN[:3], "--data", "/dev/stdin", *TRAIN[5:]],
                               stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path,
                               start_new_session=True)
        try:
            out, err = job.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, 9)
            job.communicate()
            pytest.fail("mpiexec -n 2 bpgpu train --data /dev/stdin still ran after 60 s: a rank waits for ever")
    assert job.returncode == 1, err
    assert err.strip() == ("bpgpu train: error: --data /dev/stdin: every one of the 2 ranks reads the file itself; "
                           "expected a regular file, not a pipe or a device"), err
