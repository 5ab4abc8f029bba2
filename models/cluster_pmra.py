"""NGC 6819-style cluster membership from pmra alone (1D).

For star i with measured pmra x_i and error e_i:

* cluster:  x_i ~ N(cluster_pmra, cluster_pmra_dispersion² + e_i²)
* field k:  x_i ~ N(field_mean_k, field_sd_k² + e_i²), k = 1..K (widths ordered)

with weights ``w ~ Dirichlet(1, ..., 1)`` over [cluster, field_1..K]. Units: mas/yr.
Priors: cluster_pmra ~ N(guess, 1); dispersion ~ U(0, 0.5), below every field width (the
cluster stays the narrow component); field means ~ N(median, 2 x robust width); field
sd = 0.5 + LogNormal(log robust width, 1), ordered (median and robust width of the data
unless given).
"""

import numpy as np
import pymc as pm

from starmix.models.field import (
    FIELD_MIN_PM_WIDTH,
    mixture_weights,
    observe_one_axis,
    one_axis_coords,
    robust_scale,
)
from starmix.models.shared import check_priors, prior, prior_constant

REQUIRED_COLUMNS = ("source_id", "pmra", "pmra_error")
CLUSTER_PARAMETERS = ("cluster_pmra", "cluster_pmra_dispersion", "w")
# the cluster priors a user may replace (``priors={name: factory}``)
REPLACEABLE_PRIORS = ("cluster_pmra", "cluster_pmra_dispersion")
# the shared variable holding the cluster's prior centre, and what it holds, in order
PRIOR_CENTER_NAME = "cluster_pmra_prior_center"
PRIOR_CENTER_AXES = ("pmra",)
# graphical-model labels: cluster parameters, a star's data, its errors
PGM_LABELS = (r"$\mu_{\alpha,c}, s_c$", r"$a_i$", r"$\sigma_{\alpha,i}$")


def cluster_pmra(pmra, pmra_error, *, cluster_guess: float, n_field: int = 2, star_ids=None,
                 field_center: float | None = None, field_scale: float | None = None,
                 cluster: bool = True,
                 magnitudes=None, priors=None):
    """Build the 1D pmra mixture. ``cluster_guess``: prior centre of the cluster (mas/yr).

    ``field_center`` and ``field_scale`` (mas/yr) set the field priors; by default the
    median and robust width of the data (fixed values give a data-independent prior, as
    simulation-based calibration needs). ``cluster=False``: the field-only alternative
    of the detection step.
    """
    priors = check_priors(priors, REPLACEABLE_PRIORS, "pmra")
    pmra, pmra_error = np.asarray(pmra, float), np.asarray(pmra_error, float)
    coords = one_axis_coords("pmra", n_field, cluster, len(pmra), star_ids)
    center = float(np.median(pmra)) if field_center is None else field_center
    scale = robust_scale(pmra) if field_scale is None else field_scale
    with pm.Model(coords=coords) as model:
        mixture_weights(magnitudes)
        if cluster:
            mean = prior("cluster_pmra", lambda name: pm.Normal(
                name, prior_constant(cluster_guess, PRIOR_CENTER_NAME), 1.0), priors)
            dispersion = prior("cluster_pmra_dispersion",
                               lambda name: pm.Uniform(name, 0.0, FIELD_MIN_PM_WIDTH), priors)
        observe_one_axis(pmra, pmra_error, center, scale, FIELD_MIN_PM_WIDTH,
                         (mean, dispersion) if cluster else None)
    return model


def from_table(table, cluster_guess: dict, n_field: int = 2, cluster: bool = True,
               magnitude_prior: bool = False, priors=None):
    magnitudes = (np.asarray(table["phot_g_mean_mag"], float) if magnitude_prior
                  else None)
    return cluster_pmra(table["pmra"], table["pmra_error"], cluster_guess=cluster_guess["pmra"],
                        n_field=n_field, star_ids=np.asarray(table["source_id"]),
                        cluster=cluster, magnitudes=magnitudes, priors=priors)
