"""Timing: calibrated, repeated and interleaved clock reads, and whether other work disturbed them.

A runner is ``(run, sync, flops)``: ``run(steps)`` does about ``steps`` steps and returns how
many it did, ``sync()`` waits for its device, and one step costs ``flops``.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time


def _clock(run, sync, steps) -> tuple[float, int]:
    sync()
    t0 = time.perf_counter()
    done = run(steps)
    sync()
    return time.perf_counter() - t0, done


def calibrate(run, sync, min_time: float) -> tuple[int, float, float | None]:
    """(steps, seconds per step, first repeat): after one warm-up call, the step count
    doubles until a call lasts min_time/4; ``steps`` then lasts about ``min_time``. The
    last call's seconds per step is also a first repeat when it lasted min_time already."""
    _clock(run, sync, 1)
    steps, (t, done) = 1, _clock(run, sync, 1)
    while t < min_time / 4:
        steps *= 2
        t, done = _clock(run, sync, steps)
    per_step = t / done
    return max(1, round(min_time / per_step)), per_step, per_step if t >= min_time else None


def measure(runs: dict, min_time: float, repeats: int, settle: float = 0.0, rounds: int = 1) -> dict:
    """{name: timing} for ``runs`` {name: (run, sync, …)}: the median seconds per step.

    In each of ``rounds`` rounds the runners take turns: each sleeps ``settle`` seconds, is
    warmed up (and calibrated, in the first round) and repeated ``repeats`` times. Turns,
    not interleaved calls: a CPU thread pool (OpenBLAS's, PyTorch's OpenMP) spins on for a
    while after its last call and slows whichever library runs next; the sleep lets it go
    idle. Rounds spread each runner's repeats over the whole measurement, so that a slow
    drift in the machine's speed touches all of them alike. Steps of a second or more get
    3 repeats at most, all in the first round.
    """
    plans, times = {}, {name: [] for name in runs}
    for r in range(rounds):
        for name, (run, sync, *_) in runs.items():
            if r == 0:
                time.sleep(settle)
                steps, per_step, first = plans[name] = calibrate(run, sync, min_time)
                times[name] += [] if first is None else [first]
            else:
                steps, per_step, _ = plans[name]
                if per_step >= 1.0:
                    continue
                time.sleep(settle)
                _clock(run, sync, steps)
            wanted = min(repeats, 3) if per_step >= 1.0 else repeats * (r + 1)
            while len(times[name]) < wanted:
                t, done = _clock(run, sync, steps)
                times[name].append(t / done)
    timings = {}
    for name, found in times.items():
        median = statistics.median(found)
        timings[name] = {"seconds": median, "steps": plans[name][0], "repeats": len(found),
                         "spread": (max(found) - min(found)) / median}
    return timings


@contextlib.contextmanager
def thread_limits(threads):
    """A context that limits BLAS and OpenMP pools and bpgpu's element-wise loops to ``threads``
    (the pools untouched without threadpoolctl)."""
    from .. import threads as cpu_threads

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=threads)
    with limits, cpu_threads.limited(threads):
        yield


# -- other work on the machine --------------------------------------------------------------

DISTURBED = 0.10  # other processes' share of the CPU above which a case's timings are suspect


def cpu_sample():
    """(time, busy ticks of all CPUs, ticks of this process) from Linux's /proc, or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]  # user … steal
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    return time.monotonic(), sum(ticks) - ticks[3] - ticks[4], int(own[11]) + int(own[12])  # − idle, iowait


def others_cpu(since) -> float | None:
    """The share of all cores' time that other processes (and the hypervisor) took since ``since``,
    a :func:`cpu_sample`; None where it cannot be known."""
    now = cpu_sample()
    if since is None or now is None or now[0] <= since[0]:
        return None
    capacity = (now[0] - since[0]) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
    return max(0.0, ((now[1] - since[1]) - (now[2] - since[2])) / capacity)


def wait_for_quiet(patience=120.0) -> None:
    """Wait, at most ``patience`` seconds, for a second in which other processes use under half
    of DISTURBED of the CPU."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        since = cpu_sample()
        time.sleep(1.0)
        share = others_cpu(since)
        if share is None or share < DISTURBED / 2:
            return


def undisturbed(case, retries: int) -> dict:
    """``case()``'s row with ``others_cpu`` recorded; with ``retries``, waits for quiet first and
    runs it again while other processes disturbed it, keeping the least disturbed row."""
    rows = []
    for attempt in range(retries + 1):
        if retries:
            wait_for_quiet()
        since = cpu_sample()
        row = case()
        row["others_cpu"] = others_cpu(since)
        rows.append(row)
        if row["others_cpu"] is None or row["others_cpu"] <= DISTURBED:
            break
        if attempt < retries:
            print(f"bpgpu bench: other processes took {row['others_cpu']:.0%} of the CPU; running it again",
                  file=sys.stderr, flush=True)
    return min(rows, key=lambda r: r["others_cpu"] or 0.0)
