"""Cluster membership and distance from parallax alone (1D).

For star i with measured parallax ϖ_i and error e_i (mas), and a global parallax offset
δ (``offset=True``; zero otherwise, because it is nearly degenerate with the cluster
parallax):

* cluster:  ϖ_i ~ N(cluster_parallax + δ, s² + e_i²), with s the cluster's parallax depth, a
  fixed constant (default 0.005 mas: NGC 6819's few-pc depth is ~0.001 mas, far below
  every error, so s cannot be learnt and a free s only makes a funnel for the sampler)
* field:    ϖ_i ~ ∫ N(ϖ_i | x + δ, e_i²) p(x) dx, the true parallax x drawn from

  - ``field="exponential"`` (default): the exponentially decreasing space density prior
    of Bailer-Jones (2015), p(r) ∝ r² exp(-r/L) in distance r = 1/x, i.e.
    p(x) = x⁻⁴ exp(-1/(x L)) / (2 L³), with L (``field_length_scale``, kpc) free;
  - ``field="beta"``: a Beta(α, β) density on x / x_max (a simpler, shape-free alternative).

  The integral over the true parallax is done numerically per star with 48-node
  Gauss-Legendre quadrature on ϖ_i - δ ± 6 e_i, clipped at zero (vectorised over stars;
  within 0.1% of adaptive quadrature in the tests). The field is one
  component (K = 1), so there is no label switching; the cluster is the narrow component.

* ``field="gaussian"``: the field is K Gaussians in parallax, ϖ_i ~ N(m_k, v_k + e_i²),
  as the proper-motion models' field (:mod:`starmix.models.field`: widths ordered, each at least
  ``FIELD_MIN_PARALLAX_WIDTH`` = 0.2 mas), and the cluster ϖ_i ~ N(cluster_parallax,
  s² + e_i²) with its spread ``cluster_parallax_spread`` s ~ U(0, 0.05) mas free (it
  absorbs underestimated errors; a cluster's own depth is a few thousandths of a mas).
  In parallax alone the cluster differs from the field only by being narrow: with s up
  to 0.2 mas, a simulated cluster took the field's own core (weight 0.9).
  The observed parallaxes of a magnitude-limited real field are not a volume density, and
  K Gaussians follow them where one exponential-density law cannot; the likelihood is
  the fused Gaussian kernel (:mod:`starmix.models.fused`, no quadrature), with the detection step's
  field-only alternative (``cluster=False``). There is no global offset: it would shift
  the field's means and the cluster's alike.

Weights: ``w ~ Dirichlet(1, ..., 1)``, or with ``magnitudes`` (``--magnitude-prior``) a
cluster weight that is a logistic function of G (:func:`starmix.models.field.mixture_weights`):
faint stars, whose parallaxes cannot tell the populations apart, then get the prior odds
of their own magnitude instead of the bright stars'.

Derived: ``cluster_distance`` = 1 / cluster_parallax (kpc).
"""

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from starmix.models.field import (
    CLUSTER_BOUNDS,
    component_names,
    log_weights,
    mixture_weights,
    observe_one_axis,
    one_axis_coords,
    robust_scale,
    star_data,
)
from starmix.models.observed import ParallaxMixture, parallax_log_components
from starmix.models.shared import check_priors, prior, prior_constant

REQUIRED_COLUMNS = ("source_id", "parallax", "parallax_error")
CLUSTER_PARAMETERS = ("cluster_parallax", "cluster_parallax_spread", "cluster_distance", "w")
# the cluster priors a user may replace (``priors={name: factory}``)
REPLACEABLE_PRIORS = ("cluster_parallax", "cluster_parallax_spread")
# the shared variable holding the cluster's prior centre, and what it holds, in order
PRIOR_CENTER_NAME = "cluster_parallax_prior_center"
PRIOR_CENTER_AXES = ("parallax",)
# graphical-model labels: cluster parameters, a star's data, its errors
PGM_LABELS = (r"$\varpi_c, s_\varpi$", r"$\varpi_i$", r"$\sigma_{\varpi,i}$")
CLUSTER_PARALLAX_DEPTH = 0.005  # mas
FIELDS = ("exponential", "beta", "gaussian")
# the Gaussian field's narrowest width: no field Gaussian is as narrow as a cluster may be
FIELD_MIN_PARALLAX_WIDTH = CLUSTER_BOUNDS["cluster_parallax_dispersion"][1]  # mas


