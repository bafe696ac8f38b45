"""Checks of an activation or loss of your own, at registration: its name, that its functions
run in place on NumPy, and its derivative against central differences (float64).

Used by :func:`bpgpu.activations.register` and :func:`bpgpu.losses.register`; the tables
themselves live in those modules.
"""

from __future__ import annotations

import numpy as np

# Points where derivatives are compared: spread over [−3, 3], off 0 and the integers (kinks).
POINTS = np.linspace(-2.9, 2.9, 23) + 0.0137
STEP = 1e-6
TOLERANCE = 1e-5  # |analytic − numeric| / max(1, |numeric|): central differences are ~1e-9 here


def check_name(kind: str, name, builtins) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name: expected an identifier for the {kind} (letters, digits, _), got {name!r}")
    if name in builtins:
        raise ValueError(f"name: {name!r} is a built-in {kind}; register yours under another name")
    return name


def _callable(role: str, fn) -> None:
    if not callable(fn):
        raise TypeError(f"{role}: expected a function (xp, ...) written in place like the built-ins, got {fn!r}")


def _run(role: str, fn, *args) -> None:
    try:
        if fn(np, *args) is not None:
            raise TypeError(f"{role}: expected it to write into its arguments and return None "
                            "(a fused body returns nothing)")
    except (TypeError, ValueError):
        raise
    except Exception as err:
        raise ValueError(f"{role}: calling it on NumPy float64 arrays failed: {type(err).__name__}: {err}") from err


def _compare(role: str, name: str, at: str, analytic, numeric, points) -> None:
    gap = np.abs(analytic - numeric) / np.maximum(1.0, np.abs(numeric))
    if not np.all(np.isfinite(analytic)) or float(np.max(gap)) > TOLERANCE:
        i = int(np.argmax(np.where(np.isfinite(gap), gap, np.inf)))
        raise ValueError(f"{role}: {name!r}'s derivative disagrees with central differences at {at} = "
                         f"{points[i]:.4g}: got {analytic[i]:.6g}, expected {numeric[i]:.6g}")


def check_activation(name: str, forward, derivative) -> None:
    """``forward(xp, z, b)`` and ``derivative(xp, d, a)`` (from a = g(z)) agree on POINTS, and
    forward adds the bias as g(z + b)."""
    _callable("forward", forward)
    _callable("derivative", derivative)

    def g(z, b=None):
        a = np.array(z, dtype=np.float64).reshape(1, -1)
        _run("forward", forward, a, b)
        return a[0]

    a = g(POINTS)
    if not np.allclose(g(POINTS - 0.5, np.full(POINTS.size, 0.5)), a, rtol=1e-12, atol=0.0):
        raise ValueError(f"forward: {name!r} must compute g(z + b) for a bias b given (None: no bias)")
    d = np.ones((1, POINTS.size))
    _run("derivative", derivative, d, a.reshape(1, -1).copy())
    numeric = (g(POINTS + STEP) - g(POINTS - STEP)) / (2 * STEP)
    _compare("derivative", name, "z", d[0], numeric, POINTS)


def check_loss(name: str, loss, derivative) -> None:
    """``loss(xp, a, y, out)`` (out ← ℓ(a, y)) and ``derivative(xp, a, y, d)`` (d ← ∂ℓ/∂a)
    agree at a = POINTS/6 + 0.5 (inside (0, 1), where every output reaches), y = 0.3."""
    _callable("loss", loss)
    _callable("derivative", derivative)
    points = POINTS / 6.0 + 0.5
    y = np.full((1, points.size), 0.3)

    def value(a):
        out = np.empty((1, points.size))
        _run("loss", loss, np.array(a, dtype=np.float64).reshape(1, -1), y, out)
        return out[0]

    d = np.empty((1, points.size))
    _run("derivative", derivative, points.reshape(1, -1).copy(), y, d)
    numeric = (value(points + STEP) - value(points - STEP)) / (2 * STEP)
    _compare("derivative", name, "a", d[0], numeric, points)


def unregistered(err: ValueError, register: str) -> ValueError:
    """``err`` (an unknown name refused) with where a name of your own comes from."""
    if "expected one of" not in str(err):
        return err
    return ValueError(f"{err}; one of your own must be registered first, in every process that builds or "
                      f"loads the network: {register}(name, ...)")
