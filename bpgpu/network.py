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

import functools
import math

import numpy as np

from . import validation as check
from .activations import DERIVATIVES, FORWARD, HIDDEN, OUTPUTS
from .backend import BACKENDS, DTYPES, get_backend
from .losses import CROSS_ENTROPY_OUTPUTS, LOSSES, Head

# Training steps keep their buffers for this many batch sizes (a mini-batch, the last
# smaller one, and chunks of each).
_KEPT_WORKSPACES = 4


def _on_device(method):
    """Run ``method`` with the network's device current (CuPy allocates and launches there)."""
    @functools.wraps(method)
    def on_device(self, *args, **kwargs):
        with self.backend.activate():
            return method(self, *args, **kwargs)

    return on_device


def add_scaled(xp, y, x, c):
    """y ← y + c·x (the L2 term λ/m·W added to D, in place)."""
    y += c * x


class _Workspace:
    """Buffers for r rows: z(l)/a(l) (r, s(l)) and d(l) (r, s(l)) for l = 1 … L, a vector
    of r ones (for the bias gradients 1ᵀ·d), and two columns (r, 1) for the loss's row
    reductions. d(L) is also kept flat (``flat_d``), for ‖d‖²."""

    def __init__(self, net, rows: int):
        xp, dtype = net.xp, getattr(net.xp, net.dtype)
        self.z = [None] + [xp.empty((rows, s), dtype=dtype) for s in net.sizes[1:]]
        self.d = [None] + [xp.empty((rows, s), dtype=dtype) for s in net.sizes[1:-1]]
        self.flat_d = xp.empty(rows * net.sizes[-1], dtype=dtype)
        self.d.append(xp.reshape(self.flat_d, (rows, net.sizes[-1])))
        self.ones = xp.ones(rows, dtype=dtype) if net.bias else None
        self.rows = (xp.empty((rows, 1), dtype=dtype), xp.empty((rows, 1), dtype=dtype))


