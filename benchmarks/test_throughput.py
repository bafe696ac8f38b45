"""Workloads W0–W3 on every available backend and dtype: whole training steps through
``fit`` and forward passes, on data staged on the device once, several batches in turn,
the device synchronised before the clock stops, one warm-up round.

Each call's steps, samples and FLOPs (6 × weights × batch a step, 2 × for a forward pass)
are in the benchmark's ``extra_info``, so samples/s = samples_per_call / mean time.
"""

import os

import numpy as np
import pytest

from bpgpu import bench
from bpgpu.backend import DTYPES
from bpgpu.bench.runners import bare_forward

FULL = os.environ.get("BPGPU_BENCH_FULL") == "1"  # else tiny sizes, for CI
N_BATCHES = 4
# Epochs (and forward passes over the N_BATCHES batches) per timed call at full size: enough
# steps that fit's per-call work (input checks, optimiser set-up) and the timer's resolution
# are small beside them.
EPOCHS = {"W0": 250, "W1": 25, "W2": 1, "W3": 1}
ROUNDS = {"W0": 5, "W1": 5, "W2": 5, "W3": 3}


def staged(name, backend, dtype):
    """(workload, network, X, Y): N_BATCHES batches stacked, on the device."""
    w = bench.workload(name, smoke=not FULL)
    X, Y, _ = bench.make_data(w, w.batch, N_BATCHES)
    return w, w.network(backend, dtype), backend.asarray(X, dtype), backend.asarray(Y, dtype)


def timed(benchmark, name, call):
    return benchmark.pedantic(call, rounds=ROUNDS[name], iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(bench.WORKLOADS))
def test_train(benchmark, backend, name, dtype):
    w, net, X, Y = staged(name, backend, dtype)
    epochs = EPOCHS[name] if FULL else 1

    def train():
        history = net.fit(X, Y, epochs=epochs, lr=w.lr, batch_size=w.batch, shuffle=False)
        backend.synchronize()
        return history

    benchmark.group = f"{name} train"
    history = timed(benchmark, name, train)
    steps = epochs * N_BATCHES
    benchmark.extra_info.update(workload=name, sizes=list(w.sizes), batch=w.batch, steps_per_call=steps,
                                samples_per_call=steps * w.batch, flop_per_call=6 * w.weights * w.batch * steps)
    assert history.stop_reason == "epochs"
    assert history.steps == steps
    assert np.all(np.isfinite(history.loss))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(bench.WORKLOADS))
def test_forward(benchmark, backend, name, dtype):
    w, net, X, _ = staged(name, backend, dtype)
    batches = [X[i * w.batch:(i + 1) * w.batch] for i in range(N_BATCHES)]
    passes = (EPOCHS[name] if FULL else 1) * N_BATCHES

    def forward():
        outputs = [net.output_of(batches[i % N_BATCHES]) for i in range(passes)]
        backend.synchronize()
        return outputs[-N_BATCHES:]

    benchmark.group = f"{name} forward"
    outputs = timed(benchmark, name, forward)
    benchmark.extra_info.update(workload=name, sizes=list(w.sizes), batch=w.batch, steps_per_call=passes,
                                samples_per_call=passes * w.batch, flop_per_call=2 * w.weights * w.batch * passes)
    for a in outputs:
        assert a.shape == (w.batch, w.sizes[-1])
        assert bool(backend.xp.all(backend.xp.isfinite(a)))
