"""What is installed: package versions and CUDA versions, for `bpgpu info` and bench reports."""

from __future__ import annotations


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
