"""Fused functions on the CPU as compiled loops: one pass over memory, on every core.

Run as written on NumPy, a fused function is one pass over memory per operation, each on one
core (Adam: ~14 passes over the parameters). :func:`fuse` turns the same Python definition
into a Numba loop over the elements (``parallel=True``, ``fastmath=False``): each argument
read and written once, the elements shared among the threads. :mod:`bpgpu.trace` reads the
body as one element's arithmetic in NumPy's order of operations and dtype, so the loop gives
NumPy's numbers: bit for bit where the body uses only + − × ÷ √, max, min, ceil and |·|; tanh,
exp and log1p come from the C library instead of NumPy's own SIMD code and may differ in the
last bit (tests/test_compiled.py measures it).

When the plain function runs instead (results the same, within that last bit):
- Numba is not installed, or ``BPGPU_COMPILE=0`` is set;
- the call is small (the first array under :data:`MIN_ELEMENTS` elements), where one NumPy
  pass costs less than entering a compiled loop (measured, see docs/architecture.md);
- the body does not trace (:class:`bpgpu.trace.Untraceable`), the shapes are not an
  element-wise broadcast the loop knows, or a written argument overlaps another argument.

Nothing is compiled at import: Numba is imported at the first large call, and each loop is
compiled at its first call with a new argument signature, then cached on disk
(``BPGPU_CACHE_DIR``, else ``~/.cache/bpgpu``) as a generated source file Numba caches beside.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import pathlib
import sys
import tempfile
import threading

import numpy as np

from . import trace

# Below MIN_ELEMENTS elements the plain NumPy run is faster than entering the compiled loop;
# from PARALLEL_ELEMENTS the loop is shared among threads (the workqueue layer costs ~50 µs a
# call, which pays only over ~100K elements). Measured on 2 cores (docs/architecture.md).
MIN_ELEMENTS = 1 << 12
PARALLEL_ELEMENTS = 1 << 18
# Numba's threading layer: "workqueue" keeps its time when another process competes for the
# cores; OpenMP's spinning threads collapsed there (an Adam update over 1.86M floats: 1.2 ms
# against 12 ms). NUMBA_THREADING_LAYER in the environment wins.
THREADING_LAYER = "workqueue"
# The workqueue layer must not be entered by two threads at once (Numba aborts the process).
_LOCK = threading.Lock()


def elementwise_threads() -> int:
    """Threads for one large compiled loop: bpgpu.threads' setting (all cores by default)."""
    from . import threads

    return threads.elementwise()


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """True when fused functions may compile here: Numba importable and not switched off."""
    if os.environ.get("BPGPU_COMPILE", "1").strip() in ("0", "false", "no", "off"):
        return False
    try:
        return importlib.util.find_spec("numba") is not None
    except ValueError:  # in sys.modules as None: import refused
        return False


def fuse(fn):
    """``fn(xp, *args)`` with NumPy as ``xp``: a :class:`Loop` where Numba is available,
    else the plain function."""
    plain = functools.partial(fn, np)
    return Loop(fn, plain) if available() else plain


class Loop:
    """A fused function that runs as a compiled loop when the call is large enough and the
    arguments allow, as ``plain`` otherwise. ``compiled_signatures`` lists what compiled."""

    def __init__(self, fn, plain):
        self.fn, self.plain = fn, plain
        self.__name__ = fn.__name__
        self._kernels: dict = {}  # signature -> compiled kernel, or None where it cannot be

    def __call__(self, *args):
        first = args[0]
        if not isinstance(first, np.ndarray) or first.size < MIN_ELEMENTS:
            return self.plain(*args)
        signature = _signature(args)
        kernel = self._kernels.get(signature, False) if signature else None
        if kernel is False:
            kernel = self._kernels[signature] = _compile(self.fn, signature)
        if kernel is None or _overlap(args, kernel.writes):
            return self.plain(*args)
        threads = elementwise_threads() if first.size >= PARALLEL_ELEMENTS else 1
        kernel([a for a in args if a is not None], threads)

    @property
    def compiled_signatures(self) -> list:
        return [s for s, k in self._kernels.items() if k is not None]


# -- what one call's arguments are ----------------------------------------------------------
# Per argument: None, "number" (Python int/float), "scalar" (0-d array), "full" (the loop's
# shape), "row" ((C,) or (1, C) over (R, C)), "col" ((R, 1) over (R, C)).

def _signature(args):
    """(dtype, loop ndim, kinds) for ``args``, or None where the loop does not apply."""
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    dtype = arrays[0].dtype
    if dtype not in (np.float32, np.float64) or any(a.dtype != dtype for a in arrays):
        return None
    shape = max((a.shape for a in arrays), key=len)
    if len(shape) not in (1, 2):
        return None
    kinds = tuple([_kind(a, shape) for a in args])
    if "?" in kinds:
        return None
    flat = len(shape) == 1 or all(k != "row" and k != "col" for k in kinds) and all(
        a.flags.c_contiguous for a in arrays if a.ndim == 2)
    return dtype.name, 1 if flat else 2, kinds


