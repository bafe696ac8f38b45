"""Prove from pytest's JUnit report that the reference tests ran: list how many tests that
use PyTorch, scikit-learn, matplotlib, MPI, the GPU-free kernel check (CuPy + NVRTC) or ONNX passed,
and fail if any was skipped."""

import sys
import xml.etree.ElementTree as ET

REFERENCES = {"torch": ("torch", "pytorch"), "scikit-learn": ("sklearn",), "matplotlib": ("plot", "matplotlib"),
              "MPI": ("distributed", "mpi4py", "mpiexec", "mpi cannot"),
              "kernel check": ("test_kernels", "kernel check"), "ONNX": ("test_export", "onnx")}

cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
failed = False
for name, words in REFERENCES.items():
    mine = [c for c in cases if any(w in (c.get("name", "") + c.get("classname", "")).lower() for w in words)]
    skipped = [c for c in mine if c.find("skipped") is not None]
    skipped_reason = [c for c in cases if c.find("skipped") is not None
                      and any(w in (c.find("skipped").get("message") or "").lower() for w in words)]
    passed = len(mine) - len(skipped)
    print(f"{name} tests: {passed} ran, {len(skipped)} skipped; skips that blame it: {len(skipped_reason)}")
    if not passed or skipped_reason:
        failed = True
        for c in skipped_reason:
            print(f"  skipped: {c.get('classname')}::{c.get('name')}: {c.find('skipped').get('message')}")
sys.exit(1 if failed else 0)
