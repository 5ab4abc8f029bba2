"""Options that no other test runs end to end: each run checks that the option did what it
says, not only that the run finished (issue 22's list of untested options)."""

import json

import numpy as np
import pytest
from astropy.table import Table

from starmix.data.line import simulate_outlier_line
from starmix.workflows.cli import main
from tests.conftest import make_field

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


def test_blackjax_sampler_runs_through_jax_and_recovers_the_line(tmp_path):
    pytest.importorskip("blackjax")
    out = tmp_path / "o"
    code = main(["run", "outlier-line", "--draws", "300", "--tune", "300", "--chains", "2",
                 "--seed", "3", "--sampler", "blackjax", "--ess-bulk-min", "100",
                 "--ess-tail-min", "100", "--r-hat-max", "1.05", "--no-figures", "--out",
                 str(out)])
    record = record_of(out)
    assert record["sampler_used"]["sampler"] == "blackjax"
    assert code == 0, record["convergence"]["failures"]
    summary = {row["parameter"]: row for row in Table.read(out / "summary.ecsv")}
    truth = simulate_outlier_line().truth  # the built-in data set
    for name in ("m", "b"):
        assert abs(summary[name]["mean"] - truth[name]) < 4 * summary[name]["sd"], name


def test_parallax_offset_adds_a_fitted_zero_point(tmp_path):
    table = make_field(seed=4, n_cluster=150, n_field=250)
    path = tmp_path / "field.ecsv"
    table.write(path)
    runs = {}
    for name, extra in (("plain", []), ("offset", ["--parallax-offset"])):
        out = tmp_path / name
        assert main(["run", "cluster", "--model", "parallax", "--data", str(path), "--cluster",
                     "NGC6819", *extra, *CLUSTER, "--out", str(out)]) in (0, 2)
        runs[name] = {row["parameter"]: row for row in Table.read(out / "summary.ecsv")}
        assert record_of(out)["settings"]["ClusterInput"]["parallax_offset"] is bool(extra)
    assert not any(name.startswith("parallax_offset") for name in runs["plain"])
    offset = runs["offset"]["parallax_offset"]
    # the prior is N(-0.02, 0.02) mas; the simulated field has no offset, so the posterior
    # stays within its prior's reach and the cluster parallax absorbs what it does not
    assert abs(offset["mean"] + 0.02) < 0.06 and 0 < offset["sd"] < 0.03
    cluster_with = runs["offset"]["cluster_parallax"]["mean"]
    cluster_without = runs["plain"]["cluster_parallax"]["mean"]
    assert abs((cluster_with + offset["mean"]) - cluster_without) < 0.02  # mas


def test_radial_velocity_prior_sets_the_line_of_sight_velocity(tmp_path):
    out = tmp_path / "o"
    assert main(["run", "ngc6819", "--model", "joint", "--n-cluster", "150", "--n-field",
                 "250", "--radial-velocity", "-40", "0.5", *CLUSTER, "--out", str(out)]) in (0, 2)
    assert record_of(out)["settings"]["ClusterInput"]["radial_velocity"] == [-40.0, 0.5]
    rows = {row["quantity"]: row for row in Table.read(out / "kinematics.ecsv")}
    assert rows["radial_velocity_prior"]["mean"] == pytest.approx(-40, abs=0.2)
    assert rows["radial_velocity_prior"]["sd"] == pytest.approx(0.5, rel=0.3)
    # the ICRS velocity's component along the line of sight is the radial velocity
    position = np.array([rows[f"icrs_{axis}"]["mean"] for axis in "xyz"])
    velocity = np.array([rows[f"icrs_v{axis}"]["mean"] for axis in "xyz"])
    line_of_sight = velocity @ position / np.linalg.norm(position)
    assert line_of_sight == pytest.approx(-40, abs=1.0)  # km/s


def test_no_checks_skips_them_and_strict_checks_gate_the_exit_code(tmp_path, monkeypatch):
    from starmix.workflows.inference import checks as checks_module
    from starmix.workflows.runs.run import EXIT_CHECKS_FAILED, final_status

    out = tmp_path / "off"
    assert main(["run", "outlier-line", *QUICK, "--no-checks", "--out", str(out)]) in (0, 2)
    record = record_of(out)
    assert "predictive_checks" not in record and "predictive checks" not in record["timings_s"]
    on = tmp_path / "on"
    assert main(["run", "outlier-line", *QUICK, "--out", str(on)]) in (0, 2)
    checks = record_of(on)["predictive_checks"]
    assert checks["observed"] == "y" and len(checks["posterior_p_values"]["y"]) == 4
    import xarray as xr

    with xr.open_datatree(on / "posterior.nc") as tree:
        assert {"prior_predictive", "posterior_predictive", "observed_data",
                "log_likelihood"} <= set(tree.children)
    real = checks_module.predictive_checks

    def failing(*args, **kwargs):  # the real checks, with one failure added
        report, groups, arrays = real(*args, **kwargs)
        report.failures.append("y: made to fail by the test")
        return report, groups, arrays

    monkeypatch.setattr(checks_module, "predictive_checks", failing)
    lenient = tmp_path / "lenient"
    assert main(["run", "outlier-line", *QUICK, "--out", str(lenient)]) == 0
    assert record_of(lenient)["predictive_checks"]["passed"] is False
    strict = tmp_path / "strict"
    assert main(["run", "outlier-line", *QUICK, "--strict-checks", "--out",
                 str(strict)]) == EXIT_CHECKS_FAILED
    assert record_of(strict)["status"] == "checks_failed"
    assert final_status(False, None, "strict") == "failed"  # the gate comes first
    assert final_status(True, None, "strict", no_cluster=True) == "no_cluster"
    with pytest.raises(ValueError, match="checks must be one of"):
        final_status(True, None, "loud")


