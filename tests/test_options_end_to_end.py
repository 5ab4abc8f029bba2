"""Options that no other test runs end to end: each run checks that the option did what it
says, not only that the run finished (issue 22's list of untested options)."""

import json

import numpy as np
import pytest
from astropy.table import Table

from data.line import simulate_outlier_line
from tests.conftest import make_field
from workflows.cli import main

pytestmark = pytest.mark.smoke

QUICK = ["--draws", "100", "--tune", "100", "--chains", "2", "--seed", "3",
         "--ess-bulk-min", "1", "--ess-tail-min", "1", "--r-hat-max", "10", "--no-figures"]
CLUSTER = [*QUICK, "--no-detection"]


def record_of(out):
    return json.loads((out / "run_record.json").read_text())


def run_pmra_on(tmp_path, table, *options):
    """Write ``table`` and run the pmra model on it (short chains); returns --out."""
    path = tmp_path / "field.ecsv"
    table.write(path)
    out = tmp_path / "o"
    assert main(["run", "cluster", "--model", "pmra", "--data", str(path), "--cluster",
                 "NGC6819", *options, *CLUSTER, "--out", str(out)]) in (0, 2)
    return out


def test_parallax_over_error_cut_removes_exactly_the_low_snr_stars(tmp_path):
    table = make_field(seed=2, n_cluster=150, n_field=250)
    out = run_pmra_on(tmp_path, table, "--parallax-over-error-min", "3")
    ruwe_ok = np.asarray(table["ruwe"]) < 1.4
    g_ok = np.asarray(table["phot_g_mean_mag"]) <= 20
    snr_ok = np.asarray(table["parallax"]) / np.asarray(table["parallax_error"]) >= 3
    removed = record_of(out)["selection"]["quality_cuts"]["removed"]
    assert removed["parallax_over_error_min"] == int((ruwe_ok & g_ok & ~snr_ok).sum())
    assert len(Table.read(out / "membership.ecsv")) == int((ruwe_ok & g_ok & snr_ok).sum())


def test_columns_renames_the_users_names(tmp_path):
    table = make_field(seed=2, n_cluster=150, n_field=250)
    table.rename_columns(["pmra", "pmra_error"], ["mu_a", "sigma_mu_a"])
    out = run_pmra_on(tmp_path, table, "--columns", "mu_a=pmra,sigma_mu_a=pmra_error")
    assert record_of(out)["data"]["renamed"] == {"mu_a": "pmra", "sigma_mu_a": "pmra_error"}
    written = Table.read(out / "membership.ecsv")
    np.testing.assert_allclose(np.sort(written["pmra"]),
                               np.sort(np.asarray(table["mu_a"])[np.asarray(table["ruwe"]) < 1.4]))


def test_mass_matrix_diag_is_used_and_recorded(tmp_path):
    out = tmp_path / "o"
    assert main(["run", "outlier-line", *QUICK, "--sampler", "nutpie", "--mass-matrix", "diag",
                 "--out", str(out)]) in (0, 2)
    assert record_of(out)["sampler_used"]["mass_matrix"] == "diag"


def test_x_errors_correlation_and_intrinsic_scatter_reach_the_model(tmp_path):
    data = simulate_outlier_line(seed=5)
    rng = np.random.default_rng(5)
    table = Table({"x": data.x, "y": data.y, "y_err": data.y_err,
                   "x_err": rng.uniform(0.05, 0.2, len(data)),
                   "rho": rng.uniform(-0.3, 0.3, len(data))})
    path = tmp_path / "points.csv"
    table.write(path, format="ascii.csv")
    out = tmp_path / "o"
    assert main(["run", "outlier-line", "--data", str(path), "--xerr", "x_err", "--xycorr",
                 "rho", "--intrinsic-scatter", *QUICK, "--out", str(out)]) in (0, 2)
    parameters = set(Table.read(out / "summary.ecsv")["parameter"])
    assert {"ln_s_int", "s_int", "m", "b"} <= parameters
    settings = record_of(out)["settings"]["LineInput"]
    assert (settings["xerr"], settings["xycorr"], settings["intrinsic_scatter"]) == (
        "x_err", "rho", True)
