"""Posterior summary tables."""

import arviz as az
import xarray as xr
from astropy.table import Table


def summary_table(idata: xr.DataTree, var_names) -> Table:
    """Posterior mean, sd, 68% and 95% equal-tailed intervals, r_hat and ESS per parameter."""
    inner = az.summary(idata, var_names=list(var_names), ci_prob=0.68, round_to="none")
    outer = az.summary(idata, var_names=list(var_names), kind="stats", ci_prob=0.95,
                       round_to="none")
    table = Table.from_pandas(inner.join(outer[["eti95_lb", "eti95_ub"]]), index=True)
    table.rename_column("index", "parameter")
    return table
