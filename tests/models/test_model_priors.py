"""Every model's priors against SciPy, written out from the docstrings: the free variables,
their distributions and hyperparameters (including the ones derived from the data: field
medians and robust widths, the selection radius), and the deterministics built from them.

The likelihoods have their own reference checks (tests/models/test_cluster_models.py,
tests/models/test_outlier_line_model.py); together the two give each model's whole log density.
"""

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from starmix.models import CLUSTER_MODELS
from starmix.models.cluster_joint import AXES, table_arrays, tangent_plane
from starmix.models.outlier_line import outlier_line
from tests.conftest import make_field

GUESS = {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}


def robust(values):
    values = np.asarray(values, float)
    return 1.4826 * np.median(np.abs(values - np.median(values)))


@pytest.fixture(scope="module")
def table():
    return make_field(seed=21, n_cluster=20, n_field=40)


def prior_draws(model, seed):
    """One prior draw of every free variable (constrained values)."""
    draws = pm.draw(model.free_RVs, random_seed=seed)
    return {rv.name: np.asarray(value) for rv, value in zip(model.free_RVs, draws, strict=True)}


def check_priors(model, reference, seeds=(1, 2)):
    """The model's free variables are exactly ``reference``'s, and each one's log prior
    density equals the SciPy one at prior draws."""
    assert sorted(rv.name for rv in model.free_RVs) == sorted(reference)
    for seed in seeds:
        values = prior_draws(model, seed)
        for rv in model.free_RVs:
            got = float(pm.logp(rv, values[rv.name]).sum().eval())
            want = float(np.sum(reference[rv.name](values[rv.name])))
            assert got == pytest.approx(want, rel=1e-6, abs=1e-6), rv.name


def dirichlet(n):
    return lambda w: stats.dirichlet.logpdf(w, np.ones(n))


def normal(mean, sd):
    return lambda x: stats.norm.logpdf(x, mean, sd)


def uniform(low, high):
    return lambda x: stats.uniform.logpdf(x, low, high - low)


def lognormal(median, sigma):
    return lambda x: stats.lognorm.logpdf(x, sigma, scale=median)


def truncated_normal(mean, sd, lower):
    return lambda x: stats.truncnorm.logpdf(x, (lower - mean) / sd, np.inf, mean, sd)


def field_priors(values, n_field):
    """The field's priors of models.field, for (N, d) astrometry: means N(median, 2 x robust
    width); log pmra widths N(log width, 1); other Cholesky diagonal entries LogNormal(log
    width, 1); entries below the diagonal N(0, sqrt(width_i width_j))."""
    d = values.shape[1]
    centre, scale = np.median(values, axis=0), np.array([robust(v) for v in values.T])
    reference = {"field_mean": lambda x: stats.norm.logpdf(x, centre, 2 * scale),
                 "field_cov_log_width": normal(np.log(scale[0]), 1.0)}
    if d > 1:
        reference["field_cov_chol_diag"] = lambda x: stats.lognorm.logpdf(
            x, 1.0, scale=np.tile(scale[1:], (n_field, 1)))
        rows, cols = np.tril_indices(d, -1)
        reference["field_cov_chol_offdiag"] = lambda x: stats.norm.logpdf(
            x, 0.0, np.tile(np.sqrt(scale[rows] * scale[cols]), (n_field, 1)))
    return reference


def test_pmra_priors(table):
    model = CLUSTER_MODELS["pmra"].from_table(table, GUESS, n_field=2)
    pmra = np.asarray(table["pmra"], float)[:, None]
    check_priors(model, {"w": dirichlet(3), "cluster_pmra": normal(-2.9, 1.0),
                         "cluster_pmra_dispersion": uniform(0.0, 0.5),
                         **field_priors(pmra, 2)})


def test_pm2d_priors(table):
    model = CLUSTER_MODELS["pm2d"].from_table(table, GUESS, n_field=3)
    values = np.stack([table["pmra"], table["pmdec"]], -1).astype(float)
    check_priors(model, {"w": dirichlet(4), "cluster_pm": normal([-2.9, -3.9], 1.0),
                         "cluster_pm_dispersion": uniform(0.0, 0.5),
                         **field_priors(values, 3)})


