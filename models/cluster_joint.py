"""Joint cluster model: sky position, parallax and proper motion together.

Stars are placed on the tangent plane of the footprint's centre: (ξ, η) in arcmin, inside
a disc of radius R (the footprint, the cone the data were selected from:
:mod:`starmix.data.footprint`). For star i with astrometry a_i = (ϖ, pmra, pmdec)
and its full 3x3 error covariance C_i (errors and the three correlations):

* cluster:  sky ~ Plummer(centre (ξ0, η0), scale a), surface density
  (1 + r²/a²)⁻² / (π a² F), F = R²/(R² + a²) normalising it inside the disc;
  a_i ~ N3((μα_c, μδ_c, ϖ_c), diag(s_μ², s_μ², s_ϖ²) + C_i), s_ϖ the cluster's parallax
  depth: as deep as it is wide, s_ϖ² = s_0² + (ϖ_c min(a, R) / 1.177)² with a and R in
  radians (:func:`parallax_depth`; s_0 = 0.005 mas, the fixed depth of
  ``starmix.models.cluster_parallax``). A Gaussian sphere whose projected half-mass radius
  is the Plummer radius a has a line-of-sight sd of a / 1.177 (pc, at distance 1/ϖ_c); for
  Blanco 1 (ϖ 4.2 mas, a about 38') that is 0.04 mas, the spread its members' precise
  parallaxes show, for NGC 188 (0.5 mas, 8') 0.001 mas
* field k:  sky uniform, 1 / (π R²); a_i ~ N3(field_mean_k, field_cov_k + C_i), K Gaussians
  with full covariances (pmra widths ordered, at least 0.5 mas/yr)

The astrometry axis order inside the model is (pmra, pmdec, parallax).

with ``w ~ Dirichlet(1, ..., 1)``. Units: arcmin, mas, mas/yr. Derived:
``cluster_distance`` = 1 / ϖ_c (kpc). The cluster's 3D position and velocity are computed
from the posterior by ``starmix.workflows.cluster.kinematics``.
"""

import astropy.units as u
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from astropy.coordinates import SkyCoord

from starmix.models.cluster_parallax import CLUSTER_PARALLAX_DEPTH
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

REQUIRED_COLUMNS = ("source_id", "ra", "dec", "parallax", "parallax_error", "pmra",
                    "pmra_error", "pmdec", "pmdec_error", "pmra_pmdec_corr",
                    "parallax_pmra_corr", "parallax_pmdec_corr")
CLUSTER_PARAMETERS = ("cluster_parallax", "cluster_pm", "cluster_pm_dispersion",
                      "cluster_offset", "plummer_radius", "w")
# the cluster priors a user may replace (``priors={name: factory}``)
REPLACEABLE_PRIORS = ("cluster_pm", "cluster_parallax", "cluster_pm_dispersion")
# the shared variable holding the cluster's prior centre, and what it holds, in order
PRIOR_CENTER_NAME = "cluster_prior_center"
PRIOR_CENTER_AXES = ("pmra", "pmdec", "parallax")
# graphical-model labels: cluster parameters, a star's data, its errors
PGM_LABELS = (r"$\varpi_c, \vec\mu_c, \vec\xi_c, a$", r"$\vec\xi_i, \varpi_i, \vec\mu_i$",
              r"$C_i$")
AXES = ["pmra", "pmdec", "parallax"]
# a Gaussian sphere's projected half-mass radius in units of its per-axis sd: sqrt(2 ln 2)
HALF_MASS_PER_SD = float(np.sqrt(2 * np.log(2)))  # 1.1774
ARCMIN = np.pi / (180 * 60)  # radians
FROM_ARCHIVE_ORDER = [1, 2, 0]  # (parallax, pmra, pmdec) covariance -> AXES order


def tangent_plane(ra, dec, center: SkyCoord) -> np.ndarray:
    """(N, 2) gnomonic offsets (ξ, η) in arcmin of (ra, dec) in degrees from ``center``."""
    offsets = SkyCoord(ra * u.deg, dec * u.deg).transform_to(center.skyoffset_frame())
    return np.stack([offsets.lon.to_value(u.arcmin), offsets.lat.to_value(u.arcmin)], axis=-1)


def parallax_depth(parallax, scale, radius):
    """The cluster's parallax depth s_ϖ (mas) at parallax ``parallax`` (mas) for a cluster of
    Plummer radius ``scale`` on a footprint of radius ``radius`` (both arcmin): the
    line-of-sight sd of a Gaussian sphere with the same projected half-mass radius,
    ϖ min(a, R) / 1.177 (radians), in quadrature with the fixed floor of the models without
    positions (0.005 mas). A cluster wider than the footprint is as deep as the footprint;
    the narrow field lump (no Plummer radius) passes ``scale = radius``."""
    width = pt.minimum(scale, radius) * ARCMIN / HALF_MASS_PER_SD
    return pt.sqrt(CLUSTER_PARALLAX_DEPTH**2 + (parallax * width) ** 2)


