"""Detection and identification: find the named cluster when the field's own peak is
denser, and say "no cluster" on a field without one (exit code 3, results kept)."""

import json

import numpy as np
import pytest
from astropy.table import Table

from starmix.workflows.cli import main
from starmix.workflows.cluster.detection import (
    FOUND,
    NOT_FOUND,
    detect,
    pinned_at_bounds,
)
from starmix.workflows.cluster.identification import candidate_overdensities
from starmix.workflows.inference.loo import pointwise_loo
from tests.conftest import SHORT_ARGS, observed_loglike

pytestmark = pytest.mark.smoke
ARGS = [*SHORT_ARGS, "--draws", "300", "--tune", "300", "--ess-bulk-min", "50",
        "--ess-tail-min", "50", "--no-figures"]
CLUSTER_PM = (-3.0, -4.5)  # mas/yr
CLUSTER_PARALLAX = 0.6  # mas


def peaked_field(seed=3, n_cluster=80, n_field=2500) -> Table:
    """No positions; a dense, broad field peak at (0, 0) mas/yr (sd 1.0) holding most
    stars, and a sparse cluster whose errors (0.3 mas/yr) make it less dense than the
    peak: the densest proper-motion cell is the field's."""
    rng = np.random.default_rng(seed)
    n = n_cluster + n_field
    member = np.zeros(n, bool)
    member[:n_cluster] = True
    pm_error = np.where(member, 0.3, rng.uniform(0.1, 0.6, n))
    true_pm = np.where(member[:, None], CLUSTER_PM + rng.normal(0, 0.05, (n, 2)),
                       rng.normal(0, 1.0, (n, 2)) * np.where(rng.random(n) < 0.7, 1, 4)[:, None])
    true_plx = np.where(member, CLUSTER_PARALLAX, rng.gamma(2.0, 0.4, n))
    parallax_error = np.full(n, 0.1)
    table = Table({
        "source_id": np.arange(n) + 1,
        "pmra": true_pm[:, 0] + rng.normal(0, pm_error), "pmra_error": pm_error,
        "pmdec": true_pm[:, 1] + rng.normal(0, pm_error), "pmdec_error": pm_error,
        "pmra_pmdec_corr": np.zeros(n),
        "parallax": true_plx + rng.normal(0, parallax_error), "parallax_error": parallax_error,
        "parallax_pmra_corr": np.zeros(n), "parallax_pmdec_corr": np.zeros(n),
        "phot_g_mean_mag": rng.uniform(12, 19, n), "is_member": member,
    })
    return table


def test_densest_cell_is_the_field_peak_not_the_cluster():
    table = peaked_field()
    best = candidate_overdensities(table, n=1)[0]
    counts, xe, ye = np.histogram2d(table["pmra"], table["pmdec"], bins=60)
    i, j = np.unravel_index(np.argmax(counts), counts.shape)
    assert np.hypot((xe[i] + xe[i + 1]) / 2, (ye[j] + ye[j + 1]) / 2) < 1.0  # field peak
    assert best.excess > 0
    assert len(candidate_overdensities(table)) >= 1


@pytest.fixture(scope="module")
def named_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("named")
    path = folder / "field.ecsv"
    table = peaked_field()
    table.write(path)
    catalogue = folder / "catalogue.csv"
    Table({"Name": ["Test_1"], "ra": [10.0], "dec": [20.0], "pmra": [CLUSTER_PM[0]],
           "pmdec": [CLUSTER_PM[1]], "parallax": [CLUSTER_PARALLAX]}).write(catalogue)
    out = folder / "out"
    code = main(["run", "cluster", "--model", "pmplx", "--data", str(path), "--cluster",
                 "TEST 1", "--catalogue", str(catalogue), "--out", str(out), *ARGS])
    return code, out, table


