"""Run under ``mpiexec -n P python tests/mpi_weights.py``: weighted data-parallel training
against one process on all rows (the weights' sum travels with Delta in the one all-reduce).
A failed check raises; rank 0 prints "ok" at the end. tests/test_sample_weights.py runs it."""

from fractions import Fraction

import numpy as np
from mpi4py import MPI

import bpgpu

comm = MPI.COMM_WORLD
rank, P = comm.Get_rank(), comm.Get_size()
SIZES, TOL = [4, 6, 3], 1e-12

rng = np.random.default_rng(0)
X, labels = rng.standard_normal((40, SIZES[0])), rng.integers(0, SIZES[-1], 40)
Y, s = np.eye(SIZES[-1])[labels], rng.uniform(0.0, 2.0, 40)
s[:5] = 0.0
cuts = [0, 13, 40] if P == 2 else np.linspace(0, 40, P + 1).astype(int)
a, b = cuts[rank], cuts[rank + 1]


def network():
    return bpgpu.Network(SIZES, activation="tanh", output="softmax", loss="cross_entropy", lam=0.05, seed=2)


def close(got, want, what):
    err = np.max(np.abs(np.asarray(got) - want)) / np.max(np.abs(want))
    assert err <= TOL, f"{what}: relative error {err:.3g} on rank {rank}"


J, D = network().loss_and_gradients(X[a:b], Y[a:b], sample_weight=s[a:b], comm=comm)
J1, D1 = network().loss_and_gradients(X, Y, sample_weight=s)
close(J, J1, "J")
for l in range(len(D)):
    close(D[l], D1[l], f"D[{l}]")

# Full batch, class weights "balanced" counted over every rank, times the sample weights.
net, ref = network(), network()
net.fit(X[a:b], labels[a:b], sample_weight=s[a:b], class_weight="balanced", epochs=10, optimizer="adam", lr=0.05,
        comm=comm)
ref.fit(X, labels, sample_weight=s, class_weight="balanced", epochs=10, optimizer="adam", lr=0.05)
close(net.params, ref.params, "full batch weights")

# Mini-batches without shuffling: one process on the interleaved order (rank r's row j at (j + ½)/counts[r]).
counts = [cuts[r + 1] - cuts[r] for r in range(P)]
order = np.array([cuts[r] + j for _, r, j in sorted((Fraction(2 * j + 1, 2 * c), r, j)
                                                    for r, c in enumerate(counts) for j in range(c))])
net, ref = network(), network()
net.fit(X[a:b], Y[a:b], sample_weight=s[a:b], epochs=3, batch_size=7, shuffle=False, optimizer="adam", lr=0.01,
        comm=comm)
ref.fit(X[order], Y[order], sample_weight=s[order], epochs=3, batch_size=7, shuffle=False, optimizer="adam", lr=0.01)
close(net.params, ref.params, "mini-batch weights")

# A step whose weights sum to 0 over every rank is refused on every rank alike.
try:
    network().fit(X[a:b], Y[a:b], sample_weight=np.zeros(b - a), comm=comm)
except ValueError as err:
    assert "sum to 0" in str(err), err
else:
    raise AssertionError("a zero-sum step was taken")

if rank == 0:
    print(f"ok: {P} ranks")
