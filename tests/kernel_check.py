"""CuPy's own compiler, without a GPU: what bpgpu hands to ``backend.fuse``, traced and compiled.

CuPy imports without a driver, and a ``cupy.ndarray`` can be built over host memory
(``UnownedMemory`` + ``MemoryPointer``). Calling a ``cupy.fuse`` function on such arrays runs
CuPy's real fusion tracer, which builds one ``ElementwiseKernel``; only launching it needs a
device. An ndarray subclass with CuPy's ``__cupy_override_elementwise_kernel__`` hook takes the
kernel at that point, before any driver call; this module then generates the CUDA source the
way CuPy does and compiles it with NVRTC (the pip wheel) for a given architecture.

    Kind.of(a)         an argument's kind as the tracer sees it (tests/test_kernels.py records
                       the kinds a real training run fuses, on NumPy)
    trace(fn, kinds)   that function traced by cupy.fuse: the kernels it would launch
    source(kernel)     the CUDA source CuPy generates for one of them
    compile_for(src)   NVRTC's cubin for sm_XX (raises CompileException on an error)

CuPy's private functions used here (``_kernel._ArgInfo``, ``_get_elementwise_kernel_code``,
``_decide_params_type``, ``core._cupy_header_list``, ``assemble_cupy_compiler_options``,
``compiler._NVRTCProgram``) are those of :data:`CUPY_VERSION`; :func:`require_cupy` fails
(it does not skip) on any other version, so a change of CuPy is noticed and this is redone.
One approximation: CuPy collapses the dimensions of contiguous operands before generating
code (``_reduce_dims``); here every operand keeps the broadcast rank unless all operands
are contiguous and of one shape (then 1-D, as CuPy makes them). The operations, their
types and the kernel's name — what this check is about — do not depend on that.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np


CUPY_VERSION = "14.2.0"
ARCHS = ("80", "90")  # A100, H100/H200


def require_cupy():
    """CuPy and NVRTC as this check knows them, or a failure saying what to update."""
    import cupy

    if cupy.__version__ != CUPY_VERSION:
        raise AssertionError(f"tests/kernel_check.py reads CuPy {CUPY_VERSION}'s internals, this is CuPy "
                             f"{cupy.__version__}: check them against the new version and update CUPY_VERSION")
    return cupy


# -- recording what the library fuses ---------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """One argument as a fused function received it: an array's dtype and shape, or a
    Python scalar's type, or None."""

    kind: str  # "array", "float", "int", "bool", "none"
    dtype: str | None = None
    shape: tuple = ()

    @classmethod
    def of(cls, a) -> "Kind":
        if a is None:
            return cls("none")
        if isinstance(a, np.ndarray):
            return cls("array", a.dtype.name, tuple(a.shape))
        if isinstance(a, (bool, np.bool_)):
            return cls("bool")
        if isinstance(a, (int, np.integer)):
            return cls("int")
        if isinstance(a, (float, np.floating)):
            return cls("float")
        raise TypeError(f"a fused function was given {type(a).__name__}, which cupy.fuse does not take")


# -- tracing and compiling with CuPy ----------------------------------------------------

@functools.lru_cache(maxsize=None)
def _host_array_class():
    """An ndarray subclass over host memory (made once CuPy is imported)."""
    class HostArray(require_cupy().ndarray):
        """An ndarray over host memory whose element-wise kernels are handed over, not launched."""

        captured: list = []

        def __cupy_override_elementwise_kernel__(self, kernel, *args, **kwargs):
            HostArray.captured.append((kernel, args))

        def __cupy_override_reduction_kernel__(self, kernel, *args, **kwargs):
            HostArray.captured.append((kernel, args))

    return HostArray


def host_array(a: np.ndarray):
    """A CuPy array (of the capturing subclass) over the host memory of ``a`` (kept alive)."""
    cupy = require_cupy()
    a = np.ascontiguousarray(a)
    memory = cupy.cuda.UnownedMemory(a.ctypes.data, max(a.nbytes, 1), a, 0)  # device 0: no driver call
    return _host_array_class()(a.shape, a.dtype, cupy.cuda.MemoryPointer(memory, 0), strides=a.strides)


