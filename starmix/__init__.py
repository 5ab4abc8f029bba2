"""starmix: Bayesian mixture models for astronomy, on PyMC.

The Python API, for notebooks and scripts (the ``starmix`` command line does the same):

    import starmix
    fit = starmix.fit_outlier_line(x, y, y_err)          # a straight line with outliers
    fit = starmix.fit_cluster(table, model="pm2d")       # cluster membership in a Gaia field
    fit = starmix.fit_density(ages, errors, log=True)    # a density with errors
    fit.passed, fit.idata, fit.membership, fit.record
    fit.plot_corner(); fit.plot_membership(); fit.save("results/my-run")

The subpackages are the project's top-level folders: ``starmix.data`` (loading, checking
and simulating data), ``starmix.models`` (the PyMC models) and ``starmix.workflows``
(sampling, the convergence gate, membership, checks, results and figures). Names below are
imported on first use, so ``import starmix`` stays light.
"""

import importlib

_API = {"fit_cluster": "starmix.api", "fit_outlier_line": "starmix.api", "Fit": "starmix.api",
        "load_fit": "starmix.api", "fit_density": "starmix.api"}

__all__ = sorted(_API)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'starmix' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
