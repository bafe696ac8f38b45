"""Pictures: a training run's loss curve and decision regions, a model's confusion matrix, a
benchmark's throughput.

matplotlib is optional (``pip install "bpgpu[plot]"``): callers ask :func:`available`
first. Figures are drawn on ``matplotlib.figure.Figure`` directly, not through pyplot, so
no GUI backend is chosen and nothing global is left behind.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .io.atomic import atomic_write
from .metrics import LABELS

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


def _save(fig, path, dpi: int) -> None:
    """``fig`` to ``path`` atomically (a failed write leaves the previous picture), in the
    format its suffix names (PNG without one)."""
    fmt = Path(path).suffix[1:].lower() or "png"
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi))


def _figure(width: float, height: float, panels: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * panels, height), layout="constrained")
    return fig, fig.subplots(1, panels, squeeze=False)[0]


def loss_curve(history: dict, path) -> bool:
    """Draw ``history["loss"]`` (and ``"val_loss"``, aligned to the last epochs) per epoch to
    ``path``, on a log scale when every loss is positive, and beside it the run's metric
    (``history["metric"]``: accuracy or R², training and validation; None for an epoch not
    scored) where there is one; False when there is no loss yet."""
    loss = list(history["loss"])
    if not loss:
        return False
    val_loss = list(history.get("val_loss") or [])
    metric = history.get("metric")
    scored = bool(metric) and any(v is not None for v in history.get(metric) or [])
    fig, axes = _figure(6, 4, 2 if scored else 1)
    epochs = np.arange(1, len(loss) + 1)
    for ax, key, label in ((axes[0], "loss", "loss"), *(((axes[1], metric, LABELS.get(metric, metric)),)
                                                         if scored else ())):
        for name, values in (("training", history.get(key) or []), ("validation", history.get(f"val_{key}") or [])):
            y = np.array([np.nan if v is None else v for v in values], dtype=float)
            x, kept = epochs[-len(y):] if len(y) else epochs[:0], ~np.isnan(y)  # epochs not scored left out
            if kept.any():
                ax.plot(x[kept], y[kept], "-" if kept.all() else ".-", label=name)
        ax.set(xlabel="epoch", ylabel=label)
        ax.legend()
        ax.grid(True, alpha=0.3)
    if min(loss + val_loss) > 0:
        axes[0].set_yscale("log")
    _save(fig, path, dpi=100)
    return True



def regions(classify, X: np.ndarray, labels: np.ndarray, path, names=None, features=("feature 0", "feature 1"),
            resolution: int = 200) -> None:
    """The plane of two features coloured by the class ``classify`` gives each point, with the
    examples X (m, 2) over it coloured by their ``labels`` (m,) class indices.

    ``classify`` maps points (g, 2) to class indices (g,); ``names`` labels the classes and
    ``features`` the axes.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D

    low, high = X.min(axis=0), X.max(axis=0)
    pad = np.where(high > low, 0.05 * (high - low), 1.0)
    g0, g1 = np.meshgrid(np.linspace(low[0] - pad[0], high[0] + pad[0], resolution),
                         np.linspace(low[1] - pad[1], high[1] + pad[1], resolution))
    region = np.asarray(classify(np.column_stack([g0.ravel(), g1.ravel()]))).reshape(g0.shape)
    n = len(names) if names else int(max(region.max(), labels.max())) + 1
    colours = ListedColormap([f"C{k % 10}" for k in range(n)])
    fig, (ax,) = _figure(6, 5)
    ax.pcolormesh(g0, g1, region, cmap=colours, vmin=-0.5, vmax=n - 0.5, alpha=0.3, shading="auto")
    ax.scatter(X[:, 0], X[:, 1], c=labels, cmap=colours, vmin=-0.5, vmax=n - 0.5, s=10,
               edgecolors="black", linewidths=0.2)
    ax.legend(handles=[Line2D([], [], marker="o", linestyle="", color=f"C{k % 10}", label=str(names[k] if names else k))
                       for k in range(n)], fontsize="small", title="class")
    ax.set(xlabel=features[0], ylabel=features[1], title="decision regions and training points")
    _save(fig, path, dpi=100)


def confusion(C: np.ndarray, names, path) -> None:
    """The confusion matrix C (k, k) (rows: true class, columns: predicted) as a grid of counts,
    each cell coloured by its share of its row (its true class), the classes named by ``names``."""
    C = np.asarray(C)
    k = C.shape[0]
    share = C / np.maximum(C.sum(axis=1, keepdims=True), 1)
    side = min(12.0, 3.0 + 0.5 * k)
    fig, (ax,) = _figure(side + 1.0, side)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    if k <= 30:  # beyond that the counts would not be legible
        for (i, j), count in np.ndenumerate(C):
            ax.text(j, i, str(count), ha="center", va="center", fontsize="small",
                    color="white" if share[i, j] > 0.5 else "black")
    labels = [str(name) for name in names]
    tilt = 45 if max(map(len, labels)) > 3 else 0
    ax.set_xticks(range(k), labels, rotation=tilt, ha="right" if tilt else "center")
    ax.set_yticks(range(k), labels)
    ax.set(xlabel="predicted class", ylabel="true class", title=f"confusion matrix ({int(C.sum())} examples)")
    fig.colorbar(image, ax=ax, label="share of the true class", shrink=0.8)
    _save(fig, path, dpi=100)


def series(results: list[dict], workload: str) -> dict[str, list[tuple[int, float]]]:
    """The lines of one panel of :func:`throughput`: for each of bpgpu's backend, dtype and
    optimiser, and each peer's, its (batch size, training samples/s) points on ``workload``,
    sorted by batch size. Rows with an error are left out."""
    lines: dict[str, list] = {}
    for r in results:
        if r["workload"] != workload or "error" in r:
            continue
        case = r["dtype"] + ("" if r.get("optimizer", "sgd") == "sgd" else f" {r['optimizer']}")
        if "fit" in r:
            lines.setdefault(f"bpgpu {r['backend']} {case}", []).append((r["batch"], r["fit"]["samples_per_s"]))
        for peer, p in r["peers"].items():
            if "train" in p:
                where = "cuda" if r["backend"] == "cupy" else "cpu"
                lines.setdefault(f"{peer} {where} {case}", []).append((r["batch"], p["train"]["samples_per_s"]))
    return {label: sorted(points) for label, points in sorted(lines.items())}


def throughput(results: list[dict], path, peers=("torch", "sklearn")) -> None:
    """Training samples/s against batch size from ``bpgpu bench`` rows: one panel per workload,
    one line per :func:`series` (bpgpu's solid, a peer's in ``peers`` dashed). A series
    measured at one batch size only is one dot: ``bpgpu bench --plot`` measures several."""
    names = sorted({r["workload"] for r in results if "error" not in r})
    fig, axes = _figure(5, 4, max(1, len(names)))
    for ax, name in zip(axes, names):
        lines = series(results, name)
        for label, points in lines.items():
            batch, rate = zip(*points)
            ax.plot(batch, rate, marker="o", linestyle="--" if label.startswith(tuple(peers)) else "-", label=label)
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="training samples/s", title=name)
        measured = sorted({m for points in lines.values() for m, _ in points})
        ax.set_xticks(measured, [str(m) for m in measured], minor=False)  # the batch sizes, not powers of ten
        ax.set_xticks([], minor=True)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    _save(fig, path, dpi=120)
