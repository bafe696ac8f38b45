"""Pictures: the loss curve of a training run and the throughput of a benchmark.

matplotlib is optional (``pip install "bpgpu[plot]"``): callers ask :func:`available`
first. Figures are drawn on ``matplotlib.figure.Figure`` directly, not through pyplot, so
no GUI backend is chosen and nothing global is left behind.
"""

from __future__ import annotations

import importlib.util

import numpy as np

INSTALL = 'pip install "bpgpu[plot]"'


def available() -> bool:
    """Whether matplotlib is installed and imports (a broken install counts as missing)."""
    if importlib.util.find_spec("matplotlib") is None:
        return False
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float, panels: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * panels, height), layout="constrained")
    return fig, fig.subplots(1, panels, squeeze=False)[0]


def loss_curve(history: dict, path) -> bool:
    """Draw ``history["loss"]`` (and ``"val_loss"``, aligned to the last epochs) per epoch to
    ``path``, on a log scale when every loss is positive; False when there is no loss yet."""
    loss = list(history["loss"])
    if not loss:
        return False
    val_loss = list(history.get("val_loss") or [])
    fig, (ax,) = _figure(6, 4)
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, loss, label="training")
    if val_loss:
        ax.plot(epochs[-len(val_loss):], val_loss, label="validation")
    if min(loss + val_loss) > 0:
        ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="loss")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=100)
    return True


def throughput(results: list[dict], path, peers=("torch", "sklearn")) -> None:
    """Training samples/s against batch size from ``bpgpu bench`` rows: one panel per workload,
    one line per backend and dtype of bpgpu, one dashed line per peer in ``peers``."""
    names = sorted({r["workload"] for r in results if "error" not in r})
    fig, axes = _figure(5, 4, max(1, len(names)))
    for ax, name in zip(axes, names):
        lines: dict[str, list] = {}
        for r in results:
            if r["workload"] != name or "error" in r:
                continue
            if "fit" in r:
                lines.setdefault(f"bpgpu {r['backend']} {r['dtype']}", []).append((r["batch"], r["fit"]["samples_per_s"]))
            for peer, p in r["peers"].items():
                if "train" in p:
                    where = "cuda" if r["backend"] == "cupy" else "cpu"
                    lines.setdefault(f"{peer} {where} {r['dtype']}", []).append((r["batch"], p["train"]["samples_per_s"]))
        for label, points in sorted(lines.items()):
            batch, rate = zip(*sorted(points))
            ax.plot(batch, rate, marker="o", linestyle="--" if label.startswith(tuple(peers)) else "-", label=label)
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="training samples/s", title=name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=120)
