"""Cluster membership workflow (``starmix run ngc6819 --model ...``).

Steps, each a function: load (or simulate) the Gaia table -> validate for the model ->
quality cuts -> initial guess -> build model -> NUTS -> membership and pointwise
log-likelihood per draw -> convergence gate (with collapse checks) -> tables -> figures.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr
from astropy.coordinates import SkyCoord
from astropy.table import Table

from data.cluster_field import simulate_cluster_field
from data.clusters import HUNT_REFFERT_2023, cluster_reference, normalise_name, resolve_center
from data.gaia import (
    QualityCuts,
    apply_quality_cuts,
    assign_dr3_errors,
    core_mask,
    load_gaia,
    validate_gaia,
)
from models import CLUSTER_MODELS
from workflows import cluster_plots, plots
from workflows.config import GateThresholds, SamplingOptions, as_record
from workflows.diagnostics import GateReport, convergence_gate
from workflows.kinematics import (
    DEFAULT_RADIAL_VELOCITY,
    GENERIC_RADIAL_VELOCITY,
    cluster_phase_space,
)
from workflows.membership import mixture_draws, summarise
from workflows.pgm import cluster_pgm
from workflows.recovery import membership_quality, parameter_bias
from workflows.results import save_figure, write_json, write_posterior, write_table
from workflows.run import Run, RunResult
from workflows.sampling import check_starting_point, sample_posterior, sampler_used
from workflows.summary import summary_table

CLUSTER_WEIGHT_RANGE = (0.001, 0.95)
AUTO_FIELD_COMPONENTS = (1, 2, 3)


@dataclass(frozen=True)
class ClusterInput:
    """What to fit and on which stars. ``data=None`` simulates the NGC 6819 field."""

    model: str = "pm2d"
    data: str | None = None
    cluster: str = "NGC6819"
    center: tuple[float, float] | None = None
    columns: str | None = None
    drop_invalid: bool = False
    assign_errors: bool = False
    ruwe_max: float | None = 1.4
    g_max: float | None = 20.0
    parallax_over_error_min: float | None = None
    radius_arcmin: float | None = None
    max_stars: int | None = None
    field_components: str = "2"
    parallax_field: str = "exponential"
    parallax_offset: bool = False
    radial_velocity: tuple[float, float] | None = None
    sim_seed: int = 42
    n_cluster: int | None = None
    n_field: int | None = None


def parse_columns(text: str | None) -> dict[str, str]:
    """``"Plx=parallax,pmRA=pmra"`` -> {"Plx": "parallax", "pmRA": "pmra"}."""
    if not text:
        return {}
    pairs = [item.split("=") for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"--columns takes name=archive_name pairs, got {text!r}")
    return {old.strip(): new.strip() for old, new in pairs}


def load_cluster_table(inputs: ClusterInput) -> tuple[Table, dict]:
    """Step 1: the user's Gaia table, or the simulated NGC 6819 field."""
    if inputs.data is None:
        sizes = {k: v for k, v in (("n_cluster", inputs.n_cluster),
                                   ("n_field", inputs.n_field)) if v is not None}
        table = simulate_cluster_field("ngc6819", seed=inputs.sim_seed, **sizes)
        return table, {"source": "simulated NGC 6819 field (data/cluster_field.py)",
                       "simulation_seed": inputs.sim_seed, **sizes}
    table = load_gaia(inputs.data, parse_columns(inputs.columns)).data
    provenance = {"source": str(inputs.data), "renamed": table.meta.get("renamed", {})}
    if inputs.assign_errors:
        table = assign_dr3_errors(table)
        provenance["errors"] = table.meta["errors"]
    if "source_id" not in table.colnames:
        table["source_id"] = np.arange(len(table))
        provenance["source_id"] = "absent in the file: row numbers used"
    return table, provenance


