"""Data for starmix: built-in simulators, Gaia table loading and input validation.

The names below are imported on first use (``from starmix.data import load_gaia`` works as
usual), so a workflow that needs only the line data does not load astropy's coordinates
and pyia.
"""

import importlib

_SOURCES = {
    "DataValidationError": "starmix.data.input_checks",
    "LineData": "starmix.data.line",
    "QualityCuts": "starmix.data.gaia",
    "apply_quality_cuts": "starmix.data.gaia",
    "cluster_reference": "starmix.data.clusters",
    "load_gaia": "starmix.data.gaia",
    "load_line_table": "starmix.data.line",
    "resolve_center": "starmix.data.clusters",
    "simulate_cluster_field": "starmix.data.cluster_field",
    "simulate_outlier_line": "starmix.data.line",
    "validate_gaia": "starmix.data.gaia",
    "write_cluster_field": "starmix.data.cluster_field",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    if name not in _SOURCES:
        raise AttributeError(f"module 'starmix.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_SOURCES[name]), name)


def __dir__() -> list[str]:
    return __all__
