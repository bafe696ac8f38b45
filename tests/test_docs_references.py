"""What the repository's own texts refer to is in the repository."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tracked_texts():
    """The tracked Markdown and Python files (git ls-files; skipped outside a checkout)."""
    try:
        names = subprocess.run(["git", "ls-files", "*.md", "*.py"], cwd=ROOT, capture_output=True, text=True,
                               check=True, timeout=60).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in names]


def test_every_top_level_document_named_exists():
    """A name like README.md or BENCHMARKS.md (upper-case, at the top) is a file of the repository."""
    named = {}
    for path in tracked_texts():
        for name in re.findall(r"(?<![\w/.-])([A-Z][A-Z_]+\.md)\b", path.read_text(encoding="utf-8")):
            named.setdefault(name, path.relative_to(ROOT).as_posix())
    missing = {name: where for name, where in named.items() if not (ROOT / name).exists()}
    assert not missing, f"documents named but not in the repository (name: a file naming it): {missing}"
