"""A trained network for serving elsewhere: an ONNX graph, or a PyTorch ``nn.Sequential``.

    bpgpu.export.to_onnx(net, "model.onnx", scaler=checkpoint.scaler)   # onnxruntime, TensorRT, …
    model = bpgpu.export.to_torch(net, scaler=checkpoint.scaler)        # model.state_dict() for a torch loop

Both compute what ``net.predict(scaler.transform(X))`` computes: the input scaler (where given)
as x' = (x − μ) / σ, then per layer z(l+1) = a(l)·W(l)ᵀ + b(l) (ONNX ``Gemm`` with transB, a
``torch.nn.Linear``) and its activation (``Sigmoid``, ``Tanh``, ``Relu``, ``Softmax`` over each
row; ``Exp``; identity adds nothing), then a target scaler (``target_scaler=``, where the
network learnt scaled targets) as y = a·σ + μ, so the graph predicts in the targets' units.
Weights keep the network's dtype (float32 or float64). What has no such form (an activation
registered by a user) is refused, by name. onnx and torch are imported only when called
(``pip install "bpgpu[onnx]"``, ``pip install torch``).
"""

from __future__ import annotations

import importlib
import json

import numpy as np

from .io.atomic import atomic_write_bytes

# The ONNX operator of each activation (None: nothing to add). Softmax over axis 1 of a
# (m, k) matrix is the same function in every opset from 13 on.
ONNX_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "identity": None, "softmax": "Softmax",
            "exp": "Exp"}
# torch.nn has no module for e^z: "exp" is _Exp below.
TORCH_MODULES = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU", "identity": "Identity", "softmax": "Softmax",
                 "exp": None}
INSTALL = {"onnx": 'pip install "bpgpu[onnx]"', "torch": "pip install torch"}
# Opset 17 runs on every onnxruntime since 1.11; 13 is the oldest whose operators mean the same.
DEFAULT_OPSET, MIN_OPSET = 17, 13


def layers(net, scaler=None):
    """The network as host arrays: (scaling, [(W (s(l+1), s(l)), b (s(l+1),) or None, activation)]),
    scaling (μ (s0,), σ (s0,)) in the network's dtype or None. Raises ValueError for what no
    export can express: an activation outside ``ONNX_OPS``, a scaler of other width."""
    names = list(net.activations) + [net.output]
    for l, name in enumerate(names):
        if name not in ONNX_OPS:
            where = "the output" if l == len(names) - 1 else f"hidden layer {l + 1}"
            raise ValueError(f"net: the activation {name!r} of {where} cannot be exported "
                             f"(exportable: {', '.join(ONNX_OPS)})")
    views = net.split(np.array(net.backend.to_host(net.params)))  # one copy of every weight, on the host
    Ws, bs = (views[0::2], views[1::2]) if net.bias else (views, [None] * len(views))
    return scaling(net, scaler), list(zip(Ws, bs, names))


def scaling(net, scaler, name="scaler"):
    """(μ, σ) of ``scaler`` in the network's dtype, or None for None. ``name`` "scaler" is the
    inputs' (sizes[0] wide), "target_scaler" the output units' (sizes[-1])."""
    if scaler is None:
        return None
    if getattr(scaler, "mean", None) is None:
        raise ValueError(f"{name}: expected a fitted Standardizer, got one not fitted")
    width, what = (net.sizes[0], "features (sizes[0])") if name == "scaler" else (net.sizes[-1], "outputs (sizes[-1])")
    if scaler.mean.shape != (width,):
        raise ValueError(f"{name}: expected {width} {what}, got {scaler.mean.shape[0]}")
    dtype = np.dtype(net.dtype)
    return scaler.mean.astype(dtype), scaler.std.astype(dtype)


