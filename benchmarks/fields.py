"""Simulated fields and pm2d input arrays shared by the benchmark scripts."""

import numpy as np

from starmix.data.cluster_field import simulate_cluster_field
from starmix.models.cluster_pm2d import pm_covariance

DEFAULT_MEMBER_FRACTION = 6170 / 17000  # members in the default NGC 6819 field


def pm_arrays(stars) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) proper motions and (N, 2, 2) error covariances of a star table, mas/yr."""
    values = np.stack([np.asarray(stars["pmra"], float), np.asarray(stars["pmdec"], float)], -1)
    cov = pm_covariance(*(np.asarray(stars[name], float)
                          for name in ("pmra_error", "pmdec_error", "pmra_pmdec_corr")))
    return values, cov


def scaled_field(n_stars: int):
    """An NGC 6819-like simulated field of ``n_stars`` with the default member fraction."""
    n_cluster = int(round(n_stars * DEFAULT_MEMBER_FRACTION))
    return simulate_cluster_field("ngc6819", seed=1, n_cluster=n_cluster,
                                  n_field=n_stars - n_cluster)
