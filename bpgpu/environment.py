"""What this machine runs: versions, CUDA devices, BLAS and thread pools, the CPU, the commit,
and the memory it has free now (:func:`available_memory`, read where a size comes from outside).

The one place that reports them: ``bpgpu info`` prints them and ``bpgpu bench`` records
them beside its timings. CuPy is reached through the backend, the one module that imports it.
"""

from __future__ import annotations

import contextlib
import os
import platform

import numpy as np

# The optional packages whose versions matter to a report, in the order they are shown.
PACKAGES = ("numpy", "cupy", "tqdm", "matplotlib", "torch", "scikit-learn", "threadpoolctl")


def package_version(name: str) -> str | None:
    """A distribution's installed version, or None; for cupy, whichever cupy-cudaNNx wheel
    provides it, e.g. "13.6.0 (cupy-cuda12x)"."""
    from importlib import metadata

    try:
        if name == "cupy":
            dists = metadata.packages_distributions().get("cupy", [])
            return f"{metadata.version(dists[0])} ({dists[0]})" if dists else None
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cuda_versions(cupy) -> dict[str, str]:
    """{"CUDA runtime": "12.4", "CUDA driver": "12.8"} for a working CuPy module."""
    def dotted(v: int) -> str:
        return f"{v // 1000}.{v % 1000 // 10}"

    runtime = cupy.cuda.runtime
    return {"CUDA runtime": dotted(runtime.runtimeGetVersion()), "CUDA driver": dotted(runtime.driverGetVersion())}


def versions(backends=()) -> dict[str, str]:
    """{name: version} of Python, bpgpu and every installed package of PACKAGES, plus the CUDA
    versions where one of ``backends`` is CuPy's."""
    from . import __version__

    found = {"python": platform.python_version(), "bpgpu": __version__}
    for name in PACKAGES:
        version = package_version(name)
        if version is not None:
            found[name] = version
    for b in backends:
        if b.name == "cupy":
            found.update(cuda_versions(b.xp))
    return found


def cuda_devices(backends: dict) -> list[str]:
    """One line for the CUDA runtime and driver, then one per device; ``backends`` is
    :func:`bpgpu.available_backends`' answer."""
    if backends.get("cupy", "").startswith("unavailable"):
        return ["none usable (the cupy backend is unavailable, see above)"]
    from .backend import get_backend

    cupy = get_backend("cupy").xp
    cuda = cuda_versions(cupy)
    lines = [f"CUDA runtime {cuda['CUDA runtime']}, driver {cuda['CUDA driver']}"]
    for i in range(cupy.cuda.runtime.getDeviceCount()):
        props = cupy.cuda.runtime.getDeviceProperties(i)
        with cupy.cuda.Device(i):
            free, total = cupy.cuda.runtime.memGetInfo()
        lines.append(f"{i}: {props['name'].decode()}, compute capability {props['major']}.{props['minor']}, "
                     f"{total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free)")
    return lines


def blas() -> str:
    """The BLAS NumPy calls: threadpoolctl's view where installed (the library actually loaded),
    else NumPy's build configuration."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        found = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads"
                 + (f", {p['architecture']}" if p.get("architecture") else "") + f") at {p.get('filepath')}"
                 for p in threadpool_info() if p.get("user_api") == "blas"]
        if found:
            return "; ".join(found)
    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{config.get('name')} {config.get('version', '')} (from numpy's build configuration)".replace("  ", " ")
    except Exception as err:  # the config layout varies between NumPy versions
        return f"unknown ({' '.join(str(err).split()) or type(err).__name__})"


def thread_pools() -> list[str]:
    """Every native thread pool loaded now (BLAS, OpenMP), one line each."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed: BLAS threads not reported"]
    return [f"{p['internal_api']} {p.get('version') or ''} ({p['num_threads']} threads, {os.path.basename(p['filepath'])})"
            for p in threadpool_info()]


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform module knows."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def commit() -> str | None:
    """The git commit of the code running ("+" when the tree has changes), if known."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+" if dirty else "")


# Where Linux says how much memory can be allocated now, for this machine and for
# this process's control group (a container's limit); tests point these elsewhere.
MEMINFO = "/proc/meminfo"
CGROUP = "/sys/fs/cgroup"


def available_memory() -> int | None:
    """Bytes that can be allocated now without swapping: Linux's MemAvailable (free
    memory plus caches it can drop), lowered to what the cgroup limit leaves; elsewhere
    the physical memory. None where the OS does not say."""
    have = _meminfo_available()
    if have is None:
        try:
            have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            return None
    left = _cgroup_left()
    return have if left is None else min(have, left)


def _meminfo_available() -> int | None:
    try:
        with open(MEMINFO) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the kernel's kB are KiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_left() -> int | None:
    """The cgroup v2 memory limit less its current use, or None without a limit."""
    try:
        with open(os.path.join(CGROUP, "memory.max")) as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(CGROUP, "memory.current")) as f:
            return max(0, int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        return None