def test_parallax_gaussian_field_fits_k_field_gaussians_and_the_cluster(tmp_path):
    table = make_field(seed=4, n_cluster=150, n_field=250)
    path = tmp_path / "field.ecsv"
    table.write(path)
    out = tmp_path / "o"
    assert main(["run", "cluster", "--model", "parallax", "--parallax-field", "gaussian",
                 "--field-components", "2", "--data", str(path), "--cluster", "NGC6819",
                 *CLUSTER, "--out", str(out)]) in (0, 2)
    rows = {row["parameter"]: row for row in Table.read(out / "summary.ecsv")}
    assert {"field_mean[field_1, parallax]", "field_mean[field_2, parallax]",
            "cluster_parallax_spread"} <= set(rows)
    assert not any(name.startswith("field_length_scale") for name in rows)
    truth = float(table.meta["TRUEPLX"])
    assert abs(rows["cluster_parallax"]["mean"] - truth) < 0.03  # mas; 150 members
    assert record_of(out)["field_components"] == 2


def test_cluster_halo_adds_a_wider_cluster_gaussian(tmp_path):
    out = tmp_path / "o"
    assert main(["run", "cluster", "--model", "pm2d", "--cluster-halo", "--n-cluster", "200",
                 "--n-field", "300", *CLUSTER, "--out", str(out)]) in (0, 2)
    rows = {row["parameter"]: row for row in Table.read(out / "summary.ecsv")}
    assert 0 < rows["cluster_halo_fraction"]["mean"] < 1
    assert rows["cluster_halo_dispersion"]["mean"] > rows["cluster_pm_dispersion"]["mean"]
    assert rows["cluster_halo_dispersion"]["mean"] < 0.5
    record = record_of(out)
    assert {"cluster_halo_fraction", "cluster_halo_dispersion"} <= set(
        record["cluster_parameters"])
    assert record["settings"]["ClusterInput"]["cluster_halo"] is True
    membership = Table.read(out / "membership.ecsv")
    members = np.asarray(membership["is_member"], bool) if "is_member" in membership.colnames \
        else None
    p = np.asarray(membership["p_cluster"], float)
    assert (p > 0.5).sum() > 150  # core and halo together hold the 200 members
    if members is not None:
        assert p[members].mean() > 0.8


def test_zero_point_subtracts_lindegrens_offset_and_records_it(tmp_path):
    pytest.importorskip("zero_point")
    table = make_field(seed=4, n_cluster=150, n_field=250)
    rng = np.random.default_rng(0)
    table["nu_eff_used_in_astrometry"] = rng.uniform(1.45, 1.65, len(table))
    table["pseudocolour"] = np.full(len(table), np.nan)
    table["ecl_lat"] = np.full(len(table), 60.0)
    table["astrometric_params_solved"] = np.full(len(table), 31)
    out = run_pmra_on(tmp_path, table, "--zero-point")
    applied = record_of(out)["data"]["parallax_zero_point"]
    assert "Lindegren" in applied["applied"]
    # the DR3 zero-point is negative (about -0.02 to -0.04 mas at these G): subtracting it
    # raises every parallax, and the membership table carries the corrected values
    assert -0.06 < applied["median_mas"] < -0.01
    members = Table.read(out / "membership.ecsv")
    given = dict(zip(np.asarray(table["source_id"]), np.asarray(table["parallax"]), strict=True))
    shift = np.asarray(members["parallax"]) - np.array([given[s] for s in members["source_id"]])
    assert np.all(shift > 0) and np.median(shift) == pytest.approx(-applied["median_mas"],
                                                                    abs=0.01)


def test_zero_point_without_its_columns_names_them(tmp_path, capsys):
    path = tmp_path / "field.ecsv"
    make_field(seed=4, n_cluster=150, n_field=250).write(path)
    code = main(["run", "cluster", "--model", "pmra", "--data", str(path), "--zero-point",
                 *CLUSTER, "--out", str(tmp_path / "o")])
    assert code == 1
    assert "nu_eff_used_in_astrometry" in capsys.readouterr().err
