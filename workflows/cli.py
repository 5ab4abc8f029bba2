"""The ``starmix`` command: ``starmix run WORKFLOW [options]`` and ``starmix reproduce``.

Exit codes: 0 success; 1 bad input or options, including command-line usage errors (a
message that names the option, column or file; nothing written); 2 the convergence gate
failed (results kept, marked failed); 3 no cluster found (the detection step preferred a
field-only model; results kept, marked ``no_cluster``); 130 interrupted by Ctrl-C (SIGINT),
143 by SIGTERM (the folder holds this run's record marked ``interrupted`` and the complete
files written before the signal, never a partial one; see :mod:`workflows.interrupt`).
The results folder holds one run at a time (:mod:`workflows.outdir`).
"""

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from starmix.data.input_checks import DataValidationError
from starmix.models import CLUSTER_MODELS
from starmix.workflows.config import (
    MASS_MATRICES,
    SAMPLERS,
    GateThresholds,
    SamplingOptions,
    dataclass_defaults,
    merge_options,
    option_types,
    pick,
    read_config_file,
)
from starmix.workflows.interrupt import RunInterrupted, stop_on_signals
from starmix.workflows.reproduce import WORKFLOWS
from starmix.workflows.run import EXIT_ERROR

# Each command imports what it runs (in the functions below): the cluster workflow's
# compiled kernels and astropy's coordinates cost seconds that the outlier line and
# `starmix --help` need not pay.

WORKFLOW_DEFAULT_OUT = {"outlier-line": "results/outlier-line", "cluster": "results/cluster",
                        "ngc6819": "results/ngc6819", "density": "results/density",
                        "ages": "results/ages"}
CLUSTER_WORKFLOWS = ("cluster", "ngc6819")  # ngc6819: the old name, an alias


