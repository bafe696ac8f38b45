"""The fully-connected network: Theta, the forward pass, and backpropagation.

Row-major and vectorised over the batch (one example a row). ``Theta(l)`` has shape
(s(l+1), s(l) + 1) with the bias in column 0, or (s(l+1), s(l)) with ``bias=False``:

    z(l+1) = a(l)·W(l)ᵀ + b(l),   a(l+1) = g_l(z(l+1)),   Theta(l) = [b(l) | W(l)]
    d(l)   = (d(l+1)·W(l)) ⊙ g′(z(l))
    Delta(l) = d(l+1)ᵀ·[1 | a(l)],   D(l) = (Delta(l) + λ·[0 | W(l)]) / m

Delta is a plain sum over examples, so a batch split into chunks adds up exactly.
"""

from __future__ import annotations

import math

import numpy as np

from . import validation as check
from .activations import HIDDEN, OUTPUTS, for_backend
from .backend import BACKENDS, DTYPES, get_backend
from .losses import CROSS_ENTROPY_OUTPUTS, LOSSES, loss_and_delta, loss_sum


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
        allow_tf32: on CuPy, let float32 matrix products use TF32 tensor cores (faster,
            about 1e-3 relative error per product instead of 1e-7). Off by default; the
            setting is process-wide in CuPy, applied when the network is made.
    """

    def __init__(self, sizes, activation="sigmoid", output="sigmoid", loss="mse", lam=0.0,
                 bias=True, backend="numpy", dtype="float64", seed=0, allow_tf32=False):
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
        self.backend = get_backend(check.choice("backend", backend, BACKENDS) if isinstance(backend, str) else backend)
        self.xp = self.backend.xp
        self.seed = check.number("seed", seed, low=0, integer=True)
        if not isinstance(allow_tf32, bool):
            raise TypeError(f"allow_tf32: expected True or False, got {allow_tf32!r}")
        self.allow_tf32 = allow_tf32
        self.backend.set_tf32(allow_tf32)
        self._per_layer = 2 if bias else 1
        self._ones_cache = {}
        self._g, self._g_prime = for_backend(self.backend.name, self.activations, self.output)
        self.set_thetas(self._initial_thetas())

    # -- parameters -------------------------------------------------------------
    #
    # Internally each layer keeps W(l) (s(l+1), s(l)) and b(l) (s(l+1),) as separate arrays,
    # in one flat list [W(0), b(0), W(1), b(1), …] that the optimisers update in place:
    # then z = a·Wᵀ + b and Delta = dᵀ·a are single products with no column copied in or
    # out. ``thetas`` joins them into the [b | W] matrices of the formulation.

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

    def _layers(self, params):
        """[(W(l), b(l) or None)] from the flat parameter list."""
        if self.bias:
            return list(zip(params[0::2], params[1::2]))
        return [(W, None) for W in params]

    def _join(self, W, b):
        """Theta = [b | W] (s(l+1), s(l) + 1), or W itself without a bias."""
        if b is None:
            return W
        theta = self.xp.empty((W.shape[0], W.shape[1] + 1), dtype=W.dtype)
        theta[:, 0] = b
        theta[:, 1:] = W
        return theta

    @property
    def thetas(self) -> list:
        """Theta(0) … Theta(L−1), new backend arrays: ``thetas[l].shape == (sizes[l+1], sizes[l] + bias)``."""
        return [self._join(W, b) for W, b in self._layers(self._params)]

    def set_thetas(self, thetas) -> None:
        """Replace every Theta(l) (lists, NumPy or backend arrays), checking each shape."""
        thetas = check.thetas(thetas, self.backend, self.dtype, self.theta_shapes())
        copy = self.backend.copy
        self._params = [p for t in thetas for p in ((copy(t[:, 1:]), copy(t[:, 0])) if self.bias else (copy(t),))]

    # -- forward and backward -----------------------------------------------------

    def _forward(self, X):
        """Activations [a(0) = X, …, a(L)] and the output pre-activation z(L)."""
        xp, a = self.xp, X
        A = [a]
        for g, (W, b) in zip(self._g, self._layers(self._params)):
            z = a @ W.T
            if b is not None:
                z += b
            a = g(z, xp)
            A.append(a)
        return A, z

    def _delta(self, X, Y, scale):
        """(Σ loss, scale·∂(Σ loss)/∂params) for one batch or chunk, in the order of ``_params``:
        Delta(l) as its W part dᵀ·a(l) (s(l+1), s(l)) and its bias column Σ_i d_i (s(l+1),).

        Scaling d(L) by 1/m once makes every Delta come out already divided by m.
        """
        xp = self.xp
        A, zL = self._forward(X)
        J, d = loss_and_delta(self.loss, self.output, zL, A[-1], Y, xp)
        d = d * scale
        layers = self._layers(self._params)
        ones = self._ones(X.shape[0]) if self.bias else None
        grads = []
        for l in range(len(layers) - 1, -1, -1):
            a = A[l]
            # The bias column of dᵀ·[1 | a] is 1ᵀ·d: a matrix-vector product, several
            # times faster than a sum over axis 0.
            grads += [ones @ d, d.T @ a] if self.bias else [d.T @ a]
            if l > 0:  # the input layer needs no delta
                W = layers[l][0]
                # With one unit in layer l+1, d·W is an outer product: broadcasting is
                # exact and several times faster than a matrix product with inner size 1.
                d = d * W if W.shape[0] == 1 else d @ W
                g_prime = self._g_prime[l - 1]
                if g_prime is not None:
                    d *= g_prime(a, xp)
        grads.reverse()
        return J, grads

    def _ones(self, m: int):
        """A cached vector of m ones (m,) on the device."""
        ones = self._ones_cache.get(m)
        if ones is None:
            ones = self._ones_cache[m] = self.xp.ones(m, dtype=getattr(self.xp, self.dtype))
        return ones

    def _regularisation(self):
        """λ/2 · Σ_l ‖W(l)‖² (0-d array), the bias column excluded."""
        xp = self.xp
        return 0.5 * self.lam * sum(xp.sum(W * W) for W, _ in self._layers(self._params))

    def chunk_size_for(self, memory_budget: int) -> int:
        """Rows per chunk so that one chunk's activations and deltas fit in ``memory_budget`` bytes.

        A row costs one a(l) per layer plus a few deltas of the widest layer.
        """
        memory_budget = check.number("memory_budget", memory_budget, low=1, integer=True)
        itemsize = 4 if self.dtype == "float32" else 8
        per_row = itemsize * (sum(self.sizes) + 3 * max(self.sizes))
        return max(1, memory_budget // per_row)

    def _gradients(self, X, Y, chunk_size=None):
        """(J, grads) on the device: J a 0-d array (regularised), grads the D of every
        parameter in the order of ``_params`` (see :meth:`_delta`).

        With ``chunk_size`` the batch is processed that many rows at a time and the
        partial Deltas summed: the same D as unchunked, to rounding, in less memory.
        """
        m = X.shape[0]
        if chunk_size is None or chunk_size >= m:
            J, grads = self._delta(X, Y, 1.0 / m)
        else:
            J, grads = self._delta(X[:chunk_size, :], Y[:chunk_size, :], 1.0 / m)
            for start in range(chunk_size, m, chunk_size):
                stop = min(start + chunk_size, m)
                Jc, parts = self._delta(X[start:stop, :], Y[start:stop, :], 1.0 / m)
                J = J + Jc
                for total, part in zip(grads, parts):
                    total += part
        J = J / m
        if self.lam:
            J = J + self._regularisation() / m
            for gW, (W, _) in zip(grads[0::self._per_layer], self._layers(self._params)):
                gW += (self.lam / m) * W
        return J, grads

    # -- public -------------------------------------------------------------------

    def _inputs(self, X, name="X"):
        return check.batch(name, X, self.backend, self.dtype, self.sizes[0])

    def _batch(self, X, Y, names=("X", "Y")):
        """Validated (X, Y) on the backend: X (m, s0), Y (m, sL)."""
        X = self._inputs(X, names[0])
        Y = check.batch(names[1], Y, self.backend, self.dtype, self.sizes[-1])
        check.same_rows(X, Y, names)
        check.targets(Y, self.loss, self.output, self.xp, name=names[1])
        return X, Y

    def forward(self, X):
        """a(L) for a batch ``X`` (m, sizes[0]): a backend array (m, sizes[-1])."""
        return self._forward(self._inputs(X))[0][-1]

    def predict(self, X) -> np.ndarray:
        """The network's output for ``X`` (m, sizes[0]), as a NumPy array (m, sizes[-1])."""
        return self.backend.to_host(self.forward(X))

    def evaluate(self, X, Y, chunk_size=None) -> float:
        """The regularised loss J on (X, Y), as a Python float, without gradients."""
        X, Y = self._batch(X, Y)
        chunk_size = check.number("chunk_size", chunk_size, low=1, integer=True, allow_none=True)
        return float(self._loss(X, Y, chunk_size))

    def _loss(self, X, Y, chunk_size=None):
        """J on the device (0-d array) for validated (X, Y)."""
        m = X.shape[0]
        step = m if chunk_size is None else chunk_size
        total = 0.0
        for start in range(0, m, step):
            stop = min(start + step, m)
            A, zL = self._forward(X[start:stop, :])
            total = total + loss_sum(self.loss, self.output, zL, A[-1], Y[start:stop, :], self.xp)
        J = total / m
        return J + self._regularisation() / m if self.lam else J

    def loss_and_gradients(self, X, Y, chunk_size=None, memory_budget=None):
        """(J, D): the regularised loss as a Python float and D(l) shaped like ``thetas[l]``.

        Args:
            X: (m, sizes[0]) inputs.  Y: (m, sizes[-1]) targets (1-D when sizes[-1] == 1).
            chunk_size: process the batch this many rows at a time (same result, less memory).
            memory_budget: bytes of activations allowed at once; sets ``chunk_size``.
        """
        X, Y = self._batch(X, Y)
        chunk_size = check.number("chunk_size", chunk_size, low=1, integer=True, allow_none=True)
        if memory_budget is not None:
            chunk_size = self.chunk_size_for(memory_budget)
        J, grads = self._gradients(X, Y, chunk_size)
        return float(J), [self._join(gW, gb) for gW, gb in self._layers(grads)]

    def fit(self, X, Y, **options):
        """Train on (X, Y); see :func:`bpgpu.training.fit` for the options. Returns a History."""
        from .training import fit

        return fit(self, X, Y, **options)

    def config(self) -> dict:
        """The constructor arguments that rebuild this architecture."""
        return dict(sizes=self.sizes, activation=self.activations, output=self.output, loss=self.loss,
                    lam=self.lam, bias=self.bias, dtype=self.dtype, seed=self.seed, allow_tf32=self.allow_tf32)

    def clone(self, backend=None, dtype=None) -> "Network":
        """A copy with the same weights, optionally on another backend or dtype."""
        cfg = self.config()
        cfg.update(backend=backend or self.backend, dtype=dtype or self.dtype)
        twin = Network(**cfg)
        twin.set_thetas([self.backend.to_host(t) for t in self.thetas])
        return twin

    def __repr__(self) -> str:
        return (f"Network(sizes={self.sizes}, activation={self.activations}, output={self.output!r}, "
                f"loss={self.loss!r}, lam={self.lam}, bias={self.bias}, backend={self.backend.name!r}, "
                f"dtype={self.dtype!r})")
