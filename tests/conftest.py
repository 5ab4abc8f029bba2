"""Shared helpers: small data sets and short-chain options for smoke runs."""

import sys
from pathlib import Path

import numpy as np
import pytest

# validation/ and benchmarks/ are not installed with the package: importable from the
# checkout (appended, so that the starmix package found first stays the one imported)
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from starmix.data.line import simulate_outlier_line  # noqa: E402

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


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(name):
    """Path to a real data file in ../shared/data; skips the test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"real data {name} not found in {SHARED_DATA} (needs ../shared beside the "
                    "repository)")
    return path


def make_field(seed=1, n_cluster=300, n_field=700, **overrides):
    """A small simulated NGC 6819 field."""
    from starmix.data.cluster_field import simulate_cluster_field

    return simulate_cluster_field("ngc6819", seed=seed, n_cluster=n_cluster, n_field=n_field,
                                  **overrides)


def observed_loglike(model):
    """The summed log-density of a model's observed stars, as a graph of its free
    variables (the model's likelihood)."""
    import pymc as pm

    stars = model["stars"]
    return pm.logp(stars, model.rvs_to_values[stars]).sum()


def pytest_collection_modifyitems(config, items):
    """Whole-workflow and slow tests run first (in their collected order, then the rest):
    on two pytest-xdist workers the long runs then overlap the many short tests instead of
    finishing one by one at the end while the other worker idles."""
    def heavy(item):
        return item.get_closest_marker("workflow") is not None or item.get_closest_marker(
            "slow") is not None

    items[:] = [item for item in items if heavy(item)] + [item for item in items
                                                          if not heavy(item)]
