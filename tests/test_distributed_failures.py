"""No rank of a data-parallel ``fit`` waits for ever: one rank's rejected input, failing
callback or stop() or other settings raise the same clear error on every rank, under mpiexec with 2 and
3 ranks (tests/mpi_failures.py; a hang fails the test at the subprocess's timeout)."""

import functools
import subprocess

import pytest

from bpgpu import agreement, distributed
from mpirun import ROOT, run_ranks

RELIABILITY = "ranks"

SAME = "ValueError: fit(comm=): every rank must be given the same settings; "


@functools.lru_cache(maxsize=None)
def _outcomes(ranks: int) -> dict | str:
    """{case: {rank: what it said}}, or why there is none (kept too: one run per rank count)."""
    try:
        out = run_ranks(ranks, str(ROOT / "tests" / "mpi_failures.py"), cwd=ROOT, timeout=120)
    except subprocess.TimeoutExpired:
        return f"mpiexec -n {ranks} tests/mpi_failures.py still ran after 120 s: some rank waits for ever"
    if out.returncode != 0:
        return f"mpiexec -n {ranks} tests/mpi_failures.py failed: {(out.stdout + out.stderr)[-2000:]}"
    said = {}
    for line in out.stdout.splitlines():
        case, rank, text = line.split("|", 2)
        said.setdefault(case, {})[int(rank)] = text
    return said


def outcomes(ranks):
    said = _outcomes(ranks)
    if isinstance(said, str):
        pytest.fail(said)
    return said


def _rule(values, ranks):
    """'v0 on ranks 0 and 1, v1 on rank 2': the others' value, then the last rank's."""
    others = "rank 0" if ranks == 2 else "ranks 0 and 1"
    return f"{values[0]} on {others}, {values[1]} on rank {ranks - 1}"


EXPECTED = {
    "nan": "ValueError: rank {last} of {P}: X: expected finite numbers, got 1 non-finite value(s), the first at row 3",
    "no rows": "ValueError: rank {last} of {P}: X: expected at least one example (row), got shape (0, 3)",
    "callback": "RankError: rank {last} of {P}: the callback's disk is full",
    "stop": "RankError: rank {last} of {P}: the stop function's socket is closed",
    "weights": SAME + "initial weights (fingerprint): ",
    "seed": SAME + "seed: {seed}",
    "dtype": SAME + "dtype: {dtype}",
    "epochs": SAME + "epochs: {epochs}",
    "target_loss": SAME + "target_loss: {target_loss}",
    "optimizer": SAME + "optimizer: {optimizer}",
    "lr": SAME + "lr: {lr}",
    "batch_size": SAME + "batch_size: {batch_size}",
    "max_time": SAME + "max_time: {max_time}",
    "beta2": SAME + "beta2: {beta2}",
    "shuffle": SAME + "shuffle: {shuffle}",
    "patience": SAME + "patience: {patience}",
}
VALUES = {"seed": (1, 2), "dtype": ('"float64"', '"float32"'), "epochs": (6, 7), "target_loss": ("null", 0.5),
          "optimizer": ('"adam"', '"sgd"'), "lr": (0.05, 0.06), "batch_size": (8, 9), "max_time": ("null", 100.0),
          "beta2": (0.999, 0.99), "shuffle": ("true", "false"), "patience": (2, 3)}


@pytest.mark.parametrize("case", EXPECTED)
@pytest.mark.parametrize("ranks", [2, 3])
def test_every_rank_raises_the_same_error_naming_the_rank_and_what_differs(ranks, case):
    said = outcomes(ranks)[case]
    assert sorted(said) == list(range(ranks)), said
    assert len(set(said.values())) == 1, said  # the same error, word for word, on every rank
    rules = {k: _rule(v, ranks) for k, v in VALUES.items()}
    assert said[0].startswith(EXPECTED[case].format(last=ranks - 1, P=ranks, **rules)), said[0]


def test_an_agreed_error_is_marked_as_raised_on_every_rank():
    pact = agreement.Pact(distributed.SingleProcess())
    with pytest.raises(ValueError, match=r"^rank 0 of 1: bad$") as caught, pact:
        raise ValueError("bad")
    assert agreement.raised_everywhere(caught.value)


def test_one_process_fingerprints_nothing(monkeypatch):
    """Without comm nothing is agreed on, so fit spends no pass over the weights and the
    optimiser state on their fingerprints (it cost W2 at batch 64 about 0.4 ms a step in the bench)"""
    import numpy as np

    import bpgpu
    from bpgpu import agreement

    def fingerprinted(*args, **kwargs):
        raise AssertionError("fit fingerprinted the weights without MPI")

    monkeypatch.setattr(agreement, "digest", fingerprinted)
    net = bpgpu.Network([3, 4, 2])
    history = net.fit(np.ones((6, 3)), np.ones((6, 2)) * 0.5, epochs=2, optimizer=bpgpu.Adam(lr=0.01))
    assert history.epochs == 2
