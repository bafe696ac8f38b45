"""The buffers a training step reuses: activations and deltas of r rows, kept per batch size.

A step in steady state then allocates nothing: its matrix products and fused functions
write into these (``out=``), and the next step of the same batch size finds them again.
"""

from __future__ import annotations

# Training steps keep their buffers for this many batch sizes (a mini-batch, the last
# smaller one, and chunks of each).
KEPT = 4


class Workspace:
    """Buffers for r rows: z(l)/a(l) (r, s(l)) and d(l) (r, s(l)) for l = 1 … L, a vector
    of r ones (for the bias gradients 1ᵀ·d), and two columns (r, 1) for the loss's row
    reductions. d(L) is also kept flat (``flat_d``), for ‖d‖²."""

    def __init__(self, xp, dtype: str, sizes: list[int], bias: bool, rows: int):
        dtype = getattr(xp, dtype)
        self.z = [None] + [xp.empty((rows, s), dtype=dtype) for s in sizes[1:]]
        self.d = [None] + [xp.empty((rows, s), dtype=dtype) for s in sizes[1:-1]]
        self.flat_d = xp.empty(rows * sizes[-1], dtype=dtype)
        self.d.append(xp.reshape(self.flat_d, (rows, sizes[-1])))
        self.ones = xp.ones(rows, dtype=dtype) if bias else None
        self.rows = (xp.empty((rows, 1), dtype=dtype), xp.empty((rows, 1), dtype=dtype))


class Workspaces:
    """The :class:`Workspace` of each recent batch size of one network (sizes, bias, dtype)."""

    def __init__(self, xp, dtype: str, sizes: list[int], bias: bool):
        self._make = lambda rows: Workspace(xp, dtype, sizes, bias, rows)
        self.kept: dict[int, Workspace] = {}  # by row count, least recently used first

    def get(self, rows: int, keep: bool) -> Workspace:
        """Buffers for ``rows`` rows: kept for reuse (training steps), or new ones for one
        call (whose results must outlive it, or whose batch may be huge). Beyond ``KEPT``
        batch sizes, the least recently used one gives up its buffers."""
        if not keep:
            return self._make(rows)
        ws = self.kept.pop(rows, None)  # re-inserted below: the dict's order is the order of use
        if ws is None:
            if len(self.kept) >= KEPT:
                self.kept.pop(next(iter(self.kept)))
            ws = self._make(rows)
        self.kept[rows] = ws
        return ws

    def clear(self) -> None:
        self.kept.clear()
