import numpy as np
import pytest
import xarray as xr
from scipy.stats import norm

from starmix.workflows.inference.membership import (
    logsumexp,
    membership_from_posterior,
    responsibilities,
    summarise,
)


def brute_force(weights, means, sds, y):
    """w_0 p_0 / sum_k w_k p_k with plain densities, one draw and one object at a time."""
    out = np.empty((len(weights), len(y)))
    for d in range(len(weights)):
        for i in range(len(y)):
            dens = [weights[d][k] * norm.pdf(y[i], means[d][k], sds[d][k]) for k in range(2)]
            out[d, i] = dens[0] / sum(dens)
    return out


def make_posterior(rng, n_draws=6, n_objects=5):
    weights = rng.dirichlet([3, 2], size=n_draws)
    means = rng.normal(0, 2, size=(n_draws, 2))
    sds = rng.uniform(0.5, 3, size=(n_draws, 2))
    y = rng.normal(0, 3, size=n_objects)
    log_p = norm.logpdf(y[None, :, None], means[:, None, :], sds[:, None, :])
    return weights, means, sds, y, log_p


def test_responsibilities_match_brute_force(rng):
    weights, means, sds, y, log_p = make_posterior(rng)
    got = responsibilities(np.log(weights), log_p, component=0)
    np.testing.assert_allclose(got, brute_force(weights, means, sds, y), rtol=1e-12)


def test_weights_change_the_answer(rng):
    _, _, _, _, log_p = make_posterior(rng, n_draws=1)
    even = responsibilities(np.log([[0.5, 0.5]]), log_p, 0)
    biased = responsibilities(np.log([[0.95, 0.05]]), log_p, 0)
    assert np.all(biased > even)
    # odds scale exactly by the weight ratio
    np.testing.assert_allclose(biased / (1 - biased), 19 * even / (1 - even), rtol=1e-10)


def test_log_space_survives_tiny_densities():
    log_p = np.array([[[-2000.0, -2010.0], [-5000.0, -4000.0]]])
    got = responsibilities(np.log([[0.5, 0.5]]), log_p, 0)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got[0], [1 / (1 + np.exp(-10)), 0.0], atol=1e-300)


def test_posterior_membership_mean_and_percentiles(rng):
    weights, means, sds, y, log_p = make_posterior(rng, n_draws=8)
    posterior = xr.Dataset(
        {
            "w": (("chain", "draw", "component"), weights.reshape(2, 4, 2)),
            "log_component": (("chain", "draw", "point", "component"),
                              log_p.reshape(2, 4, len(y), 2)),
        },
        coords={"component": ["line", "outlier"]},
    )
    member = membership_from_posterior(posterior, "outlier")
    expected = 1 - brute_force(weights, means, sds, y)
    np.testing.assert_allclose(member.mean, expected.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(member.p50, np.median(expected, axis=0), rtol=1e-12)
    assert np.all(member.p16 <= member.p50) and np.all(member.p50 <= member.p84)
    assert set(member.columns()) == {"p_outlier", "p_outlier_p16", "p_outlier_p50",
                                     "p_outlier_p84"}


def test_summarise_percentiles():
    per_draw = np.linspace(0, 1, 101)[:, None]
    summary = summarise("c", per_draw)
    assert summary.mean[0] == pytest.approx(0.5)
    assert (summary.p16[0], summary.p84[0]) == pytest.approx((0.16, 0.84))


def test_logsumexp_matches_scipy_and_handles_extremes(rng):
    from scipy.special import logsumexp as scipy_logsumexp

    values = rng.normal(scale=300.0, size=(7, 5, 3))
    values[0, 0] = -np.inf  # a slice with no mass
    values[1, 1, 0] = np.inf
    for axis in (-1, 0, 1):
        np.testing.assert_allclose(logsumexp(values, axis=axis),
                                   scipy_logsumexp(values, axis=axis), rtol=1e-12)
    assert logsumexp(np.array([-1e308, -1e308])) == -1e308 + np.log(2.0)
    # only the summed axis goes: other axes of length 1 stay
    ones = rng.normal(size=(4, 1, 3))
    assert logsumexp(ones, axis=-1).shape == (4, 1)
    assert logsumexp(ones, axis=0).shape == (1, 3)


def test_logsumexp_of_all_minus_infinity_is_minus_infinity_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = logsumexp(np.array([[-np.inf, -np.inf], [0.0, -np.inf]]), axis=-1)
    assert out[0] == -np.inf and out[1] == 0.0


def test_mixture_draws_stream_every_draw_past_a_batch_and_say_each_chain():
    """20 draws (one full batch of 16 and a partial one) in 2 chains: the streamed mean is
    the mean of the kept per-draw values (float32), every draw is kept at this size, and
    one progress line per chain."""
    import pymc as pm

    from starmix.models import CLUSTER_MODELS
    from starmix.workflows.inference.membership import BATCH, mixture_draws
    from tests.conftest import make_field

    assert BATCH < 20 < 2 * BATCH  # a full batch and a partial one
    table = make_field(seed=5, n_cluster=20, n_field=40)
    model = CLUSTER_MODELS["pm2d"].from_table(
        table, {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}, n_field=2)
    prior = pm.draw(model.free_RVs, draws=40, random_seed=3)
    posterior = xr.Dataset({
        rv.name: (("chain", "draw", *[f"{rv.name}_{axis}" for axis in range(d.ndim - 1)]),
                  d.reshape(2, 20, *d.shape[1:])) for rv, d in zip(model.free_RVs, prior,
                                                                  strict=True)})
    said = []
    draws = mixture_draws(model, posterior, say=said.append, threads=2)
    assert said == ["membership: chain 1/2 done", "membership: chain 2/2 done"]
    assert draws.n_draws == 20 and list(draws.kept) == list(range(20))
    assert draws.probability.shape == (2, 20, 60) and draws.probability.dtype == np.float32
    assert draws.log_likelihood.dtype == np.float32
    np.testing.assert_allclose(draws.mean, draws.probability.mean(axis=(0, 1)), rtol=1e-5,
                               atol=1e-7)
    reference = mixture_draws(model, posterior, fused=False, threads=1)
    np.testing.assert_allclose(draws.mean, reference.mean, rtol=2e-5, atol=1e-12)
    summary = draws.membership("cluster")
    np.testing.assert_allclose(summary.p50, np.median(draws.probability.reshape(40, 60), 0),
                               rtol=1e-6, atol=1e-7)
