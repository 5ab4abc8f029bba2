"""Every workflow, named once: :data:`WORKFLOWS` maps ``starmix run NAME`` to its
:class:`~starmix.workflows.base.Workflow` (input type, runner, command-line options,
sampling defaults, figures and their captions, the runs ``starmix reproduce`` makes).

The command line (:mod:`starmix.workflows.cli`), ``starmix reproduce``
(:mod:`starmix.workflows.reproduce`) and the Python API (:mod:`starmix.api`) are built from
this table. A new workflow is one :func:`register` call (``tests/workflows/test_registry.py``
adds a toy one); its runner is written with :func:`starmix.workflows.base.execute`.
Everything is named by ``"module:name"`` strings, imported on first use.
"""

from starmix.workflows.base import Example, Workflow, name_runner

WORKFLOWS: dict[str, Workflow] = {}


def register(workflow: Workflow) -> Workflow:
    """Add ``workflow``; its name and aliases must be new."""
    taken = {name for known in WORKFLOWS.values() for name in (known.name, *known.aliases)}
    clash = {workflow.name, *workflow.aliases} & taken
    if clash:
        raise ValueError(f"workflow name(s) already registered: {', '.join(sorted(clash))}")
    WORKFLOWS[workflow.name] = workflow
    name_runner(workflow.runner, workflow.name)  # the name its runs' records carry
    return workflow


def unregister(name: str) -> None:
    """Remove the workflow ``name`` (tests that register a toy one clean up with this)."""
    name_runner(WORKFLOWS.pop(name).runner, None)


def get(name: str) -> Workflow:
    """The workflow called ``name`` or one of its aliases."""
    for workflow in WORKFLOWS.values():
        if name == workflow.name or name in workflow.aliases:
            return workflow
    raise ValueError(f"unknown workflow {name!r}; the workflows are "
                     f"{', '.join(sorted(WORKFLOWS))}")


# -- the workflows ---------------------------------------------------------------------------

register(Workflow(
    name="outlier-line",
    inputs="starmix.workflows.line.run:LineInput",
    runner="starmix.workflows.line.run:run_outlier_line",
    add_options="starmix.workflows.line.options:add_options",
    summary="straight line with outliers (Hogg, Bovy & Lang 2010)",
    description="Fit a line plus an outlier component to points with y errors (optionally x "
                "errors) and give each point's probability of being on the line. Without "
                "--data, runs on the built-in reference data (seed 42).",
    figures={
        "line_fit": "Data with error bars, weighted least-squares line (dashed), posterior "
                    "median and 16-84% band of the line, true line (dotted).",
        "corner": "Corner plot (corner package) of m, b, s_out and the line weight w[line]: 1 "
                  "and 2 sigma contours with the draws beyond them as points, 16/50/84 "
                  "percentiles in each title; red lines mark the simulation's true values "
                  "(s_out: the outliers' N(0, 15) width).",
        "membership": "Points coloured by their posterior probability of lying on the line "
                      "(weights included); true outliers circled in red.",
        "pgm": "Probabilistic graphical model of the outlier-line mixture (daft).",
        "checks": "Predictive checks of y: the observed ECDF against the prior's and the "
                  "posterior's 90% bands, and the LOO-PIT against the uniform's 99% band.",
    },
    examples=(Example("outlier-line", "outlier line", "starmix run outlier-line"),),
    plot_corner="starmix.workflows.line.plots:fit_corner",
    plot_membership="starmix.workflows.line.plots:fit_membership",
))