def test_pmplx_priors(table):
    model = CLUSTER_MODELS["pmplx"].from_table(table, GUESS, n_field=2)
    astrometry, _ = table_arrays(table)
    check_priors(model, {"w": dirichlet(3), "cluster_pm": normal([-2.9, -3.9], 1.0),
                         "cluster_parallax": truncated_normal(0.36, 0.3, 0.01),
                         "cluster_pm_dispersion": uniform(0.0, 0.5),
                         "cluster_parallax_dispersion": uniform(0.0, 0.2),
                         **field_priors(astrometry, 2)})
    assert [AXES.index(name) for name in ("pmra", "pmdec", "parallax")] == [0, 1, 2]


def test_joint_priors(table):
    from starmix.data.clusters import cluster_reference
    from starmix.data.footprint import Footprint

    centre = cluster_reference("NGC6819").center
    cone = Footprint(centre.ra.deg + 0.05, centre.dec.deg - 0.03, 24.0, "the test's")
    model = CLUSTER_MODELS["joint"].from_table(table, GUESS, n_field=2, center=centre,
                                               footprint=cone)
    astrometry, _ = table_arrays(table)
    offset = tangent_plane(np.array([centre.ra.deg]), np.array([centre.dec.deg]),
                           cone.center)[0]
    assert abs(offset[0]) > 1 and abs(offset[1]) > 1  # the published centre is off-plane
    check_priors(model, {"w": dirichlet(3), "cluster_pm": normal([-2.9, -3.9], 1.0),
                         "cluster_parallax": truncated_normal(0.36, 0.3, 0.01),
                         "cluster_pm_dispersion": uniform(0.0, 0.5),
                         "cluster_offset": normal(offset, 24.0 / 5),
                         "plummer_radius": lognormal(24.0 / 3, 1.0),
                         **field_priors(astrometry, 2)})


@pytest.mark.parametrize("field", ["exponential", "beta"])
def test_parallax_priors_and_distance(table, field):
    model = CLUSTER_MODELS["parallax"].from_table(table, GUESS, parallax_field=field,
                                                  parallax_offset=True)
    reference = {"w": dirichlet(2), "cluster_parallax": truncated_normal(0.36, 0.3, 0.01),
                 "parallax_offset": normal(-0.02, 0.02)}
    if field == "exponential":
        reference["field_length_scale"] = lognormal(1.35, 0.5)
    else:
        reference |= {"field_beta_alpha": lognormal(2.0, 1.0),
                      "field_beta_beta": lognormal(5.0, 1.0)}
    check_priors(model, reference)
    distance = model.compile_fn(inputs=[model["cluster_parallax"]],
                                outs=model["cluster_distance"])({"cluster_parallax": 0.4})
    assert distance == pytest.approx(2.5)  # kpc


def test_parallax_gaussian_field_priors_coords_and_distance(table):
    """--parallax-field gaussian: the cluster's parallax TruncatedNormal(guess, 0.3, lower
    0.01) mas, its spread U(0, 0.05) mas, K field Gaussians on the parallax axis centred on
    the stars' median with 2 x their robust width; coords of one measured axis."""
    from starmix.models.cluster_parallax import FIELD_MIN_PARALLAX_WIDTH

    model = CLUSTER_MODELS["parallax"].from_table(table, GUESS, parallax_field="gaussian",
                                                  n_field=2)
    plx = np.asarray(table["parallax"], float)[:, None]
    check_priors(model, {"w": dirichlet(3), "cluster_parallax": truncated_normal(0.36, 0.3, 0.01),
                         "cluster_parallax_spread": uniform(0.0, 0.05),
                         **field_priors(plx, 2)})
    assert model.coords["astrometry"] == ("parallax",)
    assert model.coords["coordinate"] == ("parallax",)
    np.testing.assert_array_equal(model.coords["star"], table["source_id"])
    distance = model.compile_fn(inputs=[model["cluster_parallax"]],
                                outs=model["cluster_distance"])({"cluster_parallax": 0.4})
    assert distance == pytest.approx(2.5)  # kpc
    widths = model.compile_fn(inputs=[model["field_cov_log_width"]], outs=model["field_cov"])(
        {"field_cov_log_width": np.array([-3.0, 0.0])})
    np.testing.assert_allclose(widths[:, 0, 0],
                               (FIELD_MIN_PARALLAX_WIDTH + np.exp([-3.0, 0.0])) ** 2)


