"""Data for starmix: built-in simulators, table loading and input validation."""

from data.line import LineData, load_line_table, simulate_outlier_line
from data.validation import DataValidationError

__all__ = ["DataValidationError", "LineData", "load_line_table", "simulate_outlier_line"]
