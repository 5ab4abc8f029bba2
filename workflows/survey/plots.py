"""The survey's figures: recovered against published values, the differences in units of
the combined error, and a sky map coloured by verdict."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend)
import numpy as np  # noqa: E402

from starmix.workflows.runs.files import save_figure  # noqa: E402
from starmix.workflows.survey.rows import AGREEMENT_Z, QUANTITIES  # noqa: E402

VERDICT_COLOURS = {"cluster found": "tab:blue", "none found": "tab:grey",
                   "gate failed": "tab:orange", "checks failed": "tab:purple",
                   "error": "tab:red", "not run": "lightgrey"}
LABELS = {"pmra": r"$\mu_{\alpha*}$ [mas/yr]", "pmdec": r"$\mu_\delta$ [mas/yr]",
          "parallax": r"$\varpi$ [mas]"}


def draw_survey_figures(table, folder: Path) -> dict[str, Path]:
    """Write the three figures into ``folder``; returns {label: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    found = table[table["verdict"] == "cluster found"]
    files = {}
    for label, draw in (("survey_recovered", recovered_figure),
                        ("survey_differences", differences_figure),
                        ("survey_sky", sky_figure)):
        figure = draw(found if label != "survey_sky" else table)
        files[label] = save_figure(folder / f"{label}.png", figure)
        plt.close(figure)
    return files


def recovered_figure(found):
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, name in zip(axes, QUANTITIES, strict=True):
        published = np.asarray(found[f"published_{name}"], float)
        recovered = np.asarray(found[name], float)
        ax.errorbar(published, recovered, yerr=np.asarray(found[f"{name}_error"], float),
                    fmt="o", ms=3, color="tab:blue", ecolor="0.5", elinewidth=0.8)
        finite = np.isfinite(published) & np.isfinite(recovered)
        if finite.any():
            lo = min(published[finite].min(), recovered[finite].min())
            hi = max(published[finite].max(), recovered[finite].max())
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"published {LABELS[name]}")
        ax.set_ylabel(f"recovered {LABELS[name]}")
    figure.suptitle(f"{len(found)} clusters found: recovered against published")
    figure.tight_layout()
    return figure


def differences_figure(found):
    figure, ax = plt.subplots(figsize=(6, 4.2))
    bins = np.linspace(-6, 6, 25)
    for name in QUANTITIES:
        z = np.asarray(found[f"z_{name}"], float)
        z = z[np.isfinite(z)]
        ax.hist(np.clip(z, -6, 6), bins=bins, histtype="step", lw=1.5,
                label=f"{name} ({np.mean(np.abs(z) <= AGREEMENT_Z):.0%} within "
                      f"{AGREEMENT_Z:g}σ)" if len(z) else name)
    grid = np.linspace(-6, 6, 200)
    scale = len(found) * (bins[1] - bins[0])
    ax.plot(grid, scale * np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi), "k:", label="N(0, 1)")
    ax.set_xlabel("(recovered - published) / combined error (clipped at ±6)")
    ax.set_ylabel("clusters")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def sky_figure(table):
    figure = plt.figure(figsize=(8, 4.5))
    ax = figure.add_subplot(projection="aitoff")
    for verdict, colour in VERDICT_COLOURS.items():
        chosen = table[table["verdict"] == verdict]
        ra = np.asarray(chosen["ra"], float)
        dec = np.asarray(chosen["dec"], float)
        keep = np.isfinite(ra) & np.isfinite(dec)
        if keep.any():
            ax.scatter(-np.radians(((ra[keep] + 180) % 360) - 180), np.radians(dec[keep]),
                       s=12, color=colour, label=f"{verdict} ({keep.sum()})")
    ax.grid(True, lw=0.3)
    ax.set_xticklabels([])
    ax.set_title("survey clusters by verdict (RA increasing to the left)", fontsize=10, pad=22)
    ax.legend(loc="lower right", fontsize=7, bbox_to_anchor=(1.15, -0.1))
    figure.tight_layout()
    return figure
