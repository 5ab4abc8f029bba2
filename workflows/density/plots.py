"""Figures of the density workflows.

* ``density``: 1-D: histogram of the values, the KDEs, EM, variational DP and XDGMM, and
  the posterior density (intrinsic, deconvolved) with its 16-84% band; physical limits
  and the truth (simulated data) marked. 2-D: the "photograph" (the points as an image)
  with the posterior-mean components' 1 and 2 sigma ellipses and scikit-learn's EM ones.
* ``synthetic``: synthetic sets from posterior draws beside gaussian_kde.resample sets.
* ``checks``: the prior and posterior predictive checks.
* ``comparison`` (ages): posterior of the differences in mean and width, and the
  predictive two-sample check's replicated K-S D against the observed.
"""

import numpy as np

from starmix.workflows.density.baselines import grid_density
from starmix.workflows.plots import common as plots
from starmix.workflows.plots.checks import predictive_figure
from starmix.workflows.plots.common import plt

BASELINE_STYLES = {
    "kde_scott": ("tab:orange", "-"), "kde_silverman": ("tab:orange", ":"),
    "kde_cv": ("tab:red", "--"), "em_bic": ("tab:green", "-."), "vb_dp": ("tab:purple", ":"),
    "xdgmm": ("black", "--"),
}


def density_1d(data, fit, extras, inputs):
    band = extras["band"]
    figure, axis = plt.subplots(figsize=(11, 5))
    values = data.values[:, 0]
    axis.hist(values, bins="auto", density=True, color="0.85", edgecolor="0.6",
              label=f"data ({len(values)})")
    for key, baseline in extras["baselines"].items():
        colour, style = BASELINE_STYLES.get(key, ("0.3", "-"))
        axis.plot(band.grid, grid_density(baseline, band.grid, fit.log), color=colour,
                  linestyle=style, lw=1.3, label=baseline.label)
    axis.fill_between(band.grid, band.p16, band.p84, color="tab:blue", alpha=0.3,
                      label="posterior 16-84%")
    axis.plot(band.grid, band.mean, color="tab:blue", lw=2.2,
              label=f"posterior mean, K = {fit.n_components} (deconvolved)")
    if data.truth and not fit.log:
        from starmix.workflows.density.fit import mixture_log_density

        truth = data.truth
        true = np.exp(mixture_log_density(band.grid[:, None], truth["w"][None],
                                          truth["mean"][None], truth["cov"][None]))[0]
        axis.plot(band.grid, true, color="crimson", lw=1.5, label="truth (intrinsic)")
    for limit in (inputs.lower, inputs.upper):
        if limit is not None and band.grid[0] <= limit <= band.grid[-1]:
            axis.axvline(limit, color="0.2", lw=1, linestyle=(0, (4, 2)))
            axis.annotate(f"limit {limit:g}", (limit, axis.get_ylim()[1] * 0.95),
                          ha="right", va="top", rotation=90, fontsize=8)
    axis.set_xlabel(data.columns[0])
    axis.set_ylabel(f"density (per unit of {data.columns[0]})")
    axis.set_title(f"{data.columns[0]}: {data.source}", fontsize=10)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    return figure


def ellipse(axis, mean, cov, colour, style="-", label=None, n_sigma=(1, 2)):
    values, vectors = np.linalg.eigh(cov[:2, :2])
    angle = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(angle), np.sin(angle)])
    for j, n in enumerate(n_sigma):
        path = mean[:2, None] + vectors @ (n * np.sqrt(values)[:, None] * circle)
        axis.plot(path[0], path[1], color=colour, linestyle=style, lw=1.4,
                  label=label if j == 0 else None)


