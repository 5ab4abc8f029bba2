"""Declarative PyMC mixture models. Each builder takes data arrays and returns a ``pm.Model``.

Cluster models (each module declares ``REQUIRED_COLUMNS``, ``CLUSTER_PARAMETERS`` and a
``from_table`` adapter) are listed in ``CLUSTER_MODELS``.
"""

from models import cluster_joint, cluster_parallax, cluster_pm2d, cluster_pmra
from models.outlier_line import LINE_COMPONENTS, LINE_PARAMETERS, outlier_line

CLUSTER_MODELS = {
    "pmra": cluster_pmra,
    "parallax": cluster_parallax,
    "pm2d": cluster_pm2d,
    "joint": cluster_joint,
}

__all__ = ["CLUSTER_MODELS", "LINE_COMPONENTS", "LINE_PARAMETERS", "outlier_line"]