def onnx_model(net, scaler=None, opset: int = DEFAULT_OPSET, target_scaler=None):
    """The ONNX ``ModelProto`` of ``net`` (and ``scaler``, ``target_scaler``): input "X" (m,
    sizes[0]), output "Y" (m, sizes[-1]) in the network's dtype, operators of ``opset`` (13 … the installed onnx's
    newest), checked by ``onnx.checker``. The class names and input feature names, where the
    network has them, are in the model's metadata ("classes", "feature_names", JSON)."""
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset: expected an integer {MIN_OPSET}…{newest} (the installed onnx {onnx.__version__}'s "
                         f"newest), got {opset!r}")
    input_scaling, stack = layers(net, scaler)
    target_scaling = scaling(net, target_scaler, "target_scaler")
    elem = TensorProto.FLOAT if net.dtype == "float32" else TensorProto.DOUBLE
    nodes, weights, a = [], [], "X"

    def add(op, inputs, out, **attrs):
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    if input_scaling is not None:
        weights += [numpy_helper.from_array(v, name) for v, name in zip(input_scaling, ("mean", "std"))]
        a = add("Div", [add("Sub", [a, "mean"], "centred"), "std"], "scaled")
    for l, (W, b, name) in enumerate(stack, start=1):
        weights.append(numpy_helper.from_array(W, f"W{l}"))
        if b is not None:
            weights.append(numpy_helper.from_array(b, f"b{l}"))
        a = add("Gemm", [a, f"W{l}"] + ([f"b{l}"] if b is not None else []), f"z{l}", transB=1)
        if ONNX_OPS[name] is not None:
            a = add(ONNX_OPS[name], [a], f"a{l}", **({"axis": 1} if name == "softmax" else {}))
    if target_scaling is not None:
        weights += [numpy_helper.from_array(v, name) for v, name in zip(target_scaling, ("target_mean", "target_std"))]
        a = add("Add", [add("Mul", [a, "target_std"], "spread"), "target_mean"], "unscaled")
    add("Identity", [a], "Y")
    graph = helper.make_graph(nodes, "bpgpu", [helper.make_tensor_value_info("X", elem, ["m", net.sizes[0]])],
                              [helper.make_tensor_value_info("Y", elem, ["m", net.sizes[-1]])], weights)
    model = helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", opset)],
                                          producer_name="bpgpu", producer_version=_version(),
                                          doc_string=f"{'-'.join(map(str, net.sizes))} network trained by bpgpu")
    meta = {"classes": getattr(net, "classes", None), "feature_names": getattr(net, "feature_names", None)}
    helper.set_model_props(model, {key: json.dumps(list(map(str, value))) for key, value in meta.items() if value})
    onnx.checker.check_model(model, full_check=True)
    return model


def to_onnx(net, path, scaler=None, opset: int = DEFAULT_OPSET, target_scaler=None):
    """Write :func:`onnx_model` of ``net`` (and the scalers) to ``path`` atomically; returns the model."""
    model = onnx_model(net, scaler, opset, target_scaler)
    atomic_write_bytes(path, model.SerializeToString())
    return model


def to_torch(net, scaler=None, target_scaler=None):
    """``net`` (and the scalers) as a ``torch.nn.Sequential`` on the CPU in the network's dtype:
    [Standardize,] Linear, activation, …[, Standardize inverted] with the same weights
    (``state_dict()``: "k.weight" (s(l+1), s(l)), "k.bias" (s(l+1),); a scaler's "k.mean",
    "k.std"). Eval mode."""
    torch = require("torch")
    input_scaling, stack = layers(net, scaler)
    target_scaling = scaling(net, target_scaler, "target_scaler")
    dtype = torch.float32 if net.dtype == "float32" else torch.float64
    modules = [] if input_scaling is None else [_scaling_module(torch, input_scaling, inverse=False)]
    with torch.no_grad():
        for W, b, name in stack:
            linear = torch.nn.Linear(W.shape[1], W.shape[0], bias=b is not None, dtype=dtype)
            linear.weight.copy_(torch.from_numpy(W))
            if b is not None:
                linear.bias.copy_(torch.from_numpy(b))
            activation = getattr(torch.nn, TORCH_MODULES[name]) if TORCH_MODULES[name] else _exp(torch)
            modules += [linear, activation(dim=1) if name == "softmax" else activation()]
    if target_scaling is not None:
        modules.append(_scaling_module(torch, target_scaling, inverse=True))
    return torch.nn.Sequential(*modules).eval()


def _exp(torch):
    """A module class computing e^z (the Poisson loss's output)."""
    class Exp(torch.nn.Module):
        def forward(self, z):
            return torch.exp(z)

    return Exp


def _scaling_module(torch, mean_std, inverse: bool):
    """A module computing (x − μ) / σ, or with ``inverse`` a·σ + μ; μ and σ kept as buffers
    (so in its state_dict)."""
    class Standardize(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.from_numpy(mean_std[0].copy()))
            self.register_buffer("std", torch.from_numpy(mean_std[1].copy()))

        def forward(self, x):
            return x * self.std + self.mean if inverse else (x - self.mean) / self.std

        def extra_repr(self):
            return "inverse: a·σ + μ" if inverse else "(x − μ) / σ"

    return Standardize()


def require(name: str):
    """The module ``name`` ("onnx" or "torch"), or a ModuleNotFoundError saying how to install it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        raise ModuleNotFoundError(f"exporting needs {name}, which is not installed: {INSTALL[name]}",
                                  name=name) from None


def _version() -> str:
    from . import __version__

    return __version__