def _argument(kind: Kind):
    if kind.kind == "array":
        return host_array(np.full(kind.shape, 0.5, dtype=kind.dtype))
    return {"none": None, "float": 0.5, "int": 1, "bool": True}[kind.kind]


def trace(fn, kinds) -> list:
    """The kernels (CuPy ElementwiseKernel, arguments) that ``CupyBackend.fuse(fn)`` launches
    when called with arguments of ``kinds``."""
    from bpgpu.backend import CupyBackend

    cupy = require_cupy()
    captured = _host_array_class().captured
    captured.clear()
    CupyBackend(cupy, 0).fuse(fn)(*(_argument(k) for k in kinds))
    found = list(captured)
    captured.clear()
    return found


def source(kernel, args) -> str:
    """The CUDA source CuPy generates for ``kernel`` called with ``args`` (headers included)."""
    cupy = require_cupy()
    from cupy._core import _carray, _kernel, _scalar, core

    arrays = [a for a in args if isinstance(a, cupy.ndarray)]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    in_dtypes = tuple(a.dtype if isinstance(a, cupy.ndarray) else None for a in args[:kernel.nin])
    out_dtypes = tuple(a.dtype for a in args[kernel.nin:])
    in_types, out_types, type_map = kernel._decide_params_type(in_dtypes, out_dtypes)
    flat = all(a.shape == shape and a.flags.c_contiguous for a in arrays)
    ndim = 1 if flat else len(shape)
    infos = []
    for a, t in zip(args, in_types + out_types):
        if isinstance(a, cupy.ndarray):
            infos.append(_kernel._ArgInfo(1, type(a), a.dtype, ndim, flat, True))  # ARG_KIND_NDARRAY
        else:
            infos.append(_kernel._ArgInfo(3, _scalar.CScalar, np.dtype(t), 0, True, True))  # ARG_KIND_SCALAR
    infos.append(_kernel._ArgInfo(2, _carray.Indexer, None, ndim, True, True))  # ARG_KIND_INDEXER
    code = _kernel._get_elementwise_kernel_code(tuple(infos), type_map, kernel.params, kernel.operation,
                                                kernel.name, kernel.preamble, **kernel.kwargs)
    return "".join(f"#include <{h}>\n" for h in core._cupy_header_list) + code


def compile_for(src: str, arch: str) -> bytes:
    """NVRTC's cubin of ``src`` for sm_``arch``, with the options CuPy compiles kernels with."""
    require_cupy()
    from cupy._core import core
    from cupy.cuda import compiler

    options = core.assemble_cupy_compiler_options(()) + (
        "-ftz=true", f"-arch=sm_{arch}", "--device-as-default-execution-space")
    program = compiler._NVRTCProgram(src, "kern.cu", (), (), name_expressions=None, method="cubin")
    cubin, _ = program.compile(options, None)
    return cubin


# -- what the generated code must (not) contain ------------------------------------------

_C_TYPES = {"float32": "float", "float64": "double"}
_OPERATION = re.compile(r"__device__ void (cupy_\w+)\(([^)]*)\)")


def operation_types(src: str) -> dict[str, set[str]]:
    """Each ufunc the kernel calls (``cupy_add`` …) with the C types of its operands."""
    found: dict[str, set[str]] = {}
    for name, params in _OPERATION.findall(src):
        types = {p.strip().split()[0] for p in params.split(",")}
        found.setdefault(name, set()).update(types)
    return found


def wrong_types(src: str, dtype: str) -> list[str]:
    """The operations of ``src`` that do not run in ``dtype`` (half precision anywhere, or
    another float type than the arrays')."""
    want = _C_TYPES[dtype]
    wrong = [f"{name}({', '.join(sorted(types))})" for name, types in operation_types(src).items()
             if types - {want, "bool"}]
    if re.search(r"static_cast<\s*float16\s*>", src):
        wrong.append("a value cast to float16")
    return wrong
