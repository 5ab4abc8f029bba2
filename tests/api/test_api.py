"""The Python API (``starmix.fit_outlier_line``, ``starmix.fit_cluster``): the same runs as
the command line, returned as a :class:`starmix.api.Fit` a notebook can use."""

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table

import starmix
from starmix.data.input_checks import DataValidationError
from tests.conftest import make_field, make_line_data

pytestmark = pytest.mark.smoke
SHORT = {"draws": 300, "tune": 300, "chains": 2, "seed": 7, "ess_bulk_min": 100,
         "ess_tail_min": 100, "r_hat_max": 1.05}


def test_import_starmix_is_light_and_names_the_api():
    code = ("import sys, starmix; print(sorted(m for m in ('pymc', 'pytensor', 'arviz') "
            "if m in sys.modules)); print(callable(starmix.fit_outlier_line), "
            "callable(starmix.fit_cluster))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True True"
    with pytest.raises(AttributeError, match="no attribute 'fit_everything'"):
        starmix.fit_everything  # noqa: B018


def test_fit_outlier_line_from_arrays(tmp_path):
    data = make_line_data()
    fit = starmix.fit_outlier_line(data.x, data.y, data.y_err, **SHORT)
    assert fit.passed and fit.status == "passed"
    assert fit.record["data"]["source"] == f"table given in Python ({len(data)} rows)"
    assert fit.record["settings"]["LineInput"]["data"] == fit.record["data"]["source"]
    # the fit recovers the reference line and flags its outliers
    m = float(fit.idata["posterior"]["m"].mean())
    assert abs(m - data.truth["m"]) < 0.3, m
    p = np.asarray(fit.membership["p_line"])
    assert len(p) == len(data)
    # (one simulated outlier fell on the line by chance: P 0.96 in this run)
    assert np.sum(p[data.is_outlier] < 0.2) >= 6 and p[~data.is_outlier].min() > 0.5
    assert "y" in fit.idata["log_likelihood"] and "y" in fit.idata["observed_data"]
    assert set(fit.summary["parameter"]) >= {"m", "b"}
    corner = fit.plot_corner()
    assert len(corner.axes) >= 16  # 4 x 4 panels and the axes corner adds
    assert fit.plot_membership().axes[0].get_title() == "Membership probability"

    saved = fit.save(tmp_path / "kept")
    record = json.loads((saved / "run_record.json").read_text())
    assert all(str(path).startswith(str(saved)) for path in record["files"].values())
    again = starmix.load_fit(saved)
    np.testing.assert_array_equal(again.membership["p_line"], fit.membership["p_line"])
    assert again.passed
    with pytest.raises(ValueError, match="not a starmix results folder"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "notes.txt").write_text("mine")
        fit.save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_fit_outlier_line_errors_before_sampling():
    data = make_line_data()
    bad = data.y_err.copy()
    bad[:3] = -1
    with pytest.raises(DataValidationError, match="'y_err': 3 of"):
        starmix.fit_outlier_line(data.x, data.y, bad, **SHORT)
    with pytest.raises(TypeError, match="unknown options: draw"):
        starmix.fit_outlier_line(data.x, data.y, data.y_err, draw=10)
    with pytest.raises(ValueError, match="x, y and y_err together"):
        starmix.fit_outlier_line(data.x, data.y)


def test_fit_cluster_from_a_table(tmp_path):
    import pymc as pm

    def narrow(name):  # a replacement prior for the cluster's dispersion
        return pm.Uniform(name, 0.0, 0.3)

    table = make_field(seed=3, n_cluster=300, n_field=700)
    fit = starmix.fit_cluster(table, model="pm2d", cluster="NGC6819", out=tmp_path / "run",
                              priors={"cluster_pm_dispersion": narrow}, **SHORT)
    assert fit.record["settings"]["ClusterInput"]["priors"] == {
        "cluster_pm_dispersion": "given in Python (narrow)"}
    assert float(fit.idata["posterior"]["cluster_pm_dispersion"].max()) < 0.3
    assert fit.out_dir == tmp_path / "run" and (tmp_path / "run" / "run_record.json").is_file()
    assert fit.status == "passed", fit.record.get("convergence")
    assert len(fit.membership) == fit.record["selection"]["n_stars"]
    members = np.asarray(fit.membership["is_member"], bool)
    p = np.asarray(fit.membership["p_cluster"])
    assert p[members].mean() > 0.8 > 0.2 > p[~members].mean()
    motion = fit.idata["posterior"]["cluster_pm"].mean(("chain", "draw")).values
    assert np.allclose(motion, [table.meta["TRUEPMRA"], table.meta["TRUEPMDE"]], atol=0.05)
    assert fit.plot_membership().axes[0].get_title() == "Vector-point diagram"
    assert "table given in Python" in fit.record["data"]["source"]
    assert len(table) == 1000 and "p_cluster" not in table.colnames  # the caller's untouched


def test_fit_cluster_names_what_is_wrong():
    table = make_field(seed=3, n_cluster=100, n_field=200)
    with pytest.raises(TypeError, match="unknown options: g_maxx"):
        starmix.fit_cluster(table, g_maxx=18)
    no_pm = Table(table, copy=True)
    no_pm.remove_column("pmdec")
    with pytest.raises(DataValidationError, match="pmdec"):
        starmix.fit_cluster(no_pm, model="pm2d", **SHORT)


def test_quickstart_example_runs(tmp_path):
    """docs/examples/quickstart.py, as a reader would run it, with short chains."""
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "docs" / "examples" / "quickstart.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "qs"), "--quick"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "outlier line: passed" in done.stdout and "cluster: passed" in done.stdout
    for name in ("line_corner.png", "cluster_vpd.png", "outlier-line/run_record.json",
                 "cluster-pm2d/membership.ecsv"):
        assert (tmp_path / "qs" / name).stat().st_size > 1000, name


def test_a_fit_without_out_is_held_in_memory_and_leaves_no_folder(tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    data = make_line_data()
    fit = starmix.fit_outlier_line(data.x, data.y, data.y_err, checks="off", **SHORT)
    # starmix's scratch folder is gone (PyTensor leaves its own tmp* source files there)
    assert fit.out_dir is None and not list(scratch.glob("starmix-*"))
    assert fit.record.workflow == "outlier-line" and fit.record["schema"] == 2
    assert len(fit.membership) == len(data) and "m" in fit.idata["posterior"]
    saved = fit.save(tmp_path / "kept")
    again = starmix.load_fit(saved)
    np.testing.assert_array_equal(again.membership["p_line"], fit.membership["p_line"])
    np.testing.assert_array_equal(again.idata["posterior"]["m"].values,
                                  fit.idata["posterior"]["m"].values)
    with pytest.raises(ValueError, match="not a starmix results folder"):
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("mine")
        fit.save(tmp_path / "mine")
