"""The fully-connected network: Theta, the forward pass, and backpropagation.

    z(l+1) = a(l)·W(l)ᵀ + b(l),   a(l+1) = g_l(z(l+1)),   d(l) = (d(l+1)·W(l)) ⊙ g′(z(l))
    Delta(l) = d(l+1)ᵀ·[1 | a(l)],   D(l) = (Delta(l) + λ·[0 | W(l)]) / m
    (example weights sᵢ: d(L)ᵢ times sᵢ, and m = Σᵢ sᵢ)

Every W(l), b(l) is a view into one flat vector, D into another; a step's buffers are kept
per batch size. docs/architecture.md ("The core") reads the code against these lines.
"""

from __future__ import annotations

import numpy as np

from . import distributed, labels, weights
from . import validation as check
from .activations import DERIVATIVES, FORWARD, below_one_unit
from .backend import BACKENDS, DTYPES, get_backend
from .dropout import Dropout, rates
from .init import initial_thetas
from .parameters import Parameters, on_device
from .losses import Head
from .workspace import Workspaces

def add_scaled(xp, y, x, c):
    """y ← y + c·x (the L2 term λ/m·W added to D, in place)."""
    y += c * x


class Network(Parameters):
    """A fully-connected network trained by backpropagation on NumPy or CuPy.

    Args:
        sizes: layer sizes s0 … sL, input first.
        activation: hidden-layer activation, one name or one per hidden layer
            ("sigmoid", "tanh", "relu", "identity", or one registered with
            :func:`bpgpu.activations.register`).
        output: output activation (those, "softmax", or "exp": the Poisson loss's log link).
        loss: "mse", "cross_entropy" (needs a sigmoid or softmax output), "poisson" (needs
            output "exp"; targets ≥ 0), or one registered with :func:`bpgpu.losses.register`.
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
        dropout: inverted dropout's rate p ∈ [0, 1) for the hidden layers, one number or one
            per hidden layer (:mod:`bpgpu.dropout`): training steps drop each unit with
            probability p and scale the rest by 1/(1 − p); forward, predict and evaluate never.

    Public surface: ``forward``, ``predict``, ``evaluate``, ``loss_and_gradients``, ``fit``,
    ``thetas``/``set_thetas``, ``params``/``set_params``, ``config``, ``clone``, ``layers``, ``to_torch``,
    ``chunk_size_for``, ``release_buffers`` (checked inputs); and for a training loop of one's
    own, ``batch`` (check and stage once) then ``step``, ``output_of``, ``loss_of`` on what
    ``batch`` returned (unchecked: no host synchronisation).
    """

    def __init__(self, sizes, activation="sigmoid", output="sigmoid", loss="mse", lam=0.0,
                 bias=True, backend="numpy", dtype="float64", seed=0, allow_tf32=None, device=None, dropout=0.0):
        self.sizes = check.sizes(sizes)
        self.activations, self.output, self.loss = check.functions(activation, output, loss, len(self.sizes) - 2)
        self.dropout = rates(dropout, len(self.sizes) - 2)
        if self.output == "softmax" and self.sizes[-1] < 2:
            raise ValueError(f"output: 'softmax' expects at least 2 output units, got sizes[-1] = {self.sizes[-1]}")
        self.lam = check.number("lam", lam, low=0.0)
        self.bias = check.flag("bias", bias)
        self.dtype = check.choice("dtype", dtype, DTYPES)
        device = check.number("device", device, low=0, integer=True, allow_none=True)
        self.backend = get_backend(check.choice("backend", backend, BACKENDS) if isinstance(backend, str) else backend,
                                   device)
        self.xp, self.device = self.backend.xp, self.backend.device
        self.seed = check.number("seed", seed, low=0, integer=True)
        self.allow_tf32 = check.flag("allow_tf32", allow_tf32, allow_none=True)
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
        self._dropout = Dropout(self.dropout, self.sizes, self.backend, self.dtype, self.seed)
        self._g_dropped, self._prime_dropped = self._dropout.layer_functions(
            fuse, self.activations, FORWARD, DERIVATIVES, self.backend.ops)
        self._add_scaled = fuse(add_scaled)
        self._theta, self._W, self._b = self._flat()
        self._D, self._DW, self._Db = self._flat()
        self._D_chunk = None  # a second gradient vector, made for the first chunked step
        self._workspaces = Workspaces(self.xp, self.dtype, self.sizes, self.bias)

    # -- the formulation (docs/architecture.md, "The core") ------------------------

    def _forward(self, X, ws, masks=None):
        """(A, p): A = [a(0) = X, a(1), …, a(L−1)], and p = a(L−1)·W(L−1)ᵀ (r, sL), z(L)
        before its bias: the output kernel adds b, applies g and the loss in one pass.
        ``masks``: the dropout masks of these rows (None: no dropout)."""
        ops, A = self.backend.ops, [X]
        for l, W in enumerate(self._W):
            z = ws.z[l + 1]
            ops.matmul(A[-1], W.T, out=z)  # z(l+1) = a(l)·W(l)ᵀ
            if l == len(self._W) - 1:
                return A, z
            if masks and masks[l] is not None:
                self._g_dropped[l](z, self._b[l], masks[l])  # a(l+1) = g(z(l+1) + b(l)) ⊙ M(l+1)
            elif self._g[l] is not None:
                self._g[l](z, self._b[l])  # a(l+1) = g(z(l+1) + b(l)), in place
            A.append(z)

    def _backward(self, A, d, DW, Db, ws, masks=None):
        """Delta(l) = d(l+1)ᵀ·[1 | a(l)] into the views DW[l], Db[l], from d = d(L), down
        the recursion d(l) = (d(l+1)·W(l)) ⊙ g′(z(l)) (the bias column does not flow back),
        times the dropout mask M(l) where ``masks`` has one."""
        ops = self.backend.ops
        for l in range(len(self._W) - 1, -1, -1):
            ops.matmul(d.T, A[l], out=DW[l])
            if ws.ones is not None:  # 1ᵀ·d: a matrix-vector product, faster than a sum over rows
                self.backend.dot(ws.ones, d, out=Db[l])
            if l > 0:  # the input layer needs no delta
                d = self._delta_below(l, d, A[l], ws.d[l], masks and masks[l - 1])

    def _delta_below(self, l, d, a, below, M=None):
        """below ← (d·W(l)) ⊙ g′ (⊙ M, the layer's dropout mask) from a = a(l). With one unit
        in layer l+1, d·W(l) is an outer product: broadcasting is exact and several times
        faster than a matrix product."""
        W, ops = self._W[l], self.backend.ops
        if W.shape[0] == 1 and M is None and self._below_one_unit[l - 1] is not None:
            self._below_one_unit[l - 1](below, d, W, a)
            return below
        (ops.multiply if W.shape[0] == 1 else ops.matmul)(d, W, out=below)
        if M is not None:
            self._prime_dropped[l - 1](below, a, M)
        elif self._g_prime[l - 1] is not None:
            self._g_prime[l - 1](below, a)
        return below

    def release_buffers(self) -> None:
        """Drop the buffers kept for training steps (they are remade when next needed)."""
        self._workspaces.clear()
        self._D_chunk = None

    def _chunks(self, X, Y, w, chunk_size, keep):
        """(X rows, Y rows, their weights or None, their workspace) for each ``chunk_size``
        rows of the batch (one chunk without); nothing for a rank that holds no rows."""
        m = X.shape[0]
        step = max(m, 1) if chunk_size is None else min(chunk_size, max(m, 1))
        for start in range(0, m, step):
            stop = min(start + step, m)
            yield (X[start:stop, :], Y[start:stop, :], None if w is None else w[start:stop],
                   self._workspaces.get(stop - start, keep))

    def _loss_and_delta(self, X, Y, chunk_size, keep, comm, gradients=True, w=None, masks=None):
        """J (0-d, regularised) of validated (X, Y), and with ``gradients`` D in the flat
        gradient vector: Delta summed over the chunks (exact: Delta is a sum over rows), then
        over the ranks of ``comm`` (a :class:`~bpgpu.distributed.Communicator`, or None), then
        formed into D in :meth:`_regularised`. One process knows m up front and folds 1/m
        into d(L) (free inside the output kernel); under MPI m is known after the sum.
        ``w``: the rows' :class:`~bpgpu.weights.RowWeights`; m is then Σᵢ sᵢ. ``masks``: dropout
        masks of the batch's rows (None: none)."""
        m = X.shape[0] if w is None else w.total
        prescale = weights.reciprocal(m) if comm is None else 1.0
        J, D = 0.0, (self._DW, self._Db)
        if gradients and X.shape[0] == 0:
            self._D[...] = 0
        start = 0
        for i, (Xc, Yc, wc, ws) in enumerate(self._chunks(X, Y, w, chunk_size, keep)):
            Mc, start = Dropout.rows(masks, start, start + Xc.shape[0]), start + Xc.shape[0]
            A, p = self._forward(Xc, ws, Mc)
            share = self._head(p, self._b[-1], Yc, ws, prescale, wc)  # d(L)·prescale into ws.d[-1]
            J = share if i == 0 else J + share
            if gradients:
                if i == 1:
                    self._D_chunk = self._D_chunk or self._flat()
                    D = self._D_chunk[1:]
                self._backward(A, ws.d[-1], *D, ws, Mc)
                if i > 0:
                    self._D += self._D_chunk[0]
        if comm is not None:
            J, m = distributed.sum_over_ranks(comm, self.backend, self._D if gradients else None, J, m)
        return self._regularised(J, m, comm is not None, gradients)

    def _regularised(self, J, m, summed, gradients):
        """D = (Delta + λ·[0 | W]) / m over the flat vector (``summed``: Delta not yet divided
        by m, as under MPI), and J + λ/(2m)·‖W‖²; the bias column never regularised."""
        scale = weights.reciprocal(m)
        if summed:
            if gradients:
                self._D *= scale
            J = self.backend.asarray(J * scale, self.dtype)
        if not self.lam:
            return J
        W, DW = self._theta[:self.n_weights], self._D[:self.n_weights]
        if gradients:
            self._add_scaled(DW, W, self.lam * scale)
        return J + self.backend.dot(W, W) * (0.5 * self.lam * scale)

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
    def row_weights(self, sample_weight, m: int):
        """``sample_weight`` (m,), finite and ≥ 0, checked and staged as the
        :class:`~bpgpu.weights.RowWeights` that :meth:`step` takes (sliced as its rows are:
        ``w[a:b]``); None stays None."""
        host = weights.checked(sample_weight, m, self.backend)
        return None if host is None else weights.RowWeights.stage(host, self.backend, self.dtype)

    @on_device
    def step(self, X, Y, optimizer, chunk_size=None, comm=None, sample_weight=None):
        """One training step on the batch (X, Y): D by backpropagation, then
        ``optimizer.step(params, D)`` updates the weights in place.

        Args:
            X: (m, sizes[0]) and Y: (m, sizes[-1]) backend arrays as :meth:`batch` returns
                (or row slices of them); not checked again, so no host synchronisation.
            optimizer: an :class:`~bpgpu.optimizers.Optimizer`.
            chunk_size: compute D this many rows at a time (the same D, less memory).
            comm: a :class:`~bpgpu.distributed.Communicator`; (X, Y) are then this rank's
                share of the batch, and every rank takes the same step (one all-reduce).
            sample_weight: the rows' weights as :meth:`row_weights` returns (or rows of
                them), or None (every weight 1: the same numbers, bit for bit).

        Returns J before the update, regularised, as a 0-d backend array: bring it to the
        host (``float(J)``) only when it is reported.
        """
        masks = self._dropout.draw(X.shape[0], comm.rank if comm is not None else 0)
        J = self._loss_and_delta(X, Y, chunk_size, keep=True, comm=comm, w=sample_weight, masks=masks)
        optimizer.bind(self.backend, self._theta.shape[0], self.dtype).step(self._theta, self._D)
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
        _, z = self._forward(X, self._workspaces.get(X.shape[0], keep=False))
        self._head.activate(z, self._b[-1])
        return z

    @on_device
    def layers(self, X):
        """(A, z): every activation A = [a(0) = X, a(1), …, a(L)] of a batch ``X`` (m, sizes[0])
        and the output's pre-activation z(L) (m, sizes[-1]), new backend arrays."""
        X = self._inputs(X)
        A, z = self._forward(X, self._workspaces.get(X.shape[0], keep=False))
        if self._b[-1] is not None:
            z += self._b[-1]
        a = self.backend.copy(z)
        self._head.activate(a, None)
        return A + [a], z

    def predict(self, X) -> np.ndarray:
        """The network's output for ``X`` (m, sizes[0]), as a NumPy array (m, sizes[-1])."""
        return self.backend.to_host(self.forward(X))

    def evaluate(self, X, Y, chunk_size=None, comm=None, sample_weight=None) -> float:
        """The regularised loss J on (X, Y), as a Python float, without gradients; with
        ``comm`` (an mpi4py communicator), J over every rank's rows (X, Y); with
        ``sample_weight`` (m,), the weighted J."""
        X, Y = self.batch(X, Y)
        chunk_size = check.number("chunk_size", chunk_size, low=1, integer=True, allow_none=True)
        w = self.row_weights(sample_weight, X.shape[0])
        return float(self.loss_of(X, Y, chunk_size, distributed.communicator(comm), w))

    @on_device
    def loss_of(self, X, Y, chunk_size=None, comm=None, sample_weight=None, masks=None):
        """J (0-d backend array, regularised) for (X, Y) as :meth:`batch` returns, unchecked;
        with ``comm`` (a :class:`~bpgpu.distributed.Communicator`), over every rank's rows;
        ``sample_weight`` as :meth:`step` takes it; with ``masks`` (from :meth:`dropout_masks`),
        under those dropout masks (else none)."""
        masks = self._dropout.check(masks, X.shape[0])
        return self._loss_and_delta(X, Y, chunk_size, keep=False, comm=comm, gradients=False, w=sample_weight,
                                    masks=masks)

    @on_device
    def dropout_masks(self, m: int) -> list | None:
        """The next dropout masks for a batch of ``m`` rows, as a training step draws them: one
        (m, sizes[l]) backend array M ∈ {0, 1/(1−p)} per hidden layer (None where p = 0), or
        None without dropout. Hold them fixed with ``loss_and_gradients(..., masks=)``."""
        return self._dropout.draw(check.number("m", m, low=0, integer=True))

    @property
    def dropout_draws(self) -> int:
        """How many times masks were drawn: the dropout generator's whole state (a Position keeps it)."""
        return self._dropout.draws

    @dropout_draws.setter
    def dropout_draws(self, n: int) -> None:
        self._dropout.draws = check.number("dropout_draws", n, low=0, integer=True)

    def chunk_size_for(self, memory_budget: int) -> int:
        """Rows per chunk so that one chunk's activations and deltas fit in ``memory_budget`` bytes.

        A row costs one a(l) per layer plus a few deltas of the widest layer.
        """
        memory_budget = check.number("memory_budget", memory_budget, low=1, integer=True)
        itemsize = 4 if self.dtype == "float32" else 8
        per_row = itemsize * (sum(self.sizes) + 3 * max(self.sizes))
        return max(1, memory_budget // per_row)

    @on_device
    def loss_and_gradients(self, X, Y, chunk_size=None, memory_budget=None, comm=None, sample_weight=None,
                           masks=None):
        """(J, D): the regularised loss as a Python float and D(l) shaped like ``thetas[l]``.

        Args:
            X: (m, sizes[0]) inputs.  Y: (m, sizes[-1]) targets (1-D when sizes[-1] == 1).
            chunk_size: process the batch this many rows at a time (same result, less memory).
            memory_budget: bytes of activations allowed at once; sets ``chunk_size``.
            comm: an mpi4py communicator: (X, Y) are this rank's rows, and (J, D) are
                those of every rank's rows together (the same on every rank).
            sample_weight: (m,) weights sᵢ ≥ 0: J = (Σᵢ sᵢ·lossᵢ + ½λ‖W‖²) / Σᵢ sᵢ and its D
                (scikit-learn's objective); None: every weight 1.
            masks: with dropout, the masks to hold fixed (:meth:`dropout_masks`); None draws
                the next ones, as a training step does.
        """
        comm = distributed.communicator(comm)
        X, Y = self.batch(X, Y)
        chunk_size = check.number("chunk_size", chunk_size, low=1, integer=True, allow_none=True)
        if memory_budget is not None:
            chunk_size = self.chunk_size_for(memory_budget)
        w = self.row_weights(sample_weight, X.shape[0])
        masks = self._dropout.check(masks, X.shape[0]) or self._dropout.draw(X.shape[0], comm.rank if comm else 0)
        J = self._loss_and_delta(X, Y, chunk_size, keep=False, comm=comm, w=w, masks=masks)
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
        cfg = dict(sizes=list(self.sizes), activation=list(self.activations), output=self.output, loss=self.loss,
                   lam=self.lam, bias=self.bias, dtype=self.dtype, seed=self.seed, allow_tf32=self.allow_tf32)
        return {**cfg, "dropout": list(self.dropout)} if any(self.dropout) else cfg  # older readers: no key

    def clone(self, backend=None, dtype=None, device=None) -> "Network":
        """A copy with the same weights, optionally on another backend, dtype or GPU."""
        cfg = self.config()
        if backend is None and device is None:
            backend = self.backend
        cfg.update(backend=backend or self.backend.name, dtype=dtype or self.dtype, device=device)
        twin = Network(**cfg)
        twin.set_thetas([self.backend.to_host(t) for t in self.thetas])
        return twin

    def to_torch(self, scaler=None, target_scaler=None):
        """This network as a ``torch.nn.Sequential`` with its weights (:func:`bpgpu.export.to_torch`)."""
        from .export import to_torch
        return to_torch(self, scaler, target_scaler)

    def __repr__(self) -> str:
        return (f"Network(sizes={self.sizes}, activation={self.activations}, output={self.output!r}, "
                f"loss={self.loss!r}, lam={self.lam}, bias={self.bias}, backend={self.backend.name!r}, "
                f"dtype={self.dtype!r})")
