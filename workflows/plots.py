"""Figures shared by the workflows (matplotlib, written to files; no screen needed)."""

import importlib
import sys
import types

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
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


def corner_plot(idata: xr.DataTree, var_names, coords=None, truths=None, title=None):
    """ArviZ pair plot of ``var_names``; ``truths`` ({name: value}) drawn as red lines.

    Returns the matplotlib figure.
    """
    var_names = list(var_names)
    with az.rc_context({"plot.max_subplots": 200}):  # a pmplx model with a halo has 9 axes
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
