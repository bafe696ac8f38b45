"""The fully-connected network: Theta, the forward pass, and backpropagation.

Row-major and vectorised over the batch (one example a row). ``Theta(l)`` has shape
(s(l+1), s(l) + 1) with the bias in column 0, or (s(l+1), s(l)) with ``bias=False``:

    z(l+1) = a(l)·W(l)ᵀ + b(l),   a(l+1) = g_l(z(l+1)),   Theta(l) = [b(l) | W(l)]
    d(l)   = (d(l+1)·W(l)) ⊙ g′(z(l))
    Delta(l) = d(l+1)ᵀ·[1 | a(l)],   D(l) = (Delta(l) + λ·[0 | W(l)]) / m

Delta is a plain sum over examples, so a batch split into chunks adds up exactly.

Memory: every W(l) and b(l) is a view into one flat parameter vector, the gradients D
into another of the same layout, so an optimiser updates all of them in one operation
and a data-parallel reduction is one call. Matrix products write into preallocated
views (``out=``), and a training step's activations and deltas live in buffers kept
per batch size and reused, so a step in steady state allocates no arrays.
"""

from __future__ import annotations

import numpy as np

from . import distributed, labels
from . import validation as check
from .activations import DERIVATIVES, FORWARD, HIDDEN, OUTPUTS, below_one_unit
from .backend import BACKENDS, DTYPES, get_backend
from .init import initial_thetas
from .parameters import Parameters, on_device
from .losses import CROSS_ENTROPY_OUTPUTS, LOSSES, Head
from .workspace import Workspaces

def add_scaled(xp, y, x, c):
    """y ← y + c·x (the L2 term λ/m·W added to D, in place)."""
    y += c * x


