"""The worked example of docs/worked_example.md (3-2-1, identity hidden layer, sigmoid
output, no biases).

The exact figures are recomputed here independently, one example and one neuron at
a time (the per-neuron form of the backward recursion), and compared with the
vectorised network.
"""

import math

import numpy as np
import pytest

from bpgpu import worked_example as we


def per_example_reference():
    """E, dE/dTheta and the weights after one GD step, by explicit per-example loops."""
    V, w = [list(r) for r in we.THETAS[0]], list(we.THETAS[1][0])
    m = len(we.X)

    def forward(V, w, x):
        h = [sum(V[j][i] * x[i] for i in range(3)) for j in range(2)]
        s = sum(w[j] * h[j] for j in range(2))
        return h, s, 1.0 / (1.0 + math.exp(-s))

    def error(V, w):
        return sum((t - forward(V, w, x)[2]) ** 2 for x, t in zip(we.X, we.T)) / (2 * m)

    dV = [[0.0] * 3 for _ in range(2)]
    dw = [0.0, 0.0]
    for x, t in zip(we.X, we.T):
        h, s, y = forward(V, w, x)
        v_out = (y - t) * y * (1 - y)  # v = te · f'(d) at the output neuron
        for j in range(2):
            dw[j] += v_out * h[j] / m
            v_hidden = v_out * w[j]  # identity hidden layer: f' = 1
            for i in range(3):
                dV[j][i] += v_hidden * x[i] / m
    V1 = [[V[j][i] - we.LR * dV[j][i] for i in range(3)] for j in range(2)]
    w1 = [w[j] - we.LR * dw[j] for j in range(2)]
    return {"E": error(V, w), "D": [np.array(dV), np.array([dw])],
            "thetas_after": [np.array(V1), np.array([w1])], "E_after": error(V1, w1)}


@pytest.fixture(scope="module")
def exact():
    return we.exact()


def test_forward_table_matches_the_page_to_its_printed_places(exact):
    for page_row, row in zip(we.PAGE_FORWARD, exact["forward"]):
        for page, value in zip(page_row, row):
            assert we.agrees(page, value), (page, value)
    assert exact["forward"][0] == pytest.approx((2.4, 1.8, 2.28, 1 / (1 + math.exp(-2.28))), rel=1e-14)


def test_loss_gradients_and_step_are_exact(exact):
    ref = per_example_reference()
    assert exact["E"] == pytest.approx(ref["E"], rel=1e-13)
    assert exact["E"] == pytest.approx(0.048855992230, rel=1e-10)
    for D, D_ref in zip(exact["D"], ref["D"]):
        np.testing.assert_allclose(D, D_ref, rtol=1e-13)
    for theta, theta_ref in zip(exact["thetas_after"], ref["thetas_after"]):
        np.testing.assert_allclose(theta, theta_ref, rtol=1e-13)
    assert exact["thetas_after"][1][0, 0] == pytest.approx(0.770368960, rel=1e-8)
    assert exact["E_after"] == pytest.approx(ref["E_after"], rel=1e-13)
    assert exact["E_after"] == pytest.approx(0.040227187437, rel=1e-10)


def test_float32_and_array_api_strict_agree():
    pytest.importorskip("array_api_strict")
    f64 = we.exact()
    for backend, dtype, tol in (("array_api_strict", "float64", 1e-12), ("numpy", "float32", 1e-6)):
        other = we.exact(backend, dtype)
        assert other["E"] == pytest.approx(f64["E"], rel=tol)
        for a, b in zip(other["thetas_after"], f64["thetas_after"]):
            np.testing.assert_allclose(a, b, rtol=tol)


def test_the_pages_gradients_are_products_of_batch_averages():
    page = we.page_method()
    assert round(page["dE/dw1"], 3) == we.PAGE_DE_DW1
    assert round(page["dE/dv11"], 3) == we.PAGE_DE_DV11
    for name in ("w1", "w2", "v11", "v12", "v21", "v22"):
        assert round(page[name], 3) == we.PAGE_NEW_WEIGHTS[name], name
    # v31 and v32 as printed follow neither the exact rule nor the page's own.
    for name in ("v31", "v32"):
        assert round(page[name], 3) != we.PAGE_NEW_WEIGHTS[name]


def test_report_marks_exactly_the_figures_that_differ():
    rows = we.rows()
    differing = {name for name, page, value, _ in rows if not we.agrees(page, value)}
    assert differing == {"E before the step", "E after the step", "dE/dw1", "dE/dv11",
                         *(f"{n} after the step" for n in we.WEIGHTS)}
    assert all(note for name, page, value, note in rows if name in differing)
    text = we.report()
    assert "0.048856" in text and "no (b)" in text and "(a) The page multiplies" in text