@pytest.mark.workflow
def test_named_cluster_is_found_beside_a_denser_field_peak(named_run):
    code, out, table = named_run
    record = json.loads((out / "run_record.json").read_text())
    assert record["detection"]["verdict"] == FOUND
    assert record["detection"]["delta_elpd"] > 150  # measured 240 ± 35 nats
    assert code == 0, record["convergence"]["failures"]
    estimates = record["cluster_estimates"]
    assert estimates["pmra"][0] == pytest.approx(CLUSTER_PM[0], abs=0.15)
    assert estimates["pmdec"][0] == pytest.approx(CLUSTER_PM[1], abs=0.15)
    assert estimates["parallax"][0] == pytest.approx(CLUSTER_PARALLAX, abs=0.05)
    assert record["starting_candidates"][0]["origin"].startswith("published")
    membership = Table.read(out / "membership.ecsv")
    p = np.asarray(membership["p_cluster"])
    member = np.asarray(membership["is_member"])
    assert (p[member] > 0.5).mean() > 0.8  # recall
    assert (p[~member] > 0.5).sum() < 0.2 * member.sum()  # contamination


@pytest.mark.workflow
def test_empty_field_is_reported_as_no_cluster(tmp_path):
    out = tmp_path / "empty"
    code = main(["run", "cluster", "--model", "pm2d", "--n-cluster", "0", "--n-field", "1500",
                 "--out", str(out), *ARGS])
    record = json.loads((out / "run_record.json").read_text())
    assert code == 3
    assert record["status"] == "no_cluster"
    assert record["detection"]["verdict"] == NOT_FOUND
    assert record["detection"]["reasons"]
    assert (out / "membership.ecsv").is_file() and (out / "posterior.nc").is_file()


def test_detect_prefers_the_model_that_predicts_better():
    rng = np.random.default_rng(0)
    base = rng.normal(-1.0, 0.01, (2, 50, 400))
    better = base + 0.2  # every star predicted better by the cluster model
    loo = {name: pointwise_loo(value) for name, value in (("base", base), ("better", better))}
    assert detect(loo["better"], loo["base"], 2).verdict == FOUND
    assert detect(loo["base"], loo["better"], 2).verdict == NOT_FOUND
    same = detect(loo["base"], pointwise_loo(base + rng.normal(0, 1e-3, base.shape)), 2)
    assert same.verdict == NOT_FOUND and abs(same.delta_elpd) < 1


def test_pointwise_loo_in_chunks_equals_one_call():
    """PSIS smooths each star's weights on its own: chunking over stars changes nothing."""
    rng = np.random.default_rng(2)
    loglike = rng.normal(-1.0, 0.3, (2, 100, 53)) + rng.standard_t(3, (2, 100, 53)) * 0.1
    np.testing.assert_allclose(pointwise_loo(loglike, chunk=7),
                               pointwise_loo(loglike, chunk=10_000), rtol=1e-12)


def test_a_dispersion_at_its_prior_bound_is_named():
    import xarray as xr

    posterior = xr.Dataset({"cluster_pm_dispersion": (("chain", "draw"),
                                                      np.full((2, 10), 0.499))})
    reasons = pinned_at_bounds(posterior, {"cluster_pm_dispersion": (0.0, 0.5)})
    assert len(reasons) == 1 and "cluster_pm_dispersion" in reasons[0] and "0.5" in reasons[0]
    posterior["cluster_pm_dispersion"][:] = 0.1
    assert pinned_at_bounds(posterior, {"cluster_pm_dispersion": (0.0, 0.5)}) == []
    # a bound for a parameter the model lacks is skipped, not the end of the check
    posterior["cluster_parallax_spread"] = (("chain", "draw"), np.full((2, 10), 0.049))
    reasons = pinned_at_bounds(posterior, {"cluster_halo_width": (0.0, 1.0),
                                           "cluster_pm_dispersion": (0.0, 0.5),
                                           "cluster_parallax_spread": (0.0, 0.05)})
    assert len(reasons) == 1 and reasons[0].startswith("cluster_parallax_spread")


