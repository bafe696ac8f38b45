"""A fused body, read as one element's arithmetic: the per-element loop that runs it in one pass.

A fused function (:mod:`bpgpu.activations`, :mod:`bpgpu.losses`, :mod:`bpgpu.optimizers`) is
element-wise, writes its results into its array arguments and takes the array namespace
first. :func:`trace` calls it once with :class:`Value` stand-ins in place of the namespace and
the arguments: every operation it makes is recorded as one line of scalar code, in the order
the body makes them, each result rounded to the arrays' dtype as NumPy rounds it. What comes
out is the loop body :mod:`bpgpu.compiled` compiles: each argument read from memory once
(where the body reads it before writing it) and written once (where it writes it).

NumPy's rules kept: a Python number meeting an array takes the array's dtype (NEP 50), so
every constant and every scalar argument is cast to the dtype before use; an argument written
and then read is read as written (element by element, which is what whole-array operations
give when no two arguments overlap: the caller checks that).
"""

from __future__ import annotations

# Functions of the namespace a fused body may call, with NumPy's name for each.
UNARY = ("sqrt", "tanh", "exp", "log", "log1p", "abs", "ceil", "negative")
BINARY = ("add", "subtract", "multiply", "divide", "maximum", "minimum")
_SYMBOL = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}


class Untraceable(Exception):
    """The body does something a per-element loop cannot (a reduction, a branch on a value)."""


class Value:
    """One element of an argument or of an intermediate, as the traced body sees it."""

    def __init__(self, tracer: "Tracer", name: str, arg: int | None = None):
        self._tracer, self.name, self.arg = tracer, name, arg

    def _binary(self, op, other, swap=False):
        a, b = (other, self) if swap else (self, other)
        return self._tracer.apply(op, (a, b))

    def _inplace(self, op, other):
        self._tracer.apply(op, (self, other), out=self)
        return self

    def __add__(self, o): return self._binary("add", o)
    def __radd__(self, o): return self._binary("add", o, True)
    def __sub__(self, o): return self._binary("subtract", o)
    def __rsub__(self, o): return self._binary("subtract", o, True)
    def __mul__(self, o): return self._binary("multiply", o)
    def __rmul__(self, o): return self._binary("multiply", o, True)
    def __truediv__(self, o): return self._binary("divide", o)
    def __rtruediv__(self, o): return self._binary("divide", o, True)
    def __neg__(self): return self._tracer.apply("negative", (self,))
    def __iadd__(self, o): return self._inplace("add", o)
    def __isub__(self, o): return self._inplace("subtract", o)
    def __imul__(self, o): return self._inplace("multiply", o)
    def __itruediv__(self, o): return self._inplace("divide", o)

    def __setitem__(self, key, value):
        if key is not Ellipsis:
            raise Untraceable("only a[...] = value is element-wise")
        self._tracer.assign(self, value)

    def __bool__(self):
        raise Untraceable("a branch on an array's value")

    def __getattr__(self, name):
        raise Untraceable(f"the array attribute {name!r}")


class Namespace:
    """The ``xp`` a traced body calls: the element-wise functions of NumPy, nothing else."""

    def __init__(self, tracer: "Tracer"):
        self._tracer = tracer

    def __getattr__(self, name):
        if name not in UNARY and name not in BINARY:
            raise Untraceable(f"xp.{name} is not an element-wise function the loop knows")

        def call(*args, out=None):
            return self._tracer.apply(name, args, out=out)

        return call


class Tracer:
    """Records a body's operations as lines of scalar code over local names."""

    def __init__(self, kinds):
        self.lines: list[str] = []
        self.reads: list[int] = []   # arguments read before the body writes them
        self.writes: list[int] = []  # arguments the body writes, in the order first written
        self._current: dict[int, str] = {}  # argument -> the local name holding its element now
        self._count = 0
        self.values = [None if kind is None else Value(self, f"x{i}", i) for i, kind in enumerate(kinds)]

    def _operand(self, x) -> str:
        if isinstance(x, Value):
            if x.arg is None:
                return x.name
            if x.arg not in self._current:
                self.reads.append(x.arg)
                self._current[x.arg] = f"x{x.arg}"
            return self._current[x.arg]
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            return f"dt({float(x)!r})"
        raise Untraceable(f"an operand of type {type(x).__name__}")

    def _local(self, expression: str) -> str:
        name = f"t{self._count}"
        self._count += 1
        self.lines.append(f"{name} = dt({expression})")
        return name

    def apply(self, op: str, args, out=None) -> Value:
        operands = [self._operand(a) for a in args]
        if len(operands) != (1 if op in UNARY else 2):
            raise Untraceable(f"xp.{op} with {len(operands)} operands")
        if op in _SYMBOL:
            expression = f"{operands[0]} {_SYMBOL[op]} {operands[1]}"
        else:
            expression = f"np.{op}({', '.join(operands)})"
        return self._result(self._local(expression), out)

    def assign(self, target: Value, value) -> None:
        self._result(self._local(self._operand(value)), target)

    def _result(self, name: str, out) -> Value:
        if out is None:
            return Value(self, name)
        if not isinstance(out, Value):
            raise Untraceable(f"out= of type {type(out).__name__}")
        if out.arg is None:  # a temporary written in place (a scratch given as None)
            out.name = name
            return out
        if out.arg not in self.writes:
            self.writes.append(out.arg)
        self._current[out.arg] = name
        return out

    def stores(self) -> dict[int, str]:
        """Each written argument and the local holding its final element."""
        return {arg: self._current[arg] for arg in self.writes}


def trace(fn, kinds) -> Tracer:
    """``fn(xp, *args)`` recorded for arguments of ``kinds`` (one per argument: None for an
    argument given as None, anything else for an array or a number).

    Raises:
        Untraceable: the body is not a per-element computation.
    """
    tracer = Tracer(kinds)
    try:
        fn(Namespace(tracer), *tracer.values)
    except Untraceable:
        raise
    except Exception as err:  # a body using what a stand-in does not offer
        raise Untraceable(f"{type(err).__name__}: {err}") from err
    return tracer
