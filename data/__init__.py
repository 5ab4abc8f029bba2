"""Data for starmix: built-in simulators, Gaia table loading and input validation.

The names below are imported on first use (``from data import load_gaia`` works as
usual), so a workflow that needs only the line data does not load astropy's coordinates
and pyia.
"""

import importlib

_SOURCES = {
    "DataValidationError": "data.input_checks",
    "LineData": "data.line",
    "QualityCuts": "data.gaia",
    "apply_quality_cuts": "data.gaia",
    "cluster_reference": "data.clusters",
    "load_gaia": "data.gaia",
    "load_line_table": "data.line",
    "resolve_center": "data.clusters",
    "simulate_cluster_field": "data.cluster_field",
    "simulate_outlier_line": "data.line",
    "validate_gaia": "data.gaia",
    "write_cluster_field": "data.cluster_field",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    if name not in _SOURCES:
        raise AttributeError(f"module 'data' has no attribute {name!r}")
    return getattr(importlib.import_module(_SOURCES[name]), name)


def __dir__() -> list[str]:
    return __all__
