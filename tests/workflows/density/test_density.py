"""The density workflows: the model's likelihood, recovery of known mixtures (1-D with
errors, the 2-D "two galaxies"), deconvolution, agreement with astroML's XDGMM, the ages
preset (simulated and real), bad input, and a small SBC that a model ignoring the errors
fails."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy import integrate, stats

from starmix.data.density import DensityData, simulate_density, two_galaxies
from starmix.models.density import TruncatedMixture, gaussian_mixture_density, truncated_mixture
from starmix.workflows.cli import main
from starmix.workflows.density.baselines import em_bic, fit_baselines
from starmix.workflows.density.fit import DENSITY_SAMPLING, fit_density, mixture_log_density
from starmix.workflows.density.run import AgesInput, DensityInput, run_ages, run_density
from starmix.workflows.runs.options import SamplingOptions
from tests.conftest import shared_file

SAMPLING = replace(DENSITY_SAMPLING, seed=3)  # the workflows' defaults: the gate must pass
# the density workflow's own tuning (DENSITY_SAMPLING: 1000 steps, target_accept 0.99) with
# fewer draws: with PyMC's 300 tuning steps and 0.8 this fit's chains settled in different
# modes (r_hat 1.99) once the compiled code's rounding changed, so the widths compared below
# meant nothing; the test now checks the gate too
SHORT = replace(DENSITY_SAMPLING, draws=500, seed=3)


def test_model_likelihood_is_the_blurred_mixture_and_the_truncated_one_normalises():
    rng = np.random.default_rng(0)
    values, errors = rng.normal(0, 3, 50), rng.uniform(0.5, 2, 50)
    model = gaussian_mixture_density(values, (errors**2)[:, None, None], 2)
    point = model.initial_point()
    logp = model.compile_logp(vars=model.observed_RVs, sum=False)(point)[0]
    outputs = model.replace_rvs_by_values([model["w"], model["mean"], model["cov"]])
    w, mean, cov = pm.pytensorf.compile(model.value_vars, outputs, on_unused_input="ignore")(
        *[point[v.name] for v in model.value_vars])
    expected = np.log(sum(w[k] * stats.norm.pdf(values, mean[k, 0],
                                                 np.sqrt(cov[k, 0, 0] + errors**2))
                          for k in range(2)))
    np.testing.assert_allclose(logp, expected, rtol=1e-10)

    # truncated at [0, 5] with an error of 0.7: the density of y integrates to 1 and the
    # random variable's draws follow it
    params = [np.log([0.3, 0.7]), np.array([1.0, 6.0]), np.array([0.5, 4.0]), 0.49,
              np.array([0.0, 5.0])]
    v = pt.matrix("v")
    logp_fn = pm.pytensorf.compile([v], pm.logp(TruncatedMixture.dist(*params, shape=(1, 1)), v))
    density = lambda x: float(np.exp(logp_fn(np.array([[x]]))).ravel()[0])  # noqa: E731
    total, _ = integrate.quad(density, -6, 12, limit=200)
    assert abs(total - 1) < 1e-6, total
    draws = truncated_mixture.rng_fn(np.random.default_rng(1), *params, size=(4000,))[:, 0]
    cdf = np.vectorize(lambda x: integrate.quad(density, -6, x, limit=200)[0])
    grid = np.linspace(-3, 10, 60)
    ecdf = (draws[None, :] <= grid[:, None]).mean(1)
    assert np.abs(ecdf - cdf(grid)).max() < 0.03


@pytest.mark.workflow
def test_known_mixture_recovered_within_intervals_and_agrees_with_xdgmm(tmp_path):
    result = run_density(tmp_path / "out", DensityInput(max_components=3), SAMPLING,
                         quiet=True)
    assert result.status == "passed"
    record = result.record["samples"]["x"]
    assert record["k_selection"]["chosen"] == 2
    truth = record["truth"]
    assert truth["comparable"]
    for key in ("w", "mean", "width"):
        assert np.all(truth[key]["in_95"]), (key, truth[key])
    # K-S: a fresh sample of the true intrinsic density, as large as the data, against the
    # posterior-mean CDF; and closer to it than the Scott KDE of the measured values
    # (which is blurred by the errors)
    data = simulate_density()
    rng = np.random.default_rng(5)
    labels = rng.choice(2, 3000, p=data.truth["w"])
    fresh = rng.normal(data.truth["mean"][labels, 0], np.sqrt(data.truth["cov"][labels, 0, 0]))
    from astropy.table import Table

    table = Table.read(tmp_path / "out" / "density_x.ecsv")
    grid = np.asarray(table["x"])

    def cdf_of(column):
        cdf = np.cumsum(np.asarray(table[column])) * (grid[1] - grid[0])
        return lambda x: np.interp(x, grid, cdf)

    assert stats.kstest(fresh[:len(data)], cdf_of("posterior_mean")).pvalue > 0.05
    posterior_d = stats.kstest(fresh, cdf_of("posterior_mean")).statistic
    kde_d = stats.kstest(fresh, cdf_of("kde_scott")).statistic
    assert posterior_d < 0.8 * kde_d, (posterior_d, kde_d)
    # astroML's XDGMM (EM for the same likelihood) agrees with the posterior
    agreement = record["xdgmm_agreement"]
    assert np.abs(agreement["z_mean"]).max() < 3 and np.abs(agreement["z_width"]).max() < 3
    assert record["density"]["methods"]["xdgmm"]["l1_to_posterior_mean"] < 0.1
    # synthetic sets: one posterior draw each, spread more between sets than the KDE's
    synthetic = record["synthetic"]
    assert synthetic["posterior"]["sd_of_set_sds"] > 0
    for name in ("posterior_x.nc", "summary_x.ecsv", "k_selection_x.ecsv",
                 "baselines_x.ecsv", "synthetic_x.ecsv", "figures/density_x.png",
                 "figures/synthetic_x.png", "figures/checks_x.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name


@pytest.mark.workflow
def test_deconvolution_recovers_intrinsic_widths_where_the_baselines_are_inflated():
    rng = np.random.default_rng(11)
    truth = {"w": np.array([0.5, 0.5]), "mean": np.array([[-3.0], [3.0]]),
             "cov": np.array([[[0.25]], [[0.49]]])}
    labels = rng.choice(2, 600, p=truth["w"])
    true = rng.normal(truth["mean"][labels, 0], np.sqrt(truth["cov"][labels, 0, 0]))
    errors = rng.uniform(1.0, 2.0, 600)
    data = DensityData((true + errors * rng.standard_normal(600))[:, None], ["x"],
                       (errors**2)[:, None, None], truth=truth)
    fit = fit_density(data, SHORT, components=2, say=lambda _: None)
    assert fit.gate.passed, fit.gate.failures
    width = np.sqrt(fit.draws()["cov"][:, :, 0, 0])
    low, high = np.percentile(width, [2.5, 97.5], axis=0)
    assert np.all((low <= [0.5, 0.7]) & (high >= [0.5, 0.7])), (low, high)
    em = em_bic(data.values, 2, 0).components  # errors ignored: widths ~ sqrt(V + <e²>)
    assert np.all(np.sqrt(em["cov"][:, 0, 0]) > 1.5 * np.array([0.5, 0.7]))
    xd = fit_baselines(data.values, data.error_cov, 2, 2, 0)["xdgmm"].components
    np.testing.assert_allclose(np.sqrt(xd["cov"][:, 0, 0]), width.mean(0), atol=0.25)


@pytest.mark.workflow
def test_two_galaxies_centres_and_covariances_recovered_like_scikit_learn():
    data = two_galaxies(n=3000, seed=2)
    fit = fit_density(data, SamplingOptions(draws=300, seed=2), components=2,
                      say=lambda _: None)
    draws = fit.draws()
    mean, cov = draws["mean"].mean(0), draws["cov"].mean(0)
    np.testing.assert_allclose(mean, data.truth["mean"], atol=0.12)
    np.testing.assert_allclose(cov, data.truth["cov"], atol=0.08 * np.abs(data.truth["cov"]).max())
    em = em_bic(data.values, 2, 0).components
    np.testing.assert_allclose(mean, em["mean"], atol=0.02)
    np.testing.assert_allclose(cov, em["cov"], rtol=0.03, atol=0.02)
    # the density of the two disagree nowhere by much
    points = data.values[::50]
    log_post = mixture_log_density(points, draws["w"][::20], draws["mean"][::20],
                                   draws["cov"][::20]).mean(0)
    log_em = mixture_log_density(points, em["w"][None], em["mean"][None], em["cov"][None])[0]
    assert np.abs(log_post - log_em).max() < 0.05


@pytest.mark.workflow
def test_ages_preset_on_the_simulated_default_finds_the_known_difference(tmp_path):
    out = tmp_path / "ages"
    process = subprocess.run(
        [sys.executable, "-m", "starmix.workflows.cli", "run", "ages", "--out", str(out),
         "--max-components", "2", "--seed", "5", "--synthetic-sets", "5", "--no-checks"],
        capture_output=True, text=True, timeout=900)
    assert process.returncode == 0, process.stderr[-3000:]
    record = json.loads((out / "run_record.json").read_text())
    assert record["status"] == "passed"
    comparison = record["comparison"]
    # the two simulated columns' true mean ages differ by 3.3 Gyr (data.density.SIMULATED_AGES)
    difference = comparison["difference_in_mean"]
    assert abs(difference["mean"] - 3.3) < 3 * difference["sd"] and difference["p2.5"] > 0
    for name in ("Joyce_age", "Bensby_age"):  # the fits recover each column's truth
        truth = record["samples"][name]["truth"]
        if truth["comparable"]:
            assert all(np.all(truth[key]["in_95"]) for key in ("w", "mean", "width")), truth
    assert comparison["two_sample_check"]["p_value"]["ks_d"] < 0.01
    for name in ("comparison.ecsv", "posterior_pooled.nc", "figures/comparison.png",
                 "figures/density_Joyce_age.png", "synthetic_Bensby_age.ecsv"):
        assert (out / name).stat().st_size > 0, name


@pytest.mark.workflow
def test_real_stellar_ages_counted_beyond_the_universe_and_compared(tmp_path):
    path = shared_file("stellar_ages.dat")
    result = run_ages(tmp_path / "real", AgesInput(data=str(path), max_components=2,
                                                   synthetic_sets=5), SAMPLING,
                      figures=False, checks="off", quiet=True)
    assert result.status == "passed"
    joyce, bensby = (result.record["samples"][n] for n in ("Joyce_age", "Bensby_age"))
    assert joyce["limits"]["data_outside"]["above"] == 17
    assert bensby["limits"]["data_outside"]["above"] == 8
    assert joyce["density"]["mass_outside_limits"]["p16"] > 0.1
    comparison = result.record["comparison"]
    assert comparison["difference_in_mean"]["p2.5"] > 1.0
    assert comparison["paired"]["fraction_first_larger"] > 0.9


@pytest.mark.parametrize("args, message", [
    (["--columns", "Joyce_age,Nope"], "column 'Nope': is missing"),
    (["--columns", "a,b,c,d"], "--columns takes 1 to 3 columns, got 4"),
    (["--columns", "Joyce_age", "--errors", "0"], "--errors: a constant error must be a "
                                                  "positive number"),
    (["--columns", "Joyce_age", "--truncate", "--upper", "13.8"],
     "column 'Joyce_age': 17 of 91 rows lie outside --truncate's limits"),
    (["--columns", "Joyce_age", "--log", "--truncate", "--upper", "13.8"],
     "choose one"),
])
def test_bad_density_input_is_one_line_naming_the_culprit(args, message, capsys, tmp_path):
    path = shared_file("stellar_ages.dat")
    code = main(["run", "density", "--data", str(path), "--out", str(tmp_path / "o"), *args])
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bad_rows_are_counted_or_dropped(tmp_path, capsys):
    path = tmp_path / "ages.csv"
    path.write_text("age,err\n1.0,0.1\nx,0.2\n3.0,-1\n" + "".join(
        f"{v:.2f},0.3\n" for v in np.linspace(2, 9, 20)))
    code = main(["run", "density", "--data", str(path), "--columns", "age", "--errors", "err",
                 "--out", str(tmp_path / "o")])
    assert code == 1
    assert "column 'age': 1 of 23 rows are not numbers" in capsys.readouterr().err
    from starmix.data.density import load_density_table

    data = load_density_table(path, ["age"], "err", drop_invalid=True)
    assert len(data) == 21
    assert data.dropped == {"age: are not numbers": 1, "err: are not positive": 1, "total": 2}


def test_small_sbc_passes_the_density_and_fails_it_without_errors():
    from validation.cases import CASES
    from validation.sbc import SBC_SAMPLING, run_replicate

    def extreme_p(case):
        ranks = np.array([[r["ranks"][label] for label in ("cov_log_width[component_1]",
                                                            "cov_log_width[component_2]",
                                                            "density sd")]
                          for r in (run_replicate(case, seed, SBC_SAMPLING)
                                    for seed in range(8))])
        extreme = int(np.sum((ranks < 5) | (ranks > 94)))
        return stats.binomtest(extreme, ranks.size, 0.1).pvalue

    assert extreme_p(CASES["density"]) > 0.001
    assert extreme_p(CASES["density_errors_ignored"]) < 1e-3


def test_simulated_data_are_reproducible_and_log_carries_errors():
    a, b = simulate_density(seed=4), simulate_density(seed=4)
    np.testing.assert_array_equal(a.values, b.values)
    from starmix.data.density import log_values

    positive = replace(a, values=np.abs(a.values) + 1)
    logged = log_values(positive)
    np.testing.assert_allclose(np.sqrt(logged.error_cov[:, 0, 0]),
                               np.sqrt(a.error_cov[:, 0, 0]) / positive.values[:, 0])


@pytest.mark.workflow
def test_python_api_fits_values_with_errors_and_reloads(tmp_path):
    import starmix

    data = simulate_density(n=300, seed=8)
    fit = starmix.fit_density(data.values[:, 0], data.error_sd()[:, 0], columns=["age"],
                              components=2, checks="off", out=tmp_path / "fit", seed=8)
    assert fit.passed, fit.record["samples"]["age"]["convergence"]["failures"]
    assert {"x", "posterior_mean", "posterior_p16", "xdgmm"} <= set(fit.density.colnames)
    assert "mean" in fit.idata["posterior"] and "w" in fit.summary["parameter"][0]
    assert fit.plot_corner() is not None
    again = starmix.load_fit(fit.out_dir)
    assert again.workflow == "density" and len(again.density) == len(fit.density)
    with pytest.raises(AttributeError, match="no membership"):
        _ = fit.membership
    with pytest.raises(TypeError, match="unknown options"):
        starmix.fit_density(data.values, nonsense=1)


@pytest.mark.workflow
def test_three_coordinates_with_correlated_errors_recovered():
    rng = np.random.default_rng(21)
    truth = {"w": np.array([0.5, 0.5]), "mean": np.array([[0.0, 0.0, 0.0], [4.0, -3.0, 2.0]]),
             "cov": np.array([np.diag([0.5, 1.0, 0.8]) ** 2,
                              [[4.0, 1.0, 0.0], [1.0, 1.0, 0.2], [0.0, 0.2, 1.0]]])}
    labels = rng.choice(2, 800, p=truth["w"])
    chol = np.linalg.cholesky(truth["cov"])[labels]
    true = truth["mean"][labels] + np.einsum("nij,nj->ni", chol, rng.standard_normal((800, 3)))
    error_cov = np.array([[[0.09, 0.03, 0.0], [0.03, 0.16, 0.0], [0.0, 0.0, 0.04]]] * 800)
    noise = np.einsum("nij,nj->ni", np.linalg.cholesky(error_cov), rng.standard_normal((800, 3)))
    data = DensityData(true + noise, ["a", "b", "c"], error_cov, truth=truth)
    fit = fit_density(data, SamplingOptions(draws=300, tune=500, seed=4), components=2,
                      say=lambda _: None)
    draws = fit.draws()
    np.testing.assert_allclose(draws["mean"].mean(0), truth["mean"], atol=0.2)
    np.testing.assert_allclose(draws["cov"].mean(0), truth["cov"], atol=0.35)
