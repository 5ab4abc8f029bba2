"""End-to-end runs of ``starmix run outlier-line`` with short chains."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from starmix.workflows.cli import main
from tests.conftest import SHORT_ARGS, write_line_csv

pytestmark = pytest.mark.smoke


def run_cli(*args):
    return main(["run", "outlier-line", *args])


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "line"
    code = run_cli(*SHORT_ARGS, "--out", str(out))
    return code, out


def test_short_run_writes_every_output(short_run):
    code, out = short_run
    assert code == 0
    for name in ["posterior.nc", "summary.ecsv", "membership.ecsv", "run_record.json"]:
        assert (out / name).is_file(), name
    for name in ["fit", "corner", "membership", "pgm"]:
        assert (out / "figures" / f"outlier_line_{name}.png").stat().st_size > 10_000
    assert not list(out.rglob(".*partial*"))


def test_run_record(short_run):
    _, out = short_run
    record = json.loads((out / "run_record.json").read_text())
    assert record["status"] == "passed"
    assert record["settings"]["SamplingOptions"]["seed"] == 7
    assert record["convergence"]["divergences"] == 0
    assert set(record["timings_s"]) >= {"sample", "convergence gate", "membership", "total"}
    assert record["versions"]["pymc"].startswith("6")


def test_membership_separates_true_outliers(short_run):
    _, out = short_run
    table = Table.read(out / "membership.ecsv")
    is_outlier = table["true_outlier"]
    outliers, inliers = table["p_line"][is_outlier], table["p_line"][~is_outlier]
    assert np.median(outliers) < 0.2 < 0.8 < np.median(inliers)
    assert np.all(table["p_line_p16"] <= table["p_line_p84"])


def test_membership_table_equals_a_brute_force_average_over_the_saved_draws(short_run):
    """The written P(line) is the posterior mean over draws of w p_line / (w p_line + (1 - w)
    p_out), weights included: recomputed here with SciPy from the saved draws. Dropped
    weights, a missing error term or a mean of the wrong component would all differ."""
    import xarray as xr
    from scipy.stats import norm

    _, out = short_run
    table = Table.read(out / "membership.ecsv")
    posterior = xr.open_datatree(out / "posterior.nc")["posterior"]
    m, b = (posterior[name].values.reshape(-1, 1) for name in ("m", "b"))
    s_out = posterior["s_out"].values.reshape(-1, 1)
    w_line = posterior["w"].sel(component="line").values.reshape(-1, 1)
    x, y, e = (np.asarray(table[name])[None] for name in ("x", "y", "y_err"))
    line = w_line * norm.pdf(y, m * x + b, e)
    outlier = (1 - w_line) * norm.pdf(y, 0, np.sqrt(e**2 + s_out**2))
    expected = (line / (line + outlier)).mean(axis=0)
    np.testing.assert_allclose(table["p_line"], expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(table["p_line_p50"],
                               np.median(line / (line + outlier), axis=0), rtol=1e-6, atol=1e-12)


def test_line_parameters_recover_the_truth_with_signed_errors(short_run):
    """The reference data (m = 3.17, b = -11.9): each posterior mean within 3 sd of the
    truth, on the right side of zero, and the line weight near the true 24/32."""
    _, out = short_run
    rows = {row["parameter"]: row for row in Table.read(out / "summary.ecsv")}
    for name, truth in (("m", 3.17), ("b", -11.9)):
        assert abs(rows[name]["mean"] - truth) < 3 * rows[name]["sd"], name
    assert rows["m"]["mean"] > 2.5 and rows["b"]["mean"] < -8
    assert 0.6 < rows["w[line]"]["mean"] < 0.9


def test_posterior_file_has_log_likelihood_for_loo(short_run):
    import arviz as az
    import xarray as xr

    _, out = short_run
    idata = xr.open_datatree(out / "posterior.nc")
    assert idata["log_likelihood"]["y"].dims == ("chain", "draw", "point")
    assert np.isfinite(az.loo(idata).elpd)


def test_same_seed_same_numbers(short_run, tmp_path):
    _, out = short_run
    assert run_cli(*SHORT_ARGS, "--out", str(tmp_path), "--no-figures") == 0
    for name in ["summary.ecsv", "membership.ecsv"]:
        assert (tmp_path / name).read_text() == (out / name).read_text()


def test_failed_gate_exits_2_and_keeps_results(tmp_path, capsys):
    code = run_cli("--draws", "20", "--tune", "20", "--chains", "2", "--out", str(tmp_path),
                   "--no-figures")
    assert code == 2
    printed = capsys.readouterr()
    assert "convergence gate: FAILED" in printed.out
    assert "bulk ESS" in printed.out and "marked failed" in printed.err
    record = json.loads((tmp_path / "run_record.json").read_text())
    assert record["status"] == "failed" and record["convergence"]["failures"]
    assert (tmp_path / "posterior.nc").is_file()


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"y": [np.nan] * 3 + [1.0] * 29}, "column 'y': 3 of 32 rows are not finite"),
        ({"y_err": [-1.0] + [1.0] * 31}, "column 'y_err': 1 of 32 rows are not positive"),
    ],
)
def test_bad_input_fails_clearly_and_writes_nothing(tmp_path, capsys, columns, message):
    path = write_line_csv(tmp_path / "bad.csv", **columns)
    out = tmp_path / "out"
    assert run_cli("--data", str(path), "--out", str(out)) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_missing_column_and_file(tmp_path, capsys):
    path = write_line_csv(tmp_path / "points.csv")
    assert run_cli("--data", str(path), "--yerr", "sigma_y", "--out", str(tmp_path / "o")) == 1
    assert "column 'sigma_y'" in capsys.readouterr().err
    assert run_cli("--data", str(tmp_path / "nope.csv")) == 1
    assert "not found" in capsys.readouterr().err


def test_user_data_and_config_file(tmp_path):
    path = write_line_csv(tmp_path / "points.csv")
    config = tmp_path / "run.toml"
    config.write_text("draws = 300\ntune = 300\nchains = 2\nseed = 3\n"
                      "ess-bulk-min = 100\ness-tail-min = 100\nr-hat-max = 1.05\nfigures = false\n")
    out = tmp_path / "out"
    assert run_cli("--data", str(path), "--config", str(config), "--out", str(out)) == 0
    record = json.loads((out / "run_record.json").read_text())
    assert record["settings"]["SamplingOptions"]["draws"] == 300
    assert record["data"]["source"] == str(path)
    assert not (out / "figures").exists()


def test_help_lists_workflows_and_options(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "outlier-line" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run_cli("--help")
    text = capsys.readouterr().out
    for option in ["--draws", "--tune", "--chains", "--seed", "--sampler", "--out", "--config"]:
        assert option in text


def test_jax_backend_on_cpu(tmp_path):
    pytest.importorskip("numpyro")
    code = run_cli(*SHORT_ARGS, "--sampler", "numpyro", "--out", str(tmp_path), "--no-figures")
    assert code == 0
    summary = Table.read(tmp_path / "summary.ecsv")
    row = summary[summary["parameter"] == "m"][0]
    assert abs(row["mean"] - 3.137) < 3 * 0.074


@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
def test_a_bad_map_start_falls_back_to_the_default_initialisation(monkeypatch, capsys,
                                                                  sampler):
    import pymc as pm

    from starmix.workflows.inference import sampling
    from starmix.workflows.runs.options import SamplingOptions

    with pm.Model() as model:
        scale = pm.Uniform("scale", 0, 1)
        pm.Normal("y", 0, scale, observed=np.linspace(-1, 1, 20))
    if sampler == "nutpie":  # nutpie's MAP is on the unconstrained scale
        from starmix.workflows.inference import nutpie_sampler

        monkeypatch.setattr(nutpie_sampler, "map_estimate",
                            lambda *_: (np.array([np.nan]), [float("nan")]))
    else:
        monkeypatch.setattr(sampling, "map_point", lambda *_: {"scale": 2.0})  # off support
    options = SamplingOptions(draws=100, tune=100, chains=1, sampler=sampler)
    idata = sampling.sample_posterior(model, options, start_at_map=True, log_likelihood=False)
    assert 0 < float(idata["posterior"]["scale"].mean()) < 1
    assert "starting at the MAP point failed" in capsys.readouterr().err


def test_the_outlier_line_loads_no_cluster_kernels_coordinates_or_jax():
    """Its command imports what it runs: the cluster models' Numba kernels, astropy's
    coordinates and JAX (which matplotlib would load through arviz_base's lazy
    placeholder) cost seconds per run and are not used."""
    script = (
        "import sys\n"
        "from starmix.workflows.cli import build_parser, workflow_runner\n"
        "build_parser()\n"
        "workflow_runner('outlier-line')\n"
        "import matplotlib.pyplot as plt\n"
        "figure, axes = plt.subplots()\n"
        "axes.plot([1.0, 2.0])\n"
        "figure.canvas.draw()\n"
        "heavy = ('jax', 'numpyro', 'starmix.models.fused', 'astropy.coordinates',\n"
        "         'starmix.workflows.cluster.run')\n"
        "print([name for name in heavy if name in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[3])
    assert done.stdout.strip() == "[]"
