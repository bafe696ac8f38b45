"""Run under ``mpiexec -n P python tests/mpi_failures.py``: for each case, the last rank is
given a bad input, a failing callback or stop() or other settings than the rest, and every rank must
raise the same error instead of waiting for ever in a collective. For each case rank 0
prints one line per rank, "CASE|RANK|Kind: message" ("ok" where fit returned);
tests/test_distributed_failures.py compares them (and bounds the run's time)."""

import numpy as np
from mpi4py import MPI

import bpgpu

comm = MPI.COMM_WORLD
rank, P = comm.Get_rank(), comm.Get_size()
odd = rank == P - 1  # the rank given something different


class Unusual(Exception):
    """Not a built-in kind of error: the other ranks raise RankError."""


def failing_callback(epoch, history):
    if odd and epoch == 2:
        raise Unusual("the callback's disk is full")


def failing_stop():
    """fit's stop(), called after every step."""
    if odd:
        raise Unusual("the stop function's socket is closed")
    return False


# What the last rank's network or fit is given instead of the others'.
NETWORK = {"seed": {"seed": 2}, "dtype": {"dtype": "float32"}}
FIT = {"epochs": {"epochs": 7}, "target_loss": {"target_loss": 0.5}, "optimizer": {"optimizer": "sgd"},
       "lr": {"lr": 0.06}, "batch_size": {"batch_size": 9}, "max_time": {"max_time": 100.0},
       "beta2": {"beta2": 0.99}, "shuffle": {"shuffle": False}, "patience": {"patience": 3}}
CASES = ["nan", "no rows", "callback", "stop", "weights", *NETWORK, *FIT]


def attempt(case):
    rng = np.random.default_rng(rank)
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))
    Xv, Yv = rng.standard_normal((5, 3)), rng.standard_normal((5, 1))
    fit = dict(epochs=6, lr=0.05, batch_size=8, optimizer="adam", validation_data=(Xv, Yv), patience=2)
    if case == "callback":
        fit["callback"] = failing_callback
    if case == "stop":
        fit["stop"] = failing_stop
    net = bpgpu.Network([3, 4, 1], **{"seed": 1, **(NETWORK.get(case, {}) if odd else {})})
    if odd:
        fit.update(FIT.get(case, {}))
        if case == "nan":
            X[3, 1] = np.nan
        elif case == "no rows":
            X, Y = X[:0], Y[:0]
        elif case == "weights":  # the same seed, other weights
            net.set_params(net.params * 1.5)
    try:
        net.fit(X, Y, comm=comm, **fit)
        return "ok"
    except Exception as err:
        return f"{type(err).__name__}: {err}"


for case in CASES:
    everyone = comm.gather(attempt(case))  # rank 0 prints them all: lines of several ranks would mix
    if rank == 0:
        print("".join(f"{case}|{r}|{said}\n" for r, said in enumerate(everyone)), end="", flush=True)
