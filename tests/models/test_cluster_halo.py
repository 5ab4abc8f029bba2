"""The cluster halo (``--cluster-halo``): a second, wider cluster Gaussian with the
cluster's mean, checked against SciPy and through membership."""

import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy.stats import multivariate_normal

from starmix.models import CLUSTER_MODELS
from starmix.models.cluster_joint import table_arrays
from starmix.models.field import gaussian_components
from starmix.workflows.inference.membership import mixture_draws
from tests.conftest import make_field, observed_loglike

GUESS = {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}


def halo_model(name="pmplx", seed=3):
    table = make_field(seed=seed, n_cluster=20, n_field=40)
    return table, CLUSTER_MODELS[name].from_table(table, GUESS, n_field=2, cluster_halo=True)


def test_the_halo_adds_a_gaussian_of_the_cluster_not_a_component():
    _, model = halo_model()
    assert list(model.coords["component"]) == ["cluster", "field_1", "field_2"]
    assert gaussian_components(model) == ["cluster", "cluster", "field_1", "field_2"]
    assert {"cluster_halo_fraction", "cluster_halo_dispersion"} <= set(model.named_vars)


def test_pmplx_halo_log_density_matches_scipy():
    """log sum over stars of w_c [(1 - f) N(core) + f N(halo)] + sum_k w_k N(field_k), each
    convolved with the star's 3x3 error covariance."""
    table, model = halo_model()
    values, error_cov = table_arrays(table)
    names = ["w", "cluster_pm", "cluster_parallax", "cluster_pm_dispersion",
             "cluster_parallax_dispersion", "cluster_halo_fraction", "cluster_halo_dispersion",
             "field_mean", "field_cov"]
    f = model.compile_fn(model.replace_rvs_by_values(
        [model[name] for name in names] + [observed_loglike(model)]),
        inputs=model.value_vars, on_unused_input="ignore")
    point = model.initial_point()
    point["cluster_halo_fraction_logodds__"] = np.array(-0.8)  # f = 0.31
    w, pm_c, plx_c, core, plx, fraction, halo, f_mean, f_cov, loglike = f(point)
    assert 0.2 < fraction < 0.4 and core < halo < 0.5
    mean = np.r_[pm_c, plx_c]
    core_cov = np.diag([core**2, core**2, plx**2])
    halo_cov = np.diag([halo**2, halo**2, plx**2])
    expected = 0.0
    for i in range(len(values)):
        c = error_cov[i]
        total = w[0] * ((1 - fraction) * multivariate_normal.pdf(values[i], mean, core_cov + c)
                        + fraction * multivariate_normal.pdf(values[i], mean, halo_cov + c))
        for k in range(2):
            total += w[k + 1] * multivariate_normal.pdf(values[i], f_mean[k], f_cov[k] + c)
        expected += np.log(total)
    assert float(loglike) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name", ["pm2d", "pmplx"])
def test_halo_membership_sums_core_and_halo_in_the_fused_kernel(name):
    """The fused kernel's membership (core + halo responsibilities) equals the graph's,
    where the cluster's column of log_component already holds core and halo."""
    _, model = halo_model(name, seed=5)
    prior = pm.draw(model.free_RVs, draws=3, random_seed=3)
    posterior = xr.Dataset({
        rv.name: (("chain", "draw", *[f"{rv.name}_{axis}" for axis in range(d.ndim - 1)]),
                  d[None]) for rv, d in zip(model.free_RVs, prior, strict=True)})
    fused = mixture_draws(model, posterior)
    reference = mixture_draws(model, posterior, fused=False)
    np.testing.assert_allclose(fused.mean, reference.mean, rtol=2e-5, atol=1e-30)
    np.testing.assert_allclose(fused.log_likelihood, reference.log_likelihood, rtol=2e-5)


def test_halo_prior_predictive_draws_core_and_halo():
    """Forward draws of the observed stars come from K + 1 Gaussians: with all the weight
    on the cluster and a wide halo, the spread of proper motion is between core and halo."""
    table, model = halo_model("pm2d")
    draws = pm.draw(model["stars"], draws=1, random_seed=2,
                    givens={model["w"]: np.array([1.0 - 2e-9, 1e-9, 1e-9]),
                            model["cluster_pm_dispersion"]: 0.01,
                            model["cluster_halo_dispersion"]: 0.45,
                            model["cluster_halo_fraction"]: 0.5,
                            model["cluster_pm"]: np.array([0.0, 0.0])})
    assert draws.shape == (60, 2)
    errors = np.asarray(table["pmra_error"])
    narrow = np.abs(draws[:, 0]) < 0.05 + 3 * errors
    # about half of the stars in the core, half in the 0.45 mas/yr halo
    assert 0.2 < narrow.mean() < 0.95
    assert np.abs(draws[:, 0]).max() > 0.2


def test_pm2d_halo_log_density_matches_scipy():
    """pm2d with a halo: w_c [(1 - f) N(core) + f N(halo)] + sum_k w_k N(field_k), each with
    the star's 2x2 error covariance (mutation check: the halo's variance d**2, not 2 d)."""
    table, model = halo_model("pm2d")
    values = np.stack([np.asarray(table["pmra"], float), np.asarray(table["pmdec"], float)], -1)
    sx, sy = np.asarray(table["pmra_error"], float), np.asarray(table["pmdec_error"], float)
    rho = np.asarray(table["pmra_pmdec_corr"], float)
    error_cov = np.stack([np.stack([sx**2, rho * sx * sy], -1),
                          np.stack([rho * sx * sy, sy**2], -1)], -2)  # built here, not reused
    names = ["w", "cluster_pm", "cluster_pm_dispersion", "cluster_halo_fraction",
             "cluster_halo_dispersion", "field_mean", "field_cov"]
    f = model.compile_fn(model.replace_rvs_by_values(
        [model[name] for name in names] + [observed_loglike(model)]),
        inputs=model.value_vars, on_unused_input="ignore")
    point = model.initial_point()
    point["cluster_halo_fraction_logodds__"] = np.array(-0.8)
    w, pm_c, core, fraction, halo, f_mean, f_cov, loglike = f(point)
    assert abs(halo**2 - 2 * halo) > 0.3, halo  # d**2 and 2 d differ here
    expected = 0.0
    for i in range(len(values)):
        c = error_cov[i]
        total = w[0] * ((1 - fraction) * multivariate_normal.pdf(values[i], pm_c,
                                                                 core**2 * np.eye(2) + c)
                        + fraction * multivariate_normal.pdf(values[i], pm_c,
                                                             halo**2 * np.eye(2) + c))
        for k in range(2):
            total += w[k + 1] * multivariate_normal.pdf(values[i], f_mean[k], f_cov[k] + c)
        expected += np.log(total)
    assert float(loglike) == pytest.approx(expected, rel=1e-9)
