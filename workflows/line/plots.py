"""Data-space figures of the outlier-line workflow."""

import numpy as np
import xarray as xr

from starmix.data.line import LineData
from starmix.workflows.plots import common as plots
from starmix.workflows.plots.common import plt


def line_fit_figure(data: LineData, idata: xr.DataTree):
    """Data with error bars, weighted least squares, the 16-84% posterior band, the truth."""
    posterior = idata["posterior"]
    slopes = posterior["m"].values.ravel()
    intercepts = posterior["b"].values.ravel()
    grid = np.linspace(data.x.min() - 0.5, data.x.max() + 0.5, 200)
    lines = slopes[:, None] * grid + intercepts[:, None]
    low, median, high = np.percentile(lines, [16, 50, 84], axis=0)
    wls_slope, wls_intercept = np.polyfit(data.x, data.y, 1, w=1 / data.y_err)

    figure, axes = plt.subplots(figsize=(7, 5))
    axes.errorbar(data.x, data.y, data.y_err, fmt="o", color="k", ms=4, label="data")
    axes.plot(grid, wls_slope * grid + wls_intercept, "--", color="tab:orange",
              label="weighted least squares")
    axes.fill_between(grid, low, high, color="tab:blue", alpha=0.3, label="posterior 16-84%")
    axes.plot(grid, median, color="tab:blue", label="posterior median")
    if "m" in data.truth:
        axes.plot(grid, data.truth["m"] * grid + data.truth["b"], ":", color="tab:red",
                  label="true line")
    axes.set(xlabel="x", ylabel="y", title="Straight line with outliers")
    axes.legend(loc="upper left", fontsize=8)
    return figure


def membership_figure(data: LineData, p_line: np.ndarray):
    """Data coloured by the posterior probability of lying on the line."""
    figure, axes = plt.subplots(figsize=(7, 5))
    axes.errorbar(data.x, data.y, data.y_err, fmt="none", ecolor="0.7", zorder=1)
    points = axes.scatter(data.x, data.y, c=p_line, cmap="viridis", vmin=0, vmax=1,
                          edgecolor="k", zorder=2)
    if data.is_outlier is not None:
        axes.scatter(data.x[data.is_outlier], data.y[data.is_outlier], s=150,
                     facecolor="none", edgecolor="tab:red", label="true outlier", zorder=3)
        axes.legend(loc="upper left", fontsize=8)
    figure.colorbar(points, ax=axes, label="P(on the line)")
    axes.set(xlabel="x", ylabel="y", title="Membership probability")
    return figure


def fit_corner(fit, var_names=None, truths=None):
    """:meth:`starmix.api.Fit.plot_corner` of an outlier-line fit: m, b, s_out and the
    line's weight (or ``var_names``)."""
    names = [name for name in var_names or ("m", "b", "s_out", "w")
             if name in fit.idata["posterior"]]
    return plots.corner_plot(fit.idata, names, coords={"component": "line"}, truths=truths)


def fit_membership(fit):
    """:meth:`starmix.api.Fit.plot_membership` of an outlier-line fit: the points coloured
    by their probability of lying on the line."""
    table = fit.membership
    outlier = (np.asarray(table["true_outlier"], bool) if "true_outlier" in table.colnames
               else None)
    data = LineData(np.asarray(table["x"], float), np.asarray(table["y"], float),
                    np.asarray(table["y_err"], float), is_outlier=outlier)
    return membership_figure(data, np.asarray(table["p_line"]))