def cluster_parallax(parallax, parallax_error, *, cluster_guess: float,
                     field: str = "exponential", offset: bool = False, star_ids=None,
                     depth: float = CLUSTER_PARALLAX_DEPTH, n_field: int = 2,
                     cluster: bool = True, magnitudes=None, priors=None):
    """Build the 1D parallax mixture. ``cluster_guess``: prior centre (mas). The observed
    variable ``stars`` (:class:`starmix.models.observed.ParallaxMixture`, or the Gaussian
    mixture :class:`starmix.models.observed.StarMixture` for ``field="gaussian"``) holds the
    parallaxes (star x coordinate, one coordinate). ``n_field`` and ``cluster=False``
    (the field-only alternative) are for the Gaussian field. ``magnitudes`` (G per star,
    mag): the cluster's weight depends on magnitude (:func:`starmix.models.field.mixture_weights`).
    """
    if field not in FIELDS:
        raise ValueError(f"parallax field must be one of {FIELDS}, got {field!r}")
    priors = check_priors(priors, REPLACEABLE_PRIORS[:1] if field != "gaussian"
                          else REPLACEABLE_PRIORS, f"parallax ({field} field)")
    parallax = np.asarray(parallax, float)
    parallax_error = np.asarray(parallax_error, float)
    if field == "gaussian":
        if offset:
            raise ValueError("a parallax offset is for the exponential and beta fields")
        return _gaussian_field_model(parallax, parallax_error, cluster_guess, n_field,
                                     star_ids, cluster, magnitudes, priors)
    if not cluster:
        raise ValueError(f"the {field} field has no field-only alternative: use gaussian")
    coords = {"star": np.arange(len(parallax)) if star_ids is None else np.asarray(star_ids),
              "component": component_names(1), "field_component": component_names(1)[1:],
              "coordinate": ["parallax"], "astrometry": ["parallax"],
              "astrometry_": ["parallax"]}
    with pm.Model(coords=coords) as model:
        mixture_weights(magnitudes)
        cluster_plx = prior("cluster_parallax", lambda name: pm.TruncatedNormal(
            name, prior_constant(cluster_guess, PRIOR_CENTER_NAME), 0.3, lower=0.01), priors)
        pm.Deterministic("cluster_distance", 1 / cluster_plx)
        delta = pm.Normal("parallax_offset", -0.02, 0.02) if offset else pt.as_tensor(0.0)
        if field == "exponential":
            field_parameters = [pm.LogNormal("field_length_scale", np.log(1.35), 0.5)]
        else:
            field_parameters = [
                pm.LogNormal("field_beta_alpha", np.log(2.0), 1.0),
                pm.LogNormal("field_beta_beta", np.log(5.0), 1.0),
                prior_constant(max(3.0, 1.2 * np.percentile(parallax, 99.5)),
                               "field_beta_x_max")]
        observed, errors = star_data(parallax[:, None], (parallax_error**2)[:, None, None])
        field_parameters = pt.stack(field_parameters)
        depth = pt.as_tensor(float(depth))
        pm.Deterministic("log_component", parallax_log_components(
            observed, cluster_plx, delta, depth, field_parameters, errors),
            dims=("star", "component"))
        ParallaxMixture("stars", log_weights(model), cluster_plx, delta, depth,
                        field_parameters, errors, observed=observed, dims=("star", "coordinate"))
    return model


def _gaussian_field_model(parallax, parallax_error, cluster_guess, n_field, star_ids,
                          cluster, magnitudes, priors):
    coords = one_axis_coords("parallax", n_field, cluster, len(parallax), star_ids)
    with pm.Model(coords=coords) as model:
        mixture_weights(magnitudes)
        parts = None
        if cluster:
            plx = prior("cluster_parallax", lambda name: pm.TruncatedNormal(
                name, prior_constant(cluster_guess, PRIOR_CENTER_NAME), 0.3, lower=0.01),
                priors)
            pm.Deterministic("cluster_distance", 1 / plx)
            parts = (plx, prior("cluster_parallax_spread", lambda name: pm.Uniform(
                name, *CLUSTER_BOUNDS["cluster_parallax_spread"]), priors))
        observe_one_axis(parallax, parallax_error, float(np.median(parallax)),
                         robust_scale(parallax), FIELD_MIN_PARALLAX_WIDTH, parts)
    return model


def from_table(table, cluster_guess: dict, parallax_field: str = "exponential",
               parallax_offset: bool = False, n_field: int = 2, cluster: bool = True,
               magnitude_prior: bool = False, priors=None):
    magnitudes = (np.asarray(table["phot_g_mean_mag"], float) if magnitude_prior
                  else None)
    return cluster_parallax(table["parallax"], table["parallax_error"],
                            cluster_guess=cluster_guess["parallax"], field=parallax_field,
                            offset=parallax_offset, star_ids=np.asarray(table["source_id"]),
                            n_field=n_field, cluster=cluster, magnitudes=magnitudes,
                            priors=priors)
