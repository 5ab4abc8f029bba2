"""Straight-line data with outliers: the reference simulator and user tables.

The reference data set (Hogg, Bovy & Lang 2010 style, as in the seed notebook) is made by
:func:`simulate_outlier_line` with its defaults; ``y`` and its errors are in the same
(arbitrary) units, ``x`` likewise.
"""

from dataclasses import dataclass, field

import numpy as np

from starmix.data.input_checks import (
    DataValidationError,
    as_float_column,
    drop_rows,
    read_table,
    require_columns,
    row_problems,
    source_name,
    validate_columns,
)


@dataclass(frozen=True)
class LineData:
    """Points (x, y) with 1-sigma errors; optional x errors and x-y error correlation.

    ``truth`` holds the generating parameters when the data are simulated, and
    ``is_outlier`` the true outlier flags; both are empty for real data.
    """

    x: np.ndarray
    y: np.ndarray
    y_err: np.ndarray
    x_err: np.ndarray | None = None
    xy_corr: np.ndarray | None = None
    truth: dict = field(default_factory=dict)
    is_outlier: np.ndarray | None = None
    source: str = "simulated"
    dropped: dict = field(default_factory=dict)

    def __post_init__(self):
        columns = {"x": self.x, "y": self.y, "y_err": self.y_err}
        if self.x_err is not None:
            columns["x_err"] = self.x_err
        if self.xy_corr is not None:
            if self.x_err is None:
                raise DataValidationError("xy_corr", "need x_err: a correlation without it", 0, 0)
            columns["xy_corr"] = self.xy_corr
        validate_columns(columns, positive=("y_err", "x_err"), correlations=("xy_corr",))

    def __len__(self) -> int:
        return len(self.x)


def simulate_outlier_line(
    seed: int = 42,
    n_points: int = 32,
    slope: float = 3.17,
    intercept: float = -11.9,
    n_outliers: int = 8,
    outlier_sd: float = 15.0,
    y_err_range: tuple[float, float] = (0.5, 3.0),
) -> LineData:
    """Simulate the reference outlier-line data set.

    Draws, in this order, from ``np.random.default_rng(seed)``: x ~ U(0, 10) (then sorted);
    outlier indices ``rng.choice(n_points, size=n_outliers)`` (with replacement, so an index
    may repeat) whose true y is replaced by N(0, outlier_sd); y_err ~ U(``*y_err_range``);
    y ~ N(true_y, y_err). With the defaults this is exactly the seed notebook's data.
    """
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 10, size=n_points))
    true_y = slope * x + intercept
    outlier_index = rng.choice(n_points, size=n_outliers)
    true_y[outlier_index] = rng.normal(0, outlier_sd, size=n_outliers)
    y_err = rng.uniform(*y_err_range, size=n_points)
    y = rng.normal(true_y, y_err)
    is_outlier = np.zeros(n_points, dtype=bool)
    is_outlier[outlier_index] = True
    truth = {"m": slope, "b": intercept, "w_line": 1 - is_outlier.mean()}
    return LineData(x=x, y=y, y_err=y_err, truth=truth, is_outlier=is_outlier)


def load_line_table(
    path,
    x: str = "x",
    y: str = "y",
    y_err: str = "y_err",
    x_err: str | None = None,
    xy_corr: str | None = None,
    drop_invalid: bool = False,
) -> LineData:
    """Read points from a CSV (also gzipped), ECSV, FITS or VOTable file (or a table object
    given in Python) with the given column names. ``drop_invalid`` removes rows with text,
    NaN or inf, errors <= 0 or ``|correlation| > 1``, and counts them per reason in
    ``LineData.dropped``."""
    table = read_table(path, "data file")
    wanted = {"x": x, "y": y, "y_err": y_err, "x_err": x_err, "xy_corr": xy_corr}
    wanted = {role: column for role, column in wanted.items() if column is not None}
    require_columns(table.colnames, list(wanted.values()))
    values, text = {}, {}
    for role, column in wanted.items():
        if drop_invalid:
            values[role], text[column] = as_float_column(column, table[column], lenient=True)
        else:
            values[role] = as_float_column(column, table[column])
    dropped = {}
    if drop_invalid and len(table):
        masks = row_problems({wanted[role]: array for role, array in values.items()}, text,
                             positive=[c for r, c in wanted.items() if r in ("y_err", "x_err")],
                             correlations=[wanted.get("xy_corr")])
        keep, dropped = drop_rows(masks, len(table), ", ".join(wanted.values()))
        values = {role: array[keep] for role, array in values.items()}
    try:
        return LineData(**values, source=source_name(path), dropped=dropped)
    except DataValidationError as err:
        # Report the user's own column name, not the internal role.
        raise DataValidationError(wanted.get(err.column, err.column), err.reason, err.n_bad,
                                  err.n_total) from None
