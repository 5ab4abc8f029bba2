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


def check_fused_membership(model):
    """Membership and pointwise log-likelihood through the fused kernel equal the graph's,
    on three prior draws."""
    prior = pm.draw(model.free_RVs, draws=3, random_seed=3)
    posterior = xr.Dataset({
        rv.name: (("chain", "draw", *[f"{rv.name}_{axis}" for axis in range(d.ndim - 1)]),
                  d[None]) for rv, d in zip(model.free_RVs, prior, strict=True)})
    fused = mixture_draws(model, posterior)
    reference = mixture_draws(model, posterior, fused=False)
    np.testing.assert_allclose(fused.mean, reference.mean, rtol=2e-5, atol=1e-30)
    np.testing.assert_allclose(fused.log_likelihood, reference.log_likelihood, rtol=2e-5)


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
    check_fused_membership(model)


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


def joint_halo_model(seed=3, on_sky=True):
    from astropy.coordinates import SkyCoord

    from starmix.data.footprint import Footprint

    table = make_field(seed=seed, n_cluster=20, n_field=40)
    centre = SkyCoord(295.327, 40.190, unit="deg")
    cone = Footprint(centre.ra.deg, centre.dec.deg, 20.0, "the test's")
    model = CLUSTER_MODELS["joint"].from_table(table, GUESS, n_field=2, center=centre,
                                               footprint=cone, cluster_halo=True,
                                               cluster_on_sky=on_sky)
    return table, model, centre


@pytest.mark.parametrize("on_sky", [True, False])
def test_joint_halo_log_density_matches_scipy(on_sky):
    """The joint model with a halo: core and halo share the cluster's Plummer term on the
    sky (or, for the narrow field lump, the flat one) and its parallax depth; the field is
    flat on the sky. Checked star by star against SciPy."""
    from starmix.models.cluster_joint import tangent_plane

    table, model, centre = joint_halo_model(on_sky=on_sky)
    values, error_cov = table_arrays(table)
    sky = tangent_plane(np.asarray(table["ra"]), np.asarray(table["dec"]), centre)
    names = ["w", "cluster_pm", "cluster_parallax", "cluster_pm_dispersion",
             "cluster_halo_fraction", "cluster_halo_dispersion", "field_mean", "field_cov"]
    names += ["cluster_offset", "plummer_radius"] if on_sky else []
    f = model.compile_fn(model.replace_rvs_by_values(
        [model[name] for name in names] + [observed_loglike(model)]),
        inputs=model.value_vars, on_unused_input="ignore")
    point = model.initial_point()
    point["cluster_halo_fraction_logodds__"] = np.array(-0.8)
    out = f(point)
    w, pm_c, plx_c, core, fraction, halo, f_mean, f_cov = out[:8]
    loglike = out[-1]
    radius = 20.0
    if on_sky:
        offset, a = out[8], out[9]
        r2 = np.sum((sky - offset) ** 2, axis=1)
        cluster_sky = (1 + r2 / a**2) ** -2 / (np.pi * a**2) / (radius**2 / (radius**2 + a**2))
        size = min(a, radius)
    else:
        cluster_sky = np.full(len(sky), 1 / (np.pi * radius**2))
        size = radius
    depth = np.hypot(0.005, plx_c * np.radians(size / 60) / np.sqrt(2 * np.log(2)))
    mean = np.r_[pm_c, plx_c]
    core_cov, halo_cov = np.diag([core**2, core**2, depth**2]), np.diag([halo**2, halo**2,
                                                                         depth**2])
    expected = 0.0
    for i in range(len(values)):
        c = error_cov[i]
        total = w[0] * cluster_sky[i] * (
            (1 - fraction) * multivariate_normal.pdf(values[i], mean, core_cov + c)
            + fraction * multivariate_normal.pdf(values[i], mean, halo_cov + c))
        for k in range(2):
            total += (w[k + 1] / (np.pi * radius**2)
                      * multivariate_normal.pdf(values[i], f_mean[k], f_cov[k] + c))
        expected += np.log(total)
    assert float(loglike) == pytest.approx(expected, rel=1e-9)


def test_joint_halo_membership_in_the_fused_kernel_and_draws_on_the_sky():
    """Membership through the fused kernel equals the graph's; and forward draws put the
    halo's stars, like the core's, around the cluster's centre on the sky."""
    _, model, _ = joint_halo_model(seed=5)
    check_fused_membership(model)
    draws = pm.draw(model["stars"], draws=1, random_seed=2,
                    givens={model["w"]: np.array([1.0 - 2e-9, 1e-9, 1e-9]),
                            model["cluster_halo_fraction"]: 0.9,
                            model["cluster_offset"]: np.array([5.0, -5.0]),
                            model["plummer_radius"]: 1.0})
    # every star is the cluster's (90% of them in the halo): all near (5, -5), none spread
    # uniformly over the 20' disc
    r = np.hypot(draws[:, 0] - 5.0, draws[:, 1] + 5.0)
    assert np.median(r) < 2.0 and (r < 8).mean() > 0.9
