"""Data for starmix: built-in simulators, Gaia table loading and input validation."""

from data.cluster_field import simulate_cluster_field, write_cluster_field
from data.clusters import cluster_reference, resolve_center
from data.gaia import QualityCuts, apply_quality_cuts, load_gaia, validate_gaia
from data.line import LineData, load_line_table, simulate_outlier_line
from data.validation import DataValidationError

__all__ = [
    "DataValidationError",
    "LineData",
    "QualityCuts",
    "apply_quality_cuts",
    "cluster_reference",
    "load_gaia",
    "load_line_table",
    "resolve_center",
    "simulate_cluster_field",
    "simulate_outlier_line",
    "validate_gaia",
    "write_cluster_field",
]
