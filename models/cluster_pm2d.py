"""Cluster membership from 2D proper motion with per-star error covariances.

For star i with proper motion μ_i = (pmra, pmdec) and error covariance C_i (from
pmra_error, pmdec_error, pmra_pmdec_corr):

* cluster:  μ_i ~ N2(cluster_pm, cluster_pm_dispersion² I + C_i)   (isotropic)
* field k:  μ_i ~ N2(field_mean_k, field_cov_k + C_i)   (full covariances; pmra widths ordered)

with ``w ~ Dirichlet(1, ..., 1)``. Units: mas/yr.
"""

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from starmix.models.field import (
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

REQUIRED_COLUMNS = ("source_id", "pmra", "pmra_error", "pmdec", "pmdec_error",
                    "pmra_pmdec_corr")
CLUSTER_PARAMETERS = ("cluster_pm", "cluster_pm_dispersion", "w")
# the cluster priors a user may replace (``priors={name: factory}``)
REPLACEABLE_PRIORS = ("cluster_pm", "cluster_pm_dispersion")
# the shared variable holding the cluster's prior centre, and what it holds, in order
PRIOR_CENTER_NAME = "cluster_pm_prior_center"
PRIOR_CENTER_AXES = ("pmra", "pmdec")
# graphical-model labels: cluster parameters, a star's data, its errors
PGM_LABELS = (r"$\vec\mu_c, s_c$", r"$\vec\mu_i$", r"$C_i$")
PM_AXES = ["pmra", "pmdec"]


def pm_covariance(pmra_error, pmdec_error, pmra_pmdec_corr) -> np.ndarray:
    """(N, 2, 2) proper-motion error covariances, (mas/yr)²."""
    off = np.asarray(pmra_pmdec_corr) * pmra_error * pmdec_error
    return np.stack([np.stack([pmra_error**2, off], -1), np.stack([off, pmdec_error**2], -1)],
                    axis=-2)


def cluster_pm2d(pm_values, pm_cov, *, cluster_guess, n_field: int = 2, star_ids=None,
                 field_center=None, field_scale=None, cluster: bool = True,
                 magnitudes=None, halo: bool = False, priors=None):
    """Build the 2D mixture. pm_values (N, 2) mas/yr; pm_cov (N, 2, 2); cluster_guess (2,).

    ``halo``: the cluster gets a wider second Gaussian (:func:`starmix.models.field.cluster_halo`).

    ``field_center`` and ``field_scale`` ((2,), mas/yr) set the field priors; by default the
    median and robust width of each coordinate. ``cluster=False`` builds the field-only
    alternative of the detection step (same field priors, no cluster component).
    """
    priors = check_priors(priors, REPLACEABLE_PRIORS, "pm2d")
    pm_values, pm_cov = np.asarray(pm_values, float), np.asarray(pm_cov, float)
    names = component_names(n_field, cluster=cluster)
    coords = {"star": np.arange(len(pm_values)) if star_ids is None else np.asarray(star_ids),
              "component": names, "field_component": [n for n in names if n != "cluster"],
              "astrometry": PM_AXES, "astrometry_": PM_AXES, "coordinate": PM_AXES}
    centers = np.median(pm_values, axis=0) if field_center is None else field_center
    scales = ([robust_scale(pm_values[:, 0]), robust_scale(pm_values[:, 1])]
              if field_scale is None else field_scale)
    with pm.Model(coords=coords) as model:
        mixture_weights(magnitudes)
        if cluster:
            mean = prior("cluster_pm", lambda name: pm.Normal(
                name, prior_constant(cluster_guess, PRIOR_CENTER_NAME), 1.0,
                dims="astrometry"), priors)
            dispersion = prior("cluster_pm_dispersion",
                               lambda name: pm.Uniform(name, 0.0, FIELD_MIN_PM_WIDTH), priors)
        f_means = field_means("field_mean", centers, 2 * np.asarray(scales),
                              ("field_component", "astrometry"))
        f_covs = field_covariances("field_cov", scales,
                                   ("field_component", "astrometry", "astrometry_"),
                                   min_width=FIELD_MIN_PM_WIDTH)
        means, covs, halo_part = f_means, f_covs, None
        if cluster:
            means = pt.concatenate([mean[None, :], f_means])
            covs = pt.concatenate([(dispersion**2 * pt.eye(2))[None], f_covs])
            if halo:
                fraction, halo_dispersion = cluster_halo(dispersion)
                halo_part = (fraction, halo_dispersion**2 * pt.eye(2))
        observe_stars(pm_values, pm_cov, means, covs, halo=halo_part)
    return model


def from_table(table, cluster_guess: dict, n_field: int = 2, cluster: bool = True,
               magnitude_prior: bool = False, cluster_halo: bool = False, priors=None):
    magnitudes = (np.asarray(table["phot_g_mean_mag"], float) if magnitude_prior
                  else None)
    values = np.stack([np.asarray(table["pmra"], float), np.asarray(table["pmdec"], float)], -1)
    cov = pm_covariance(np.asarray(table["pmra_error"], float),
                        np.asarray(table["pmdec_error"], float),
                        np.asarray(table["pmra_pmdec_corr"], float))
    return cluster_pm2d(values, cov, cluster_guess=[cluster_guess["pmra"],
                                                    cluster_guess["pmdec"]],
                        n_field=n_field, star_ids=np.asarray(table["source_id"]),
                        cluster=cluster, magnitudes=magnitudes, halo=cluster_halo,
                        priors=priors)
