"""Full-length runs: the default workflow recovers the reference run's published summary."""

import json

import pytest
from astropy.table import Table

from starmix.workflows.line.run import run_outlier_line
from starmix.workflows.reproduce import reproduce

pytestmark = pytest.mark.slow

# Reference run's published posterior (mean, sd) on the reference data.
PUBLISHED = {"m": (3.137, 0.074), "b": (-11.979, 0.449), "ln_s_out": (2.324, 0.270),
             "w[line]": (0.734, 0.085)}


def test_default_run_recovers_published_summary(tmp_path):
    result = run_outlier_line(tmp_path, figures=False, quiet=True)
    assert result.status == "passed", result.record["convergence"]["failures"]
    summary = Table.read(result.files["summary"])
    rows = {row["parameter"]: row for row in summary}
    for name, (mean, sd) in PUBLISHED.items():
        assert abs(rows[name]["mean"] - mean) < 2 * sd, name
        assert rows[name]["sd"] == pytest.approx(sd, rel=0.25), name


def test_reproduce_writes_figures_and_index(tmp_path):
    figures = tmp_path / "figures"
    assert reproduce(figures, tmp_path / "results", ["outlier-line"]) == 0
    index = (figures / "README.md").read_text()
    for name in ["outlier_line_fit.png", "outlier_line_corner.png",
                 "outlier_line_membership.png", "outlier_line_pgm.png"]:
        assert (figures / name).is_file() and name in index
    assert "starmix run outlier-line" in index and "## outlier line" in index
    record = json.loads((tmp_path / "results" / "outlier-line" / "run_record.json").read_text())
    assert record["status"] == "passed"
