"""The ``starmix`` command: ``starmix run WORKFLOW [options]`` and ``starmix reproduce``.

Exit codes: 0 success; 1 bad input or options, including command-line usage errors (a
message that names the option, column or file; nothing written); 2 the convergence gate
failed (results kept, marked failed); 3 no cluster found (the detection step preferred a
field-only model; results kept, marked ``no_cluster``); 130 interrupted by Ctrl-C (SIGINT),
143 by SIGTERM (the folder holds this run's record marked ``interrupted`` and the complete
files written before the signal, never a partial one; see :mod:`starmix.workflows.runs.interrupt`).
The results folder holds one run at a time (:mod:`starmix.workflows.runs.folder`).
"""

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from starmix.data.input_checks import DataValidationError
from starmix.models import CLUSTER_MODELS
from starmix.workflows import registry
from starmix.workflows.base import resolve
from starmix.workflows.reproduce import reproduce_choices
from starmix.workflows.runs.interrupt import RunInterrupted, stop_on_signals
from starmix.workflows.runs.options import (
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
from starmix.workflows.runs.run import EXIT_ERROR

# Each command imports what it runs (in the functions below): the cluster workflow's
# compiled kernels and astropy's coordinates cost seconds that the outlier line and
# `starmix --help` need not pay.

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


def build_parser() -> argparse.ArgumentParser:
    parser = StarmixParser(
        prog="starmix",
        description="Bayesian mixture-model workflows for astronomy.",
        epilog="Workflows: " + "; ".join(
            f"{w.name}: {w.summary}" for w in registry.WORKFLOWS.values())
               + ". See 'starmix run WORKFLOW --help'.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run a workflow",
                              description="Run a workflow on built-in or your own data.")
    workflows = run.add_subparsers(dest="workflow", required=True, metavar="WORKFLOW")
    for workflow in registry.WORKFLOWS.values():
        parser_of = workflows.add_parser(workflow.name, aliases=list(workflow.aliases),
                                         help=workflow.summary,
                                         description=workflow.description)
        resolve(workflow.add_options)(parser_of)
        add_core_options(parser_of)

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
                                       "named for the clusters, one Gaia table holding them "
                                       "all (a cone cut per cluster), or a HATS catalogue "
                                       "(LSDB)")
    survey.add_argument("--model", choices=["auto", *sorted(CLUSTER_MODELS)],
                        help="cluster model of every run (default auto: joint where the "
                             "stars have sky positions, else pmplx, proper motion and "
                             "parallax)")
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

    search = commands.add_parser(
        "search", help="find clusters nobody named in a region, and verify each (Dask)",
        description="Blind search: HDBSCAN candidates in five dimensions, one Dask task per "
                    "HEALPix patch (with margins), each candidate verified by the joint "
                    "model and its detection step (a survey of the candidates), duplicates "
                    "merged, cross-matched with --catalogue. Writes clusters.ecsv/.parquet, "
                    "members.parquet, sky.png, candidates.ecsv, verify/ and "
                    "search_record.json. Exit codes: 0 clusters found, 3 none found, 1 bad "
                    "input, 130 interrupted. A rerun into the same --out resumes.")
    search.add_argument("region", help="'cone RA DEC RADIUS', 'cone galactic L B RADIUS', "
                                       "'box RA1 RA2 DEC1 DEC2' or 'box galactic L1 L2 B1 B2' "
                                       "in degrees (a box's longitudes run east from the "
                                       "first to the second; it must fit in a cone of 15)")
    search.add_argument("--gaia", help="'simulate' (default: a simulated sky with injected "
                                       "clusters of known truth), a Gaia table, or a HATS "
                                       "catalogue (LSDB)")
    search.add_argument("--catalogue", help="cluster catalogue naming the known clusters "
                                            "(name, ra, dec; optional pm and parallax), e.g. "
                                            "Cantat-Gaudin+2020's VizieR TSV")
    search.add_argument("--order", type=int, help="HEALPix order of the patches (default 6, "
                                                  "0.9 deg pixels)")
    search.add_argument("--margin", type=float, dest="margin_arcmin",
                        help="patch margin in arcmin (default 30: a cluster's whole extent)")
    search.add_argument("--min-cluster-size", type=int, help="HDBSCAN's (default 10)")
    search.add_argument("--selection", choices=["leaf", "eom"],
                        help="HDBSCAN's cluster selection (default leaf)")
    search.add_argument("--sim-seed", type=int,
                        help="seed of the simulated sky or the injected clusters (default 42)")
    search.add_argument("--sim-field-density", type=float,
                        help="simulated field stars per arcmin² (default 0.5)")
    search.add_argument("--sim-richness", type=int, nargs="*",
                        help="members of each injected cluster (default 25 50 100 200 400 "
                             "1000); given with no numbers, a sky with nothing injected "
                             "(the false-positive rate of the selection function)")
    search.add_argument("--inject-richness", type=int, nargs="+",
                        help="with --gaia FILE or a HATS folder: inject simulated clusters "
                             "of these members (over G = 12-20; those in the field's G "
                             "range are injected) into the real stars, seeded by "
                             "--sim-seed, and score the search on them (the selection "
                             "function on a real field)")
    search.add_argument("--sim-parallax", type=float, nargs="+", dest="sim_parallaxes",
                        help="parallaxes (mas) the injected clusters cycle through (default "
                             "1.0 0.4)")
    search.add_argument("--sim-size", type=float, nargs="+", dest="sim_sizes_pc",
                        help="Plummer radii (pc) the injected clusters cycle through "
                             "(default 1.5)")
    search.add_argument("--scheduler", help="address of a running Dask scheduler "
                                            "(tcp://host:8786) instead of a local cluster")
    search.add_argument("--workers", type=int,
                        help="local worker processes, one thread each (default: one per core)")
    search.add_argument("--memory-limit", help="memory limit per local worker (default auto)")
    add_core_options(search)

    selection = commands.add_parser(
        "selection-function", help="completeness and false-positive rate of the search, "
                                   "from searches on simulated skies",
        description="Pool searches on simulated skies (starmix search --gaia simulate, make "
                    "bench-search): completeness per richness and field density with its "
                    "interval, a logistic in log10(members) and log10(density), the members "
                    "at 50% and 90%, and false detections per square degree. Writes "
                    "selection_function.ecsv and selection_function.json into --out.")
    selection.add_argument("searches", nargs="+", help="search folders (each with truth.ecsv)")
    selection.add_argument("--out", required=True, help="folder for the two files")

    reproduce = commands.add_parser(
        "reproduce", help="rewrite the reference figures in figures/ and their index",
        description="Run each workflow with its defaults and copy its figures into figures/.",
    )
    reproduce.add_argument("--figures-dir", default="figures", help="default: figures")
    reproduce.add_argument("--out", default="results/reproduce",
                           help="results folder for the runs (default results/reproduce)")
    reproduce.add_argument("--only", nargs="+", choices=reproduce_choices(), default=None,
                           help="workflows, or single runs (cluster models, density "
                                "examples), to rerun (default: all; the cluster models take "
                                "several minutes each)")
    return parser


