"""Figures shared by the workflows (matplotlib, written to files; no screen needed)."""

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import xarray as xr  # noqa: E402


def corner_plot(idata: xr.DataTree, var_names, coords=None, truths=None, title=None):
    """ArviZ pair plot of ``var_names``; ``truths`` ({name: value}) drawn as red lines.

    Returns the matplotlib figure.
    """
    var_names = list(var_names)
    plot = az.plot_pair(
        idata, var_names=var_names, coords=coords, backend="matplotlib", marginal=True
    )
    figure = plot.viz["figure"].item()
    figure.set_size_inches(2.2 * len(var_names), 2.2 * len(var_names))
    truths = {name: value for name, value in (truths or {}).items() if name in var_names}
    for row, y_name in enumerate(var_names):
        for x_name in var_names[: row + 1]:
            if x_name not in truths or y_name not in truths:
                continue
            axes = plot.get_target(x_name, {}, y_name, {})
            axes.axvline(truths[x_name], color="tab:red", lw=1)
            if x_name != y_name:
                axes.axhline(truths[y_name], color="tab:red", lw=1)
                axes.plot(truths[x_name], truths[y_name], "s", color="tab:red", ms=4)
    if title:
        figure.suptitle(title)
    return figure


def close(figure) -> None:
    plt.close(figure)