def photograph(data, fit, extras):
    """The 2-D sample as an image, with the fitted components (first two coordinates)."""
    figure, axis = plt.subplots(figsize=(7, 6.5))
    values = data.values
    axis.hist2d(values[:, 0], values[:, 1], bins=160, cmap="magma", cmin=None)
    axis.set_facecolor("black")
    draws = fit.draws()
    for k in range(fit.n_components):
        ellipse(axis, draws["mean"][:, k].mean(0), draws["cov"][:, k].mean(0), "cyan",
                label="posterior mean components" if k == 0 else None)
    em = extras["baselines"]["em_bic"].components
    for k in range(len(em["w"])):
        ellipse(axis, em["mean"][k], em["cov"][k], "lime", "--",
                label="scikit-learn EM (BIC)" if k == 0 else None)
    if data.truth:
        for k in range(len(data.truth["w"])):
            ellipse(axis, data.truth["mean"][k], data.truth["cov"][k], "white", ":",
                    label="truth" if k == 0 else None, n_sigma=(2,))
    axis.set_aspect("equal")
    axis.set_xlabel(data.columns[0])
    axis.set_ylabel(data.columns[1])
    axis.set_title(f"{data.source}: K = {fit.n_components} (1 and 2 sigma)", fontsize=10)
    axis.legend(fontsize=8, loc="upper left", facecolor="0.2", labelcolor="white")
    figure.tight_layout()
    return figure


def synthetic_figure(data, extras):
    sets, kde_sets = extras["sets"], extras["kde_sets"]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True, sharey=True)
    if data.dim == 1:
        values = data.values[:, 0]
        bins = np.histogram_bin_edges(np.concatenate([values, sets[..., 0].ravel(),
                                                      kde_sets[..., 0].ravel()]), 40)
        for axis, chosen, title in ((axes[0], sets, "posterior predictive: one draw per set"),
                                    (axes[1], kde_sets, "gaussian_kde.resample (Scott)")):
            for row in chosen[..., 0]:
                axis.hist(row, bins=bins, density=True, histtype="step", color="tab:blue",
                          alpha=0.35, lw=0.8)
            axis.hist(values, bins=bins, density=True, histtype="step", color="black", lw=2,
                      label="data")
            axis.set_title(f"{title} ({len(chosen)} sets)", fontsize=10)
            axis.set_xlabel(data.columns[0])
            axis.legend(fontsize=8)
        axes[0].set_ylabel("density")
    else:
        for axis, chosen, title in ((axes[0], sets, "posterior predictive (set 1)"),
                                    (axes[1], kde_sets, "gaussian_kde.resample (set 1)")):
            axis.scatter(chosen[0, :, 0], chosen[0, :, 1], s=1, alpha=0.4, color="tab:blue")
            axis.set_title(title, fontsize=10)
            axis.set_xlabel(data.columns[0])
        axes[0].set_ylabel(data.columns[1])
    figure.tight_layout()
    return figure


def sample_figures(data, fit, extras, inputs, check_arrays=None) -> dict:
    """{label: figure} for one sample."""
    figures = {}
    if data.dim == 1:
        figures["density"] = density_1d(data, fit, extras, inputs)
    elif data.dim == 2:
        figures["photograph"] = photograph(data, fit, extras)
    figures["synthetic"] = synthetic_figure(data, extras)
    if check_arrays is not None:
        figures["checks"] = predictive_figure(check_arrays, f"{', '.join(data.columns)}: "
                                              "predictive checks")
    return figures


def comparison_figure(names, differences, check):
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    for axis, key in zip(axes[:2], ("mean", "sd"), strict=True):
        draws = differences[f"{key}_draws"]
        axis.hist(draws, bins=40, color="tab:blue", alpha=0.7)
        axis.axvline(0, color="black", lw=1)
        axis.set_xlabel(f"{key}({names[0]}) - {key}({names[1]})")
        axis.set_title(f"posterior of the difference in {key}", fontsize=10)
    replicated = check["replicates"][:, 0]
    axes[2].hist(replicated, bins=40, color="0.6", label="replicates under one density")
    axes[2].axvline(check["observed"]["ks_d"], color="crimson", lw=2,
                    label=f"observed D (p = {check['p_value']['ks_d']:.3f})")
    axes[2].set_xlabel("two-sample K-S D")
    axes[2].set_title("predictive two-sample check (pooled fit)", fontsize=10)
    axes[2].legend(fontsize=8)
    figure.tight_layout()
    return figure


def fit_corner(fit, var_names=None, truths=None):
    """:meth:`starmix.api.Fit.plot_corner` of a density fit: the weights and means (or
    ``var_names``)."""
    names = [name for name in var_names or ("w", "mean") if name in fit.idata["posterior"]]
    return plots.corner_plot(fit.idata, names, truths=truths)
