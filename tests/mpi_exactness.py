"""Run under ``mpiexec -n P python tests/mpi_exactness.py``: data-parallel training against
one process on all rows. Every rank computes the single-process reference itself; a
failed check raises (mpiexec then exits non-zero) and rank 0 prints "ok" at the end.
tests/test_distributed.py launches it with P = 2 and 3."""

import os
import signal
from fractions import Fraction

import numpy as np
from mpi4py import MPI

import bpgpu
from bpgpu import distributed

comm = MPI.COMM_WORLD
rank, P = comm.Get_rank(), comm.Get_size()
SIZES, LAM, TOL = [4, 6, 5, 3], 0.03, 1e-12


def data(seed, m):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, SIZES[0]))
    Y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], m)]
    return X, Y


def shards(m):
    """Unequal blocks: rank r holds about (r + 1) parts of the rows."""
    cuts = np.cumsum([0] + [r + 1 for r in range(P)]) * m // sum(range(1, P + 1))
    return list(zip(cuts[:-1], cuts[1:]))


def network(**kw):
    return bpgpu.Network(SIZES, activation="tanh", output="softmax", loss="cross_entropy", lam=LAM, seed=3, **kw)


def close(got, want, what):
    err = np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300)
    assert err <= TOL, f"{what}: relative error {err:.3g} > {TOL} on rank {rank} of {P}"


def same_on_every_rank(a, what):
    everyone = comm.allgather(np.ascontiguousarray(a).tobytes())
    assert all(b == everyone[0] for b in everyone), f"{what}: ranks differ bitwise (P = {P})"


X, Y = data(0, 61)
blocks = shards(len(X))
a, b = blocks[rank]
Xr, Yr = X[a:b], Y[a:b]
Xv, Yv = data(1, 23)
av, bv = distributed.shard(len(Xv), rank, P)

# Gradients and loss of the shards together are those of all rows.
J, D = network().loss_and_gradients(Xr, Yr, comm=comm)
J1, D1 = network().loss_and_gradients(X, Y)
close(np.array(J), np.array(J1), "J")
for l, (d, d1) in enumerate(zip(D, D1)):
    close(d, d1, f"D[{l}]")
close(np.array(network().evaluate(Xr, Yr, comm=comm)), np.array(network().evaluate(X, Y)), "evaluate")

# Full batch: each optimiser, λ > 0, equals one process on the concatenated rows.
for opt, lr in (("sgd", 0.5), ("momentum", 0.1), ("adam", 0.01)):
    net, ref = network(), network()
    h = net.fit(Xr, Yr, epochs=15, lr=lr, optimizer=opt, comm=comm)
    h1 = ref.fit(X, Y, epochs=15, lr=lr, optimizer=opt)
    close(net.params, ref.params, f"full batch {opt} weights")
    close(np.array(h.loss), np.array(h1.loss), f"full batch {opt} losses")
    same_on_every_rank(net.params, f"full batch {opt} weights")

# Mini-batches, no shuffling: one process on the documented interleaved order, built here
# from its definition in exact fractions (rank r's row j at (j + ½) / counts[r], ties to the
# lower rank), not with the function under test.
counts = [hi - lo for lo, hi in blocks]
placed = sorted((Fraction(2 * j + 1, 2 * c), r, j) for r, c in enumerate(counts) for j in range(c))
order = np.array([blocks[r][0] + j for _, r, j in placed])
for B in (7, 16):
    net, ref = network(), network()
    h = net.fit(Xr, Yr, epochs=4, lr=0.01, batch_size=B, optimizer="adam", shuffle=False, comm=comm)
    h1 = ref.fit(X[order], Y[order], epochs=4, lr=0.01, batch_size=B, optimizer="adam", shuffle=False)
    close(net.params, ref.params, f"batch_size={B} weights")
    close(np.array(h.loss), np.array(h1.loss), f"batch_size={B} losses")
    assert (h.steps, h.samples) == (h1.steps, h1.samples), (h.steps, h.samples, h1.steps, h1.samples)
    same_on_every_rank(net.params, f"batch_size={B} weights")

# Shuffled mini-batches and sharded validation data with early stopping: the same on every rank.
net = network()
h = net.fit(Xr, Yr, epochs=30, lr=0.05, batch_size=8, optimizer="adam", validation_data=(Xv[av:bv], Yv[av:bv]),
            patience=2, comm=comm)
same_on_every_rank(net.params, "shuffled weights")
same_on_every_rank(np.array(h.loss + h.val_loss + [h.epochs]), "shuffled history")
close(np.array(h.val_loss[h.best_epoch]), np.array(net.evaluate(Xv, Yv)), "best validation loss")  # restored

# One rank's reason to stop stops every rank at the same epoch.
net = network()
h = net.fit(Xr, Yr, epochs=20, lr=0.1, comm=comm, callback=lambda epoch, _: rank == P - 1 and epoch == 2)
assert (h.epochs, h.stop_reason) == (3, "callback"), (rank, h.epochs, h.stop_reason)
same_on_every_rank(net.params, "stopped weights")

# Ctrl-C on one rank (SIGINT to it alone) stops every rank at the end of the same epoch.
def interrupt_last_rank(epoch, _):
    if rank == P - 1 and epoch == 1:
        os.kill(os.getpid(), signal.SIGINT)


net = network()
h = net.fit(Xr, Yr, epochs=20, lr=0.1, comm=comm, callback=interrupt_last_rank)
assert (h.epochs, h.stop_reason) == (2, "interrupted"), (rank, h.epochs, h.stop_reason)
same_on_every_rank(net.params, "interrupted weights")

if rank == 0:
    print(f"ok: {P} ranks")
