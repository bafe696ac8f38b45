"""The memory guard: what would not fit is refused before it is allocated.

It must count what a build really allocates at its peak (measured here with
tracemalloc, which sees NumPy's allocations), and compare it with the memory
available now (Linux's MemAvailable, and a cgroup's limit), not with the total.
"""

from __future__ import annotations

import tracemalloc

import pytest

import bpgpu
from bpgpu import data
from bpgpu import environment

RELIABILITY = "memory"

BUILDS = {
    "network 600-600-600 float64": lambda: bpgpu.Network([600, 600, 600]),
    "network 600-600-600 float32": lambda: bpgpu.Network([600, 600, 600], dtype="float32"),
    "network 1000-300-1 without bias": lambda: bpgpu.Network([1000, 300, 1], bias=False),
    "xor data, 100k rows": lambda: data.xor(100_000),
    "spirals data, 50k rows of 5 classes": lambda: data.spirals(50_000, 5, dtype="float32"),
    "blobs data, 50k rows": lambda: data.blobs(50_000, 3, 8),
    "teacher data, 30k rows": lambda: data.teacher(30_000, (20, 64, 2)),
}


def peak_bytes(build) -> int:
    """The build's peak of traced memory, after a first build: one-time work (Numba compiling
    a fused loop the first time one runs, cached modules) is not the build's own memory."""
    build()
    tracemalloc.start()
    try:
        built = build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del built
    return peak


@pytest.mark.parametrize("build", BUILDS)
def test_the_guard_counts_what_is_really_allocated(monkeypatch, build):
    """With a byte less available than a build's measured peak it is refused; with 3 times the peak it runs"""
    peak = peak_bytes(BUILDS[build])
    monkeypatch.setattr(environment, "available_memory", lambda: peak - 1)
    with pytest.raises(ValueError, match="fits in the memory available"):
        BUILDS[build]()
    # Not overcounted by more than 3×: a network is counted with its gradients D (made by
    # its first step, or with the network where they are kept in a flat vector) and at
    # float64, so a float32 one built without its gradients is counted 2.6× its peak.
    monkeypatch.setattr(environment, "available_memory", lambda: 3 * peak)
    BUILDS[build]()


def fake_system(tmp_path, monkeypatch, *, total_kib, available_kib, cgroup=None):
    """Point the guard at a /proc/meminfo and a cgroup folder of our own."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal:       {total_kib} kB\nMemFree:          1000 kB\n"
                       f"MemAvailable:   {available_kib} kB\nBuffers:          100 kB\n")
    group = tmp_path / "cgroup"
    group.mkdir()
    if cgroup is not None:
        (group / "memory.max").write_text(f"{cgroup[0]}\n")
        (group / "memory.current").write_text(f"{cgroup[1]}\n")
    monkeypatch.setattr(environment, "MEMINFO", str(meminfo))
    monkeypatch.setattr(environment, "CGROUP", str(group))


def test_available_memory_not_total(tmp_path, monkeypatch):
    """64 GiB in the machine but 1 GiB available: a network needing 1.5 GiB is refused, saying what is available"""
    fake_system(tmp_path, monkeypatch, total_kib=64 * 2**20, available_kib=2**20)
    assert environment.available_memory() == 2**30
    with pytest.raises(ValueError, match=r"sizes: expected what fits in the memory available \(1 GiB\)"):
        bpgpu.Network([8000, 8000, 1])
    bpgpu.Network([100, 100, 1])


def test_a_cgroup_limit_lowers_what_is_available(tmp_path, monkeypatch):
    """In a container allowed 512 MiB, 500 MiB of them used, only 12 MiB are available"""
    fake_system(tmp_path, monkeypatch, total_kib=64 * 2**20, available_kib=32 * 2**20,
                cgroup=(512 * 2**20, 500 * 2**20))
    assert environment.available_memory() == 12 * 2**20
    with pytest.raises(ValueError, match=r"fits in the memory available \(12 MiB\)"):
        data.xor(1_000_000)
    (tmp_path / "cgroup" / "memory.max").write_text("max\n")  # no limit
    assert environment.available_memory() == 32 * 2**30
