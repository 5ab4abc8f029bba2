"""Cluster membership workflow (``starmix run cluster --model ...``; ``ngc6819`` is an alias).

:func:`run_cluster` reads as the run's steps; each is a function in the module named for it:

- steps 1-3, :mod:`starmix.workflows.cluster.stars`: load (or simulate) the Gaia table,
  validate it for the model, quality cuts, footprint, starting candidates
  (:mod:`starmix.workflows.cluster.inputs` holds the options and the readers);
- steps 4-7, :mod:`starmix.workflows.cluster.fit`: the field-only models, the cluster model
  (MAP from each candidate, NUTS from the best), the detection
  (:mod:`starmix.workflows.cluster.detection`) and the convergence gate;
- step 8, :mod:`starmix.workflows.cluster.outputs`: estimates, tables and figures.
"""

import dataclasses
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from starmix.data.clusters import normalise_name
from starmix.workflows.base import Outcome, execute
from starmix.workflows.cluster.detection import Detection
from starmix.workflows.cluster.fit import cluster_gate, fit_and_detect
from starmix.workflows.cluster.inputs import ClusterInput
from starmix.workflows.cluster.outputs import (
    draw_cluster_figures,
    save_results,
    summarise,
    truth_of,
)
from starmix.workflows.cluster.stars import load_stars, select_stars
from starmix.workflows.inference.checks import check_step
from starmix.workflows.inference.gate import GateReport
from starmix.workflows.inference.sampling import sampler_used
from starmix.workflows.runs.options import GateThresholds, SamplingOptions, as_record
from starmix.workflows.runs.run import Run, RunResult, final_status


def run_status(report: GateReport, detection: Detection | None, checks=None,
               check_mode: str = "on") -> str:
    """``no_cluster`` when detection finds none, else by the gate and (``strict``) the
    predictive checks (:func:`starmix.workflows.runs.run.final_status`)."""
    return final_status(report.passed, checks, check_mode,
                        no_cluster=detection is not None and not detection.found)


def in_background(function, *args) -> Future:
    """``function(*args)`` on a thread of its own (NumPy releases the GIL in its
    percentiles); the future's ``result()`` waits for it."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(function, *args)
    pool.shutdown(wait=False)  # the thread ends with its one task
    return future


def run_cluster(out_dir: str | Path, inputs: ClusterInput = ClusterInput(),
                sampling: SamplingOptions = SamplingOptions(),
                gate: GateThresholds = GateThresholds(), figures: bool = True,
                quiet: bool = False, checks: str = "on") -> RunResult:
    """Run the whole cluster workflow; returns the result even when the gate fails or no
    cluster is found (status ``failed`` or ``no_cluster``, results kept). ``checks``:
    predictive checks ``on`` (reported), ``off`` or ``strict`` (a failed check is the
    status ``checks_failed``)."""
    if inputs.data is None and inputs.cluster is None:
        inputs = dataclasses.replace(inputs, cluster="NGC6819")  # the simulated field's
    seed = sampling.seed

    def steps(run: Run) -> Outcome:
        with run.step("load data"):
            stars = load_stars(run, inputs)
        with run.step("validate and cut"):
            stars = select_stars(run, inputs, stars, seed)
        fitted = fit_and_detect(run, inputs, stars, sampling)  # steps 4-7, each timed
        spread = in_background(fitted.probability.membership, "cluster")
        with run.step("convergence gate"):  # while NumPy's percentiles run beside it
            report = cluster_gate(fitted.idata, fitted.model, gate)
        with run.step("membership and summaries"):
            summary, details = summarise(run, inputs, stars, fitted, seed)
        check_report, check_arrays = check_step(run, fitted.model, fitted.idata, seed, "stars",
                                                checks, details)
        with run.step("save results"):
            membership = spread.result()
            save_results(run, inputs, stars, fitted, summary, details, membership, seed)
        if figures:
            with run.step("figures"):
                draw_cluster_figures(run, inputs, stars.table, fitted.idata, membership,
                                     details["cluster_estimates"], truth_of(stars.table),
                                     stars.reference, check_arrays)
        details.update(convergence=report.as_record(), sampler_used=sampler_used(fitted.idata))
        return Outcome(run_status(report, fitted.detection, check_report, checks), details,
                       (report, check_report, fitted.detection))

    label = normalise_name(inputs.cluster) if inputs.cluster else "cluster"
    return execute(run_cluster, out_dir, as_record(inputs, sampling, gate), steps, quiet=quiet,
                   checks=checks, label=f"{label} {inputs.model}")