@pytest.mark.parametrize("model_name", ["pmra", "pm2d", "pmplx", "joint"])
def test_field_only_models_have_no_cluster(model_name):
    from starmix.data.clusters import cluster_reference
    from starmix.models import CLUSTER_MODELS
    from tests.conftest import make_field

    table = make_field(n_cluster=20, n_field=80)
    guess = {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}
    sky = {"center": cluster_reference("NGC6819").center} if model_name == "joint" else {}
    model = CLUSTER_MODELS[model_name].from_table(table, guess, n_field=2, cluster=False, **sky)
    assert list(model.coords["component"]) == ["field_1", "field_2"]
    assert not [rv.name for rv in model.free_RVs if rv.name.startswith("cluster")]
    assert [rv.name for rv in model.observed_RVs] == ["stars"]  # over the field alone
    assert model.potentials == []


def test_pmplx_likelihood_matches_scipy():
    """The pmplx mixture against an independent sum of SciPy 3D normal densities."""
    from scipy.stats import multivariate_normal

    from starmix.models.cluster_pmplx import cluster_pmplx

    rng = np.random.default_rng(4)
    n = 30
    values = rng.normal([-3, -4, 0.5], [1, 1, 0.3], (n, 3))
    errors = rng.uniform(0.05, 0.3, (n, 3))
    cov = np.einsum("ni,ij,nj->nij", errors, np.eye(3), errors)
    cov[:, 0, 2] = cov[:, 2, 0] = 0.3 * errors[:, 0] * errors[:, 2]
    model = cluster_pmplx(values, cov, cluster_guess=[-3, -4, 0.5], n_field=1)
    point = model.initial_point()
    f = model.compile_fn(model.replace_rvs_by_values([
        model["w"], model["cluster_pm"], model["cluster_parallax"],
        model["cluster_pm_dispersion"], model["cluster_parallax_dispersion"],
        model["field_mean"], model["field_cov"], observed_loglike(model)]),
        inputs=model.value_vars, on_unused_input="ignore")
    w, pm_c, plx_c, s_pm, s_plx, f_mean, f_cov, loglike = f(point)
    mean_c = np.array([*pm_c, plx_c])
    s_c = np.diag([s_pm**2, s_pm**2, s_plx**2])
    expected = sum(np.log(w[0] * multivariate_normal(mean_c, s_c + cov[i]).pdf(values[i])
                          + w[1] * multivariate_normal(f_mean[0], f_cov[0] + cov[i]).pdf(values[i]))
                   for i in range(n))
    assert float(loglike) == pytest.approx(expected, rel=1e-9)


def test_magnitude_dependent_weights_enter_the_likelihood():
    """pm2d with per-star cluster weights logistic in G, against SciPy: the likelihood is
    sum_i log(f_i N_c + (1 - f_i) sum_k v_k N_k)."""
    from scipy.special import expit
    from scipy.stats import multivariate_normal

    from starmix.models.cluster_pm2d import cluster_pm2d
    from starmix.workflows.inference.membership import mixture_draws

    rng = np.random.default_rng(5)
    n = 40
    values = rng.normal([-3, -4], 1.5, (n, 2))
    cov = np.einsum("ni,ij->nij", rng.uniform(0.05, 0.4, (n, 2)) ** 2, np.eye(2))
    g = rng.uniform(12, 20, n)
    model = cluster_pm2d(values, cov, cluster_guess=[-3, -4], n_field=2, magnitudes=g)
    point = model.initial_point()
    point["cluster_logit_slope"] = np.array(-0.4)
    names = ["cluster_logit", "cluster_logit_slope", "field_weights", "cluster_pm",
             "cluster_pm_dispersion", "field_mean", "field_cov"]
    f = model.compile_fn(model.replace_rvs_by_values(
        [model[name] for name in names] + [observed_loglike(model)]),
        inputs=model.value_vars, on_unused_input="ignore")
    a, b, v, mu, s, f_mean, f_cov, loglike = f(point)
    frac = expit(a + b * (g - np.median(g)))
    dens = np.array([[multivariate_normal(mu, s**2 * np.eye(2) + cov[i]).pdf(values[i])]
                     + [multivariate_normal(f_mean[k], f_cov[k] + cov[i]).pdf(values[i])
                        for k in range(2)] for i in range(n)])
    mixture = frac * dens[:, 0] + (1 - frac) * (dens[:, 1:] @ v)
    assert float(loglike) == pytest.approx(np.log(mixture).sum(), rel=1e-9)
    import xarray as xr

    posterior = xr.Dataset({rv.name: (("chain", "draw", *[f"d{j}_{rv.name}" for j in range(
        np.ndim(value))]), np.asarray(value)[None, None])
        for rv, value in zip(model.free_RVs, model.compile_fn(
            model.replace_rvs_by_values(model.free_RVs), inputs=model.value_vars,
            on_unused_input="ignore")(point), strict=True)})
    fused = mixture_draws(model, posterior, threads=1).probability
    graph = mixture_draws(model, posterior, threads=1, fused=False).probability
    expected = frac * dens[:, 0] / mixture
    assert fused[0, 0] == pytest.approx(expected, rel=1e-5)
    assert graph[0, 0] == pytest.approx(expected, rel=1e-5)


