"""Cluster membership from proper motion and parallax together, without sky positions.

For fields such as the M67 and NGC 188 tables that carry astrometry but no positions. For
star i with astrometry a_i = (pmra, pmdec, parallax) and its full 3x3 error covariance C_i
(errors and the three correlations; zero correlations when errors were assigned from G):

* cluster:  a_i ~ N3((μα_c, μδ_c, ϖ_c), diag(s_μ², s_μ², s_ϖ²) + C_i)
* field k:  a_i ~ N3(field_mean_k, field_cov_k + C_i), K Gaussians with full covariances
  (pmra widths ordered and at least 0.5 mas/yr: the label-switching guard of
  :mod:`starmix.models.field`)

with ``w ~ Dirichlet(1, ..., 1)``. The cluster's parallax spread s_ϖ is free, U(0, 0.2) mas:
on real fields it also absorbs parallax errors that the error model underestimates
(a cluster's own depth is a few thousandths of a mas). Units: mas/yr, mas. Derived:
``cluster_distance`` = 1 / ϖ_c (kpc).

``cluster=False`` builds the field-only alternative (the same field priors, no cluster
component) that the detection step compares against.
"""

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from starmix.models.cluster_joint import AXES, table_arrays
from starmix.models.field import (
    CLUSTER_BOUNDS,
    FIELD_MIN_PM_WIDTH,
    cluster_halo,
    component_names,
    field_covariances,
    field_means,
    mixture_weights,
    observe_stars,
    robust_scale,
)
from starmix.models.shared import check_priors, prior, prior_constant

REQUIRED_COLUMNS = ("source_id", "parallax", "parallax_error", "pmra", "pmra_error", "pmdec",
                    "pmdec_error", "pmra_pmdec_corr", "parallax_pmra_corr",
                    "parallax_pmdec_corr")
CLUSTER_PARAMETERS = ("cluster_pm", "cluster_pm_dispersion", "cluster_parallax",
                      "cluster_parallax_dispersion", "w")
# the cluster priors a user may replace (``priors={name: factory}``)
REPLACEABLE_PRIORS = ("cluster_pm", "cluster_parallax", "cluster_pm_dispersion",
                      "cluster_parallax_dispersion")
# the shared variable holding the cluster's prior centre, and what it holds, in order
PRIOR_CENTER_NAME = "cluster_prior_center"
PRIOR_CENTER_AXES = ("pmra", "pmdec", "parallax")
# graphical-model labels: cluster parameters, a star's data, its errors
PGM_LABELS = (r"$\vec\mu_c, \varpi_c, s_c, s_\varpi$", r"$\varpi_i, \vec\mu_i$", r"$C_i$")
MAX_PARALLAX_DISPERSION = CLUSTER_BOUNDS["cluster_parallax_dispersion"][1]  # mas


def cluster_pmplx(astrometry, astrometry_cov, *, cluster_guess, n_field: int = 2,
                  star_ids=None, cluster: bool = True,
                  magnitudes=None, halo: bool = False, priors=None):
    """Build the 3D mixture. astrometry (N, 3) as (pmra, pmdec, parallax) in mas/yr, mas/yr,
    mas; astrometry_cov (N, 3, 3) in the same order; cluster_guess (3,) in the same order.
    ``halo``: the cluster gets a wider second Gaussian (:func:`starmix.models.field.cluster_halo`)
    with its mean and parallax spread."""
    priors = check_priors(priors, REPLACEABLE_PRIORS, "pmplx")
    astrometry = np.asarray(astrometry, float)
    astrometry_cov = np.asarray(astrometry_cov, float)
    names = component_names(n_field, cluster=cluster)
    fields = [name for name in names if name != "cluster"]
    coords = {"star": np.arange(len(astrometry)) if star_ids is None else np.asarray(star_ids),
              "component": names, "field_component": fields, "astrometry": AXES,
              "astrometry_": AXES, "coordinate": AXES, "proper_motion": AXES[:2]}
    scales = [robust_scale(astrometry[:, j]) for j in range(3)]
    with pm.Model(coords=coords) as model:
        mixture_weights(magnitudes)
        means, covs, halo_part = [], [], None
        if cluster:
            guess = prior_constant(cluster_guess, PRIOR_CENTER_NAME)
            pm_mean = prior("cluster_pm", lambda name: pm.Normal(
                name, guess[:2], 1.0, dims="proper_motion"), priors)
            plx = prior("cluster_parallax", lambda name: pm.TruncatedNormal(
                name, guess[2], 0.3, lower=0.01), priors)
            pm.Deterministic("cluster_distance", 1 / plx)
            pm_dispersion = prior("cluster_pm_dispersion", lambda name: pm.Uniform(
                name, 0.0, FIELD_MIN_PM_WIDTH), priors)
            plx_dispersion = prior("cluster_parallax_dispersion", lambda name: pm.Uniform(
                name, 0.0, MAX_PARALLAX_DISPERSION), priors)
            means.append(pt.concatenate([pm_mean, plx[None]])[None, :])
            covs.append(pt.diag(pt.stack([pm_dispersion**2, pm_dispersion**2,
                                          plx_dispersion**2]))[None])
            if halo:
                fraction, halo_dispersion = cluster_halo(pm_dispersion)
                halo_part = (fraction, pt.diag(pt.stack([halo_dispersion**2,
                                                         halo_dispersion**2,
                                                         plx_dispersion**2])))
        means.append(field_means("field_mean", np.median(astrometry, axis=0),
                                 2 * np.asarray(scales), ("field_component", "astrometry")))
        covs.append(field_covariances("field_cov", scales,
                                      ("field_component", "astrometry", "astrometry_"),
                                      min_width=FIELD_MIN_PM_WIDTH))
        observe_stars(astrometry, astrometry_cov, pt.concatenate(means), pt.concatenate(covs),
                      halo=halo_part)
    return model


def from_table(table, cluster_guess: dict, n_field: int = 2, cluster: bool = True,
               magnitude_prior: bool = False, cluster_halo: bool = False, priors=None):
    magnitudes = (np.asarray(table["phot_g_mean_mag"], float) if magnitude_prior
                  else None)
    astrometry, cov = table_arrays(table)
    return cluster_pmplx(astrometry, cov, cluster_guess=[cluster_guess[name] for name in AXES],
                         n_field=n_field, star_ids=np.asarray(table["source_id"]),
                         cluster=cluster, magnitudes=magnitudes, halo=cluster_halo,
                         priors=priors)
