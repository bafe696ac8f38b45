"""Everything bpgpu knows about devices lives here; nothing else imports cupy.

A :class:`Backend` gives the array namespace ``xp`` the core computes with, moves
arrays between the host and the device, synchronises, and makes seeded random
numbers on the device. Three exist:

- ``"numpy"``: the CPU, always available.
- ``"cupy"``: one CUDA device through CuPy (``pip install "bpgpu[cuda12]"`` or
  ``"bpgpu[cuda13]"``).
- ``"array_api_strict"``: the minimal array API standard, for tests only. The core
  running unchanged on it is the CI stand-in for a GPU library.

``"auto"`` picks CuPy when a CUDA device works, else NumPy.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from functools import lru_cache

import numpy as np

BACKENDS = ("numpy", "cupy", "auto", "array_api_strict")
DTYPES = ("float32", "float64")


class BackendUnavailable(RuntimeError):
    """The backend asked for cannot run here (not installed, or no CUDA device)."""


class Backend:
    """One array library on one device. The defaults are NumPy's and portable; each
    subclass overrides what its library does differently (or faster).

    Attributes:
        name: ``"numpy"``, ``"cupy"`` or ``"array_api_strict"``.
        xp: the array namespace the core computes with.
        device: the GPU index (CuPy), else None.
        out_of_memory: exception types that mean "the device ran out of memory".
    """

    name = "numpy"
    xp = np
    device = None
    out_of_memory: tuple[type[BaseException], ...] = (MemoryError,)

    @property
    def ops(self):
        """The namespace for in-place work: ``xp`` itself where its functions take ``out=``
        (NumPy, CuPy), else an adapter that computes and assigns (see :class:`OutAdapter`)."""
        return self.xp

    # Whether fused functions are given scratch vectors to write into (True: NumPy would
    # otherwise allocate temporaries every call) or None (a compiled kernel's registers).
    fused_scratch = True

    def fuse(self, fn):
        """``fn(ops, *arrays)`` bound to this backend: one element-wise kernel on CuPy
        (``cupy.fuse``), the plain function elsewhere, so CI runs the same Python the GPU
        compiles. ``fn`` writes its results into its array arguments (``out=``, ``+=``)."""
        return functools.partial(fn, self.ops)

    def dot(self, x, y, out=None):
        """Σ x·y over two vectors (``y`` may be a column (m, 1)): a 0-d array, or written into
        ``out`` (one element). The norms of J and λ and a one-unit layer's bias gradient."""
        return self.ops.matmul(x, y, out=out)

    def is_native(self, a) -> bool:
        """True when ``a`` is an array of this backend (no conversion needed)."""
        return isinstance(a, np.ndarray)

    def asarray(self, a, dtype: str):
        """``a`` (host or device array, list) as a C-ordered array of this backend with
        ``dtype``: row slices of it (mini-batches) are then contiguous matrices."""
        return self.xp.asarray(a, dtype=getattr(self.xp, dtype), order="C")

    def copy(self, a):
        """A new backend array equal to the backend array ``a``."""
        return self.xp.asarray(a, copy=True)

    def to_host(self, a) -> np.ndarray:
        """A NumPy copy (or view, on the CPU) of a backend array."""
        return np.asarray(a)

    def host_buffer(self, n: int, dtype) -> np.ndarray:
        """A host vector of n zeros to copy this backend's arrays through, kept by its caller
        (page-locked on a GPU, so the copies are direct)."""
        return np.zeros(n, dtype=dtype)

    def copy_to_host(self, a, out: np.ndarray) -> None:
        """out ← the backend vector ``a`` (same length), into the caller's host buffer."""
        np.copyto(out, self.to_host(a), casting="no")

    def copy_from_host(self, host: np.ndarray, a) -> None:
        """The backend vector ``a`` ← ``host`` (same length and dtype), in place."""
        a[...] = self.asarray(host, host.dtype.name)

    def total(self, arrays):
        """Σ of every entry of every array: a 0-d device array."""
        return sum(self.xp.sum(a) for a in arrays)

    def activate(self):
        """A context in which new arrays and kernels go to this backend's device."""
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        """Block until the device has finished all queued work (a no-op on the CPU)."""

    def release_memory(self) -> None:
        """Return cached device memory to the device (a no-op on the CPU)."""

    def set_tf32(self, allowed: bool) -> None:
        """Whether float32 matrix products may round their inputs to TF32 (CUDA only)."""

    def quiet_float_errors(self):
        """A context in which overflow and invalid operations give inf/NaN silently
        (training reports divergence itself)."""
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")

    def random(self, seed):
        """A seeded generator on this device with ``standard_normal``, ``random`` and
        ``integers`` (NumPy's Generator interface)."""
        return np.random.default_rng(seed)

    def describe(self) -> str:
        return f"numpy {np.__version__} (CPU)"


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self, cupy, device: int = 0):
        self.xp, self.device = cupy, device
        self.out_of_memory = (cupy.cuda.memory.OutOfMemoryError, MemoryError)

    def activate(self):
        """The device current, and the backend's own stream: a training step can then be
        captured as a CUDA graph (capture needs a stream other than the legacy default)."""
        context = contextlib.ExitStack()
        context.enter_context(self.xp.cuda.Device(self.device))
        context.enter_context(self.stream)
        return context

    @functools.cached_property
    def stream(self):
        """This backend's CUDA stream on its device. A blocking stream: work queued on the
        legacy default stream (arrays a caller made outside bpgpu) is ordered with it."""
        with self.xp.cuda.Device(self.device):
            return self.xp.cuda.Stream(non_blocking=False)

    def is_native(self, a) -> bool:
        return isinstance(a, self.xp.ndarray)

    fused_scratch = False

    def fuse(self, fn):
        # One compiled kernel per function (cached by CuPy per argument dtypes and ranks). CuPy
        # names the kernel extern "C": a prefix keeps it clear of CUDA's own C functions (a
        # kernel named tanh does not compile).
        return self.xp.fuse(kernel_name=f"bpgpu_{fn.__name__}")(functools.partial(fn, self.xp))

    def dot(self, x, y, out=None):
        # CuPy's matmul of two vectors is (x*y).sum(): a temporary the size of x, a multiply
        # and a two-pass CUB reduction. cuBLAS's dot writes into device memory directly.
        from cupy import cublas

        return cublas.dot(x.reshape(-1), y.reshape(-1), out=out)

    def copy(self, a):
        return a.copy()

    def to_host(self, a) -> np.ndarray:
        return self.xp.asnumpy(a)

    def host_buffer(self, n: int, dtype) -> np.ndarray:
        from cupyx import empty_pinned  # a part of cupy

        buf = empty_pinned((n,), dtype=dtype)
        buf[...] = 0
        return buf

    def copy_to_host(self, a, out: np.ndarray) -> None:
        a.get(out=out)

    def copy_from_host(self, host: np.ndarray, a) -> None:
        a.set(host)

    def synchronize(self) -> None:
        self.stream.synchronize()

    def release_memory(self) -> None:
        self.xp.get_default_memory_pool().free_all_blocks()

    def set_tf32(self, allowed: bool) -> None:
        # CuPy keeps one compute type per dtype for the whole process; it otherwise
        # reads CUPY_TF32 once, at the first float32 product. The setter is not public
        # API: where a CuPy version lacks it, say so rather than fail every network.
        try:
            from cupy._core import _routines_linalg as linalg

            mode = linalg.COMPUTE_TYPE_TF32 if allowed else linalg.COMPUTE_TYPE_DEFAULT
            linalg.set_compute_type(np.float32, mode)
        except (ImportError, AttributeError) as err:
            import warnings

            warnings.warn(f"allow_tf32={allowed}: this CuPy cannot set the float32 compute type ({err}); "
                          "CUPY_TF32 in the environment decides instead", RuntimeWarning, stacklevel=3)

    def random(self, seed):
        return self.xp.random.default_rng(seed)

    def describe(self) -> str:
        props = self.xp.cuda.runtime.getDeviceProperties(self.device)
        return f"cupy {self.xp.__version__} on {props['name'].decode()} (device {self.device})"


