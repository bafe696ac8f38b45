"""``bpgpu info``: versions, backends, CUDA devices and the BLAS NumPy uses."""

from __future__ import annotations

import platform

from .. import environment


def run(args) -> int:
    from .. import __version__, available_backends

    print(f"bpgpu {__version__}")
    print(f"python {platform.python_version()} ({platform.python_implementation()}, {platform.platform()})")
    print("packages: " + ", ".join(f"{name} {environment.package_version(name) or 'not installed'}"
                                   for name in environment.PACKAGES))
    backends = available_backends()
    print("backends:")
    for name, description in backends.items():
        print(f"  {name}: {description}")
    print("CUDA devices:")
    for line in environment.cuda_devices(backends):
        print(f"  {line}")
    print(f"BLAS (numpy): {environment.blas()}")
    return 0
