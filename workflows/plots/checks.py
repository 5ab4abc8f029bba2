"""Figures of the predictive checks (:mod:`starmix.workflows.inference.checks`): per observed
coordinate, the
observed ECDF against the 90% band of the prior's and the posterior's replicated ECDFs,
and the LOO-PIT ECDF against the uniform with its band."""

import numpy as np

from starmix.workflows.inference.checks import ALPHA
from starmix.workflows.plots.common import plt

GRID = 200


def ecdf_band(replicated: np.ndarray, grid: np.ndarray, q=(5, 95)) -> np.ndarray:
    """(2, grid) percentiles ``q`` over draws of the replicated ECDFs (draws, N) on ``grid``."""
    ordered = np.sort(replicated, axis=1)
    ecdfs = np.stack([np.searchsorted(row, grid, side="right") / row.size for row in ordered])
    return np.percentile(ecdfs, q, axis=0)


def _ecdf_panel(axis, observed, replicated, label, colour):
    low, high = np.percentile(observed, [0.5, 99.5])
    grid = np.linspace(low, high, GRID)
    band = ecdf_band(replicated, grid)
    axis.fill_between(grid, band[0], band[1], color=colour, alpha=0.35, lw=0,
                      label=f"{label} 90% band")
    axis.plot(grid, np.searchsorted(np.sort(observed), grid, side="right") / observed.size,
              color="k", lw=1.0, label="observed")
    axis.set_ylim(0, 1)


def predictive_figure(arrays: dict, title: str):
    """One row per observed coordinate: prior ECDF band, posterior ECDF band, LOO-PIT."""
    names = arrays["names"]
    pit = arrays.get("loo_pit")
    columns = 3 if pit is not None else 2
    figure, axes = plt.subplots(len(names), columns, figsize=(3.4 * columns, 2.5 * len(names)),
                                squeeze=False)
    for j, name in enumerate(names):
        observed = arrays["observed"][:, j]
        _ecdf_panel(axes[j, 0], observed, arrays["prior"][..., j], "prior", "tab:orange")
        _ecdf_panel(axes[j, 1], observed, arrays["posterior"][..., j], "posterior", "tab:blue")
        for axis in axes[j, :2]:
            axis.set_xlabel(name)
            axis.set_ylabel("ECDF")
        if pit is not None:
            axis = axes[j, 2]
            n = pit.shape[0]
            grid = np.linspace(0, 1, GRID)
            ecdf = np.searchsorted(np.sort(pit[:, j]), grid, side="right") / n
            from scipy.stats import kstwobign

            allowed = kstwobign.ppf(1 - ALPHA) / np.sqrt(n)
            axis.fill_between(grid, -allowed, allowed, color="0.85", lw=0,
                              label=f"{1 - ALPHA:.0%} band (uniform)")
            axis.plot(grid, ecdf - grid, color="tab:green", lw=1.0)
            axis.axhline(0, color="0.5", lw=0.6)
            axis.set_xlabel(f"LOO-PIT of {name}")
            axis.set_ylabel("ECDF - uniform")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[0, 1].legend(fontsize=7, loc="upper left")
    if pit is not None:
        axes[0, 2].legend(fontsize=7, loc="upper left")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure
