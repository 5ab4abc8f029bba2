"""``starmix reproduce``: rerun each workflow with its defaults and refresh ``figures/``."""

import shutil
from pathlib import Path

from starmix.models import CLUSTER_MODELS
from starmix.workflows.results import atomic_path, write_text

LINE_DESCRIPTIONS = {
    "line_fit": "Data with error bars, weighted least-squares line (dashed), posterior median "
                "and 16-84% band of the line, true line (dotted).",
    "corner": "Corner plot (corner package) of m, b, s_out and the line weight w[line]: 1 and "
              "2 sigma contours with the draws beyond them as points, 16/50/84 percentiles "
              "in each title; red lines mark the simulation's true values (s_out: the "
              "outliers' N(0, 15) width).",
    "membership": "Points coloured by their posterior probability of lying on the line "
                  "(weights included); true outliers circled in red.",
    "pgm": "Probabilistic graphical model of the outlier-line mixture (daft).",
    "checks": "Predictive checks of y: the observed ECDF against the prior's and the "
              "posterior's 90% bands, and the LOO-PIT against the uniform's 99% band.",
}
CLUSTER_DESCRIPTIONS = {
    "pgm": "graphical model (daft)",
    "corner": "corner plot of the cluster parameters (1 and 2 sigma contours, 16/50/84 "
              "percentiles in the titles, units on the axes); red lines: the simulation's "
              "true mean motion and parallax and the share of members among the fitted stars",
    "vpd": "vector-point diagram coloured by membership probability",
    "sky": "sky map coloured by membership probability",
    "parallax": "parallax histogram split into the fitted cluster and field components",
    "cmd": "colour-magnitude diagram coloured by membership probability",
    "published": "cluster parameters next to Cantat-Gaudin+2020 and Hunt & Reffert 2023",
    "checks": "predictive checks: observed ECDFs against the prior's and posterior's 90% "
              "bands, and the LOO-PIT, per observed coordinate",
}
DENSITY_DESCRIPTIONS = {
    "density": "histogram of the values, the KDEs (Scott, Silverman, cross-validated), EM "
               "(K by BIC), the variational Dirichlet process and astroML's XDGMM, and the "
               "posterior density (deconvolved) with its 16-84% band; red: the truth",
    "photograph": "the points as an image, with the posterior-mean components' 1 and 2 "
                  "sigma ellipses, scikit-learn's EM ones and the truth",
    "synthetic": "synthetic samples, each from its own posterior draw, beside "
                 "gaussian_kde.resample sets",
    "checks": "predictive checks: observed ECDF against the prior's and posterior's 90% "
              "bands, and the LOO-PIT",
    "comparison": "posterior of the differences in mean and sd between the two columns, and "
                  "the predictive two-sample check (K-S D replicated under the pooled fit)",
}
DENSITY_WORKFLOWS = ("density", "ages")
WORKFLOWS = ("outlier-line", *CLUSTER_MODELS, *DENSITY_WORKFLOWS)


def _copy(source: Path, target: Path) -> None:
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)


def reproduce(figures_dir: Path, out_dir: Path, workflows=WORKFLOWS) -> int:
    """Run the chosen workflows with defaults, copy their figures, rewrite the index.

    Returns 0 when every run passed its gate, else 2 (figures are still written).
    """
    # Imported here so that `starmix`'s parser, which lists WORKFLOWS, stays light.
    from starmix.workflows.cluster import ClusterInput, run_cluster
    from starmix.workflows.outlier_line import FIGURES, run_outlier_line

    figures_dir.mkdir(parents=True, exist_ok=True)
    sections, codes = [], []
    if "outlier-line" in workflows:
        result = run_outlier_line(out_dir / "outlier-line")
        codes.append(result.exit_code)
        rows = []
        for label, name in FIGURES.items():
            _copy(result.files[f"figure_{label}"], figures_dir / name)
            rows.append(f"| [{name}]({name}) | {LINE_DESCRIPTIONS[label]} |")
        sections.append(("outlier line", "starmix run outlier-line", result.status, rows))
    for model in (name for name in CLUSTER_MODELS if name in workflows):
        result = run_cluster(out_dir / f"ngc6819-{model}", ClusterInput(model=model))
        codes.append(result.exit_code)
        rows = []
        for label, description in CLUSTER_DESCRIPTIONS.items():
            if f"figure_{label}" in result.files:
                name = f"ngc6819_{model}_{label}.png"
                _copy(result.files[f"figure_{label}"], figures_dir / name)
                rows.append(f"| [{name}]({name}) | {model} model: {description} |")
        sections.append((f"NGC 6819, {model} model (simulated field)",
                         f"starmix run ngc6819 --model {model}", result.status, rows))
    reproduce_density(figures_dir / "density", out_dir, workflows, codes)
    if not sections:  # only density figures rerun: the main index stays as it is
        return max(codes)
    lines = ["# Reference figures", "",
             "Written by `starmix reproduce` (also `make reproduce`), which runs each workflow "
             "with its defaults (seed 42, 4 chains x 1000 draws) and copies the figures here. "
             "The NGC 6819 runs use the simulated field (`starmix simulate ngc6819`).", ""]
    for title, command, status, rows in sections:
        lines += [f"## {title}", "", f"Made by `{command}`; convergence gate: **{status}**.",
                  "", "| figure | what it shows |", "| --- | --- |", *rows, ""]
    lines += ["## Densities", "", "The density and ages workflows' figures: "
              "[density/README.md](density/README.md).", ""]
    write_text(figures_dir / "README.md", "\n".join(lines))
    print(f"figures written to {figures_dir.resolve()}")
    return max(codes)


def reproduce_density(figures_dir: Path, out_dir: Path, workflows, codes: list) -> None:
    """The density workflows' figures and their own index, ``figures/density/README.md``:
    the built-in 1-D sample, the two galaxies (K from 1 to 2: each further K on 6,000 points
    takes minutes) and the ages preset on its built-in simulated table."""
    from starmix.workflows.density import AgesInput, DensityInput, run_ages, run_density

    runs = []
    if "density" in workflows:
        runs += [("mixture", "starmix run density", lambda out: run_density(out)),
                 ("two_galaxies", "starmix run density --example two-galaxies "
                  "--max-components 2", lambda out: run_density(
                      out, DensityInput(example="two-galaxies", max_components=2)))]
    if "ages" in workflows:
        runs.append(("ages", "starmix run ages", lambda out: run_ages(out, AgesInput())))
    if not runs:
        return
    figures_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Density figures", "", "Written by `starmix reproduce --only density ages` "
             "(seed 42, 4 chains x (1000 tuning + 2000 draws), the density workflows' "
             "defaults).", ""]
    for label, command, runner in runs:
        result = runner(out_dir / f"density-{label}")
        codes.append(result.exit_code)
        rows = []
        for key, path in result.files.items():
            if key.startswith("figure_"):
                name = f"{label}_{Path(path).name}"
                _copy(path, figures_dir / name)
                kind = key.removeprefix("figure_").split("_")[0]
                rows.append(f"| [{name}]({name}) | {DENSITY_DESCRIPTIONS.get(kind, kind)} |")
        lines += [f"## {label.replace('_', ' ')}", "", f"Made by `{command}`; convergence "
                  f"gate: **{result.status}**.", "", "| figure | what it shows |",
                  "| --- | --- |", *rows, ""]
    write_text(figures_dir / "README.md", "\n".join(lines))