class StarmixParser(argparse.ArgumentParser):
    """argparse, but a usage error exits 1 (bad options), not argparse's 2 (which starmix
    uses for a failed convergence gate)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def add_core_options(parser: argparse.ArgumentParser) -> None:
    """Options every workflow shares; defaults are None so a config file can fill them."""
    group = parser.add_argument_group("sampling and output (shared by every workflow)")
    group.add_argument("--draws", type=int, help="posterior draws per chain (default 1000)")
    group.add_argument("--tune", type=int,
                       help="tuning steps per chain (default: 300 with nutpie, else 1000)")
    group.add_argument("--chains", type=int, help="number of chains (default 4)")
    group.add_argument("--cores", type=int, help="parallel chains (default: the CPUs available)")
    group.add_argument("--seed", type=int, help="random seed for every random step (default 42)")
    group.add_argument("--sampler", choices=SAMPLERS,
                       help="NUTS implementation (default auto: nutpie when installed, else "
                            "pymc; numpyro/blackjax need JAX)")
    group.add_argument("--mass-matrix", choices=MASS_MATRICES,
                       help="nutpie's mass matrix: low_rank (default; learns the leading "
                            "posterior correlations) or diag")
    group.add_argument("--target-accept", type=float, help="NUTS target acceptance (default 0.9)")
    group.add_argument("--out", help="results folder (default results/WORKFLOW)")
    group.add_argument("--config", help="TOML file with any of these options as keys")
    group.add_argument("--no-figures", dest="figures", action="store_false", default=None,
                       help="skip the figures")
    checks = group.add_mutually_exclusive_group()
    checks.add_argument("--no-checks", dest="checks", action="store_const", const="off",
                        default=None, help="skip the prior and posterior predictive checks")
    checks.add_argument("--strict-checks", dest="checks", action="store_const", const="strict",
                        help="a failed predictive check fails the run (exit code 4); by "
                             "default failed checks are reported only")
    gate = parser.add_argument_group("convergence gate")
    gate.add_argument("--r-hat-max", type=float, help="largest r_hat allowed (default 1.01)")
    gate.add_argument("--ess-bulk-min", type=float, help="smallest bulk ESS (default 400)")
    gate.add_argument("--ess-tail-min", type=float, help="smallest tail ESS (default 400)")
    gate.add_argument("--divergences-max", type=int, help="divergences allowed (default 0)")


def add_density_options(parser, ages: bool) -> None:
    data = parser.add_argument_group(
        "data (default: " + ("a built-in simulated table of two age columns" if ages else
                             "a built-in simulated 1-D sample with errors and known truth")
        + ")")
    data.add_argument("--data", help="table file: CSV, ECSV, FITS, VOTable or whitespace text "
                                     "with a '#' header (.dat, .txt)")
    data.add_argument("--columns", help=("the two age columns (default Joyce_age,Bensby_age)"
                                         if ages else "1 to 3 comma-separated columns to fit"))
    data.add_argument("--errors", help="1-sigma error of each column: a column name or a "
                                       "constant, comma-separated (default: no errors)")
    data.add_argument("--drop-invalid", action="store_true", default=None,
                      help="drop (and count) rows with text, NaN/inf or errors <= 0")
    shape = parser.add_argument_group("density options")
    scale = shape.add_mutually_exclusive_group()
    scale.add_argument("--log", action="store_true", default=None,
                       help="fit ln(value) (positive quantities; errors carried to first "
                            "order)" + (" (the default here)" if ages else ""))
    if ages:
        scale.add_argument("--linear", dest="log", action="store_false",
                           help="fit the ages themselves, not ln(age)")
    shape.add_argument("--lower", type=float, help="lower physical limit: values below are "
                                                   "counted and reported" +
                       (" (default 0 Gyr)" if ages else ""))
    shape.add_argument("--upper", type=float, help="upper physical limit: values above are "
                                                   "counted and reported" +
                       (" (default 13.8 Gyr, the age of the Universe)" if ages else ""))
    shape.add_argument("--truncate", action="store_true", default=None,
                       help="cut the intrinsic density at --lower/--upper (one column; values "
                            "beyond need errors)")
    shape.add_argument("--components", type=int,
                       help="fixed number of Gaussians K (default: K by PSIS-LOO)")
    shape.add_argument("--max-components", type=int,
                       help="largest K tried by PSIS-LOO (default 4, at most 6)")
    shape.add_argument("--synthetic-sets", type=int,
                       help="synthetic samples written, each from its own posterior draw "
                            "(default 20)")
    if not ages:
        data.add_argument("--example", choices=["mixture", "two-galaxies"],
                          help="built-in data without --data: mixture (default; 1-D, 300 "
                               "values with errors, known truth) or two-galaxies (the 2-D "
                               "lesson: a sphere and an inclined disc, 3,000 points each)")
    if ages:
        shape.add_argument("--comparison-draws", type=int,
                           help="posterior draws in the two-sample comparison (default 1000)")
    add_core_options(parser)


def add_density_parsers(workflows) -> None:
    density = workflows.add_parser(
        "density", help="Gaussian-mixture density with per-object errors (extreme "
                        "deconvolution), with KDE/EM/XDGMM baselines",
        description="Fit a Gaussian-mixture density to 1 to 3 columns, each value blurred by "
                    "its errors (extreme deconvolution, Bovy, Hogg & Roweis 2011), K by "
                    "PSIS-LOO; compare with KDEs, EM, a variational Dirichlet process and "
                    "astroML's XDGMM; write synthetic samples, each from a posterior draw. "
                    "Without --data, runs on a built-in simulated sample with known truth. "
                    "Sampling defaults here: --draws 2000 --tune 1000 --target-accept 0.99.")
    add_density_options(density, ages=False)
    ages = workflows.add_parser(
        "ages", help="the density workflow on two age columns (stellar_ages.dat), and "
                     "their comparison",
        description="Fit each age column's density (Gyr), count ages beyond the age of the "
                    "Universe, and ask whether the two columns are drawn from the same "
                    "distribution (posterior of the differences in mean and width; "
                    "predictive two-sample check). Without --data, runs on a built-in "
                    "simulated table of the same shape. Sampling defaults here: --draws "
                    "2000 --tune 1000 --target-accept 0.99.")
    add_density_options(ages, ages=True)


def build_parser() -> argparse.ArgumentParser:
    parser = StarmixParser(
        prog="starmix",
        description="Bayesian mixture-model workflows for astronomy.",
        epilog="Workflows: outlier-line (straight line with outliers), cluster (cluster "
               "membership: --model pmra, parallax, pm2d, pmplx or joint; 'ngc6819' is an "
               "alias), density (Gaussian-mixture density with errors), ages (two age "
               "columns compared). "
               "See 'starmix run WORKFLOW --help'.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run a workflow",
                              description="Run a workflow on built-in or your own data.")
    workflows = run.add_subparsers(dest="workflow", required=True, metavar="WORKFLOW")
    line = workflows.add_parser(
        "outlier-line",
        help="straight line with outliers (Hogg, Bovy & Lang 2010)",
        description="Fit a line plus an outlier component to points with y errors "
                    "(optionally x errors) and give each point's probability of being on the "
                    "line. Without --data, runs on the built-in reference data (seed 42).",
    )
    data = line.add_argument_group("data (default: the built-in simulated reference data)")
    data.add_argument("--data", help="CSV, ECSV or FITS table of points")
    data.add_argument("--x", help="column of x (default x)")
    data.add_argument("--y", help="column of y (default y)")
    data.add_argument("--yerr", help="column of the 1-sigma y error (default y_err)")
    data.add_argument("--xerr", help="column of the 1-sigma x error (optional)")
    data.add_argument("--xycorr", help="column of the x-y error correlation (optional)")
    data.add_argument("--drop-invalid", action="store_true", default=None,
                      help="drop (and count) rows with text, NaN/inf, errors <= 0 or "
                           "|correlation| > 1 instead of stopping")
    line.add_argument("--intrinsic-scatter", action="store_true", default=None,
                      help="fit an intrinsic scatter about the line")
    add_core_options(line)

    cluster = workflows.add_parser(
        "cluster", aliases=["ngc6819"],
        help="cluster-vs-field membership (any cluster with --data; without it the "
             "simulated NGC 6819 field)",
        description="Fit a cluster-vs-field mixture to Gaia astrometry, decide whether the "
                    "stars hold a cluster at all (PSIS-LOO against field-only models; exit "
                    "code 3 when they do not) and give each star's membership probability. "
                    "Without --data, runs on the simulated NGC 6819 field (see "
                    "'starmix simulate').",
    )
    cluster.add_argument("--model", choices=sorted(CLUSTER_MODELS),
                         help="pmra, parallax, pm2d (default), pmplx (proper motion and "
                              "parallax, no positions needed) or joint")
    source = cluster.add_argument_group("data (default: the simulated NGC 6819 field)")
    source.add_argument("--data", help="Gaia table: FITS(.gz), CSV, ECSV or VOTable")
    source.add_argument("--columns", help="renames, e.g. 'Plx=parallax,pmRA=pmra' "
                                          "(VizieR names are mapped automatically)")
    source.add_argument("--cluster", help="cluster name: its published values start the fit "
                                          "and are compared in the figures (without a name "
                                          "the fit starts from the field's proper-motion "
                                          "overdensities; default for the simulated field: "
                                          "NGC6819)")
    source.add_argument("--catalogue", help="cluster catalogue (VizieR TSV such as "
                                            "Cantat-Gaudin+2020's table 1, or CSV/FITS) to "
                                            "look --cluster up in before the built-in list")
    source.add_argument("--center", nargs=2, type=float, metavar=("RA", "DEC"),
                        help="cluster centre in degrees (overrides --cluster's)")
    source.add_argument("--assign-errors", action="store_true", default=None,
                        help="give stars Gaia errors from G where the file has none (its "
                             "own error columns are kept)")
    source.add_argument("--error-model", choices=["dr3", "dr2"], default=None,
                        help="the errors --assign-errors gives: dr3 (pygaia, default) or dr2 "
                             "(Brown et al. 2018, Table 3)")
    source.add_argument("--drop-invalid", action="store_true", default=None,
                        help="drop (and count) invalid rows instead of stopping")
    source.add_argument("--zero-point", action="store_true", default=None,
                        help="subtract the Lindegren et al. (2021) parallax zero-point "
                             "(needs nu_eff_used_in_astrometry, pseudocolour, ecl_lat, "
                             "astrometric_params_solved; the 'zeropoint' extra)")
    source.add_argument("--sim-seed", type=int, help="seed of the simulated field (default 42)")
    source.add_argument("--n-cluster", type=int, help="simulated members (default 6170)")
    source.add_argument("--n-field", type=int, help="simulated field stars (default 10830)")
    cuts = cluster.add_argument_group("quality cuts (recorded in the run record)")
    cuts.add_argument("--ruwe-max", type=float, help="keep RUWE below this (default 1.4)")
    cuts.add_argument("--g-max", type=float, help="keep G at or below this (default 20)")
    cuts.add_argument("--parallax-over-error-min", type=float, help="off by default")
    cuts.add_argument("--radius", type=float, dest="radius_arcmin",
                      help="keep stars within this many arcmin of the centre (off by default)")
    source.add_argument("--footprint", nargs=3, type=float,
                        metavar=("RA", "DEC", "RADIUS"),
                        help="the cone the data were selected from (degrees, arcmin), for the "
                             "joint model's field density (default: recorded by simulate and "
                             "fetch-gaia, else estimated from the stars)")
    cuts.add_argument("--max-stars", type=int,
                      help="fit a seeded random subsample of this many stars (quick looks)")
    shape = cluster.add_argument_group("model options")
    shape.add_argument("--field-components", help="field Gaussians K, 1-5, or 'auto' (LOO "
                                                  "over K = 1, 2, 3); default 2")
    shape.add_argument("--parallax-field", choices=["exponential", "beta", "gaussian"],
                       help="parallax model's field density (default exponential); "
                            "gaussian: K Gaussians (--field-components), with detection")
    shape.add_argument("--parallax-offset", action="store_true", default=None,
                       help="fit a global parallax offset (parallax model)")
    shape.add_argument("--radial-velocity", nargs=2, type=float, metavar=("MEAN", "SD"),
                       help="radial-velocity prior in km/s for the joint model's 3D motion "
                            "(default: the named cluster's, NGC 6819: 2.45 1.0; else a broad "
                            "generic prior)")
    shape.add_argument("--magnitude-prior", action="store_true", default=None,
                       help="let the cluster's weight depend on G (logistic in G): fewer "
                            "faint field stars taken for members; needs phot_g_mean_mag")
    shape.add_argument("--cluster-halo", action="store_true", default=None,
                       help="give the cluster a second, wider Gaussian (up to 0.5 mas/yr) "
                            "with its mean: for members spread past one Gaussian (pm2d, "
                            "pmplx)")
    shape.add_argument("--log-likelihood", choices=["auto", "all", "thin", "none"],
                       help="pointwise log-likelihood per draw in posterior.nc: all, thin "
                            "(every k-th draw, at most 1e8 values), none; default auto: all "
                            "up to 1e8 values (25,000 stars x 4,000 draws), else thin")
    shape.add_argument("--no-detection", dest="detection", action="store_false", default=None,
                       help="skip the detection step (field-only models and PSIS-LOO)")
    shape.add_argument("--detection-method", choices=["laplace", "nuts"],
                       help="how the detection step fits the field-only models: laplace "
                            "(default; a Laplace approximation corrected by importance "
                            "sampling, NUTS where its Pareto k says it is poor) or nuts")
    add_core_options(cluster)

    simulate = commands.add_parser(
        "simulate", help="write a simulated Gaia field around a cluster (FITS)",
        description="Simulate a Gaia DR3-like cone around a cluster, with truth columns "
                    "(is_member, true_*); the generative model is in data/cluster_field.py.",
    )
    simulate.add_argument("preset", help="cluster preset: ngc6819")
    simulate.add_argument("--out", required=True, help="output file (.fits or .fits.gz)")
    simulate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    simulate.add_argument("--n-cluster", type=int, help="number of members (preset default)")
    simulate.add_argument("--n-field", type=int, help="number of field stars (preset default)")
    simulate.add_argument("--radius", type=float, dest="radius_arcmin",
                          help="cone radius in arcmin (preset default 20)")

    fetch = commands.add_parser(
        "fetch-gaia", help="download a Gaia DR3 cone from the ESA archive (needs a network)",
        description="Query gaiadr3.gaia_source for the archive columns starmix uses, in a "
                    "cone around a cluster, and write a FITS file the loader reads.",
    )
    fetch.add_argument("cluster", help="cluster name (built in: NGC6819, NGC2682/M67, NGC188; "
                                       "others resolved online)")
    fetch.add_argument("--radius", default="20arcmin", help="cone radius (default 20arcmin)")
    fetch.add_argument("--center", nargs=2, type=float, metavar=("RA", "DEC"),
                       help="centre in degrees instead of the name's")
    fetch.add_argument("--out", required=True, help="output file (.fits or .fits.gz)")

    add_density_parsers(workflows)

    survey = commands.add_parser(
        "survey", help="cluster membership for every cluster of a catalogue, on Dask",
        description="Run the cluster workflow on every cluster of a catalogue, one Dask task "
                    "per cluster (a local cluster of one worker process per core, or "
                    "--scheduler), and write one table (ECSV and Parquet) with a row per "
                    "cluster, survey figures and each cluster's results folder. A rerun "
                    "into the same --out skips the clusters already complete. Exit codes: "
                    "0 every cluster has a verdict, 1 bad input, 5 some clusters ended in "
                    "an error (their rows say why), 130 interrupted.")
    survey.add_argument("catalogue", help="table with a name, ra and dec per cluster (optional: "
                                          "radius, pmra, pmdec, parallax, distance, member "
                                          "count), e.g. Cantat-Gaudin+2020's VizieR TSV")
    survey.add_argument("--gaia", help="'simulate' (default: a field per cluster from its "
                                       "catalogue values), a folder of per-cluster Gaia files "
                                       "named for the clusters, or a HATS catalogue (LSDB)")
    survey.add_argument("--model", choices=sorted(CLUSTER_MODELS),
                        help="cluster model of every run (default pmplx: proper motion and "
                             "parallax; joint adds the sky)")
    survey.add_argument("--limit", type=int, help="survey the first N catalogue rows")
    survey.add_argument("--scheduler", help="address of a running Dask scheduler "
                                            "(tcp://host:8786) instead of a local cluster")
    survey.add_argument("--workers", type=int,
                        help="local worker processes, one thread each (default: one per core)")
    survey.add_argument("--memory-limit", help="memory limit per local worker, e.g. 8GiB "
                                               "(default auto: the memory shared equally)")
    survey.add_argument("--sim-seed", type=int, help="seed of the simulated fields (default 42)")
    survey.add_argument("--sim-field-density", type=float,
                        help="simulated field stars per arcmin² (default 2)")
    survey.add_argument("--assign-errors", action="store_true", default=None,
                        help="give stars Gaia DR3 errors from G (files without errors)")
    survey.add_argument("--drop-invalid", action="store_true", default=None,
                        help="drop (and count) invalid rows of a cluster's stars instead of "
                             "ending that cluster in an error")
    add_core_options(survey)

    reproduce = commands.add_parser(
        "reproduce", help="rewrite the reference figures in figures/ and their index",
        description="Run each workflow with its defaults and copy its figures into figures/.",
    )
    reproduce.add_argument("--figures-dir", default="figures", help="default: figures")
    reproduce.add_argument("--out", default="results/reproduce",
                           help="results folder for the runs (default results/reproduce)")
    reproduce.add_argument("--only", nargs="+", choices=WORKFLOWS, default=list(WORKFLOWS),
                           help="workflows to rerun (default: all; the cluster models take "
                                "several minutes each)")
    return parser


def resolve_options(args: argparse.Namespace, defaults: dict, config: dict) -> dict:
    cli = {key: value for key, value in vars(args).items()
           if key not in {"command", "workflow", "config"}}
    return merge_options(cli, config, defaults)


def workflow_runner(workflow: str) -> tuple[type, Callable]:
    """The inputs dataclass and the runner of ``workflow``."""
    if workflow == "outlier-line":
        from starmix.workflows.outlier_line import LineInput, run_outlier_line

        return LineInput, run_outlier_line
    if workflow in ("density", "ages"):
        from starmix.workflows.density import AgesInput, DensityInput, run_ages, run_density

        return (DensityInput, run_density) if workflow == "density" else (AgesInput, run_ages)
    from starmix.workflows.cluster import ClusterInput, run_cluster

    return ClusterInput, run_cluster


def run_workflow(args: argparse.Namespace) -> int:
    inputs_class, runner = workflow_runner(args.workflow)
    defaults = dataclass_defaults(SamplingOptions, GateThresholds, inputs_class)
    defaults.update(out=WORKFLOW_DEFAULT_OUT[args.workflow], figures=True, checks="on")
    if args.workflow in ("density", "ages"):  # see workflows.density_fit.DENSITY_SAMPLING
        defaults.update(draws=2000, tune=1000, target_accept=0.99)
    schema = {**option_types(SamplingOptions, GateThresholds, inputs_class), "out": str,
              "figures": bool, "checks": str}
    config = read_config_file(args.config, schema)
    options = resolve_options(args, defaults, config)
    if args.workflow in CLUSTER_WORKFLOWS and args.out is None and "out" not in config:
        options["out"] = f"{options['out']}-{options['model']}"
    result = runner(
        out_dir=options["out"],
        inputs=pick(inputs_class, options),
        sampling=pick(SamplingOptions, options),
        gate=pick(GateThresholds, options),
        figures=options["figures"],
        checks=options["checks"],
    )
    print(f"results: {Path(result.out_dir).resolve()}")
    if options["figures"]:
        print(f"figures: {(Path(result.out_dir) / 'figures').resolve()}")
    if result.status == "no_cluster":
        print("NO CLUSTER FOUND: the stars are explained as well without a cluster; the "
              "results are kept and marked no_cluster in run_record.json", file=sys.stderr)
    elif result.status == "checks_failed":
        print("a predictive check FAILED (--strict-checks): the model does not reproduce the "
              "data; the results are kept and marked checks_failed in run_record.json",
              file=sys.stderr)
    elif result.status != "passed":
        print("the run did NOT converge; its results are kept and marked failed in "
              "run_record.json", file=sys.stderr)
    return result.exit_code


def simulate(args: argparse.Namespace) -> int:
    from starmix.data.cluster_field import simulate_cluster_field, write_cluster_field

    if not str(args.out).lower().endswith((".fits", ".fits.gz")):
        raise ValueError(f"--out {args.out}: simulate writes FITS; give a .fits or .fits.gz name")
    if args.radius_arcmin is not None and not args.radius_arcmin > 0:
        raise ValueError(f"--radius must be a positive number of arcmin, got {args.radius_arcmin}")
    for option in ("n_cluster", "n_field"):
        if getattr(args, option) is not None and getattr(args, option) < 0:
            raise ValueError(f"--{option.replace('_', '-')} must be 0 or more, got "
                             f"{getattr(args, option)}")
    if not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed must be a whole number from 0 to 2**32 - 1, got {args.seed}")
    overrides = {key: getattr(args, key) for key in ("n_cluster", "n_field", "radius_arcmin")
                 if getattr(args, key) is not None}
    table = simulate_cluster_field(args.preset, seed=args.seed, **overrides)
    write_cluster_field(table, args.out)
    members = int(table["is_member"].sum())
    print(f"wrote {len(table)} simulated stars ({members} members, {len(table) - members} "
          f"field) to {Path(args.out).resolve()}")
    return 0


def fetch_gaia(args: argparse.Namespace) -> int:
    import astropy.units as u

    from starmix.data.clusters import resolve_center
    from starmix.data.fetch import fetch_gaia_cone

    center, origin = resolve_center(args.cluster, args.center)
    try:
        radius = u.Quantity(args.radius)
    except (TypeError, ValueError):
        radius = None
    if radius is None or radius.unit.physical_type != "angle" or not radius > 0:
        raise ValueError(f"--radius must be a positive angle such as 20arcmin, got {args.radius}")
    print(f"querying the Gaia archive: {radius} around {center.to_string('decimal')} ({origin})")
    path = fetch_gaia_cone(center, radius, args.out)
    print(f"wrote {path.resolve()}")
    return 0


def run_survey_command(args: argparse.Namespace) -> int:
    from starmix.workflows.interrupt import check_signals
    from starmix.workflows.survey import Execution, SurveyOptions, mark_interrupted, run_survey

    classes = (SamplingOptions, GateThresholds, SurveyOptions, Execution)
    defaults = dataclass_defaults(*classes)
    defaults.update(out="results/survey", figures=True, checks="on")
    schema = {**option_types(*classes), "out": str, "figures": bool, "checks": str}
    config = read_config_file(args.config, schema)
    options = resolve_options(args, defaults, config)
    options.pop("catalogue")
    # every option is checked (one line naming it) before the survey writes anything
    survey_options = pick(SurveyOptions, options)
    sampling, gate = pick(SamplingOptions, options), pick(GateThresholds, options)
    execution = pick(Execution, options)
    finished = []
    try:
        result = run_survey(args.catalogue, options["out"], survey_options, sampling, gate,
                            execution, finished=finished)
        check_signals()  # a signal held back while the survey closed its folder
        print(f"survey table: {(result.out_dir / 'survey.ecsv').resolve()}")
        if result.exit_code:
            errors = result.record["verdicts"].get("error", 0)
            print(f"{errors} cluster(s) ended in an error: their rows in survey.ecsv say "
                  "why; the same command redoes them (a bad catalogue row once it is "
                  "fixed)", file=sys.stderr)
    except RunInterrupted as stop:
        if stop.record is None and finished:  # after the survey's outputs were written
            mark_interrupted(finished[0], stop)
        raise
    return result.exit_code


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        from starmix.workflows.reproduce import reproduce

        return reproduce(Path(args.figures_dir), Path(args.out), args.only)
    if args.command == "simulate":
        return simulate(args)
    if args.command == "fetch-gaia":
        return fetch_gaia(args)
    if args.command == "survey":
        return run_survey_command(args)
    return run_workflow(args)


def report_interruption(stop: RunInterrupted) -> None:
    where = f" during '{stop.step}'" if stop.step else ""
    print(f"starmix: {stop}{where}; no partial file was left behind", file=sys.stderr)
    if stop.record is None:
        print("no results folder was touched; the same command starts the run again",
              file=sys.stderr)
        return
    print(f"the run record {stop.record} is marked interrupted", file=sys.stderr)
    if stop.kept:
        print("complete files this run wrote before it stopped:", file=sys.stderr)
        for path in stop.kept:
            print(f"  {path}", file=sys.stderr)
    else:
        print("this run wrote no result files before it stopped; the same command starts "
              "it again", file=sys.stderr)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with stop_on_signals():
            return dispatch(args)
    except RunInterrupted as stop:
        report_interruption(stop)
        return stop.exit_code
    except ConnectionError as err:
        print(f"starmix: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except (DataValidationError, ValueError, OSError) as err:
        # bad input, options, files or folders (FileNotFoundError, PermissionError, a full
        # disk): one line that names the culprit, never a traceback
        print(f"starmix: error: {err}", file=sys.stderr)
        return EXIT_ERROR


def command() -> None:
    """The ``starmix`` console command: :func:`main`, then exit without tearing the
    interpreter down. Every result file is complete (written atomically) by then, so only
    Numba's and LLVM's finalisers are skipped, about a second of every run."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    command()
