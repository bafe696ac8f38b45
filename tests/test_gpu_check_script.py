"""scripts/gpu_check.sh on a machine that lacks some of its packages (the GPU machine has no
network: nothing can be installed there): it says what is missing in one line before the
first step, and pytest runs without pyproject's addopts, which name pytest-benchmark's options."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BLOCKER = '''
import sys
class _Missing:
    """Imports of these modules fail here, as on a machine without them."""
    names = {"pytest_benchmark", "matplotlib"}
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Missing())
'''


def test_the_gpu_check_names_what_is_missing_before_its_first_step(tmp_path):
    """Without pytest-benchmark and matplotlib: one line naming both and what each serves; then
    (no GPU here) it stops at CuPy, the report saying why"""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    lines = [l for l in done.stdout.splitlines() if l.startswith("missing here:")]
    assert len(lines) == 1, done.stdout
    assert "pytest_benchmark(the benchmark suite)" in lines[0] and "matplotlib(the plot)" in lines[0], lines
    assert done.returncode == 1
    if "cupy(everything)" in lines[0]:  # a light install: it stops before any step
        assert done.stderr.strip() == "gpu_check: cannot run without numpy and cupy"
    else:  # CuPy without a GPU: stops at its start check, the report saying why
        assert "CuPy cannot start here" in (tmp_path / "out" / "report.md").read_text()


def test_pytest_without_its_benchmark_plugin_runs_when_addopts_are_dropped():
    """pyproject's addopts carry --benchmark-disable: without the plugin pytest exits 4, unless
    run as the GPU check runs it (-o addopts=)"""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run = lambda *extra: subprocess.run([sys.executable, "-m", "pytest", *extra, "-p", "no:cacheprovider", "--co", "-q",
                                         "tests/test_worked_example.py"], cwd=ROOT, env=env, capture_output=True,
                                        text=True, timeout=120).returncode
    assert run() == 4
    assert run("-o", "addopts=") == 0
    assert '-o addopts=' in (ROOT / "scripts" / "gpu_check.sh").read_text()