def prepare_stars(table: Table, inputs: ClusterInput, center, seed: int, say):
    """Steps 2-3: validate the input for the model, apply quality cuts, optionally subsample."""
    spec = CLUSTER_MODELS[inputs.model]
    cuts = QualityCuts(inputs.ruwe_max, inputs.g_max, inputs.parallax_over_error_min,
                       inputs.radius_arcmin)
    table, dropped = validate_gaia(table, spec.REQUIRED_COLUMNS, inputs.drop_invalid)
    table, cut_record = apply_quality_cuts(table, cuts, center)
    for reason, count in dropped.items():
        say(f"dropped (--drop-invalid) {count} rows: {reason}")
    for cut, count in cut_record["removed"].items():
        say(f"quality cut {cut}: removed {count} rows")
    record = {"quality_cuts": cut_record, "dropped_invalid": dropped}
    if inputs.max_stars is not None and len(table) > inputs.max_stars:
        keep = np.sort(np.random.default_rng(seed).choice(len(table), inputs.max_stars,
                                                          replace=False))
        record["subsample"] = {"from": len(table), "to": inputs.max_stars, "seed": seed}
        say(f"random subsample of {inputs.max_stars} of {len(table)} stars (--max-stars)")
        table = table[keep]
    record["n_stars"] = len(table)
    return table, record


def initial_guess(table: Table, center) -> dict:
    """Prior centres for the cluster: the densest 0.25 mas/yr cell of proper motion (among
    stars within 5' of the centre when positions exist) and the median parallax near it."""
    near = core_mask(table, center) if {"ra", "dec"} <= set(table.colnames) else slice(None)
    pmra, pmdec = np.asarray(table["pmra"])[near], np.asarray(table["pmdec"])[near]
    lo = np.percentile(np.stack([pmra, pmdec]), 1, axis=1)
    hi = np.percentile(np.stack([pmra, pmdec]), 99, axis=1)
    n_bins = np.ceil((hi - lo) / 0.25).astype(int).clip(1, 400)
    counts, x_edges, y_edges = np.histogram2d(pmra, pmdec, bins=n_bins,
                                              range=list(zip(lo, hi, strict=True)))
    i, j = np.unravel_index(np.argmax(counts), counts.shape)
    guess = {"pmra": float((x_edges[i] + x_edges[i + 1]) / 2),
             "pmdec": float((y_edges[j] + y_edges[j + 1]) / 2)}
    if "parallax" in table.colnames:
        close = np.hypot(np.asarray(table["pmra"]) - guess["pmra"],
                         np.asarray(table["pmdec"]) - guess["pmdec"]) < 0.5
        guess["parallax"] = float(np.clip(np.median(np.asarray(table["parallax"])[close]),
                                          0.05, None))
    return guess


def build_cluster_model(table, inputs: ClusterInput, guess, center, n_field: int):
    """Step 4: the chosen model from its module's ``from_table`` adapter, and its
    starting-point check (:func:`workflows.sampling.check_starting_point` on the model's
    input columns; the sampler runs it when the log-density at the start is not finite)."""
    spec = CLUSTER_MODELS[inputs.model]
    model = spec.from_table(
        table, guess, n_field=n_field, center=center, radius_arcmin=inputs.radius_arcmin,
        parallax_field=inputs.parallax_field, parallax_offset=inputs.parallax_offset)
    columns = {name: np.asarray(table[name]) for name in spec.REQUIRED_COLUMNS
               if name != "source_id"}
    return model, partial(check_starting_point, model, columns)


def fit(model: pm.Model, sampling: SamplingOptions, say,
        check_start=None) -> tuple[xr.DataTree, np.ndarray]:
    """Steps 5-6: NUTS from the MAP point (the per-star ``log_component`` is not stored),
    then per-draw membership and the pointwise ``log_likelihood`` group for LOO."""
    keep = [rv.name for rv in model.free_RVs] + [
        var.name for var in model.deterministics if var.name != "log_component"]
    idata = sample_posterior(model, sampling, var_names=keep, log_likelihood=False,
                             start_at_map=True, check_start=check_start)
    start = time.perf_counter()
    probability, log_likelihood = mixture_draws(model, idata["posterior"].to_dataset(), say=say)
    idata.attrs["membership_draws_seconds"] = round(time.perf_counter() - start, 3)
    stars = model.coords["star"]
    idata["log_likelihood"] = xr.DataTree(xr.Dataset(
        {"stars": (("chain", "draw", "star"), log_likelihood)},
        coords={"chain": idata["posterior"]["chain"], "draw": idata["posterior"]["draw"],
                "star": np.asarray(stars)}))
    return idata, probability


