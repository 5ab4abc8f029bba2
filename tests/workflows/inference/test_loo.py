"""The vectorised PSIS-LOO (:mod:`starmix.workflows.inference.loo`) against ArviZ, its reference
formula."""

import warnings

import numpy as np
import pytest
import xarray as xr

from starmix.workflows.inference.loo import _psis_block, pointwise_loo, psis_loo, tail_length


def mixture_loglike(rng, shape):
    """Log-likelihoods with a spread of tail shapes: some stars fitted tightly, some
    outliers whose importance ratios have heavy tails (Pareto k well above 0.7)."""
    n_objects = shape[-1]
    scale = rng.uniform(0.05, 4.0, size=n_objects)
    offset = rng.normal(size=n_objects)
    return -0.5 * (rng.normal(size=shape) * scale + offset) ** 2 - 1.0


@pytest.mark.parametrize("shape", [(4, 500, 120), (2, 100, 40), (1, 60, 30), (4, 50, 25)])
def test_psis_loo_equals_arviz(shape):
    rng = np.random.default_rng(sum(shape))
    loglike = mixture_loglike(rng, shape)
    reference = pointwise_loo(loglike, reference=True)
    fast, k = psis_loo(loglike)
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-10)
    assert np.isfinite(k).all() and (k > 0.7).any()  # the heavy tails were exercised


def test_chunks_do_not_change_the_result():
    loglike = mixture_loglike(np.random.default_rng(3), (2, 300, 101))
    whole, k_whole = psis_loo(loglike, chunk=1000)
    pieces, k_pieces = psis_loo(loglike, chunk=7)
    np.testing.assert_array_equal(whole, pieces)
    np.testing.assert_array_equal(k_whole, k_pieces)


def test_approximate_posterior_correction_equals_arviz():
    import arviz as az

    rng = np.random.default_rng(11)
    n_draws, n_objects = 800, 60
    loglike = mixture_loglike(rng, (1, n_draws, n_objects))
    log_p, log_q = rng.normal(size=n_draws), rng.normal(size=n_draws)
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset({"d": (("chain", "draw"), np.zeros((1, n_draws)))}),
        "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), loglike)})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = az.loo_approximate_posterior(
            tree, log_p=xr.DataArray(log_p[None], dims=("chain", "draw")),
            log_q=xr.DataArray(log_q[None], dims=("chain", "draw")), pointwise=True)
    elpd, k = psis_loo(loglike, correction=(log_p - log_q)[None])
    np.testing.assert_allclose(elpd, np.asarray(reference.elpd_i).ravel(), atol=1e-10)
    np.testing.assert_allclose(k, np.asarray(reference.pareto_k).ravel(), atol=1e-10)


def test_pareto_k_tracks_the_tail_it_is_given():
    """Ratios drawn from a Pareto with shape k give k back (to sampling error): a wrong
    fit (sign, quartile, prior) would not."""
    rng = np.random.default_rng(5)
    for k_true in (0.2, 0.5, 0.9):
        ratios = np.log(rng.pareto(1 / k_true, size=(200, 4000)) + 1)
        _, k = _psis_block(ratios, tail_length(4000))
        assert abs(np.median(k) - k_true) < 0.06, (k_true, np.median(k))


def test_weights_are_normalised_and_elpd_is_below_the_in_sample_fit():
    loglike = mixture_loglike(np.random.default_rng(8), (2, 400, 50))
    draws = loglike.reshape(-1, 50)
    log_weights, _ = _psis_block(-draws.T, tail_length(800))
    np.testing.assert_allclose(np.exp(log_weights).sum(axis=1), 1.0, atol=1e-12)
    from scipy.special import logsumexp

    lppd = logsumexp(draws, axis=0) - np.log(800)
    assert (psis_loo(loglike)[0] <= lppd + 1e-12).all()  # leaving a star out never helps it


def test_too_few_draws_is_an_error():
    with pytest.raises(ValueError, match="at least 25 draws"):
        psis_loo(np.zeros((1, 20, 3)))


def test_threads_do_not_change_the_result(monkeypatch):
    # blocks smoothed on several threads write the same numbers as one thread does
    from starmix.workflows.inference import loo

    ll = np.random.default_rng(5).normal(-3, 1, (2, 300, 2_500))
    threaded = psis_loo(ll, chunk=400)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert loo.loo_threads() == 1
    single = psis_loo(ll, chunk=400)
    np.testing.assert_array_equal(threaded[0], single[0])
    np.testing.assert_array_equal(threaded[1], single[1])
    weights, _ = loo.psis_log_weights(ll, chunk=400)
    monkeypatch.delenv("OMP_NUM_THREADS")
    np.testing.assert_array_equal(weights, loo.psis_log_weights(ll, chunk=400)[0])
