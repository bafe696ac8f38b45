"""CI must run the independent references, not skip them: under CI=true (how .ci/run is
invoked) PyTorch, scikit-learn, SciPy, matplotlib, pandas, pyarrow (the Parquet reader's tests),
onnx and onnxruntime (the export's) have to be importable. Elsewhere the tests that need them
skip, saying which package is missing."""

import importlib
import os

import pytest


@pytest.mark.parametrize("module", ["torch", "sklearn", "scipy", "matplotlib", "pandas", "pyarrow", "onnx",
                                    "onnxruntime"])
def test_references_are_installed_in_ci(module):
    if os.environ.get("CI") != "true":
        pytest.skip("only CI (CI=true) is required to have the reference packages")
    importlib.import_module(module)