class Network:
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
        if allow_tf32 is not None:
            self.backend.set_tf32(allow_tf32)
        self._build()
        self.set_thetas(self._initial_thetas())

    @_on_device
    def _build(self):
        """The fused kernels, the flat parameter and gradient vectors, on the device."""
        fuse = self.backend.fuse
        # Hidden layers: z ← g(z + b) in place; None where there is nothing to do.
        self._g = [None if g == "identity" and not self.bias else fuse(FORWARD[g]) for g in self.activations]
        self._g_prime = [DERIVATIVES[g] and fuse(DERIVATIVES[g]) for g in self.activations]
        self._head = Head(self.loss, self.output, self.backend)
        self._add_scaled = fuse(add_scaled)
        self._theta, self._W, self._b = self._flat()
        self._D, self._DW, self._Db = self._flat()
        self._D_chunk = None  # a second gradient vector, made for the first chunked step
        self._workspaces = {}

    # -- parameters -------------------------------------------------------------
    #
    # One flat vector holds W(0) … W(L−1) (each row-major) and then b(0) … b(L−1): the
    # weights λ regularises are one contiguous slice, so ‖W‖² is one dot product.

    def _flat(self):
        """A zero flat vector (n_params,) and its views [W(l)] (s(l+1), s(l)) and [b(l)]
        (s(l+1),), or [None] * L without a bias."""
        flat = self.xp.zeros(self.n_params, dtype=getattr(self.xp, self.dtype))
        views = self.split(flat)
        if self.bias:
            return flat, views[0::2], views[1::2]
        return flat, views, [None] * len(views)

    @property
    def n_weights(self) -> int:
        """Entries of all W(l): the regularised front of the flat vector."""
        return sum(n_in * n_out for n_in, n_out in zip(self.sizes, self.sizes[1:]))

    @property
    def n_params(self) -> int:
        """Entries of all Theta(l), biases included: the length of :attr:`params`."""
        return self.n_weights + (sum(self.sizes[1:]) if self.bias else 0)

    def _initial_thetas(self) -> list[np.ndarray]:
        """Glorot-uniform weights (He-normal into a relu layer), zero biases, on the host."""
        rng = np.random.default_rng(self.seed)
        thetas = []
        for l, g in enumerate(self.activations + [self.output]):
            fan_in, fan_out = self.sizes[l], self.sizes[l + 1]
            if g == "relu":
                W = rng.standard_normal((fan_out, fan_in)) * math.sqrt(2.0 / fan_in)
            else:
                limit = math.sqrt(6.0 / (fan_in + fan_out))
                W = rng.uniform(-limit, limit, (fan_out, fan_in))
            thetas.append(np.hstack([np.zeros((fan_out, 1)), W]) if self.bias else W)
        return thetas

    def theta_shapes(self) -> list[tuple[int, int]]:
        return [(self.sizes[l + 1], self.sizes[l] + self.bias) for l in range(len(self.sizes) - 1)]

    @property
    def params(self):
        """Every weight and bias as one flat backend vector (n_params,), live: W(0) … W(L−1)
        row-major, then b(0) … b(L−1). An optimiser updates it in place; copy it to keep."""
        return self._theta

    @_on_device
    def set_params(self, flat) -> None:
        """Copy a flat vector (n_params,) laid out as :attr:`params` into the weights."""
        if tuple(flat.shape) != (self.n_params,):
            raise ValueError(f"params: expected shape ({self.n_params},), got {tuple(flat.shape)}")
        self._theta[...] = flat

    def split(self, flat) -> list:
        """Views [W(0), b(0), W(1), b(1), …] (no b without a bias) of a flat vector laid out
        as :attr:`params`, host or backend: the per-parameter order of saved optimiser state."""
        xp = self.xp if self.backend.is_native(flat) else np
        views, at_b = [], self.n_weights
        at_W = 0
        for n_in, n_out in zip(self.sizes, self.sizes[1:]):
            views.append(xp.reshape(flat[at_W:at_W + n_out * n_in], (n_out, n_in)))
            at_W += n_out * n_in
            if self.bias:
                views.append(flat[at_b:at_b + n_out])
                at_b += n_out
        return views

    def param_shapes(self) -> list[tuple]:
        """The shapes :meth:`split` returns: (s(l+1), s(l)) and (s(l+1),) per layer."""
        return [tuple(v.shape) for v in self.split(np.empty(self.n_params))]

    def _join(self, W, b):
        """Theta = [b | W] (s(l+1), s(l) + 1), or a copy of W without a bias: a new array."""
        if b is None:
            return self.backend.copy(W)
        theta = self.xp.empty((W.shape[0], W.shape[1] + 1), dtype=W.dtype)
        theta[:, 0] = b
        theta[:, 1:] = W
        return theta

    @property
    @_on_device
    def thetas(self) -> list:
        """Theta(0) … Theta(L−1), new backend arrays: ``thetas[l].shape == (sizes[l+1], sizes[l] + bias)``."""
        return [self._join(W, b) for W, b in zip(self._W, self._b)]

    @_on_device
    def set_thetas(self, thetas) -> None:
        """Replace every Theta(l) (lists, NumPy or backend arrays), checking each shape."""
        thetas = check.thetas(thetas, self.backend, self.dtype, self.theta_shapes())
        for t, W, b in zip(thetas, self._W, self._b):
            W[...] = t[:, 1:] if self.bias else t
            if b is not None:
                b[...] = t[:, 0]

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
                # times faster than a sum over axis 0.
                ops.matmul(ws.ones, d, out=Db[l])
            if l > 0:  # the input layer needs no delta
                W, below = self._W[l], ws.d[l]
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

    def _workspace(self, rows: int, keep: bool):
        """Buffers for ``rows`` rows: kept for reuse (training steps), or new ones for one
        call (whose results must outlive it, or whose batch may be huge)."""
        if not keep:
            return _Workspace(self, rows)
        ws = self._workspaces.get(rows)
        if ws is None:
            if len(self._workspaces) >= _KEPT_WORKSPACES:
                self._workspaces.pop(next(iter(self._workspaces)))
            ws = self._workspaces[rows] = _Workspace(self, rows)
        return ws

    def release_buffers(self) -> None:
        """Drop the buffers kept for training steps (they are remade when next needed)."""
        self._workspaces.clear()
        self._D_chunk = None

    def _penalty(self, J, scale):
        """J + λ/(2m)·‖W‖², and D ← D + λ/m·W over the weights' slice, in place."""
        W, DW = self._theta[:self.n_weights], self._D[:self.n_weights]
        self._add_scaled(DW, W, self.lam * scale)
        return J + self.backend.ops.matmul(W, W) * (0.5 * self.lam * scale)

    def _gradients(self, X, Y, chunk_size, keep):
        """J (0-d, regularised) with D in the flat gradient vector, for validated (X, Y).

        With ``chunk_size`` the batch is processed that many rows at a time and the
        partial Deltas summed: the same D as unchunked, to rounding, in less memory.
        """
        m = X.shape[0]
        scale = 1.0 / m
        step = m if chunk_size is None else min(chunk_size, m)
        J = None
        for start in range(0, m, step):
            stop = min(start + step, m)
            ws = self._workspace(stop - start, keep)
            if start == 0:
                J = self._backprop(X[start:stop, :], Y[start:stop, :], scale, self._DW, self._Db, ws)
                continue
            if self._D_chunk is None:
                self._D_chunk = self._flat()
            part, part_W, part_b = self._D_chunk
            J = J + self._backprop(X[start:stop, :], Y[start:stop, :], scale, part_W, part_b, ws)
            self._D += part
        return self._penalty(J, scale) if self.lam else J

    # -- public -------------------------------------------------------------------

    @_on_device
    def batch(self, X, Y, names=("X", "Y")):
        """(X, Y) checked and staged on the backend, C-ordered: X (m, sizes[0]), Y (m, sizes[-1]).

        Stage data once with this, then pass row slices of it to :meth:`step` and :meth:`loss`.
        """
        X = self._inputs(X, names[0])
        Y = check.batch(names[1], Y, self.backend, self.dtype, self.sizes[-1])
        check.same_rows(X, Y, names)
        check.targets(Y, self.loss, self.output, self.xp, name=names[1])
        return X, Y

    @_on_device
    def step(self, X, Y, optimizer, chunk_size=None):
        """One training step on the batch (X, Y): D by backpropagation, then
        ``optimizer.step([params], [D], xp)`` updates the weights in place.

        Args:
            X: (m, sizes[0]) and Y: (m, sizes[-1]) backend arrays as :meth:`batch` returns
                (or row slices of them); not checked again, so no host synchronisation.
            optimizer: an :class:`~bpgpu.optimizers.Optimizer`.
            chunk_size: compute D this many rows at a time (the same D, less memory).

        Returns J before the update, regularised, as a 0-d backend array: bring it to the
        host (``float(J)``) only when it is reported.
        """
        J = self._gradients(X, Y, chunk_size, keep=True)
        optimizer.step([self._theta], [self._D], self.xp)
        return J

    def _inputs(self, X, name="X"):
        return check.batch(name, X, self.backend, self.dtype, self.sizes[0])

    def forward(self, X):
        """a(L) for a batch ``X`` (m, sizes[0]): a new backend array (m, sizes[-1])."""
        return self.output_of(self._inputs(X))

    @_on_device
    def output_of(self, X):
        """a(L) (m, sizes[-1]), a new backend array, for ``X`` as :meth:`batch` returns, unchecked."""
        a = self._forward(X, self._workspace(X.shape[0], keep=False))[-1]
        self._head.activate(a, self._b[-1])
        return a

    @_on_device
    def layers(self, X):
        """(A, z): every activation A = [a(0) = X, a(1), …, a(L)] of a batch ``X`` (m, sizes[0])
        and the output's pre-activation z(L) (m, sizes[-1]), new backend arrays."""
        X = self._inputs(X)
        A = self._forward(X, self._workspace(X.shape[0], keep=False))
        z = A[-1]
        if self._b[-1] is not None:
            z += self._b[-1]
        a = self.backend.copy(z)
        self._head.activate(a, None)
        return A[:-1] + [a], z

    def predict(self, X) -> np.ndarray:
        """The network's output for ``X`` (m, sizes[0]), as a NumPy array (m, sizes[-1])."""
        return self.backend.to_host(self.forward(X))

    def evaluate(self, X, Y, chunk_size=None) -> float:
        """The regularised loss J on (X, Y), as a Python float, without gradients."""
        X, Y = self.batch(X, Y)
        chunk_size = check.number("chunk_size", chunk_size, low=1, integer=True, allow_none=True)
        return float(self.loss_of(X, Y, chunk_size))

    @_on_device
    def loss_of(self, X, Y, chunk_size=None):
        """J (0-d backend array, regularised) for (X, Y) as :meth:`batch` returns, unchecked."""
        m = X.shape[0]
        step = m if chunk_size is None else chunk_size
        total = None
        for start in range(0, m, step):
            stop = min(start + step, m)
            ws = self._workspace(stop - start, keep=False)
            z = self._forward(X[start:stop, :], ws)[-1]
            share = self._head(z, self._b[-1], Y[start:stop, :], ws, 1.0 / m)
            total = share if total is None else total + share
        if self.lam:
            W = self._theta[:self.n_weights]
            total = total + self.backend.ops.matmul(W, W) * (0.5 * self.lam / m)
        return total

    def chunk_size_for(self, memory_budget: int) -> int:
        """Rows per chunk so that one chunk's activations and deltas fit in ``memory_budget`` bytes.

        A row costs one a(l) per layer plus a few deltas of the widest layer.
        """
        memory_budget = check.number("memory_budget", memory_budget, low=1, integer=True)
        itemsize = 4 if self.dtype == "float32" else 8
        per_row = itemsize * (sum(self.sizes) + 3 * max(self.sizes))
        return max(1, memory_budget // per_row)

    @_on_device
    def loss_and_gradients(self, X, Y, chunk_size=None, memory_budget=None):
        """(J, D): the regularised loss as a Python float and D(l) shaped like ``thetas[l]``.

        Args:
            X: (m, sizes[0]) inputs.  Y: (m, sizes[-1]) targets (1-D when sizes[-1] == 1).
            chunk_size: process the batch this many rows at a time (same result, less memory).
            memory_budget: bytes of activations allowed at once; sets ``chunk_size``.
        """
        X, Y = self.batch(X, Y)
        chunk_size = check.number("chunk_size", chunk_size, low=1, integer=True, allow_none=True)
        if memory_budget is not None:
            chunk_size = self.chunk_size_for(memory_budget)
        J = self._gradients(X, Y, chunk_size, keep=False)
        return float(J), [self._join(gW, gb) for gW, gb in zip(self._DW, self._Db)]

    def fit(self, X, Y, **options):
        """Train on (X, Y); see :func:`bpgpu.training.fit` for the options. Returns a History."""
        from .training import fit

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
