"""Every cluster model is a PyMC model with an observed variable, ``stars``: PyMC's own
tools (prior and posterior predictive sampling, pointwise log-likelihood, the graph,
``pm.set_data``) work on it, and its random draws follow its log-density."""

import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy import stats

from starmix.data.clusters import cluster_reference
from starmix.models import CLUSTER_MODELS
from starmix.models.observed import (
    beta_log_parallax_pdf,
    draw_sky,
    parallax_log_components,
    plummer_radii,
    star_mixture,
)
from tests.conftest import make_field

GUESS = {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}
MODELS = ["pmra", "parallax", "pm2d", "pmplx", "joint"]
CENTER = cluster_reference("NGC6819").center


def build(name, table, footprint=None, **kwargs):
    sky = ({"center": CENTER, "footprint": footprint} if name == "joint"
           else {})  # the only model with positions
    return CLUSTER_MODELS[name].from_table(table, GUESS, n_field=2, **sky, **kwargs)


@pytest.fixture(scope="module")
def table():
    return make_field(seed=31, n_cluster=40, n_field=60)


@pytest.mark.parametrize("name", MODELS)
def test_pymc_tools_work_on_every_model(table, name):
    model = build(name, table)
    stars = model["stars"]
    assert model.observed_RVs == [stars]
    assert model.named_vars_to_dims["stars"] == ("star", "coordinate")
    n, c = len(table), len(model.coords["coordinate"])
    with model:
        prior = pm.sample_prior_predictive(draws=5, random_seed=1)
    assert prior["prior_predictive"]["stars"].shape == (1, 5, n, c)
    assert np.isfinite(prior["prior_predictive"]["stars"].values).all()
    # a fake posterior (prior draws) through posterior predictive and log-likelihood
    posterior = prior["prior"].to_dataset()[[rv.name for rv in model.free_RVs]]
    tree = xr.DataTree.from_dict({"posterior": posterior})
    with model:
        predictive = pm.sample_posterior_predictive(tree, random_seed=2, progressbar=False)
        loglike = pm.compute_log_likelihood(tree, progressbar=False)
    assert predictive["posterior_predictive"]["stars"].shape == (1, 5, n, c)
    assert loglike["log_likelihood"]["stars"].shape == (1, 5, n)
    # the pointwise log-likelihood is the log-density of the model graph, star by star
    point = {rv.name: posterior[rv.name].values[0, 0] for rv in model.free_RVs}
    log_w = np.log(point["w"])
    log_component = model.compile_fn(outs=model["log_component"], inputs=model.free_RVs,
                                     on_unused_input="ignore")(point)
    expected = np.logaddexp.reduce(log_w + log_component, axis=1)
    np.testing.assert_allclose(loglike["log_likelihood"]["stars"].values[0, 0], expected,
                               rtol=1e-8)
    graph = pm.model_to_graphviz(model).source
    assert "stars" in graph and "star_values" in graph


@pytest.mark.parametrize("name", ["pm2d", "joint"])
def test_set_data_switches_to_another_field(table, name):
    from starmix.data.footprint import Footprint

    cone = Footprint(CENTER.ra.deg, CENTER.dec.deg, 20.0, "the test's")  # the same plane
    model = build(name, table, footprint=cone)
    other = make_field(seed=32, n_cluster=30, n_field=20)
    fresh = build(name, other, footprint=cone)
    point = fresh.initial_point()
    fresh_logp = fresh.compile_logp()(point)
    with model:
        pm.set_data({"star_values": fresh["star_values"].get_value(),
                     "star_error_cov": fresh["star_error_cov"].get_value()},
                    coords={"star": fresh.coords["star"]})
    # same priors' centres apart, the two models now see the same stars
    stars = model["stars"]
    logp_switched = model.compile_fn(outs=pm.logp(stars, model.rvs_to_values[stars]).sum(),
                                     inputs=model.free_RVs, on_unused_input="ignore")
    logp_fresh = fresh.compile_fn(outs=pm.logp(fresh["stars"],
                                               fresh.rvs_to_values[fresh["stars"]]).sum(),
                                  inputs=fresh.free_RVs, on_unused_input="ignore")
    values = {rv.name: pm.draw(rv, random_seed=4) for rv in fresh.free_RVs}
    values = {key: np.sort(value) if key == "field_cov_log_width" else value
              for key, value in values.items()}
    assert logp_switched(values) == pytest.approx(logp_fresh(values), rel=1e-10)
    assert np.isfinite(fresh_logp)


