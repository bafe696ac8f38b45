"""Backend parity through the one helper (``parity.assert_parity``).

NumPy against CuPy on the same weights and data: forward, J, D and the weights after
20 steps with SGD and with Adam, full batch and mini-batch, chunked and not — float64
within 1e-12 and float32 within 1e-5 (TF32 off), relative. These are marked ``cupy``
and skip without a working CUDA device, saying why. Float32 against float64 runs here.
"""

import pytest

from parity import CASES, RTOL, TRAININGS, assert_parity, backend_dtype_combinations

cases = pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
trainings = pytest.mark.parametrize("training", TRAININGS, ids=lambda t: t.name)


@cases
@trainings
@pytest.mark.parametrize("backend, dtype", backend_dtype_combinations(["cupy"]))
def test_cupy_matches_numpy(case, training, backend, dtype):
    assert_parity(case, backend, dtype, training)


@cases
@trainings
def test_float32_close_to_float64_on_numpy(case, training):
    errors = assert_parity(case, "numpy", "float32", training)
    # Really computed in float32: visibly off float64, yet well inside the tolerance.
    assert 1e-9 < max(errors.values()) <= RTOL["float32"]