def test_catalogue_file_errors_name_the_file(tmp_path):
    from starmix.data.catalogue import read_catalogue

    bad = tmp_path / "bad.csv"
    Table({"Name": ["A"], "ra": [1.0]}).write(bad)
    with pytest.raises(ValueError, match=r"--catalogue .*bad.csv: no dec column"):
        read_catalogue(bad)
    with pytest.raises(FileNotFoundError, match="--catalogue"):
        read_catalogue(tmp_path / "absent.tsv")
    garbage = tmp_path / "garbage.tsv"
    garbage.write_text("# only a comment\n")
    with pytest.raises(ValueError, match="not a VizieR TSV"):
        read_catalogue(garbage)


def test_cg20_catalogue_reads_as_it_is():
    from starmix.data.catalogue import read_catalogue
    from tests.conftest import shared_file

    catalogue = read_catalogue(shared_file("cg20_cluster_parameters.tsv"))
    assert len(catalogue) > 1900
    ngc188 = catalogue["NGC188"]
    assert (ngc188.pmra, ngc188.pmdec, ngc188.parallax) == (-2.307, -0.96, 0.507)
    assert catalogue["NGC2682"].ra == pytest.approx(132.846)


def test_options_without_their_partner_are_errors(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "cluster", "--catalogue", "x.tsv", "--out", str(out)]) == 1
    assert "--catalogue is read for the cluster --cluster NAME names" in capsys.readouterr().err
    assert main(["run", "cluster", "--model", "pm2d", "--footprint", "1", "2", "3",
                 "--out", str(out)]) == 1
    assert "--footprint is for --model joint" in capsys.readouterr().err
    for args, message in (
            (["--model", "pmra", "--cluster-halo"], "--cluster-halo is for --model pm2d, "
                                                     "pmplx or joint (this run: --model pmra)"),
            (["--model", "parallax", "--field-components", "3"],
             "--field-components is for --model parallax only with --parallax-field gaussian"),
            (["--model", "parallax", "--parallax-field", "gaussian", "--parallax-offset"],
             "--parallax-offset is for --model parallax with the exponential or beta field")):
        assert main(["run", "cluster", *args, "--out", str(out)]) == 1
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_an_unknown_cluster_name_is_an_error_not_a_silent_guess(tmp_path, capsys):
    code = main(["run", "cluster", "--model", "pm2d", "--cluster", "NOT A CLUSTER",
                 "--n-cluster", "10", "--n-field", "50", "--out", str(tmp_path / "o")])
    assert code == 1
    assert "--cluster 'NOT A CLUSTER': no published values" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_detect_thresholds_and_standard_error_by_hand():
    """Δ = Σ d_i, se = sqrt(n) sd(d_i) (population sd), found iff Δ > 4 se and Δ > 10."""
    from starmix.workflows.cluster.detection import DELTA_MIN, Z_MIN

    field_only = np.zeros(100)
    difference = np.r_[np.full(50, 0.3), np.full(50, 0.1)]  # Δ = 20, sd 0.1, se = 1
    found = detect(difference, field_only, 3)
    assert (found.delta_elpd, found.se) == pytest.approx((20.0, 1.0))
    assert found.verdict == FOUND and found.reasons == []
    assert found.elpd == pytest.approx({"cluster + field, K=3": 20.0, "field only, K=3": 0.0})
    # Δ of 9 nats with a tiny se: below DELTA_MIN
    small = detect(np.full(90, 0.1) + np.r_[1e-3, -1e-3].repeat(45), np.zeros(90), 2)
    assert small.delta_elpd == pytest.approx(9.0) and small.verdict == NOT_FOUND
    assert small.reasons == [
        f"a field-only model (K = 2) explains the stars as well as the cluster model with the "
        f"same field does: Δelpd = 9.0 ± {small.se:.1f} nats (a cluster needs more than "
        f"{Z_MIN:g} standard errors and {DELTA_MIN:g} nats)"]
    # Δ of 30 nats but only 3 se: below Z_MIN
    spread = np.r_[np.full(50, 0.6 + 1.0), np.full(50, 0.6 - 1.0)]  # Δ = 60, se = 10
    noisy = detect(spread, np.zeros(100), 2)
    assert (noisy.delta_elpd, noisy.se) == pytest.approx((60.0, 10.0))
    assert noisy.verdict == FOUND  # 6 se
    weak = detect(spread / 2, np.zeros(100), 2)  # Δ = 30, se = 5: exactly 6 se, still found
    assert weak.verdict == FOUND
    unsure = detect(np.r_[np.full(50, 0.35 + 1.0), np.full(50, 0.35 - 1.0)], np.zeros(100), 2)
    assert unsure.delta_elpd == pytest.approx(35.0) and unsure.se == pytest.approx(10.0)
    assert unsure.verdict == NOT_FOUND  # 3.5 se
    edge = detect(np.r_[np.full(50, 0.39 + 1.0), np.full(50, 0.39 - 1.0)], np.zeros(100), 2)
    assert edge.delta_elpd == pytest.approx(39.0) and edge.verdict == NOT_FOUND  # 3.9 se