def _kind(a, shape) -> str | None:
    if a is None:
        return None
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        return "number"
    if not isinstance(a, np.ndarray):
        return "?"
    if a.shape == ():
        return "scalar"
    if a.shape == shape:
        return "full"
    if len(shape) == 2 and a.shape in ((shape[1],), (1, shape[1])):
        return "row"
    if len(shape) == 2 and a.shape == (shape[0], 1):
        return "col"
    return "?"


def _overlap(args, writes) -> bool:
    """True when an argument the loop writes shares memory with another argument (element
    by element the loop would then differ from whole-array operations)."""
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    for w in writes:
        target = args[w]
        if any(a is not target and np.may_share_memory(a, target) for a in arrays):
            return True
    return False


# -- the generated loop ----------------------------------------------------------------------

def source(fn, signature) -> tuple[str, list[int]]:
    """The Python source of ``fn``'s loop for ``signature`` and the arguments it writes.

    Raises:
        bpgpu.trace.Untraceable: the body is not element-wise, or writes a scalar.
    """
    dtype, ndim, kinds = signature
    body = trace.trace(fn, kinds)
    if any(kinds[w] != "full" for w in body.writes):
        raise trace.Untraceable("a loop writes only arguments of the loop's full shape")
    params = ", ".join(f"a{i}" for i, k in enumerate(kinds) if k is not None)
    full = next(i for i, k in enumerate(kinds) if k == "full")
    element = {"full": "[i]" if ndim == 1 else "[i, j]", "row": "[j]", "col": "[i, 0]"}
    hoisted = {"number": "dt(a{})", "scalar": "dt(a{}[()])"}
    lines = [f"def kernel({params}):"]
    lines += [f"    x{arg} = {hoisted[kinds[arg]].format(arg)}" for arg in body.reads if kinds[arg] in hoisted]
    lines.append(f"    for i in prange(a{full}.shape[0]):")
    if ndim == 2:
        lines.append(f"        for j in range(a{full}.shape[1]):")
    loop = " " * 4 * (1 + ndim)
    lines += [f"{loop}x{arg} = a{arg}{element[kinds[arg]]}" for arg in body.reads if kinds[arg] in element]
    lines += [loop + line for line in body.lines]
    lines += [f"{loop}a{arg}{element['full']} = {name}" for arg, name in body.stores().items()]
    header = ["import numpy as np", "from numba import njit, prange", "", f"dt = np.{dtype}", ""]
    return "\n".join(header + lines) + "\n", body.writes


_DECORATOR = "@njit(parallel={}, fastmath=False, error_model='numpy', cache=True, nogil=True)"


def _compile(fn, signature):
    """The compiled loop (a :class:`_Kernel`), or None where ``fn`` cannot be one for ``signature``."""
    try:
        text, writes = source(fn, signature)
    except trace.Untraceable:
        return None
    return _Kernel(fn.__name__, text, signature, writes)


class _Kernel:
    """One loop in two compilations, made at first use: serial, and parallel over threads
    (a separate source file each: Numba's cache does not tell ``parallel`` apart)."""

    def __init__(self, name, text, signature, writes):
        self.name, self.text, self.writes = name, text, writes
        self._compiled = {}
        self._rows = [n for n, k in enumerate(k for k in signature[2] if k is not None) if k == "row"]
        self._flat = signature[1] == 1

    def _variant(self, parallel: bool):
        kernel = self._compiled.get(parallel)
        if kernel is None:
            text = self.text.replace("def kernel(", _DECORATOR.format(parallel) + "\ndef kernel(", 1)
            if not parallel:
                text = text.replace("prange(", "range(")
            digest = hashlib.sha1(text.encode()).hexdigest()[:16]
            kernel = self._compiled[parallel] = _load(f"{self.name}_{digest}", text).kernel
        return kernel

    def __call__(self, arrays, threads: int = 1):
        if self._flat:
            arrays = [a.reshape(-1) if isinstance(a, np.ndarray) and a.ndim > 1 else a for a in arrays]
        elif self._rows:
            arrays = [a.reshape(-1) if n in self._rows else a for n, a in enumerate(arrays)]
        if threads <= 1:
            return self._variant(False)(*arrays)
        kernel = self._variant(True)
        import numba

        with _LOCK:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            kernel(*arrays)


def cache_dir() -> pathlib.Path:
    """Where generated loops and Numba's cache of them live."""
    base = os.environ.get("BPGPU_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "bpgpu")
    return pathlib.Path(base) / "loops"


def _load(name: str, text: str):
    """The module of ``text``, written once as ``name``.py in :func:`cache_dir` (Numba caches
    a compiled function beside its source file, keyed by the file's time: never rewritten)."""
    if "NUMBA_THREADING_LAYER" not in os.environ:
        import numba

        numba.config.THREADING_LAYER = THREADING_LAYER
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = pathlib.Path(tempfile.gettempdir()) / "bpgpu-loops"
        folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    if not path.exists() or path.read_text() != text:
        from .io.atomic import atomic_write_text  # the one way bpgpu puts a file on disk

        atomic_write_text(path, text)
    # Registered before it runs: Numba's cache finds the module of a cached function by name.
    module_name = f"bpgpu_loop_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = sys.modules[module_name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