def resolve_options(args: argparse.Namespace, defaults: dict, config: dict) -> dict:
    cli = {key: value for key, value in vars(args).items()
           if key not in {"command", "workflow", "config"}}
    return merge_options(cli, config, defaults)


def workflow_runner(workflow: str) -> tuple[type, Callable]:
    """The input type and the runner of ``workflow`` (a name or alias), from the registry."""
    return registry.get(workflow).load()


def run_workflow(args: argparse.Namespace) -> int:
    workflow = registry.get(args.workflow)
    inputs_class, runner = workflow_runner(args.workflow)
    defaults = dataclass_defaults(SamplingOptions, GateThresholds, inputs_class)
    defaults.update(out=None, figures=True, checks="on", **workflow.sampling_defaults())
    schema = {**option_types(SamplingOptions, GateThresholds, inputs_class), "out": str,
              "figures": bool, "checks": str}
    config = read_config_file(args.config, schema)
    options = resolve_options(args, defaults, config)
    if options.get("out") is None:
        options["out"] = workflow.default_out(args.workflow, options)
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


def command_options(args: argparse.Namespace, classes, out: str) -> dict:
    """A Dask command's options (``survey``, ``search``): flags over the config file over the
    defaults of ``classes`` (and ``out``)."""
    defaults = dataclass_defaults(*classes)
    defaults.update(out=out, figures=True, checks="on")
    schema = {**option_types(*classes), "out": str, "figures": bool, "checks": str}
    return resolve_options(args, defaults, read_config_file(args.config, schema))


def run_survey_command(args: argparse.Namespace) -> int:
    from starmix.workflows.runs.interrupt import check_signals
    from starmix.workflows.survey.run import Execution, SurveyOptions, mark_interrupted, run_survey

    options = command_options(args, (SamplingOptions, GateThresholds, SurveyOptions,
                                     Execution), "results/survey")
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


def run_search_command(args: argparse.Namespace) -> int:
    from starmix.workflows.search.run import SearchOptions, run_search
    from starmix.workflows.survey.run import Execution

    options = command_options(args, (SamplingOptions, GateThresholds, SearchOptions,
                                     Execution), "results/search")
    for name in ("sim_richness", "inject_richness", "sim_parallaxes", "sim_sizes_pc"):
        if options.get(name) is not None:
            options[name] = tuple(options[name])
    # every option is checked (one line naming it) before the search writes anything
    search_options = pick(SearchOptions, options)
    sampling, gate = pick(SamplingOptions, options), pick(GateThresholds, options)
    result = run_search(options["out"], search_options, sampling, gate,
                        pick(Execution, options))
    print(f"clusters: {(result.out_dir / 'clusters.ecsv').resolve()}")
    if result.exit_code:
        print(f"no cluster found among {result.record['candidates']['n']} candidates; the "
              f"candidates and their runs are kept in {result.out_dir}", file=sys.stderr)
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
    if args.command == "search":
        return run_search_command(args)
    if args.command == "selection-function":
        from starmix.workflows.search.selection import selection_function

        result = selection_function(args.searches, args.out)
        fit = result["logistic"]["coefficients"]
        print(f"{result['found']} of {result['injected']} injected clusters found; "
              "logistic " + ", ".join(f"{k} {v:.2f}" for k, v in fit.items()) + "; members "
              f"at 50%: {result['members_at_50_percent']}; false detections "
              f"{result['false_positive_rate']['false_detections']} in "
              f"{result['false_positive_rate']['area_deg2']:.1f} deg²; written to {args.out}")
        return 0
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