def test_the_cluster_must_beat_the_narrow_field_lump_too():
    """With a lump alternative the verdict needs both comparisons; the binding one is named,
    with its own Δelpd and se, and the other is kept in the record."""
    rng = np.random.default_rng(5)
    field_only = np.zeros(400)
    cluster = rng.normal(0.5, 1.0, 400)  # Δ ≈ 200 ± 20 against the field: found
    found = detect(cluster, field_only, 2)
    assert found.found and found.against == "field only, K=2"
    lump = cluster - rng.normal(0.02, 0.3, 400)  # the lump explains nearly all of it
    refused = detect(cluster, field_only, 2, lump)
    assert refused.verdict == NOT_FOUND
    assert refused.against.startswith("narrow field lump")
    difference = cluster - lump
    assert refused.delta_elpd == pytest.approx(difference.sum())
    assert refused.se == pytest.approx(np.sqrt(400) * difference.std())
    assert "spread evenly over the footprint" in refused.reasons[0]
    record = refused.record()
    assert set(record["comparisons"]) == {"field only, K=2", "narrow field lump + field, K=2"}
    assert record["comparisons"]["field only, K=2"]["delta_elpd"] == pytest.approx(
        cluster.sum(), abs=1e-3)
    concentrated = detect(cluster, field_only, 2, cluster - rng.normal(0.4, 0.3, 400))
    assert concentrated.found  # the sky concentration alone is worth ~160 ± 6 nats
    # with the lump among the alternatives the bar is Z_MIN_SKY (2.5) standard errors, not 4
    difference = 0.07 + np.r_[np.full(200, 0.5), np.full(200, -0.5)]  # Δ 28, se 10: 2.8 se
    between = detect(difference, np.full(400, -1.0), 2, np.zeros(400))
    assert between.found and between.z_min == 2.5 and between.record()["z_min"] == 2.5
    assert not detect(difference, np.zeros(400), 2).found  # without the lump: 4 se needed
    below = 0.06 + np.r_[np.full(200, 0.5), np.full(200, -0.5)]  # Δ 24, se 10: 2.4 se
    assert not detect(below, np.full(400, -1.0), 2, np.zeros(400)).found