class Network(Parameters):
    """A fully-connected network trained by backpropagation on NumPy or CuPy.

    Args:
        sizes: layer sizes s0 … sL, input first.
        activation: hidden-layer activation, one name or one per hidden layer
            ("sigmoid", "tanh", "relu", "identity").
        output: output activation (those, or "softmax").
        loss: "mse" or "cross_entropy" (cross-entropy needs a sigmoid or softmax output).
        lam: L2 strength λ ≥ 0; the bias column is never regularised.
        bias: whether each layer has a bias (column 0 of Theta).
        backend: "numpy", "cupy", "auto" (CuPy when a CUDA device works), or "array_api_strict".
        dtype: "float32" or "float64".
        seed: seeds the initial weights (drawn on the host, so every backend starts
            from the same Theta) and the shuffling of mini-batches.
        allow_tf32: on CuPy, True lets float32 matrix products use TF32 tensor cores
            (faster, about 1e-3 relative error per product instead of 1e-7) and False
            forbids it. The setting is process-wide in CuPy; None (the default) leaves it
            as it is (CuPy's own default, or ``CUPY_TF32``).
        device: the GPU index for backend "cupy" or "auto" (default 0, CuPy's current
            device); the network's arrays live there and its work runs there.
    """

    def __init__(self, sizes, activation="sigmoid", output="sigmoid", loss="mse", lam=0.0,
                 bias=True, backend="numpy", dtype="float64", seed=0, allow_tf32=None, device=None):
        self.sizes = check.sizes(sizes)
        self.activations = check.per_hidden_layer("activation", activation, len(self.sizes) - 2, HIDDEN)
        self.output = check.choice("output", output, OUTPUTS)
        self.loss = check.choice("loss", loss, LOSSES)
        if self.loss == "cross_entropy" and self.output not in CROSS_ENTROPY_OUTPUTS:
            raise ValueError(f"output: loss='cross_entropy' expects an output in {CROSS_ENTROPY_OUTPUTS}, got {output!r}")
        if self.output == "softmax" and self.sizes[-1] < 2:
            raise ValueError(f"output: 'softmax' expects at least 2 output units, got sizes[-1] = {self.sizes[-1]}")
        self.lam = check.number("lam", lam, low=0.0)
        if not isinstance(bias, bool):
            raise TypeError(f"bias: expected True or False, got {bias!r}")
        self.bias = bias
        self.dtype = check.choice("dtype", dtype, DTYPES)
        device = check.number("device", device, low=0, integer=True, allow_none=True)
        self.backend = get_backend(check.choice("backend", backend, BACKENDS) if isinstance(backend, str) else backend,
                                   device)
        self.xp, self.device = self.backend.xp, self.backend.device
        self.seed = check.number("seed", seed, low=0, integer=True)
        if allow_tf32 is not None and not isinstance(allow_tf32, bool):
            raise TypeError(f"allow_tf32: expected True, False or None, got {allow_tf32!r}")
        self.allow_tf32 = allow_tf32
        self.optimizer = None  # the last fit's, which fit(warm_start=True) continues
        self.feature_names = None  # the column names of the DataFrame the last fit took
        self.classes = None  # what each output unit stands for, where the last fit took class labels
        if allow_tf32 is not None:
            self.backend.set_tf32(allow_tf32)
        self._build()
        self.set_thetas(initial_thetas(self.sizes, self.activations + [self.output], self.bias, self.seed))

    @on_device
    def _build(self):
        """The fused kernels, the flat parameter and gradient vectors, on the device."""
        fuse = self.backend.fuse
        # Hidden layers: z ← g(z + b) in place; None where there is nothing to do.
        self._g = [None if g == "identity" and not self.bias else fuse(FORWARD[g]) for g in self.activations]
        self._g_prime = [DERIVATIVES[g] and fuse(DERIVATIVES[g]) for g in self.activations]
        self._below_one_unit = [DERIVATIVES[g] and fuse(below_one_unit(DERIVATIVES[g])) for g in self.activations]
        self._head = Head(self.loss, self.output, self.backend)
        self._add_scaled = fuse(add_scaled)
        self._theta, self._W, self._b = self._flat()
        self._D, self._DW, self._Db = self._flat()
        self._D_chunk = None  # a second gradient vector, made for the first chunked step
        self._workspaces = Workspaces(self.xp, self.dtype, self.sizes, self.bias)

    # -- forward and backward -----------------------------------------------------

    def _forward(self, X, ws):
        """[a(0) = X, a(1), …, a(L−1), z(L) − b(L)]: the output layer's product, its bias
        and activation left to the loss (or to :meth:`forward`)."""
        ops, a = self.backend.ops, X
        A = [a]
        for l, W in enumerate(self._W):
            z = ws.z[l + 1]
            ops.matmul(a, W.T, out=z)
            if l < len(self._g) and self._g[l] is not None:
                self._g[l](z, self._b[l])
            a = z
            A.append(a)
        return A

    def _backprop(self, X, Y, scale, DW, Db, ws):
        """This chunk's share of J (0-d); writes scale·Delta(l) of its rows into the views
        DW[l] (s(l+1), s(l)) and Db[l] (s(l+1),). scale = 1/m for the whole batch's m, so
        every Delta comes out already divided by m."""
        ops = self.backend.ops
        A = self._forward(X, ws)
        J = self._head(A[-1], self._b[-1], Y, ws, scale)
        d = ws.d[-1]
        for l in range(len(self._W) - 1, -1, -1):
            ops.matmul(d.T, A[l], out=DW[l])
            if ws.ones is not None:
                # The bias column of dᵀ·[1 | a] is 1ᵀ·d: a matrix-vector product, several
                # times faster than a sum over axis 0 (a dot product for a one-unit layer).
                self.backend.dot(ws.ones, d, out=Db[l])
            if l > 0:  # the input layer needs no delta
                W, below = self._W[l], ws.d[l]
                if W.shape[0] == 1 and self._below_one_unit[l - 1] is not None:
                    self._below_one_unit[l - 1](below, d, W, A[l])
                else:
                    # With one unit in layer l+1, d·W is an outer product: broadcasting is
                    # exact and several times faster than a matrix product with inner size 1.
                    if W.shape[0] == 1:
                        ops.multiply(d, W, out=below)
                    else:
                        ops.matmul(d, W, out=below)
                    if self._g_prime[l - 1] is not None:
                        self._g_prime[l - 1](below, A[l])
                d = below
        return J

    def release_buffers(self) -> None:
        """Drop the buffers kept for training steps (they are remade when next needed)."""
        self._workspaces.clear()
        self._D_chunk = None

    def _penalty(self, J, scale):
        """J + λ/(2m)·‖W‖², and D ← D + λ/m·W over the weights' slice, in place."""
        W, DW = self._theta[:self.n_weights], self._D[:self.n_weights]
        self._add_scaled(DW, W, self.lam * scale)
        return J + self._weight_term(scale)

    def _weight_term(self, scale):
        """λ/2·scale·‖W‖² (0-d), scale = 1/m: J's L2 term, the biases never in it, as one dot product."""
        W = self._theta[:self.n_weights]
        return self.backend.dot(W, W) * (0.5 * self.lam * scale)

    def _gradients(self, X, Y, chunk_size, keep, comm=None):
        """J (0-d, regularised) with D in the flat gradient vector, for validated (X, Y).

        With ``chunk_size`` the batch is processed that many rows at a time and the
        partial Deltas summed: the same D as unchunked, to rounding, in less memory.
        With ``comm`` (a :class:`~bpgpu.distributed.Communicator`) (X, Y) are this rank's
        rows of the batch (possibly none): the Delta sums, J's sum and the row count of
        every rank are added in one all-reduce, and D, J are those of the whole batch.
        """
        m = X.shape[0]
        # Across ranks the batch's m is known only after the reduction: sum first, divide then.
        scale = 1.0 / m if comm is None else 1.0
        step = max(m, 1) if chunk_size is None else min(chunk_size, max(m, 1))
        J = 0.0
        if m == 0:
            self._D[...] = 0
        for start in range(0, m, step):
            stop = min(start + step, m)
            ws = self._workspaces.get(stop - start, keep)
            if start == 0:
                J = self._backprop(X[start:stop, :], Y[start:stop, :], scale, self._DW, self._Db, ws)
                continue
            if self._D_chunk is None:
                self._D_chunk = self._flat()
            part, part_W, part_b = self._D_chunk
            J = J + self._backprop(X[start:stop, :], Y[start:stop, :], scale, part_W, part_b, ws)
            self._D += part
        if comm is not None:
            J, m = distributed.sum_over_ranks(comm, self.backend, self._D, J, m)
            scale = 1.0 / m
            self._D *= scale
            J = self.backend.asarray(J * scale, self.dtype)
        return self._penalty(J, scale) if self.lam else J

    # -- public -------------------------------------------------------------------

    @on_device
    def batch(self, X, Y, names=("X", "Y")):
        """(X, Y) checked and staged on the backend, C-ordered: X (m, sizes[0]), Y (m, sizes[-1]).

        Stage data once with this, then pass row slices of it to :meth:`step` and :meth:`loss`.
        """
        X = self._inputs(X, names[0])
        Y, _ = labels.class_targets(names[1], Y, self.output, self.sizes[-1], self.classes, self.backend)
        Y = check.batch(names[1], Y, self.backend, self.dtype, self.sizes[-1])
        check.same_rows(X, Y, names)
        check.targets(Y, self.loss, self.output, self.xp, name=names[1])
        return X, Y

    @on_device
    def step(self, X, Y, optimizer, chunk_size=None, comm=None):
        """One training step on the batch (X, Y): D by backpropagation, then
        ``optimizer.step([params], [D], xp)`` updates the weights in place.

        Args:
            X: (m, sizes[0]) and Y: (m, sizes[-1]) backend arrays as :meth:`batch` returns
                (or row slices of them); not checked again, so no host synchronisation.
            optimizer: an :class:`~bpgpu.optimizers.Optimizer`.
            chunk_size: compute D this many rows at a time (the same D, less memory).
            comm: a :class:`~bpgpu.distributed.Communicator`; (X, Y) are then this rank's
                share of the batch, and every rank takes the same step (one all-reduce).

        Returns J before the update, regularised, as a 0-d backend array: bring it to the
        host (``float(J)``) only when it is reported.
        """
        J = self._gradients(X, Y, chunk_size, keep=True, comm=comm)
        optimizer.step([self._theta], [self._D], self.xp)
        return J

    def _inputs(self, X, name="X"):
        check.same_columns(name, X, self.feature_names)
        return check.batch(name, X, self.backend, self.dtype, self.sizes[0])

    @on_device
    def forward(self, X):
        """a(L) for a batch ``X`` (m, sizes[0]): a new backend array (m, sizes[-1])."""
        return self.output_of(self._inputs(X))

    @on_device
    def output_of(self, X):
        """a(L) (m, sizes[-1]), a new backend array, for ``X`` as :meth:`batch` returns, unchecked."""
        a = self._forward(X, self._workspaces.get(X.shape[0], keep=False))[-1]
        self._head.activate(a, self._b[-1])
        return a

    @on_device
    def layers(self, X):
        """(A, z): every activation A = [a(0) = X, a(1), …, a(L)] of a batch ``X`` (m, sizes[0])
        and the output's pre-activation z(L) (m, sizes[-1]), new backend arrays."""
        X = self._inputs(X)
        A = self._forward(X, self._workspaces.get(X.shape[0], keep=False))
        z = A[-1]
        if self._b[-1] is not None:
            z += self._b[-1]
        a = self.backend.copy(z)
        self._head.activate(a, None)
        return A[:-1] + [a], z

    def predict(self, X) -> np.ndarray:
        """The network's output for ``X`` (m, sizes[0]), as a NumPy array (m, sizes[-1])."""
        return self.backend.to_host(self.forward(X))

    def evaluate(self, X, Y, chunk_size=None, comm=None) -> float:
        """The regularised loss J on (X, Y), as a Python float, without gradients; with
        ``comm`` (an mpi4py communicator), J over every rank's rows (X, Y)."""
        X, Y = self.batch(X, Y)
        chunk_size = check.number("chunk_size", chunk_size, low=1, integer=True, allow_none=True)
        return float(self.loss_of(X, Y, chunk_size, distributed.communicator(comm)))

    @on_device
    def loss_of(self, X, Y, chunk_size=None, comm=None):
        """J (0-d backend array, regularised) for (X, Y) as :meth:`batch` returns, unchecked;
        with ``comm`` (a :class:`~bpgpu.distributed.Communicator`), over every rank's rows."""
        m = X.shape[0]
        step = max(m, 1) if chunk_size is None else chunk_size
        scale = 1.0 / m if comm is None else 1.0
        total = None
        for start in range(0, m, step):
            stop = min(start + step, m)
            ws = self._workspaces.get(stop - start, keep=False)
            z = self._forward(X[start:stop, :], ws)[-1]
            share = self._head(z, self._b[-1], Y[start:stop, :], ws, scale)
            total = share if total is None else total + share
        if total is None:  # this rank holds no rows
            total = 0.0
        if comm is not None:
            total, m = distributed.sum_over_ranks(comm, self.backend, None, total, m)
            total = self.backend.asarray(total / m, self.dtype)
        return total + self._weight_term(1.0 / m) if self.lam else total

    def chunk_size_for(self, memory_budget: int) -> int:
        """Rows per chunk so that one chunk's activations and deltas fit in ``memory_budget`` bytes.

        A row costs one a(l) per layer plus a few deltas of the widest layer.
        """
        memory_budget = check.number("memory_budget", memory_budget, low=1, integer=True)
        itemsize = 4 if self.dtype == "float32" else 8
        per_row = itemsize * (sum(self.sizes) + 3 * max(self.sizes))
        return max(1, memory_budget // per_row)

    @on_device
    def loss_and_gradients(self, X, Y, chunk_size=None, memory_budget=None, comm=None):
        """(J, D): the regularised loss as a Python float and D(l) shaped like ``thetas[l]``.

        Args:
            X: (m, sizes[0]) inputs.  Y: (m, sizes[-1]) targets (1-D when sizes[-1] == 1).
            chunk_size: process the batch this many rows at a time (same result, less memory).
            memory_budget: bytes of activations allowed at once; sets ``chunk_size``.
            comm: an mpi4py communicator: (X, Y) are this rank's rows, and (J, D) are
                those of every rank's rows together (the same on every rank).
        """
        comm = distributed.communicator(comm)
        X, Y = self.batch(X, Y)
        chunk_size = check.number("chunk_size", chunk_size, low=1, integer=True, allow_none=True)
        if memory_budget is not None:
            chunk_size = self.chunk_size_for(memory_budget)
        J = self._gradients(X, Y, chunk_size, keep=False, comm=comm)
        return float(J), [self._join(gW, gb) for gW, gb in zip(self._DW, self._Db)]

    def fit(self, X, Y, **options):
        """Train on (X, Y); see :func:`bpgpu.training.fit` for the options. Returns a History.

        X may be a pandas DataFrame (its column names are kept as ``feature_names``, and later
        DataFrames must have them) or any DLPack array; Y may be class labels (m,), integers
        or text, for a softmax or sigmoid output (their classes are kept as ``classes``).
        """
        from .training import fit

        known = self.classes if options.get("warm_start") else None
        Y, classes = labels.class_targets("Y", Y, self.output, self.sizes[-1], known, self.backend)
        self.feature_names, self.classes = check.column_names(X, "X"), classes or known
        return fit(self, X, Y, **options)

    def config(self) -> dict:
        """The constructor arguments that rebuild this architecture (new lists: yours to change)."""
        return dict(sizes=list(self.sizes), activation=list(self.activations), output=self.output, loss=self.loss,
                    lam=self.lam, bias=self.bias, dtype=self.dtype, seed=self.seed, allow_tf32=self.allow_tf32)

    def clone(self, backend=None, dtype=None, device=None) -> "Network":
        """A copy with the same weights, optionally on another backend, dtype or GPU."""
        cfg = self.config()
        if backend is None and device is None:
            backend = self.backend
        cfg.update(backend=backend or self.backend.name, dtype=dtype or self.dtype, device=device)
        twin = Network(**cfg)
        twin.set_thetas([self.backend.to_host(t) for t in self.thetas])
        return twin

    def __repr__(self) -> str:
        return (f"Network(sizes={self.sizes}, activation={self.activations}, output={self.output!r}, "
                f"loss={self.loss!r}, lam={self.lam}, bias={self.bias}, backend={self.backend.name!r}, "
                f"dtype={self.dtype!r})")
