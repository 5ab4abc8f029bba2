"""Per-draw membership from a cluster model matches a brute-force computation."""

import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy.stats import norm

from starmix.models import CLUSTER_MODELS
from starmix.workflows.inference.membership import mixture_draws
from tests.conftest import make_field


def pmra_posterior(rng, chains: int, draws: int) -> xr.Dataset:
    """Random but valid draws of the pmra model's parameters (one field component)."""
    return xr.Dataset({
        "w": (("chain", "draw", "component"), rng.dirichlet([2, 3], (chains, draws))),
        "cluster_pmra": (("chain", "draw"), rng.normal(-2.9, 0.05, (chains, draws))),
        "cluster_pmra_dispersion": (("chain", "draw"), rng.uniform(0.05, 0.2, (chains, draws))),
        "field_mean": (("chain", "draw", "field_component", "astrometry"),
                       rng.normal(-3, 1, (chains, draws, 1, 1))),
        "field_cov_log_width": (("chain", "draw", "field_component"),
                                rng.normal(0.5, 0.2, (chains, draws, 1))),
    })


def test_mixture_draws_match_brute_force(rng):
    table = make_field(seed=5, n_cluster=10, n_field=20)
    model = CLUSTER_MODELS["pmra"].from_table(table, {"pmra": -2.9}, n_field=1)
    chains, draws = 2, 3
    posterior = pmra_posterior(rng, chains, draws)
    result = mixture_draws(model, posterior)
    probability, log_likelihood = result.probability, result.log_likelihood
    x, e = np.asarray(table["pmra"]), np.asarray(table["pmra_error"])
    for c in range(chains):
        for d in range(draws):
            p = posterior.isel(chain=c, draw=d)
            w = p["w"].values
            cluster = w[0] * norm.pdf(x, p["cluster_pmra"].item(),
                                      np.hypot(p["cluster_pmra_dispersion"].item(), e))
            width = 0.5 + np.exp(p["field_cov_log_width"].values[0])
            field = w[1] * norm.pdf(x, p["field_mean"].values[0, 0], np.hypot(width, e))
            # stored as float32: relative 1e-5, and anything below 1e-30 is zero
            np.testing.assert_allclose(probability[c, d], cluster / (cluster + field), rtol=1e-5,
                                       atol=1e-30)
            np.testing.assert_allclose(log_likelihood[c, d], np.log(cluster + field), rtol=1e-5)


@pytest.mark.parametrize("name", ["pm2d", "joint"])
def test_fused_membership_equals_the_reference_graph(rng, name):
    """The fused kernel's membership pass gives the model graph's responsibilities and
    pointwise log-likelihood (``fused=False``, logsumexp of ``w`` and ``log_component``)."""
    from starmix.data.clusters import cluster_reference

    sky = {"center": cluster_reference("NGC6819").center} if name == "joint" else {}
    model = CLUSTER_MODELS[name].from_table(
        make_field(seed=7, n_cluster=20, n_field=40),
        {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}, n_field=2, **sky)
    prior = pm.draw(model.free_RVs, draws=3, random_seed=3)  # valid parameter values
    posterior = xr.Dataset({
        rv.name: (("chain", "draw", *[f"{rv.name}_{axis}" for axis in range(draws.ndim - 1)]),
                  draws[None])
        for rv, draws in zip(model.free_RVs, prior, strict=True)})
    fused = mixture_draws(model, posterior)
    reference = mixture_draws(model, posterior, fused=False)
    for name in ("mean", "probability", "log_likelihood"):
        np.testing.assert_allclose(getattr(fused, name), getattr(reference, name), rtol=2e-5,
                                   atol=1e-30)


