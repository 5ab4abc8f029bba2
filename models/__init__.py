"""Declarative PyMC mixture models. Each builder takes data arrays and returns a ``pm.Model``.

Each cluster model is one :class:`ClusterModel` in ``CLUSTER_MODELS``: the columns it
needs, the parameters it estimates, the options its ``from_table`` takes (a misspelt or
foreign one is an error), the axes its starting guess centres, and the labels of its
graphical model. Its module (``cluster_pmra``, ``cluster_parallax``, ``cluster_pm2d``,
``cluster_pmplx``, ``cluster_joint``) holds the maths and declares these facts; it is
imported on first use, since it loads compiled kernels (Numba) the outlier line does not
need.
"""

import importlib
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType

import pytensor

from starmix.models.outlier_line import LINE_COMPONENTS, LINE_PARAMETERS, outlier_line

# The same seed must give the same numbers whether a model's compiled code was just built or
# loaded from PyTensor's on-disk cache. With PyTensor's fast-math default the two differ in
# the last bits (functions loaded from the cache are linked, not inlined into each other, so
# LLVM contracts and reorders differently), and NUTS turns that into different draws: the
# same simulated cluster passed its convergence gate on a cold cache and failed it on a warm
# one (r_hat 1.010). PyTensor's cache key holds this flag, so no stale entry is read. The
# mixture likelihood (``starmix.models.fused``, most of the time) keeps its own fast-math flags: it
# is one function, compiled the same way either way.
pytensor.config.numba__fastmath = False


@dataclass(frozen=True)
class ClusterModel:
    """One cluster-versus-field model, by name (its module is imported on first use)."""

    name: str
    module_name: str

    @cached_property
    def module(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Gaia archive columns the model reads (units: mas, mas/yr, deg)."""
        return self.module.REQUIRED_COLUMNS

    @property
    def parameters(self) -> tuple[str, ...]:
        """The cluster's parameters, as the summary and corner plot show them."""
        return self.module.CLUSTER_PARAMETERS

    @property
    def prior_center_axes(self) -> tuple[str, ...]:
        """The astrometric axes of the cluster's prior centre (the starting guess's keys)."""
        return self.module.PRIOR_CENTER_AXES

    @property
    def options(self) -> frozenset[str]:
        """The keyword options of :meth:`from_table` (beyond the table and the guess)."""
        return frozenset(list(inspect.signature(self.module.from_table).parameters)[2:])

    @property
    def replaceable_priors(self) -> tuple[str, ...]:
        """The cluster parameters whose priors ``from_table(..., priors={name: factory})``
        may replace (each factory takes the name and returns the PyMC variable)."""
        return self.module.REPLACEABLE_PRIORS

    @property
    def pgm_labels(self) -> tuple[str, str, str]:
        """Graphical-model labels (LaTeX): cluster parameters, a star's data, its errors."""
        return self.module.PGM_LABELS

    def from_table(self, table, cluster_guess: dict, **options):
        """The model of a Gaia table, started at ``cluster_guess`` ({axis: value})."""
        return self.module.from_table(table, cluster_guess, **options)

    def __getattr__(self, name: str):  # the module's own constants and helpers
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.module, name)


class ClusterModels(Mapping):
    """The cluster models by name (``pmra``, ``parallax``, ``pm2d``, ``pmplx``, ``joint``)."""

    _models = {name: ClusterModel(name, f"starmix.models.cluster_{name}")
               for name in ("pmra", "parallax", "pm2d", "pmplx", "joint")}

    def __getitem__(self, name: str) -> ClusterModel:
        return self._models[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)


CLUSTER_MODELS = ClusterModels()


__all__ = ["CLUSTER_MODELS", "LINE_COMPONENTS", "LINE_PARAMETERS", "ClusterModel",
           "outlier_line"]