@lru_cache(maxsize=None)
def _cupy_backend(device: int = 0) -> CupyBackend:
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as err:
        raise BackendUnavailable(
            "backend='cupy' needs CuPy, which is not installed: "
            'pip install "bpgpu[cuda12]" (CUDA 12) or "bpgpu[cuda13]" (CUDA 13)'
        ) from err
    unavailable = ("backend='cupy': CuPy is installed but {}; check the driver with nvidia-smi, "
                   "or use backend='numpy' or 'auto'")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError, driver and library mismatches
        raise BackendUnavailable(unavailable.format(f"no CUDA device works ({err})")) from err
    if count < 1:
        raise BackendUnavailable(unavailable.format("no CUDA device found"))
    if device >= count:
        raise ValueError(f"device: expected a GPU index below {count} (the CUDA devices here), got {device}")
    try:
        with cupy.cuda.Device(device):
            # A real kernel and a real matrix product: the driver, the device and cuBLAS all work.
            a = cupy.ones((2, 2), dtype=cupy.float32)
            (a @ a).sum().item()
    except Exception as err:
        raise BackendUnavailable(unavailable.format(f"device {device} cannot run a kernel and a matrix "
                                                    f"product ({err})")) from err
    return CupyBackend(cupy, device)


class NumpyBackend(Backend):
    """The CPU, with NumPy's fast paths."""

    def total(self, arrays):
        # np.add.reduce skips np.sum's Python dispatch: half the cost on small arrays,
        # which matters once an epoch for a network as small as the worked example.
        return sum(np.add.reduce(a, axis=None) for a in arrays)

    def fuse(self, fn):
        # A compiled loop over the elements, on every core, where Numba is installed (the
        # plain function where it is not, or the call is small): bpgpu/compiled.py.
        from . import compiled

        return compiled.fuse(fn)

    @property
    def fused_scratch(self) -> bool:
        # A compiled loop keeps its temporaries in registers, as CuPy's kernels do: scratch
        # vectors would only add a pass over memory (the small plain calls allocate theirs).
        from . import compiled

        return not compiled.available()


