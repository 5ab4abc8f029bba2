"""Shared helpers: small data sets and short-chain options for smoke runs."""

import numpy as np
import pytest

from data.line import simulate_outlier_line

# Short chains with a lenient gate: smoke runs check the plumbing, not convergence.
SHORT_ARGS = ["--draws", "300", "--tune", "300", "--chains", "2", "--seed", "7",
              "--ess-bulk-min", "100", "--ess-tail-min", "100", "--r-hat-max", "1.05"]


def make_line_data(seed=42, **kwargs):
    """The reference outlier-line data (or a variant with another seed)."""
    return simulate_outlier_line(seed=seed, **kwargs)


def write_line_csv(path, data=None, **columns):
    """Write points as CSV; keyword columns replace or add columns."""
    from astropy.table import Table

    data = data or make_line_data()
    table = Table({"x": data.x, "y": data.y, "y_err": data.y_err})
    for name, values in columns.items():
        table[name] = values
    table.write(path, format="ascii.csv", overwrite=True)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)
