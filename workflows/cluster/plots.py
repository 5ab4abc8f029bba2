"""Figures of the cluster workflows: data space coloured by membership, and comparisons."""

import numpy as np
from astropy.table import Table

from starmix.data.clusters import ClusterReference
from starmix.workflows.plots import common as plots
from starmix.workflows.plots.common import plt

MEMBERSHIP_CMAP = "viridis"


def _coloured(axes, x, y, probability, label):
    order = np.argsort(probability)  # members drawn last, on top
    points = axes.scatter(np.asarray(x)[order], np.asarray(y)[order], c=probability[order],
                          s=3, cmap=MEMBERSHIP_CMAP, vmin=0, vmax=1, rasterized=True)
    axes.figure.colorbar(points, ax=axes, label=label)


def vector_point_diagram(table: Table, probability, cluster_pm, window: float = 8.0):
    """pmdec vs pmra coloured by membership, centred on the fitted cluster motion."""
    figure, axes = plt.subplots(figsize=(6, 5.5))
    _coloured(axes, table["pmra"], table["pmdec"], probability, "P(cluster)")
    axes.set(xlim=(cluster_pm[0] - window, cluster_pm[0] + window),
             ylim=(cluster_pm[1] - window, cluster_pm[1] + window),
             xlabel="pmra [mas/yr]", ylabel="pmdec [mas/yr]", title="Vector-point diagram")
    return figure


def sky_map(table: Table, probability):
    """Positions on the tangent plane at the stars' mean direction (offsets in degrees, east
    to the left), so a field across RA 0 or near a pole is drawn whole."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    stars = SkyCoord(np.asarray(table["ra"], float) * u.deg,
                     np.asarray(table["dec"], float) * u.deg)
    mean = np.mean(stars.cartesian.xyz.value, axis=1)
    center = SkyCoord(*mean, representation_type="cartesian").spherical
    center = SkyCoord(center.lon, center.lat)
    offsets = stars.transform_to(center.skyoffset_frame())
    figure, axes = plt.subplots(figsize=(6, 5.5))
    _coloured(axes, offsets.lon.wrap_at(180 * u.deg).deg, offsets.lat.deg, probability,
              "P(cluster)")
    axes.invert_xaxis()
    axes.set_aspect("equal", adjustable="datalim")
    axes.set(xlabel="ΔRA cos Dec [deg]", ylabel="ΔDec [deg]",
             title=f"Sky coloured by membership, around RA {center.ra.deg:.3f}°, "
                   f"Dec {center.dec.deg:+.3f}°")
    return figure


def colour_magnitude(table: Table, probability):
    figure, axes = plt.subplots(figsize=(5, 6))
    _coloured(axes, table["bp_rp"], table["phot_g_mean_mag"], probability, "P(cluster)")
    axes.invert_yaxis()
    axes.set(xlabel="BP - RP [mag]", ylabel="G [mag]", title="Colour-magnitude diagram")
    return figure


def parallax_histogram(table: Table, probability, cluster_parallax=None):
    """Parallaxes split into the fitted components: each star counts P towards the cluster
    and 1 - P towards the field; the fitted cluster parallax is marked."""
    parallax = np.asarray(table["parallax"], float)
    low, high = np.percentile(parallax, [0.5, 99.5])
    bins = np.linspace(low, high, 80)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.hist(parallax, bins, histtype="step", color="k", label="all stars")
    axes.hist(parallax, bins, weights=probability, alpha=0.6, label="cluster (weights P)")
    axes.hist(parallax, bins, weights=1 - probability, alpha=0.4, label="field (weights 1 - P)")
    if cluster_parallax is not None:
        axes.axvline(cluster_parallax, color="tab:red", label="fitted cluster parallax")
    axes.set(xlabel="parallax [mas]", ylabel="stars", title="Parallax by component")
    axes.legend(fontsize=8)
    return figure


def published_comparison(estimates: dict, references: list[ClusterReference]):
    """Our cluster parameters (mean +- sd) next to published values, one panel each."""
    names = [name for name in ("pmra", "pmdec", "parallax") if name in estimates]
    figure, panels = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), squeeze=False)
    for axes, name in zip(panels[0], names, strict=True):
        mean, sd = estimates[name]
        axes.errorbar([0], [mean], [sd], fmt="o", color="tab:blue", capsize=3)
        labels = ["this run"]
        for k, reference in enumerate(references, start=1):
            axes.plot([k], [getattr(reference, name)], "s", color="tab:orange")
            labels.append(reference.source.split(",")[0].replace(" et al.", "+"))
        axes.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        unit = "mas" if name == "parallax" else "mas/yr"
        axes.set(title=name, ylabel=unit, xlim=(-0.5, len(labels) - 0.5))
    figure.tight_layout()
    return figure


def fit_corner(fit, var_names=None, truths=None):
    """:meth:`starmix.api.Fit.plot_corner` of a cluster fit: its model's cluster parameters
    (or ``var_names``)."""
    from starmix.models import CLUSTER_MODELS

    model = fit.record["settings"]["ClusterInput"]["model"]
    names = [name for name in var_names or CLUSTER_MODELS[model].parameters
             if name in fit.idata["posterior"]]
    return plots.corner_plot(fit.idata, names, coords={"component": "cluster"}, truths=truths)


def fit_membership(fit):
    """:meth:`starmix.api.Fit.plot_membership` of a cluster fit: the vector-point diagram
    coloured by membership (the parallax histogram when the model has no proper motions)."""
    table = fit.membership
    p = np.asarray(table["p_cluster"], float)
    if {"pmra", "pmdec"} <= set(table.colnames):
        weights = p if p.sum() > 0 else None
        centre = (np.average(table["pmra"], weights=weights),
                  np.average(table["pmdec"], weights=weights))
        return vector_point_diagram(table, p, centre)
    return parallax_histogram(table, p)