def choose_field_components(table, inputs, guess, center, sampling, run: Run):
    """``--field-components auto``: fit K = 1, 2, 3 field components and keep the one LOO
    ranks first. Returns (K, its model, posterior, per-draw membership, comparison)."""
    fits, loo = {}, {}
    for n_field in AUTO_FIELD_COMPONENTS:
        run.say(f"field components: fitting K = {n_field}")
        model, check_start = build_cluster_model(table, inputs, guess, center, n_field)
        idata, probability = fit(model, sampling, run.say, check_start)
        fits[n_field] = (model, idata, probability)
        loo[f"K={n_field}"] = idata
    comparison = az.compare(loo)
    best = int(str(comparison.index[0]).split("=")[1])
    table_out = Table.from_pandas(comparison.reset_index())
    run.say(f"LOO prefers K = {best} field components")
    return best, *fits[best], table_out


def cluster_gate(idata, model, thresholds: GateThresholds) -> GateReport:
    """The convergence gate on every free parameter, plus plain-words collapse checks."""
    names = [rv.name for rv in model.free_RVs]
    report = convergence_gate(idata, names, thresholds)
    w_cluster = float(idata["posterior"]["w"].sel(component="cluster").mean())
    low, high = CLUSTER_WEIGHT_RANGE
    if w_cluster < low:
        report.failures.append(f"the cluster component collapsed: its weight is {w_cluster:.2g}"
                               f" (< {low}); no cluster was found")
    elif w_cluster > high:
        report.failures.append(f"the cluster component swallowed the field: its weight is "
                               f"{w_cluster:.3f} (> {high})")
    report.passed = not report.failures
    return report


PARALLAX_SYSTEMATIC = 0.0103  # mas, Gaia (E)DR3 angular-covariance floor (Maiz Apellaniz+2021)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def members_parallax(table: Table, probability, seed: int = 0, n_boot: int = 200):
    """Membership-weighted median parallax (weights P) and its sd: a seeded bootstrap over
    stars plus the 0.0103 mas systematic floor in quadrature. A median, not an
    inverse-variance mean, so neither field interlopers nor the brightest stars (whose DR3
    zero-point differs most) dominate."""
    parallax = np.asarray(table["parallax"], float)
    probability = np.asarray(probability, float)
    rng = np.random.default_rng(seed)
    boot = [weighted_median(parallax[pick], probability[pick])
            for pick in rng.integers(0, len(parallax), (n_boot, len(parallax)))]
    return weighted_median(parallax, probability), float(np.hypot(np.std(boot),
                                                                  PARALLAX_SYSTEMATIC))


def cluster_estimates(summary: Table, table: Table, probability_mean, seed: int = 0) -> dict:
    """(mean, sd) of the cluster's pmra, pmdec and parallax that the model fits; a model
    without parallax gets the members' weighted median parallax (``parallax_members``)."""
    rows = {row["parameter"]: (float(row["mean"]), float(row["sd"])) for row in summary}
    found = {}
    for name, keys in {"pmra": ("cluster_pm[pmra]", "cluster_pmra"),
                       "pmdec": ("cluster_pm[pmdec]",),
                       "parallax": ("cluster_parallax",)}.items():
        for key in keys:
            if key in rows:
                found[name] = rows[key]
    if "parallax" not in found and "parallax" in table.colnames:
        found["parallax_members"] = members_parallax(table, probability_mean, seed)
    return found


