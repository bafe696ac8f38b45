"""``predict`` and ``evaluate`` push their rows through the network a bounded chunk at a time
(:func:`bpgpu.metrics.outputs`, ``rows_per_chunk(net)`` rows each):
the activations held at once fit in ``BUDGET`` bytes whatever the row count (a model that
trained in mini-batches predicts 10⁶ rows without holding 10⁶ rows of every layer).

The outputs are the rows' own: each row's output depends on that row alone, so chunks give
the numbers one pass gives (to the last bit where the arithmetic is exact; otherwise within
the rounding of BLAS, whose blocking and threading already vary with the row count).
"""

from __future__ import annotations

# Bytes of activations (and deltas) one chunk may hold: Network.chunk_size_for(BUDGET) rows.
BUDGET = 64 * 2**20


def rows_per_chunk(net) -> int:
    """How many rows of ``net``'s activations fit in ``BUDGET`` bytes (at least one)."""
    return net.chunk_size_for(BUDGET)