def cluster_joint(sky, astrometry, astrometry_cov, *, radius: float, cluster_guess,
                  n_field: int = 2, star_ids=None, cluster: bool = True,
                  cluster_on_sky: bool = True, magnitudes=None,
                  offset_guess=(0.0, 0.0), halo: bool = False, priors=None):
    """Build the joint model.

    sky (N, 2) arcmin offsets from the selection centre; radius (arcmin) of the selection
    disc; astrometry (N, 3) as (pmra, pmdec, parallax) in mas/yr, mas/yr, mas;
    astrometry_cov (N, 3, 3) in the same order; cluster_guess (3,) in the same order.
    ``cluster=False``: the field-only alternative of the detection step (uniform on the
    sky, the same field priors). ``cluster_on_sky=False``: the detection's other
    alternative, a *narrow field lump*: the cluster component as it is in proper motion and
    parallax but spread uniformly over the footprint like the field, so that what a cluster
    adds over it is its concentration on the sky. ``offset_guess`` (ξ, η) in arcmin: the
    prior centre of the cluster's centre on the plane (the published centre's offset, when
    known). ``halo``: the cluster gets a wider second Gaussian in proper motion with its mean,
    its parallax depth and its place on the sky (:func:`starmix.models.field.cluster_halo`;
    for members spread past one Gaussian, as NGC 188's are).
    """
    sky, astrometry = np.asarray(sky, float), np.asarray(astrometry, float)
    priors = check_priors(priors, REPLACEABLE_PRIORS, "joint")
    names = component_names(n_field, cluster=cluster)
    coords = {"star": np.arange(len(sky)) if star_ids is None else np.asarray(star_ids),
              "component": names, "field_component": [n for n in names if n != "cluster"],
              "astrometry": AXES, "astrometry_": AXES, "sky": ["xi", "eta"],
              "coordinate": ["xi", "eta", *AXES], "proper_motion": AXES[:2]}
    scales = [robust_scale(astrometry[:, j]) for j in range(3)]
    with pm.Model(coords=coords) as model:
        guess = prior_constant(cluster_guess, PRIOR_CENTER_NAME)
        radius = prior_constant(radius, "selection_radius")
        mixture_weights(magnitudes)
        means, covs, sky_parameters, halo_part = [], [], [radius], None
        if cluster:
            pm_mean = prior("cluster_pm", lambda name: pm.Normal(
                name, guess[:2], 1.0, dims="proper_motion"), priors)
            plx = prior("cluster_parallax", lambda name: pm.TruncatedNormal(
                name, guess[2], 0.3, lower=0.01), priors)
            pm.Deterministic("cluster_distance", 1 / plx)
            pm_dispersion = prior("cluster_pm_dispersion", lambda name: pm.Uniform(
                name, 0.0, FIELD_MIN_PM_WIDTH), priors)
            if cluster_on_sky:
                offset = pm.Normal("cluster_offset",
                                   prior_constant(offset_guess, "cluster_offset_prior_center"),
                                   radius / 5, dims="sky")
                scale = pm.LogNormal("plummer_radius", pt.log(radius / 3), 1.0)
                sky_parameters += [offset[0], offset[1], scale]
            depth = parallax_depth(plx, scale if cluster_on_sky else radius, radius)
            means.append(pt.concatenate([pm_mean, plx[None]])[None, :])
            covs.append(pt.diag(pt.stack([pm_dispersion**2, pm_dispersion**2,
                                          depth**2]))[None])
            if halo:
                fraction, halo_dispersion = cluster_halo(pm_dispersion)
                halo_part = (fraction, pt.diag(pt.stack([halo_dispersion**2,
                                                         halo_dispersion**2, depth**2])))
        means.append(field_means("field_mean", np.median(astrometry, axis=0),
                                 2 * np.asarray(scales), ("field_component", "astrometry")))
        covs.append(field_covariances("field_cov", scales,
                                      ("field_component", "astrometry", "astrometry_"),
                                      min_width=FIELD_MIN_PM_WIDTH))
        observe_stars(np.concatenate([sky, astrometry], axis=1), astrometry_cov,
                      pt.concatenate(means), pt.concatenate(covs),
                      sky=pt.stack(sky_parameters), halo=halo_part)
    return model


def table_arrays(table) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) astrometry in AXES order and its (N, 3, 3) error covariance from a Gaia table."""
    from starmix.data.cluster_field import astrometric_covariance

    astrometry = np.stack([np.asarray(table[name], float) for name in AXES], axis=-1)
    cov = astrometric_covariance(table)[:, FROM_ARCHIVE_ORDER][:, :, FROM_ARCHIVE_ORDER]
    return astrometry, cov


def from_table(table, cluster_guess: dict, n_field: int = 2, center: SkyCoord = None,
               footprint=None, cluster: bool = True, cluster_on_sky: bool = True,
               magnitude_prior: bool = False, cluster_halo: bool = False, priors=None):
    """The joint model of a Gaia table: ``footprint`` (:class:`starmix.data.footprint.Footprint`,
    the data's cone; estimated from the stars if None) sets the plane and the field's sky
    density, ``center`` (the cluster's published or given centre, if any) the prior centre
    of the cluster's position."""
    from starmix.data.footprint import estimated_footprint

    magnitudes = (np.asarray(table["phot_g_mean_mag"], float) if magnitude_prior
                  else None)
    footprint = footprint or estimated_footprint(table)
    plane = footprint.center
    sky = tangent_plane(np.asarray(table["ra"], float), np.asarray(table["dec"], float), plane)
    offset_guess = (0.0, 0.0) if center is None else tuple(
        tangent_plane(np.array([center.ra.deg]), np.array([center.dec.deg]), plane)[0])
    astrometry, cov = table_arrays(table)
    return cluster_joint(sky, astrometry, cov, radius=footprint.radius_arcmin,
                         cluster_guess=[cluster_guess[name] for name in AXES],
                         n_field=n_field, star_ids=np.asarray(table["source_id"]),
                         cluster=cluster, cluster_on_sky=cluster_on_sky,
                         magnitudes=magnitudes, offset_guess=offset_guess,
                         halo=cluster_halo and cluster, priors=priors)