register(Workflow(
    name="cluster",
    aliases=("ngc6819",),  # the old name
    inputs="starmix.workflows.cluster.inputs:ClusterInput",
    runner="starmix.workflows.cluster.run:run_cluster",
    add_options="starmix.workflows.cluster.options:add_options",
    per_option="model",
    summary="cluster-vs-field membership (any cluster with --data; without it the simulated "
            "NGC 6819 field)",
    description="Fit a cluster-vs-field mixture to Gaia astrometry, decide whether the stars "
                "hold a cluster at all (PSIS-LOO against field-only models; exit code 3 when "
                "they do not) and give each star's membership probability. Without --data, "
                "runs on the simulated NGC 6819 field (see 'starmix simulate').",
    figures={
        "pgm": "graphical model (daft)",
        "corner": "corner plot of the cluster parameters (1 and 2 sigma contours, 16/50/84 "
                  "percentiles in the titles, units on the axes); red lines: the "
                  "simulation's true mean motion and parallax and the share of members among "
                  "the fitted stars",
        "vpd": "vector-point diagram coloured by membership probability",
        "sky": "sky map coloured by membership probability",
        "parallax": "parallax histogram split into the fitted cluster and field components",
        "cmd": "colour-magnitude diagram coloured by membership probability",
        "published": "cluster parameters next to Cantat-Gaudin+2020 and Hunt & Reffert 2023",
        "checks": "predictive checks: observed ECDFs against the prior's and posterior's 90% "
                  "bands, and the LOO-PIT, per observed coordinate",
    },
    examples="starmix.workflows.cluster.options:reproduce_examples",  # one per model
    plot_corner="starmix.workflows.cluster.plots:fit_corner",
    plot_membership="starmix.workflows.cluster.plots:fit_membership",
))

DENSITY_FIGURES = {
    "density": "histogram of the values, the KDEs (Scott, Silverman, cross-validated), EM (K "
               "by BIC), the variational Dirichlet process and astroML's XDGMM, and the "
               "posterior density (deconvolved) with its 16-84% band; red: the truth",
    "photograph": "the points as an image, with the posterior-mean components' 1 and 2 sigma "
                  "ellipses, scikit-learn's EM ones and the truth",
    "synthetic": "synthetic samples, each from its own posterior draw, beside "
                 "gaussian_kde.resample sets",
    "checks": "predictive checks: observed ECDF against the prior's and posterior's 90% "
              "bands, and the LOO-PIT",
    "comparison": "posterior of the differences in mean and sd between the two columns, and "
                  "the predictive two-sample check (K-S D replicated under the pooled fit)",
}
DENSITY_SAMPLING = "starmix.workflows.density.fit:DENSITY_SAMPLING"
register(Workflow(
    name="density",
    inputs="starmix.workflows.density.run:DensityInput",
    runner="starmix.workflows.density.run:run_density",
    add_options="starmix.workflows.density.options:add_density",
    sampling=DENSITY_SAMPLING,
    summary="Gaussian-mixture density with per-object errors (extreme deconvolution), with "
            "KDE/EM/XDGMM baselines",
    description="Fit a Gaussian-mixture density to 1 to 3 columns, each value blurred by its "
                "errors (extreme deconvolution, Bovy, Hogg & Roweis 2011), K by PSIS-LOO; "
                "compare with KDEs, EM, a variational Dirichlet process and astroML's XDGMM; "
                "write synthetic samples, each from a posterior draw. Without --data, runs on "
                "a built-in simulated sample with known truth. Sampling defaults here: "
                "--draws 2000 --tune 1000 --target-accept 0.99.",
    figures=DENSITY_FIGURES,
    plot_corner="starmix.workflows.density.plots:fit_corner",
    examples=(
        Example("mixture", "mixture", "starmix run density", folder="density",
                prefix="mixture_", out="density-mixture"),
        Example("two_galaxies", "two galaxies",
                "starmix run density --example two-galaxies --max-components 2",
                {"example": "two-galaxies", "max_components": 2}, folder="density",
                prefix="two_galaxies_", out="density-two_galaxies"),
    ),
))
register(Workflow(
    name="ages",
    inputs="starmix.workflows.density.run:AgesInput",
    runner="starmix.workflows.density.run:run_ages",
    add_options="starmix.workflows.density.options:add_ages",
    sampling=DENSITY_SAMPLING,
    summary="the density workflow on two age columns (stellar_ages.dat), and their comparison",
    description="Fit each age column's density (Gyr), count ages beyond the age of the "
                "Universe, and ask whether the two columns are drawn from the same "
                "distribution (posterior of the differences in mean and width; predictive "
                "two-sample check). Without --data, runs on a built-in simulated table of the "
                "same shape. Sampling defaults here: --draws 2000 --tune 1000 "
                "--target-accept 0.99.",
    figures=DENSITY_FIGURES,
    plot_corner="starmix.workflows.density.plots:fit_corner",
    examples=(Example("ages", "ages", "starmix run ages", folder="density", prefix="ages_",
                      out="density-ages"),),
))