def membership_table(table: Table, membership) -> Table:
    keep = [name for name in ("source_id", "ra", "dec", "parallax", "parallax_error", "pmra",
                              "pmra_error", "pmdec", "pmdec_error", "pmra_pmdec_corr",
                              "phot_g_mean_mag", "bp_rp", "is_member") if name in table.colnames]
    out = Table(table[keep], copy=True)
    out.meta = {}
    for name, column in membership.columns().items():
        out[name] = column
    return out


def truth_of(table: Table) -> dict:
    meta = table.meta
    if not meta.get("SIMULATD"):
        return {}
    return {"cluster_pm[pmra]": meta["TRUEPMRA"], "cluster_pm[pmdec]": meta["TRUEPMDE"],
            "cluster_pmra": meta["TRUEPMRA"], "cluster_parallax": meta["TRUEPLX"]}


def phase_space(idata, center, inputs: ClusterInput, seed: int) -> Table:
    """Joint model only: the cluster centre, distance and motion per draw, in Cartesian."""
    posterior = idata["posterior"]
    offset = posterior["cluster_offset"].values.reshape(-1, 2)
    frame = center.skyoffset_frame()
    centres = SkyCoord(lon=offset[:, 0] / 60, lat=offset[:, 1] / 60, unit="deg",
                       frame=frame).icrs
    pm_draws = posterior["cluster_pm"].values.reshape(-1, 2)
    rv_mean, rv_sd = inputs.radial_velocity or DEFAULT_RADIAL_VELOCITY.get(
        normalise_name(inputs.cluster), GENERIC_RADIAL_VELOCITY)
    return cluster_phase_space(centres.ra.deg, centres.dec.deg,
                               posterior["cluster_parallax"].values.ravel(), pm_draws[:, 0],
                               pm_draws[:, 1], rv_mean, rv_sd, seed)


def draw_cluster_figures(run, inputs, table, idata, membership, estimates, truth):
    spec = CLUSTER_MODELS[inputs.model]
    p = membership.mean
    figures = {"pgm": cluster_pgm(inputs.model)}
    corner_vars = [name for name in spec.CLUSTER_PARAMETERS
                   if name not in ("cluster_offset", "plummer_radius")]
    figures["corner"] = plots.corner_plot(idata, corner_vars, coords={"component": "cluster"},
                                          title=f"{inputs.model} model: cluster parameters")
    if {"pmra", "pmdec"} <= set(table.colnames):
        centre = (estimates.get("pmra", (np.median(table["pmra"]),))[0],
                  estimates.get("pmdec", (np.median(table["pmdec"]),))[0])
        figures["vpd"] = cluster_plots.vector_point_diagram(table, p, centre)
    if {"ra", "dec"} <= set(table.colnames):
        figures["sky"] = cluster_plots.sky_map(table, p)
    if "parallax" in table.colnames:
        figures["parallax"] = cluster_plots.parallax_histogram(
            table, p, estimates.get("parallax", (None,))[0])
    if {"bp_rp", "phot_g_mean_mag"} <= set(table.colnames):
        figures["cmd"] = cluster_plots.colour_magnitude(table, p)
    references = [ref for ref in (cluster_reference(inputs.cluster),
                                  HUNT_REFFERT_2023.get(normalise_name(inputs.cluster)))
                  if ref is not None]
    if references:
        shown = {("parallax" if k == "parallax_members" else k): v for k, v in estimates.items()}
        figures["published"] = cluster_plots.published_comparison(shown, references)
    for label, figure in figures.items():
        name = f"{inputs.model}_{label}.png"
        run.keep(f"figure_{label}", save_figure(run.out_dir / "figures" / name, figure))
        plots.close(figure)