def test_gaussian_draws_follow_the_mixture(rng):
    """Draws of a 2-component, 2-D mixture with per-star errors: the labels follow the
    weights, and the whitened residuals of each component are standard normal."""
    n = 40_000
    log_w = np.log([0.3, 0.7])
    means = np.array([[1.0, -2.0], [-3.0, 0.5]])
    covs = np.array([[[0.04, 0.0], [0.0, 0.04]], [[4.0, 1.2], [1.2, 2.0]]])
    scale = rng.uniform(0.1, 0.5, n)
    error_cov = scale[:, None, None] ** 2 * np.array([[1.0, 0.3], [0.3, 1.0]])
    draws = star_mixture.rng_fn(rng, log_w, means, covs, error_cov, None)
    assert draws.shape == (n, 2)
    # responsibilities at the draws' own values: their mean is the weight
    from scipy.stats import multivariate_normal

    density = np.stack([np.exp(log_w[k]) * np.array([
        multivariate_normal.pdf(draws[i], means[k], covs[k] + error_cov[i])
        for i in range(2000)]) for k in range(2)], axis=1)
    responsibility = density[:, 0] / density.sum(axis=1)
    assert responsibility.mean() == pytest.approx(0.3, abs=0.03)
    # a cluster-only mixture: whitened residuals are N(0, 1) in each coordinate
    only = star_mixture.rng_fn(rng, np.log([1.0, 1e-300]), means, covs, error_cov, None)
    chol = np.linalg.cholesky(covs[0] + error_cov)
    white = np.linalg.solve(chol, (only - means[0])[..., None])[..., 0]
    for axis in range(2):
        assert stats.kstest(white[:, axis], "norm").pvalue > 1e-3


def test_sky_draws_follow_the_plummer_and_uniform_profiles(rng):
    n = 50_000
    radius, scale = 20.0, 4.0
    r = plummer_radii(rng, scale, radius, n)
    inside = lambda x: (x**2 / (x**2 + scale**2)) / (radius**2 / (radius**2 + scale**2))  # noqa: E731
    assert r.max() <= radius
    assert stats.kstest(r, inside).pvalue > 1e-3
    positions = draw_sky(rng, np.zeros(n, bool), np.array([radius, 3.0, -2.0, scale]))
    field_r = np.hypot(*positions.T)
    assert stats.kstest(field_r, lambda x: np.clip(x / radius, 0, 1) ** 2).pvalue > 1e-3
    cluster = draw_sky(rng, np.ones(n, bool), np.array([radius, 3.0, -2.0, scale]))
    np.testing.assert_allclose(np.median(cluster, axis=0), [3.0, -2.0], atol=0.1)


@pytest.mark.parametrize("field", ["exponential", "beta"])
def test_parallax_draws_follow_the_model_density(table, rng, field):
    """Parallaxes drawn by the parallax model's random variable, scored by its own
    log-density: the probability integral transform of the draws through the model's CDF
    is uniform, for both field densities and with a parallax offset."""
    model = build("parallax", table, parallax_field=field, parallax_offset=True)
    point = {"w": np.array([0.4, 0.6]), "cluster_parallax": 0.36, "parallax_offset": -0.03}
    point |= ({"field_length_scale": 1.3} if field == "exponential" else
              {"field_beta_alpha": 2.5, "field_beta_beta": 6.0})
    stars = model["stars"]
    params = [model.compile_fn(outs=p, inputs=model.free_RVs, on_unused_input="ignore")(point)
              for p in stars.owner.op.dist_params(stars.owner)]
    error_cov = np.full((20_000, 1, 1), 0.1**2)
    draws = stars.owner.op.rng_fn(rng, *params[:-1], error_cov, None)[:, 0]
    sized = stars.owner.op.rng_fn(rng, *params[:-1], error_cov[:1], (5,))
    assert sized.shape == (5, 1)
    grid = np.linspace(-1, 6, 4001)
    logp = model.compile_fn(outs=pm.logp(stars, model.rvs_to_values[stars]),
                            inputs=model.free_RVs, on_unused_input="ignore")
    with model:
        pm.set_data({"star_values": grid[:, None], "star_error_cov": np.full((4001, 1, 1),
                                                                             0.01)},
                    coords={"star": np.arange(4001)})
    density = np.exp(logp(point))
    cdf = np.cumsum(density) * (grid[1] - grid[0])
    assert cdf[-1] == pytest.approx(1.0, abs=0.01)
    pit = np.interp(draws, grid, cdf / cdf[-1])
    assert stats.kstest(pit, "uniform").pvalue > 1e-3


