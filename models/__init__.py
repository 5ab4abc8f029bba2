"""Declarative PyMC mixture models. Each builder takes data arrays and returns a ``pm.Model``."""

from models.outlier_line import LINE_COMPONENTS, LINE_PARAMETERS, outlier_line

__all__ = ["LINE_COMPONENTS", "LINE_PARAMETERS", "outlier_line"]
