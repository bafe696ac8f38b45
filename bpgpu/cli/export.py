"""``bpgpu export``: a saved model as an ONNX graph, its input and target scalers included
(bpgpu.export): the graph predicts what ``bpgpu predict`` does."""

from __future__ import annotations

from pathlib import Path

from .. import export
from ..io import persistence
from ..io.atomic import check_target
from .argtypes import at_least
from .errors import CLIError


def add_arguments(p) -> None:
    p.add_argument("model", help="a model.npz saved by bpgpu train")
    p.add_argument("output", metavar="OUT.onnx", help="the ONNX file to write: input X (m, inputs), output Y "
                   "(m, outputs), in the model's dtype")
    p.add_argument("--opset", type=at_least(export.MIN_OPSET, int), default=export.DEFAULT_OPSET,
                   help=f"ONNX operator set version, {export.MIN_OPSET} to the installed onnx's newest "
                        f"(default {export.DEFAULT_OPSET})")


def run(args) -> int:
    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise CLIError(f"OUT: expected a file name ending in .onnx, got {args.output} "
                       "(for PyTorch, call bpgpu.export.to_torch in Python)")
    check_target(out)
    try:
        export.require("onnx")
    except ModuleNotFoundError as err:
        raise CLIError(str(err)) from None
    checkpoint = persistence.load_checkpoint(args.model, backend="numpy")
    net, scaler, target_scaler = checkpoint.network, checkpoint.scaler, checkpoint.target_scaler
    export.to_onnx(net, out, scaler=scaler, opset=args.opset, target_scaler=target_scaler)
    hidden = "/".join(net.activations) or "-"
    print(f"wrote {args.output}: {'-'.join(map(str, net.sizes))} ({hidden} → {net.output}), {net.dtype}, "
          f"opset {args.opset}, input X (m, {net.sizes[0]}), output Y (m, {net.sizes[-1]})"
          + (", input scaling included" if scaler is not None else "")
          + (", predicting in the targets' units (their scaling undone)" if target_scaler is not None else ""))
    return 0