_NUMPY = NumpyBackend()


def get_backend(name: str | Backend = "numpy", device: int | None = None) -> Backend:
    """The :class:`Backend` called ``name`` (one of ``BACKENDS``), or ``name`` itself;
    ``device`` picks the GPU (an index, default 0) for CuPy, and is ignored where "auto"
    falls back to NumPy.

    Raises:
        ValueError: an unknown name, or a device for a backend without one, or past the last GPU.
        BackendUnavailable: CuPy asked for where it is missing or no CUDA device works.
    """
    if isinstance(name, Backend):
        if device is not None and device != name.device:
            raise ValueError(f"device: the backend given runs on device {name.device}, got device={device}")
        return name
    if name in ("numpy", "array_api_strict") and device is not None:
        raise ValueError(f"device: only backend='cupy' (or 'auto') runs on a GPU, got device={device} "
                         f"with backend={name!r}")
    if name == "numpy":
        return _NUMPY
    if name == "cupy":
        return _cupy_backend(device or 0)
    if name == "auto":
        try:
            return _cupy_backend(device or 0)
        except BackendUnavailable:
            return _NUMPY
    if name == "array_api_strict":
        from .strict import strict_backend

        return strict_backend()
    raise ValueError(f"backend: expected one of {BACKENDS}, got {name!r}")


def available_backends() -> dict[str, str]:
    """Each backend's description, or why it is unavailable."""
    found = {}
    for name in ("numpy", "cupy", "array_api_strict"):
        try:
            found[name] = get_backend(name).describe()
        except BackendUnavailable as err:
            found[name] = f"unavailable: {err}"
    return found


def array_library(a) -> str:
    """The top-level module of an array's type, e.g. ``"numpy"``, ``"cupy"``, ``"torch"``."""
    return type(a).__module__.split(".")[0]


def cuda_device_count() -> int:
    """CUDA devices this process can see; 0 without CuPy or a working driver. Launches
    nothing on a device (data-parallel ranks count the GPUs before each picks its own)."""
    try:
        return importlib.import_module("cupy").cuda.runtime.getDeviceCount()
    except Exception:  # ImportError, CUDARuntimeError, driver and library mismatches
        return 0