def test_pointwise_loo_is_arviz_loo_per_star():
    import arviz as az
    import xarray as xr

    rng = np.random.default_rng(4)
    loglike = rng.normal(-2.0, 0.5, (2, 80, 9))
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(
        {"x": (("chain", "draw"), np.zeros((2, 80)))}), "log_likelihood": xr.Dataset(
        {"y": (("chain", "draw", "obs"), loglike)})})
    expected = np.asarray(az.loo(tree, pointwise=True).elpd_i)
    got = pointwise_loo(loglike, chunk=4)
    assert got.shape == (9,)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert pointwise_loo(np.zeros((2, 80, 0))).shape == (0,)


def test_pinned_reason_text_and_the_five_percent_edge():
    import xarray as xr

    bounds = {"cluster_pm_dispersion": (0.1, 0.5), "absent": (0.0, 1.0)}
    posterior = xr.Dataset({"cluster_pm_dispersion": (("chain", "draw"),
                                                      np.full((2, 10), 0.481))})
    assert pinned_at_bounds(posterior, bounds) == [
        "cluster_pm_dispersion is pinned at its prior bound: median 0.481 against the upper "
        "limit 0.5; the fitted component is as broad as the model allows, so it is not a "
        "cluster"]
    posterior["cluster_pm_dispersion"][:] = 0.479  # 0.1 + 0.95 x 0.4 = 0.48
    assert pinned_at_bounds(posterior, bounds) == []


def test_both_detection_thresholds_are_strict():
    """Δ exactly 4 se, or exactly 10 nats, is not enough (binary-exact numbers: the
    boundary itself is tested, not a neighbour of it)."""
    at_z = detect(np.r_[np.full(8, 2.0), np.zeros(8)], np.zeros(16), 2)
    assert (at_z.delta_elpd, at_z.se) == (16.0, 4.0) and at_z.verdict == NOT_FOUND
    at_delta = detect(np.r_[np.full(8, 0.6875), np.full(8, 0.5625)], np.zeros(16), 2)
    assert (at_delta.delta_elpd, at_delta.se) == (10.0, 0.25) and at_delta.verdict == NOT_FOUND
    past = detect(np.r_[np.full(8, 0.75), np.full(8, 0.625)], np.zeros(16), 2)
    assert past.delta_elpd == 11.0 and past.verdict == FOUND


def test_a_median_exactly_at_the_pinned_edge_is_not_pinned():
    import xarray as xr

    from starmix.workflows.cluster.detection import PINNED_FRACTION

    lower, upper = 0.0, 0.5
    edge = lower + PINNED_FRACTION * (upper - lower)
    posterior = xr.Dataset({"w": (("chain", "draw"), np.full((2, 10), edge))})
    assert pinned_at_bounds(posterior, {"w": (lower, upper)}) == []
    posterior["w"][:] = np.nextafter(edge, 1.0)
    assert len(pinned_at_bounds(posterior, {"w": (lower, upper)})) == 1


def test_detection_works_in_double_precision_on_float32_input():
    # the pointwise log-likelihood is stored as float32 (posterior.nc); the elpd sums and
    # the PSIS smoothing must still be carried out in float64
    rng = np.random.default_rng(5)
    cluster = (-7.0 + rng.normal(0, 0.3, 50_000)).astype(np.float32)
    field = (cluster - rng.normal(0.01, 0.02, 50_000)).astype(np.float32)
    verdict = detect(cluster, field, n_field=2)
    exact = np.asarray(cluster, np.float64) - np.asarray(field, np.float64)
    assert verdict.delta_elpd == pytest.approx(exact.sum(), rel=1e-12)
    assert verdict.se == pytest.approx(np.sqrt(exact.size) * exact.std(), rel=1e-12)
    assert list(verdict.elpd.values()) == [
        pytest.approx(np.asarray(cluster, np.float64).sum(), rel=1e-12),
        pytest.approx(np.asarray(field, np.float64).sum(), rel=1e-12)]
    log_likelihood = rng.normal(-3, 1, (2, 100, 7)).astype(np.float32)
    np.testing.assert_allclose(pointwise_loo(log_likelihood),
                               pointwise_loo(log_likelihood.astype(np.float64)), rtol=1e-13)
    assert pointwise_loo(log_likelihood).dtype == np.float64
