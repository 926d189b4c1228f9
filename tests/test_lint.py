"""ruff and mypy --strict are part of the test suite (they are in the ``test`` extra)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    if shutil.which("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    result = _run(["ruff", "check", "src", "tests", "benchmarks"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[test]')")
    targets = ["src", "tests"]
    if any((ROOT / "benchmarks").glob("*.py")):
        targets.append("benchmarks")
    result = _run([sys.executable, "-m", "mypy", *targets])
    assert result.returncode == 0, result.stdout + result.stderr
