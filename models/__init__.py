"""Declarative PyMC mixture models. Each builder takes data arrays and returns a ``pm.Model``.

Cluster models (each module declares ``REQUIRED_COLUMNS``, ``CLUSTER_PARAMETERS`` and a
``from_table`` adapter) are listed in ``CLUSTER_MODELS``, which imports a module on first
use: they load compiled kernels (Numba) that the outlier line does not need.
"""

import importlib
import inspect
from collections.abc import Iterator, Mapping
from types import ModuleType

from starmix.models.outlier_line import LINE_COMPONENTS, LINE_PARAMETERS, outlier_line


class ClusterModels(Mapping):
    """Cluster model modules by name (``pmra``, ``parallax``, ``pm2d``, ``pmplx``, ``joint``)."""

    _modules = {
        "pmra": "starmix.models.cluster_pmra",
        "parallax": "starmix.models.cluster_parallax",
        "pm2d": "starmix.models.cluster_pm2d",
        "pmplx": "starmix.models.cluster_pmplx",
        "joint": "starmix.models.cluster_joint",
    }

    def __getitem__(self, name: str) -> ModuleType:
        return importlib.import_module(self._modules[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


CLUSTER_MODELS = ClusterModels()


def model_options(name: str) -> frozenset[str]:
    """The keyword options a cluster model's ``from_table`` takes (beyond the table and
    the starting guess): what the workflow may pass it, and what a user may set for it."""
    parameters = inspect.signature(CLUSTER_MODELS[name].from_table).parameters
    return frozenset(list(parameters)[2:])

__all__ = ["CLUSTER_MODELS", "LINE_COMPONENTS", "LINE_PARAMETERS", "model_options",
           "outlier_line"]