def test_sky_mixture_draws_put_the_cluster_label_on_the_plummer_profile(rng):
    """The joint model's random variable: stars drawn with the cluster's label (component
    0) lie on the Plummer profile around the cluster's offset, the others uniformly in the
    disc, and each star's astrometry follows its own component."""
    from starmix.models.observed import SkyStarMixtureRV

    n, radius, scale = 20_000, 20.0, 2.0
    means = np.array([[5.0, 5.0], [-5.0, -5.0]])
    covs = np.array([np.eye(2) * 1e-4, np.eye(2) * 1e-4])
    error_cov = np.broadcast_to(np.eye(2) * 1e-6, (n, 2, 2))
    sky = np.array([radius, 6.0, -4.0, scale])
    draws = SkyStarMixtureRV.rng_fn(rng, np.log([0.3, 0.7]), means, covs, error_cov, sky, None)
    assert draws.shape == (n, 4)
    in_cluster = draws[:, 2] > 0  # the cluster's proper motion is (5, 5), the field's (-5, -5)
    assert in_cluster.mean() == pytest.approx(0.3, abs=0.015)
    offset = np.hypot(draws[:, 0] - 6.0, draws[:, 1] + 4.0)
    plummer = lambda x: (x**2 / (x**2 + scale**2)) / (radius**2 / (radius**2 + scale**2))  # noqa: E731
    assert stats.kstest(offset[in_cluster], plummer).pvalue > 1e-3
    field_r = np.hypot(draws[~in_cluster, 0], draws[~in_cluster, 1])
    assert stats.kstest(field_r, lambda x: np.clip(x / radius, 0, 1) ** 2).pvalue > 1e-3


def test_parallax_cluster_draws_have_the_cluster_depth(rng):
    """With every star in the cluster and tiny errors, the parallax model's draws are
    N(cluster parallax + offset, depth² + error²), star by star independent."""
    from starmix.models.observed import ParallaxMixtureRV

    n, depth = 20_000, 0.02
    error_cov = np.full((n, 1, 1), 1e-4**2)
    draws = ParallaxMixtureRV.rng_fn(rng, np.log([1.0, 1e-300]), np.array(0.5), np.array(-0.03),
                                     np.array(depth), np.array([1.3]), error_cov, None)[:, 0]
    assert draws.shape == (n,)
    sd = np.hypot(depth, 1e-4)
    assert stats.kstest((draws - 0.47) / sd, "norm").pvalue > 1e-3


def test_beta_parallax_field_stays_finite_past_its_upper_end():
    # a star whose parallax lies beyond the Beta field's x_max must not get -inf (the
    # density is clipped just inside (0, x_max)), or one star would stop the sampler
    x = np.array([0.5, 2.999, 3.0, 3.5, 10.0])
    log_p = beta_log_parallax_pdf(x, 2.0, 5.0, 3.0).eval()
    assert np.all(np.isfinite(log_p))
    clipped = stats.beta.logpdf(1 - 1e-6, 2.0, 5.0) - np.log(3.0)
    np.testing.assert_allclose(log_p[2:], clipped, rtol=1e-6)
    np.testing.assert_allclose(log_p[0], stats.beta.logpdf(0.5 / 3, 2.0, 5.0) - np.log(3.0),
                               rtol=1e-6)


def test_parallax_quadrature_uses_the_nodes_it_is_given():
    value = np.array([[0.2], [0.9], [-0.3]])
    error_cov = np.array([0.3, 0.1, 0.5])[:, None, None] ** 2
    args = (value, 0.35, 0.0, 0.005, np.array([1.3]), error_cov)
    to_tensor = [pm.math.constant(a) if isinstance(a, np.ndarray) else a for a in args]
    default = parallax_log_components(*to_tensor).eval()
    np.testing.assert_array_equal(default, parallax_log_components(*to_tensor, n_nodes=48).eval())
    coarse = parallax_log_components(*to_tensor, n_nodes=4).eval()
    assert np.all(np.abs(coarse[:, 1] - default[:, 1]) > 1e-6)  # the field term changes
    np.testing.assert_array_equal(coarse[:, 0], default[:, 0])  # the cluster term does not
