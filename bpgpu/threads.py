"""How many CPU threads a step uses: the BLAS library's (matrix products, through threadpoolctl)
and the compiled element-wise loops' (bpgpu/compiled.py).

One count for both, at most the cores this process may run on. They never nest (no product
runs inside a loop's threads, no loop inside a product's), so at most that many threads work
at once: BLAS threads × element-wise threads per running region ≤ cores.

The default, :func:`for_step`, decides from the step's shapes: products under
:data:`MIN_PARALLEL_FLOP` gain nothing from a second thread (measured on 2 cores: a
64×64·64×64 product takes 6 µs with one thread or two; 256×64·64×64 1.6× faster with two),
while each thread that waits on a descheduled sibling costs far more than it saves (W1 on a
busy machine: 126 ms a step with every core against 0.42 ms with one). Nothing here imports
threadpoolctl or Numba before a count is set.
"""

from __future__ import annotations

import contextlib
import os

# A step whose largest product is under this many floating-point operations runs on one thread.
MIN_PARALLEL_FLOP = 4e6

_setting: int | None = None  # set_threads' count; None: every core


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check(threads, name: str = "threads") -> int | None:
    """``threads`` as a count of at least 1 (None stays None: decide from the work).

    Raises:
        ValueError: not a whole number ≥ 1, naming ``name``.
    """
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"{name}: expected a whole number of threads >= 1 (or None: decided from the work), "
                         f"got {threads!r}")
    return threads


def for_step(sizes, batch: int) -> int:
    """The default count for a step of a network with layer ``sizes`` over ``batch`` rows:
    one thread where every product is small, else every core."""
    largest = max(2.0 * batch * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return cores() if largest >= MIN_PARALLEL_FLOP else 1


def elementwise() -> int:
    """Threads for one large compiled element-wise loop now."""
    return _setting or cores()


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for matrix products and element-wise loops from now on, in
    this process (capped at :func:`cores`: never more threads than cores); None: every core."""
    global _setting
    threads = check(threads)
    _setting = None if threads is None else min(threads, cores())
    _blas_limit(_setting or cores())


@contextlib.contextmanager
def limited(threads: int | None):
    """A context in which steps use ``threads`` threads (capped at the cores), restoring the
    previous setting after; None: no change."""
    global _setting
    threads = check(threads)
    if threads is None:
        yield
        return
    before = _setting
    _setting = min(threads, cores())
    controller = _controller()
    try:
        if controller is None:
            yield
        else:
            with controller.limit(limits=_setting, user_api="blas"):
                yield
    finally:
        _setting = before


def blas_threads() -> int | None:
    """The BLAS library's thread count now (None without threadpoolctl)."""
    controller = _controller()
    if controller is None:
        return None
    infos = [lib.num_threads for lib in controller.lib_controllers if lib.user_api == "blas"]
    return max(infos) if infos else None


_CONTROLLER = []


def _controller():
    """threadpoolctl's controller of the libraries loaded now, or None where it is missing."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _blas_limit(threads: int) -> None:
    controller = _controller()
    if controller is not None:
        controller.limit(limits=threads, user_api="blas")


def for_fit(threads, sizes, batch: int) -> int | None:
    """The count a fit uses: ``threads`` if given (checked), None (keep) where
    :func:`set_threads` chose one, else :func:`for_step`'s."""
    threads = check(threads)
    if threads is not None or _setting is not None:
        return threads
    return for_step(sizes, batch)
