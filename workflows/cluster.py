"""Cluster membership workflow (``starmix run cluster --model ...``; ``ngc6819`` is an alias):
:func:`run_cluster` strings the steps together, each a function in the module named for it.

1-3. :mod:`workflows.cluster_inputs`: load (or simulate) the Gaia table, validate it for
     the model, quality cuts, footprint.
4-7. :mod:`workflows.cluster_fit`: starting candidates; with detection (Laplace route, the
     default) the field-only models with K and K + 1 Gaussians first, whose PSIS-LOO sets
     K*, the field's own number; the cluster model with K*, MAP from each candidate and
     NUTS from the best, membership and pointwise log-likelihood per draw; detection (the
     cluster model with K* against the field-only model with K*); convergence gate. With
     ``--detection-method nuts`` the cluster model is fitted with K first and again with
     K* if they differ (:func:`workflows.cluster_fit.detection_step`).
8.   :mod:`workflows.cluster_outputs`: estimates, tables and figures.

The names below the imports are this workflow's public ones (``from
starmix.workflows.cluster import ClusterInput, run_cluster``).
"""

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from starmix.data.clusters import normalise_name
from starmix.models import CLUSTER_MODELS
from starmix.models.field import HALO_PARAMETERS, MAX_FIELD_COMPONENTS
from starmix.workflows.checks import check_step
from starmix.workflows.cluster_fit import (  # noqa: F401 (public names of the workflow)
    AUTO_FIELD_COMPONENTS,
    best_by_loo,
    build_cluster_model,
    check_fit_budget,
    choose_field_components,
    cluster_gate,
    detection_against,
    detection_step,
    field_components_needed,
    field_only_fits,
    fit,
    has_lump_alternative,
    initial_guess,
    lump_fit,
    prior_center_setter,
    start_arguments,
    starting_candidates,
)
from starmix.workflows.cluster_inputs import (  # noqa: F401
    CLUSTER_WEIGHT_RANGE,
    MAX_SIMULATED,
    ClusterInput,
    check_inside,
    footprint_for,
    load_cluster_table,
    parse_columns,
    prepare_stars,
    resolve_cluster_center,
    unused_options,
)
from starmix.workflows.cluster_outputs import (  # noqa: F401
    PARALLAX_SYSTEMATIC,
    SYSTEMATIC_FLOOR,
    cluster_estimates,
    draw_cluster_figures,
    members_parallax,
    membership_table,
    phase_space,
    truth_of,
    weighted_median,
)
from starmix.workflows.config import GateThresholds, SamplingOptions, as_record
from starmix.workflows.detection import Detection
from starmix.workflows.diagnostics import GateReport
from starmix.workflows.identification import (
    published_reference,
)
from starmix.workflows.recovery import membership_quality, parameter_bias
from starmix.workflows.results import write_json, write_posterior, write_table
from starmix.workflows.run import Run, RunResult, final_status
from starmix.workflows.sampling import sampler_used
from starmix.workflows.summary import summary_table


def run_status(report: GateReport, detection: Detection | None, checks=None,
               check_mode: str = "on") -> str:
    """``no_cluster`` when detection finds none, else by the gate and (``strict``) the
    predictive checks (:func:`workflows.run.final_status`)."""
    return final_status(report.passed, checks, check_mode,
                        no_cluster=detection is not None and not detection.found)