def test_streamed_mean_uses_every_draw_and_thinning_keeps_every_kth(monkeypatch, rng):
    """On a field too large to keep every draw, the mean still averages every draw (the
    same as the mean of the full per-draw array), and the kept draws are every k-th."""
    from starmix.workflows.inference import membership

    table = make_field(seed=5, n_cluster=10, n_field=20)
    model = CLUSTER_MODELS["pmra"].from_table(table, {"pmra": -2.9}, n_field=1)
    chains, draws = 2, 10
    posterior = pmra_posterior(rng, chains, draws)
    full = mixture_draws(model, posterior, log_likelihood="all")
    assert full.probability.shape == (chains, draws, 30)
    monkeypatch.setattr(membership, "KEEP_BUDGET", chains * 30 * 4)  # room for 4 draws
    thin = mixture_draws(model, posterior)  # auto: too big, thinned
    np.testing.assert_array_equal(thin.kept, [0, 3, 6, 9])
    # the mean sums the float64 values; the kept draws are stored as float32
    np.testing.assert_allclose(thin.mean, full.probability.mean(axis=(0, 1)), rtol=1e-6,
                               atol=1e-30)
    np.testing.assert_array_equal(thin.probability, full.probability[:, [0, 3, 6, 9]])
    np.testing.assert_array_equal(thin.log_likelihood, full.log_likelihood[:, [0, 3, 6, 9]])
    assert len(mixture_draws(model, posterior, log_likelihood="all").kept) == draws


def test_membership_percentiles_come_from_the_kept_draws_of_every_chain(rng):
    from starmix.workflows.inference.membership import MixtureDraws

    probability = rng.uniform(0, 1, (3, 5, 4)).astype(np.float32)
    mean = rng.uniform(0, 1, 4)
    draws = MixtureDraws(mean, probability, np.zeros_like(probability), np.arange(5), 5)
    result = draws.membership("cluster")
    assert result.component == "cluster" and result.mean is mean
    pooled = probability.reshape(15, 4)
    for got, q in zip((result.p16, result.p50, result.p84), (16, 50, 84), strict=True):
        np.testing.assert_allclose(got, np.percentile(pooled, q, axis=0))
    assert set(result.columns()) == {"p_cluster", "p_cluster_p16", "p_cluster_p50",
                                     "p_cluster_p84"}


def test_kept_draws_modes_and_the_budget_edge(monkeypatch):
    from starmix.workflows.inference import membership
    from starmix.workflows.inference.membership import kept_draws

    monkeypatch.setattr(membership, "KEEP_BUDGET", 2 * 10 * 5)
    np.testing.assert_array_equal(kept_draws(2, 10, 5), np.arange(10))  # exactly fits
    np.testing.assert_array_equal(kept_draws(2, 10, 6), np.arange(0, 10, 2))  # 120 > 100
    np.testing.assert_array_equal(kept_draws(2, 10, 6, "all"), np.arange(10))
    for mode in ("thin", "none"):
        np.testing.assert_array_equal(kept_draws(2, 10, 5, mode), np.arange(10))
        np.testing.assert_array_equal(kept_draws(2, 10, 16, mode), np.arange(0, 10, 4))
    with pytest.raises(ValueError, match="--log-likelihood must be one of .* got 'most'"):
        kept_draws(2, 10, 5, "most")


def test_gaussian_models_take_the_fused_path_and_the_parallax_model_the_graph():
    """The fused membership pass is found through the observed stars' own log-density: it
    is used for every Gaussian model (the answers are the same either way, so only this
    test tells whether the fast path runs), and the parallax model falls back to its graph."""
    from starmix.data.clusters import cluster_reference
    from starmix.workflows.inference.membership import _fused_membership

    table = make_field(seed=7, n_cluster=20, n_field=40)
    guess = {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}
    for name in ("pmra", "pm2d", "pmplx", "joint"):
        sky = {"center": cluster_reference("NGC6819").center} if name == "joint" else {}
        model = CLUSTER_MODELS[name].from_table(table, guess, n_field=2, **sky)
        assert _fused_membership(model, "cluster") is not None, name
    parallax = CLUSTER_MODELS["parallax"].from_table(table, guess)
    assert _fused_membership(parallax, "cluster") is None
