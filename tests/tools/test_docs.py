"""The documentation site builds, warnings as errors, as ``make docs`` builds it.

The build runs on a copy of docs/ in a temporary folder: autosummary writes its module stubs
into the source folder (docs/_autosummary), so building docs/ itself would write into the
work tree and race with a ``make docs`` or another test worker.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_docs_build_without_warnings(tmp_path):
    for module in ("sphinx", "myst_parser"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[docs]')")
    source = tmp_path / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_autosummary", "_build",
                                                                "__pycache__"))
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(source), str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    assert (out / "index.html").is_file()
    assert (out / "api.html").is_file()
    assert (out / "_autosummary" / "starmix.workflows.cluster.html").is_file()