def run_cluster(
    out_dir: str | Path,
    inputs: ClusterInput = ClusterInput(),
    sampling: SamplingOptions = SamplingOptions(),
    gate: GateThresholds = GateThresholds(),
    figures: bool = True,
    quiet: bool = False,
    checks: str = "on",
) -> RunResult:
    """Run the whole cluster workflow; returns the result even when the gate fails or no
    cluster is found (status ``failed`` or ``no_cluster``, results kept). ``checks``:
    predictive checks ``on`` (reported), ``off`` or ``strict`` (a failed check is the
    status ``checks_failed``)."""
    final_status(True, None, checks)  # an unknown mode fails before any work
    if inputs.data is None and inputs.cluster is None:
        inputs = dataclasses.replace(inputs, cluster="NGC6819")  # the simulated field's
    label = normalise_name(inputs.cluster) if inputs.cluster else "cluster"
    run = Run(f"{label} {inputs.model}", out_dir, as_record(inputs, sampling, gate),
              quiet=quiet)  # checks --out before any work
    with run:
        with run.step("load data"):
            reference = inputs.reference or published_reference(inputs.cluster,
                                                                  inputs.catalogue)
            center, center_origin = resolve_cluster_center(inputs, reference)
            table, provenance = load_cluster_table(inputs)
            run.say(f"{len(table)} stars from {provenance['source']}")
            if "correlations" in provenance:
                run.say(f"correlations: {provenance['correlations']}")
        with run.step("validate and cut"):
            table, selection = prepare_stars(table, inputs, center, sampling.seed, run.say)
            footprint = footprint_for(table, inputs, center)
            if footprint is not None:
                check_inside(table, footprint)
                run.say(f"footprint: {footprint.radius_arcmin:g} arcmin around "
                        f"({footprint.ra:.4f}, {footprint.dec:.4f}), {footprint.origin}")
            candidates = starting_candidates(table, reference)
            guess = candidates[0].guess()
            if "parallax" in CLUSTER_MODELS[inputs.model].prior_center_axes:
                guess.setdefault("parallax", float(np.median(np.asarray(table["parallax"]))))
            run.say(f"{len(table)} stars to fit; {len(candidates)} starting candidate(s): "
                    + "; ".join(f"pm ({c.pmra:.2f}, {c.pmdec:.2f}) mas/yr from {c.origin}"
                                for c in candidates))
        gaussian_field = inputs.model != "parallax" or inputs.parallax_field == "gaussian"
        auto = inputs.field_components == "auto" and gaussian_field
        comparison = None
        field_first = (inputs.detection and gaussian_field and not auto
                       and inputs.detection_method == "laplace")
        alternatives = None
        if field_first:  # the field's own K first, so that the cluster model is fitted once
            with run.step("field-only models"):
                k_given = int(inputs.field_components)
                # what the cluster fit will need (memory, disk) and rows whose likelihood is
                # not finite stop the run here, before any model is fitted
                largest, check_start = build_cluster_model(
                    table, inputs, guess, center, min(k_given + 1, MAX_FIELD_COMPONENTS))
                check_fit_budget(largest, sampling, inputs.log_likelihood, run.out_dir)
                check_start()
                alternatives = field_only_fits(table, inputs, guess, center, k_given,
                                               sampling, run)
                n_field = field_components_needed(alternatives[0])
                if n_field != k_given:
                    run.say(f"detection: without a cluster the field needs K = {n_field}; the "
                            f"cluster model is fitted with K = {n_field}")
        with run.step("sample"):
            if auto:
                n_field, model, idata, probability, comparison = choose_field_components(
                    table, inputs, guess, center, sampling, run, candidates=candidates)
            else:
                if alternatives is None:
                    n_field = (2 if inputs.field_components == "auto"
                               else int(inputs.field_components))
                model, check_start = build_cluster_model(table, inputs, guess, center, n_field)
                starts, before_start = start_arguments(model, inputs.model, candidates, table,
                                                       len(model.coords["component"]))
                idata, probability = fit(model, sampling, run.say, check_start, starts,
                                         before_start, log_likelihood=inputs.log_likelihood,
                                         out_dir=run.out_dir)
        detection = None
        if inputs.detection and gaussian_field:
            with run.step("detection"):
                if alternatives is not None:
                    lump = (lump_fit(table, inputs, guess, center, n_field, idata, sampling, run)
                            if has_lump_alternative(inputs) else None)
                    detection = detection_against(idata, n_field, *alternatives, lump=lump)
                else:
                    n_field, (model, idata, probability), detection = detection_step(
                        table, inputs, guess, center, candidates, n_field,
                        (model, idata, probability), sampling, run)
        background = ThreadPoolExecutor(1)  # NumPy's percentiles release the GIL
        spread = background.submit(probability.membership, "cluster")
        background.shutdown(wait=False)  # its one task still runs; spread.result() waits
        with run.step("convergence gate"):
            report = cluster_gate(idata, model, gate)
        spec = CLUSTER_MODELS[inputs.model]
        with run.step("membership and summaries"):
            probability_mean = probability.mean
            summary = summary_table(idata, [rv.name for rv in model.free_RVs] + [
                name for name in ("cluster_distance", "cluster_halo_dispersion")
                if name in idata["posterior"]])
            estimates = cluster_estimates(summary, table, probability_mean, sampling.seed)
            details = {"data": provenance, "selection": selection,
                       "center": None if center is None else {
                           "ra": center.ra.deg, "dec": center.dec.deg, "origin": center_origin},
                       "published": None if reference is None else vars(reference),
                       "footprint": None if footprint is None else footprint.record(),
                       "starting_candidates": [c.record() for c in candidates],
                       "map_log_posteriors": idata.attrs.get("map_log_posteriors"),
                       "restarted_chains": idata.attrs.get("restarted_chains", []),
                       "initial_guess": guess, "field_components": n_field,
                       "cluster_estimates": estimates,
                       "systematic_floor": SYSTEMATIC_FLOOR,
                       "detection": None if detection is None else detection.record()}
            truth = truth_of(table)
            if truth:
                quality, reliability = membership_quality(probability_mean, table["is_member"])
                details["recovery"] = {"parameters": parameter_bias(summary, truth),
                                       "membership": quality}
                run.keep("reliability", write_table(run.out_dir / "reliability.ecsv", reliability))
                run.keep("recovery", write_json(run.out_dir / "recovery.json", details["recovery"]))
        check_report, check_arrays = check_step(run, model, idata, sampling.seed, "stars",
                                                checks, details)
        with run.step("save results"):
            details["log_likelihood"] = {
                "mode": inputs.log_likelihood, "saved": inputs.log_likelihood != "none",
                "draws_per_chain": int(idata["log_likelihood"].sizes["draw"]),
                "of_draws_per_chain": int(idata["posterior"].sizes["draw"]),
                "note": "membership means use every draw; percentiles, PSIS-LOO and the "
                        "saved log_likelihood group use these draws"}
            if inputs.log_likelihood == "none":
                idata = idata.drop_nodes("log_likelihood")
            run.keep("posterior", write_posterior(run.out_dir / "posterior.nc", idata))
            run.keep("summary", write_table(run.out_dir / "summary.ecsv", summary))
            if comparison is not None:
                run.keep("field_components", write_table(run.out_dir / "field_components_loo.ecsv",
                                                         comparison))
            if inputs.model == "joint":
                kinematics = phase_space(idata, footprint.center, inputs, sampling.seed)
                run.keep("kinematics", write_table(run.out_dir / "kinematics.ecsv", kinematics))
                details["kinematics"] = {row["quantity"]: [row["mean"], row["sd"], row["unit"]]
                                         for row in kinematics}
            membership = spread.result()
            run.keep("membership", write_table(run.out_dir / "membership.ecsv",
                                               membership_table(table, membership)))
        if figures:
            with run.step("figures"):
                draw_cluster_figures(run, inputs, table, idata, membership, estimates, truth,
                                     reference, check_arrays)
        status = run_status(report, detection, check_report, checks)
        result = run.finish(status, **details, convergence=report.as_record(),
                            cluster_parameters=[name for name in (*spec.parameters,
                                                                  *HALO_PARAMETERS)
                                                if name in idata["posterior"]],
                            sampler_used=sampler_used(idata))
        print(report.text())
        if check_report is not None:
            print(check_report.text())
        if detection is not None:
            print(detection.text())
        return result
