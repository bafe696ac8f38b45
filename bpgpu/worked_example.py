"""The seeds' worked example: a 3-2-1 network, three samples, one step of batch GD.

Linear hidden layer, sigmoid output, no biases, E = Σ(t − y)²/(2m), η = 0.5. The
page prints figures rounded to three places; some of them do not follow from its
own formulas. ``rows()`` lists each printed figure beside the exact value and, where
they differ, why (see docs/worked_example.md).
"""

from __future__ import annotations

import numpy as np

X = [[2.0, 3.0, 1.0], [1.0, 0.0, 2.0], [3.0, 1.0, 1.0]]
T = [0.64, 0.52, 0.36]
# Theta(0)[j][i] = v_(i+1)(j+1): the weight from input x_(i+1) to hidden unit h_(j+1).
THETAS = [[[0.15, 0.6, 0.3], [0.2, 0.3, 0.5]], [[0.8, 0.2]]]
LR = 0.5

WEIGHTS = {"w1": (1, 0, 0), "w2": (1, 0, 1), "v11": (0, 0, 0), "v12": (0, 1, 0), "v21": (0, 0, 1),
           "v22": (0, 1, 1), "v31": (0, 0, 2), "v32": (0, 1, 2)}

PAGE_NEW_WEIGHTS = {"w1": 0.766, "w2": 0.167, "v11": 0.114, "v12": 0.191, "v21": 0.576,
                    "v22": 0.294, "v31": 0.282, "v32": 0.496}
PAGE_FORWARD = [(2.4, 1.8, 2.28, 0.907), (0.75, 1.2, 0.84, 0.698), (1.35, 1.4, 1.36, 0.796)]
PAGE_E, PAGE_E_AFTER = 0.234, 0.192
PAGE_DE_DW1, PAGE_DE_DV11 = 0.067, 0.072

PAGE_AVERAGES = {"mean dE/dy": 0.294, "mean dy/ds": 0.152, "mean ds/dw1": 1.5, "mean dh1/dv11": 2.0}

# Why a printed figure differs from exact arithmetic (docs/worked_example.md has the detail).
NOTES = {
    "a": "The page multiplies batch averages, mean(y−t)·mean(y(1−y))·mean(input); the chain rule "
         "holds per example, so the gradient is the average of the products, (1/m)·Σ(y−t)·y(1−y)·input.",
    "b": "Printed as (Σ(t−y)²)/(2·3) = 0.234, but its own terms give 0.2931/6 = 0.0488: an arithmetic slip.",
    "c": "Not even the page's own method (product of averages), which gives {v31:.4f} and {v32:.4f}: "
         "the printed figures need a mean of x3 of 1 where the samples give (1+2+1)/3.",
    "d": "About 4.8× the exact value, like E before: 0.192/0.234 = 0.82, the exact ratio is 0.823.",
    "e": "Correct as a batch average, but the gradient is not a product of such averages (a).",
}


def network(backend="numpy", dtype="float64"):
    """The example's network with the page's initial weights."""
    from .network import Network

    net = Network([3, 2, 1], activation="identity", output="sigmoid", loss="mse", bias=False,
                  backend=backend, dtype=dtype)
    net.set_thetas(THETAS)
    return net


def exact(backend="numpy", dtype="float64") -> dict:
    """Forward table, E, D, the weights after one step of batch GD, and E after it."""
    net = network(backend, dtype)
    host = net.backend.to_host
    A, z = net.layers(X)
    h, s, y = host(A[1]), host(z)[:, 0], host(A[2])[:, 0]
    E, D = net.loss_and_gradients(X, T)
    D = [host(Dl) for Dl in D]
    net.fit(X, T, epochs=1, lr=LR)
    after = [host(t) for t in net.thetas]
    return {"forward": [(h[i, 0], h[i, 1], s[i], y[i]) for i in range(3)], "E": E, "D": D,
            "thetas_after": after, "E_after": net.evaluate(X, T)}


def page_method() -> dict:
    """The page's gradients, products of batch averages, computed unrounded."""
    x, t = np.array(X), np.array(T)
    V, w = np.array(THETAS[0]), np.array(THETAS[1][0])
    h = x @ V.T
    y = 1.0 / (1.0 + np.exp(-(h @ w)))
    g = np.mean(y - t) * np.mean(y * (1 - y))
    dW = g * h.mean(axis=0)
    dV = g * np.outer(w, x.mean(axis=0))
    return {"w1": w[0] - LR * dW[0], "w2": w[1] - LR * dW[1],
            **{f"v{i + 1}{j + 1}": V[j, i] - LR * dV[j, i] for i in range(3) for j in range(2)},
            "dE/dw1": dW[0], "dE/dv11": dV[0, 0]}


def rows() -> list[tuple[str, float, float, str]]:
    """(figure, printed on the page, exact, note key or "") for every printed figure."""
    ex, x = exact(), np.array(X)
    y = np.array([row[3] for row in ex["forward"]])
    h1 = np.array([row[0] for row in ex["forward"]])
    out = []
    for i, (page, exact_row) in enumerate(zip(PAGE_FORWARD, ex["forward"])):
        for name, p, e in zip(("h1", "h2", "s", "y"), page, exact_row):
            out.append((f"{name} (sample {i + 1})", p, float(e), ""))
    out.append(("E before the step", PAGE_E, ex["E"], "b"))
    averages = (np.mean(y - np.array(T)), np.mean(y * (1 - y)), h1.mean(), x[:, 0].mean())
    for (name, page), value in zip(PAGE_AVERAGES.items(), averages):
        out.append((name, page, float(value), "e"))
    out.append(("dE/dw1", PAGE_DE_DW1, float(ex["D"][1][0, 0]), "a"))
    out.append(("dE/dv11", PAGE_DE_DV11, float(ex["D"][0][0, 0]), "a"))
    for name, (l, r, c) in WEIGHTS.items():
        note = "a, c" if name in ("v31", "v32") else "a"
        out.append((f"{name} after the step", PAGE_NEW_WEIGHTS[name], float(ex["thetas_after"][l][r, c]), note))
    out.append(("E after the step", PAGE_E_AFTER, ex["E_after"], "d"))
    return out


def agrees(page: float, exact_value: float) -> bool:
    """Whether the page's figure is the exact value rounded as printed."""
    places = len(repr(page).split(".")[1]) if "." in repr(page) else 0
    return abs(round(exact_value, places) - page) < 10.0 ** -(places + 3)


def report() -> str:
    """The worked example as a plain-text table: the page's figures beside the exact ones."""
    pm = page_method()
    lines = [f"{'figure':<22} {'page':>7} {'exact':>10}  agrees", "-" * 52]
    for name, page, exact_value, note in rows():
        mark = "yes" if agrees(page, exact_value) else f"no ({note})"
        lines.append(f"{name:<22} {page:>7g} {exact_value:>10.6f}  {mark}")
    lines.append("")
    lines.append("exact: per-example chain rule, E = Σ(t−y)²/(2m), batch GD with η = 0.5.")
    for key, text in NOTES.items():
        lines.append(f"({key}) " + text.format(v31=pm["v31"], v32=pm["v32"]))
    return "\n".join(lines)
