"""Figures shared by the workflows (matplotlib, written to files; no screen needed)."""

import importlib
import sys
import types

import matplotlib

matplotlib.use("Agg")

import arviz  # noqa: E402, F401  (imported before _defer_arviz_jax cleans up after it)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402


class _ImportOnUse(types.ModuleType):
    """Stands for a module that is imported, for real, when first used."""

    def __getattr__(self, name: str):
        return getattr(importlib.import_module(self.__name__), name)


def _defer_arviz_jax() -> None:
    """Keep JAX unimported until something uses it (saves ~1.4 s per command).

    ``arviz_base.io_numpyro`` puts lazy placeholders for ``jax`` and ``numpyro`` in
    ``sys.modules`` (lazy_loader), and matplotlib checks every plotted array against
    ``sys.modules.get("jax").Array``, which loads the placeholder: all of JAX, in a run
    that never uses it. Unloaded placeholders leave ``sys.modules``; arviz_base's
    references import the real module on first use instead.
    """
    io_numpyro = sys.modules.get("arviz_base.io_numpyro")
    for name in ("jax", "numpyro"):
        placeholder = sys.modules.get(name)
        if type(placeholder).__name__ != "_LazyModule":  # absent, or already imported
            continue
        del sys.modules[name]
        if io_numpyro is not None and vars(io_numpyro).get(name) is placeholder:
            setattr(io_numpyro, name, _ImportOnUse(name))


_defer_arviz_jax()


# What each plotted parameter is called on an axis, and its unit ("" for none).
PARAMETER_LABELS = {
    "m": ("slope m", ""),
    "b": ("intercept b", "y units"),
    "s_out": ("outlier width s_out", "y units"),
    "s_int": ("intrinsic scatter s_int", "y units"),
    "w": ("weight w", ""),
    "cluster_pmra": ("cluster μ_α*", "mas/yr"),
    "cluster_pm[pmra]": ("cluster μ_α*", "mas/yr"),
    "cluster_pm[pmdec]": ("cluster μ_δ", "mas/yr"),
    "cluster_pmra_dispersion": ("cluster σ_μ", "mas/yr"),
    "cluster_pm_dispersion": ("cluster σ_μ", "mas/yr"),
    "cluster_parallax": ("cluster ϖ", "mas"),
    "cluster_parallax_spread": ("cluster σ_ϖ", "mas"),
    "cluster_parallax_dispersion": ("cluster σ_ϖ", "mas"),
    "cluster_distance": ("cluster distance", "kpc"),
    "cluster_halo_fraction": ("halo fraction f", ""),
    "cluster_halo_dispersion": ("halo σ_μ", "mas/yr"),
    "plummer_radius": ("Plummer radius", "arcmin"),
}


def axis_label(column: str) -> str:
    """``column`` (a variable, or ``name[coord]``) as an axis label with its unit: a
    weight is named by its component (``w[cluster]`` -> "weight w (cluster)")."""
    name, _, coord = column.partition("[")
    text, unit = PARAMETER_LABELS.get(column, PARAMETER_LABELS.get(name, (name, "")))
    if coord and column not in PARAMETER_LABELS:
        text = f"{text} ({coord.rstrip(']')})"
    return f"{text} [{unit}]" if unit else text


def posterior_columns(idata: xr.DataTree, var_names, coords=None):
    """The posterior draws of ``var_names`` as columns (draws x columns) and their names:
    a variable with dimensions gives one column per coordinate (``cluster_pm[pmra]``);
    ``coords`` selects along a dimension first (``{"component": "cluster"}``)."""
    posterior = idata["posterior"].to_dataset()
    columns, names = [], []
    for name in var_names:
        values, selected = posterior[name], []
        for dim, label in (coords or {}).items():
            if dim in values.dims:
                values, selected = values.sel({dim: label}), [*selected, str(label)]
        values = values.stack(sample=("chain", "draw"))
        extra = [dim for dim in values.dims if dim != "sample"]
        if not extra:
            columns.append(values.values)
            names.append(f"{name}[{', '.join(selected)}]" if selected else name)
            continue
        flat = values.stack(column=extra).transpose("sample", "column")
        for index, coord in enumerate(flat["column"].values):
            coord = coord if isinstance(coord, tuple) else (coord,)
            columns.append(flat.values[:, index])
            names.append(f"{name}[{', '.join([*selected, *map(str, coord)])}]")
    return np.column_stack(columns), names


def _quantile_title(label: str, values: np.ndarray) -> str:
    """``label = median +upper -lower`` (16/50/84 percentiles), with two significant
    digits in the smaller of the two errors."""
    low, mid, high = np.percentile(values, [16, 50, 84])
    error = min(mid - low, high - mid)
    decimals = 3 if error <= 0 else int(max(0, 1 - np.floor(np.log10(error))))
    return f"{label}\n= {mid:.{decimals}f} +{high - mid:.{decimals}f} -{mid - low:.{decimals}f}"


def corner_plot(idata: xr.DataTree, var_names, coords=None, truths=None, title=None):
    """Corner plot (the ``corner`` package) of the posterior of ``var_names``: 1-2 sigma
    contours with the draws beyond them as points, 16/50/84 percentiles marked and written
    in each column's title, axis labels with units, and ``truths`` ({column: value},
    columns named as :func:`posterior_columns` names them, e.g. ``cluster_pm[pmra]`` or
    ``w[cluster]``) as red lines. Returns the matplotlib figure."""
    import corner  # imported on use: the outlier line's command imports no more than it needs

    samples, names = posterior_columns(idata, list(var_names), coords)
    truth_values = [(truths or {}).get(name) for name in names]
    has_truth = any(value is not None for value in truth_values)
    n, labels = len(names), [axis_label(name) for name in names]
    figure = plt.figure(figsize=(max(2.6 * n, 5.0), max(2.6 * n, 5.0)))
    corner.corner(samples, fig=figure, labels=labels,
                  quantiles=[0.16, 0.5, 0.84], truth_color="tab:red",
                  truths=truth_values if has_truth else None,
                  levels=(1 - np.exp(-0.5), 1 - np.exp(-2.0)), plot_datapoints=True,
                  fill_contours=True, max_n_ticks=3, label_kwargs={"fontsize": 10},
                  hist_kwargs={"color": "tab:blue"}, color="tab:blue", smooth=1.0,
                  labelpad=0.05, use_math_text=True)
    axes = np.array(figure.axes).reshape(n, n)
    for index, label in enumerate(labels):
        axes[index, index].set_title(_quantile_title(label, samples[:, index]), fontsize=9)
    for axis in figure.axes:
        axis.tick_params(labelsize=8)
    if has_truth:
        figure.legend(handles=[plt.Line2D([], [], color="tab:red", label="true value")],
                      loc="upper right", frameon=False)
    if title:
        figure.suptitle(title, y=0.995)
    figure.subplots_adjust(left=0.14, bottom=0.14, top=0.9, right=0.97, wspace=0.08,
                           hspace=0.08)
    return figure


def close(figure) -> None:
    plt.close(figure)