def run_cluster(
    out_dir: str | Path,
    inputs: ClusterInput = ClusterInput(),
    sampling: SamplingOptions = SamplingOptions(),
    gate: GateThresholds = GateThresholds(),
    figures: bool = True,
    quiet: bool = False,
) -> RunResult:
    """Run the whole cluster workflow; returns the result even when the gate fails."""
    if inputs.model not in CLUSTER_MODELS:
        raise ValueError(f"--model must be one of {sorted(CLUSTER_MODELS)}, got {inputs.model!r}")
    run = Run(f"ngc6819 {inputs.model}", out_dir, as_record(inputs, sampling, gate), quiet=quiet)
    with run.step("load data"):
        table, provenance = load_cluster_table(inputs)
        center, center_origin = resolve_center(inputs.cluster, inputs.center)
        run.say(f"{len(table)} stars from {provenance['source']}")
    with run.step("validate and cut"):
        table, selection = prepare_stars(table, inputs, center, sampling.seed, run.say)
        guess = initial_guess(table, center)
        run.say(f"{len(table)} stars to fit; initial guess {guess}")
    auto = inputs.field_components == "auto" and inputs.model != "parallax"
    comparison = None
    with run.step("sample"):
        if auto:
            n_field, model, idata, probability, comparison = choose_field_components(
                table, inputs, guess, center, sampling, run)
        else:
            n_field = 2 if inputs.field_components == "auto" else int(inputs.field_components)
            model, check_start = build_cluster_model(table, inputs, guess, center, n_field)
            idata, probability = fit(model, sampling, run.say, check_start)
    per_draw = probability.reshape(-1, probability.shape[-1])
    background = ThreadPoolExecutor(1)  # NumPy's percentiles release the GIL
    spread = background.submit(summarise, "cluster", per_draw)
    background.shutdown(wait=False)  # its one task still runs; spread.result() waits
    with run.step("convergence gate"):
        report = cluster_gate(idata, model, gate)
    spec = CLUSTER_MODELS[inputs.model]
    with run.step("membership and summaries"):
        probability_mean = per_draw.mean(axis=0)
        summary = summary_table(idata, [rv.name for rv in model.free_RVs] + [
            name for name in ("cluster_distance",) if name in idata["posterior"]])
        estimates = cluster_estimates(summary, table, probability_mean, sampling.seed)
        details = {"data": provenance, "selection": selection,
                   "center": {"ra": center.ra.deg, "dec": center.dec.deg,
                              "origin": center_origin},
                   "initial_guess": guess, "field_components": n_field,
                   "cluster_estimates": estimates}
        truth = truth_of(table)
        if truth:
            quality, reliability = membership_quality(probability_mean, table["is_member"])
            details["recovery"] = {"parameters": parameter_bias(summary, truth),
                                   "membership": quality}
            run.keep("reliability", write_table(run.out_dir / "reliability.ecsv", reliability))
            run.keep("recovery", write_json(run.out_dir / "recovery.json", details["recovery"]))
    with run.step("save results"):
        run.keep("posterior", write_posterior(run.out_dir / "posterior.nc", idata))
        run.keep("summary", write_table(run.out_dir / "summary.ecsv", summary))
        if comparison is not None:
            run.keep("field_components", write_table(run.out_dir / "field_components_loo.ecsv",
                                                     comparison))
        if inputs.model == "joint":
            kinematics = phase_space(idata, center, inputs, sampling.seed)
            run.keep("kinematics", write_table(run.out_dir / "kinematics.ecsv", kinematics))
            details["kinematics"] = {row["quantity"]: [row["mean"], row["sd"], row["unit"]]
                                     for row in kinematics}
        membership = spread.result()
        run.keep("membership", write_table(run.out_dir / "membership.ecsv",
                                           membership_table(table, membership)))
    if figures:
        with run.step("figures"):
            draw_cluster_figures(run, inputs, table, idata, membership, estimates, truth)
    status = "passed" if report.passed else "failed"
    result = run.finish(status, **details, convergence=report.as_record(),
                        cluster_parameters=list(spec.CLUSTER_PARAMETERS),
                        sampler_used=sampler_used(idata))
    print(report.text())
    return result
