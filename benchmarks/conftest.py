"""Fixtures for the throughput suite: the backends, and the switch between smoke and full sizes.

By default each case runs once at tiny sizes (CI: pytest's addopts has --benchmark-disable),
which proves the suite works and measures nothing. To measure, at BENCHMARKS.md's sizes (W0–W3):

    BPGPU_BENCH_FULL=1 python -m pytest benchmarks --benchmark-enable --benchmark-json=bench.json
"""

import pytest

from bpgpu.backend import BackendUnavailable, get_backend


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.cupy)])
def backend(request):
    try:
        return get_backend(request.param)
    except BackendUnavailable as err:
        pytest.skip(str(err))