@pytest.mark.parametrize("name", ["pm2d", "pmplx"])
def test_cluster_halo_priors_and_width(table, name):
    """--cluster-halo: fraction ~ Beta(2, 2), scale u ~ Beta(2, 2), and the halo's width
    core + (0.5 - core) u mas/yr."""
    model = CLUSTER_MODELS[name].from_table(table, GUESS, n_field=2, cluster_halo=True)
    beta = lambda x: stats.beta.logpdf(x, 2.0, 2.0)  # noqa: E731
    free = {rv.name for rv in model.free_RVs}
    assert {"cluster_halo_fraction", "cluster_halo_scale"} <= free
    for seed in (1, 2):
        values = prior_draws(model, seed)
        for rv_name in ("cluster_halo_fraction", "cluster_halo_scale"):
            got = float(pm.logp(model[rv_name], values[rv_name]).eval())
            assert got == pytest.approx(float(beta(values[rv_name])), rel=1e-6)
    width = model.compile_fn(inputs=[model["cluster_pm_dispersion"], model["cluster_halo_scale"]],
                             outs=model["cluster_halo_dispersion"])
    assert width({"cluster_pm_dispersion": 0.1, "cluster_halo_scale": 0.25}) == pytest.approx(0.2)
    assert width({"cluster_pm_dispersion": 0.1, "cluster_halo_scale": 1.0}) == pytest.approx(0.5)


def test_magnitude_dependent_weights_priors_and_log_weights(table):
    model = CLUSTER_MODELS["pm2d"].from_table(table, GUESS, n_field=2, magnitude_prior=True)
    values = np.stack([table["pmra"], table["pmdec"]], -1).astype(float)
    check_priors(model, {"cluster_logit": normal(-2.0, 2.0),
                         "cluster_logit_slope": normal(0.0, 1.0),
                         "field_weights": dirichlet(2), "cluster_pm": normal([-2.9, -3.9], 1.0),
                         "cluster_pm_dispersion": uniform(0.0, 0.5),
                         **field_priors(values, 2)})
    point = {"cluster_logit": -1.2, "cluster_logit_slope": 0.7,
             "field_weights": np.array([0.3, 0.7])}
    inputs = [model[name] for name in point]
    log_weight, w = model.compile_fn(inputs=inputs, outs=[model["log_weight"], model["w"]])(point)
    g = np.asarray(table["phot_g_mean_mag"], float)
    f = 1 / (1 + np.exp(-(-1.2 + 0.7 * (g - np.median(g)))))
    expected = np.log(np.stack([f, (1 - f) * 0.3, (1 - f) * 0.7], axis=1))
    np.testing.assert_allclose(log_weight, expected, rtol=1e-12)
    np.testing.assert_allclose(w, [f.mean(), (1 - f.mean()) * 0.3, (1 - f.mean()) * 0.7])


def test_outlier_line_priors_and_scales(rng):
    x = rng.uniform(0, 10, 30)
    model = outlier_line(x, 2 * x + 1, np.full(30, 0.5), intrinsic_scatter=True)
    check_priors(model, {"m": uniform(0, 10), "b": normal(0, 25), "ln_s_out": uniform(-3, 4),
                         "w": dirichlet(2), "ln_s_int": uniform(-5, 3)})
    scales = model.compile_fn(inputs=[model["ln_s_out"], model["ln_s_int"]],
                              outs=[model["s_out"], model["s_int"]])(
        {"ln_s_out": 1.5, "ln_s_int": -2.0})
    np.testing.assert_allclose(scales, [np.exp(1.5), np.exp(-2.0)])


def test_pmra_defaults_given_field_priors_coords_and_magnitude_weights(table):
    """cluster_pmra's defaults (a cluster and two field Gaussians, stars numbered from 0),
    its coords, field priors centred where the caller says (as the SBC cases do), and
    the magnitude-dependent weights reached through from_table."""
    from starmix.models.cluster_pmra import cluster_pmra

    pmra, error = np.asarray(table["pmra"], float), np.asarray(table["pmra_error"], float)
    model = cluster_pmra(pmra, error, cluster_guess=-2.9, field_center=1.5, field_scale=3.0)
    assert list(model.coords["component"]) == ["cluster", "field_1", "field_2"]
    assert model.coords["astrometry"] == ("pmra",)
    np.testing.assert_array_equal(model.coords["star"], np.arange(len(pmra)))
    check_priors(model, {"w": dirichlet(3), "cluster_pmra": normal(-2.9, 1.0),
                         "cluster_pmra_dispersion": uniform(0.0, 0.5),
                         "field_mean": normal(1.5, 6.0),
                         "field_cov_log_width": normal(np.log(3.0), 1.0)})
    magnitude = CLUSTER_MODELS["pmra"].from_table(table, GUESS, magnitude_prior=True)
    assert {"cluster_logit", "cluster_logit_slope"} <= {rv.name for rv in magnitude.free_RVs}
    assert len(magnitude.coords["component"]) == 3
