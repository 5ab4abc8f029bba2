"""The code base stays ruff-clean (skipped where ruff is not installed)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(__import__("sys").executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    folders = ["starmix", "models", "data", "workflows", "validation", "tests", "benchmarks",
               "docs"]
    found = subprocess.run([ruff, "check", *folders], cwd=ROOT, capture_output=True, text=True)
    assert found.returncode == 0, found.stdout
