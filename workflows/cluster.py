"""Cluster membership workflow (``starmix run cluster --model ...``; ``ngc6819`` is an alias).

Steps, each a function: load (or simulate) the Gaia table -> validate for the model ->
quality cuts -> starting candidates (published values, or ranked overdensities:
:mod:`workflows.identification`) -> build model -> MAP from each candidate, NUTS from the
best -> membership and pointwise log-likelihood per draw -> convergence gate (with collapse
and prior-bound checks) -> detection against field-only models
(:mod:`workflows.detection`) -> tables -> figures.
"""

import dataclasses
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

from starmix.data.cluster_field import simulate_cluster_field
from starmix.data.clusters import HUNT_REFFERT_2023, normalise_name, resolve_center
from starmix.data.footprint import Footprint, table_footprint
from starmix.data.gaia import (
    QualityCuts,
    apply_quality_cuts,
    assign_dr3_errors,
    correct_parallax_zero_point,
    load_gaia,
    validate_gaia,
)
from starmix.data.input_checks import DataValidationError, source_name
from starmix.models import CLUSTER_MODELS, model_options
from starmix.models.cluster_parallax import FIELDS as PARALLAX_FIELDS
from starmix.models.field import CLUSTER_BOUNDS, HALO_PARAMETERS, MAX_FIELD_COMPONENTS, MIN_STARS
from starmix.workflows import cluster_plots, plots
from starmix.workflows.check_plots import predictive_figure
from starmix.workflows.checks import check_step
from starmix.workflows.config import GateThresholds, SamplingOptions, as_record
from starmix.workflows.detection import Detection, detect, pinned_at_bounds, pointwise_loo
from starmix.workflows.diagnostics import GateReport, convergence_gate
from starmix.workflows.identification import (
    Candidate,
    candidate_overdensities,
    published_candidate,
    published_reference,
    start_values,
)
from starmix.workflows.kinematics import (
    DEFAULT_RADIAL_VELOCITY,
    GENERIC_RADIAL_VELOCITY,
    cluster_phase_space,
)
from starmix.workflows.membership import LOG_LIKELIHOOD_MODES, MixtureDraws, mixture_draws
from starmix.workflows.pgm import cluster_pgm
from starmix.workflows.recovery import membership_quality, parameter_bias
from starmix.workflows.results import save_figure, write_json, write_posterior, write_table
from starmix.workflows.run import Run, RunResult, final_status
from starmix.workflows.sampling import check_starting_point, sample_posterior, sampler_used
from starmix.workflows.summary import summary_table

CLUSTER_WEIGHT_RANGE = (0.001, 0.95)
AUTO_FIELD_COMPONENTS = (1, 2, 3)
MAX_SIMULATED = 5_000_000  # stars per population of the simulated field
DETECTION_DRAWS = 500  # draws per chain of each field-only alternative (PSIS-LOO only)


@dataclass(frozen=True)
class ClusterInput:
    """What to fit and on which stars. ``data=None`` simulates the NGC 6819 field.

    ``cluster`` names the cluster (its published values start the fit and are compared in
    the figures; looked up in ``catalogue``, then the built-in list); without a name the
    fit starts from the field's most significant proper-motion overdensities.
    ``detection`` compares the fit with field-only models (PSIS-LOO)."""

    model: str = "pm2d"
    data: str | None = None
    cluster: str | None = None
    catalogue: str | None = None
    center: tuple[float, float] | None = None
    columns: str | None = None
    drop_invalid: bool = False
    assign_errors: bool = False
    zero_point: bool = False
    ruwe_max: float | None = 1.4
    g_max: float | None = 20.0
    parallax_over_error_min: float | None = None
    radius_arcmin: float | None = None
    footprint: tuple[float, float, float] | None = None
    max_stars: int | None = None
    field_components: str | int = "2"  # 1-5, or "auto"
    parallax_field: str = "exponential"
    parallax_offset: bool = False
    radial_velocity: tuple[float, float] | None = None
    detection: bool = True
    magnitude_prior: bool = False
    cluster_halo: bool = False
    log_likelihood: str = "auto"
    sim_seed: int = 42
    n_cluster: int | None = None
    n_field: int | None = None

    def __post_init__(self):
        """Every option is checked here, before any data are read: a bad value, or an
        option the chosen model or data source does not use, is an error naming it."""
        if self.model not in CLUSTER_MODELS:
            raise ValueError(f"--model must be one of {sorted(CLUSTER_MODELS)}, "
                             f"got {self.model!r}")
        for option, value, low, inclusive in (
                ("--ruwe-max", self.ruwe_max, 0, False), ("--g-max", self.g_max, None, None),
                ("--parallax-over-error-min", self.parallax_over_error_min, None, None),
                ("--radius", self.radius_arcmin, 0, False),
                ("--max-stars", self.max_stars, MIN_STARS, True),
                ("--n-cluster", self.n_cluster, 0, True),
                ("--n-field", self.n_field, 1, True), ("--sim-seed", self.sim_seed, 0, True)):
            if value is None:
                continue
            if not np.isfinite(float(value)):
                raise ValueError(f"{option} must be a finite number, got {value}")
            if low is not None and (value < low if inclusive else value <= low):
                raise ValueError(f"{option} must be {'at least' if inclusive else 'above'} "
                                 f"{low}, got {value:g}")
        for option, value, high in (("--n-cluster", self.n_cluster, MAX_SIMULATED),
                                    ("--n-field", self.n_field, MAX_SIMULATED),
                                    ("--sim-seed", self.sim_seed, 2**32 - 1)):
            if value is not None and value > high:
                raise ValueError(f"{option} must be at most {high}, got {value}")
        if isinstance(self.field_components, int) and not isinstance(
                self.field_components, bool):  # a config file's `field_components = 3`
            object.__setattr__(self, "field_components", str(self.field_components))
        if self.field_components != "auto":
            try:
                k = int(self.field_components)
            except (TypeError, ValueError):
                k = None
            if k is None or not 1 <= k <= MAX_FIELD_COMPONENTS or str(k) != str(
                    self.field_components).strip():
                raise ValueError(f"--field-components must be 1 to {MAX_FIELD_COMPONENTS} or "
                                 f"'auto', got {self.field_components!r}")
        if self.log_likelihood not in LOG_LIKELIHOOD_MODES:
            raise ValueError(f"--log-likelihood must be one of {LOG_LIKELIHOOD_MODES}, got "
                             f"{self.log_likelihood!r}")
        if self.parallax_field not in PARALLAX_FIELDS:
            raise ValueError(f"--parallax-field must be one of {', '.join(PARALLAX_FIELDS)}, "
                             f"got {self.parallax_field!r}")
        if self.radial_velocity is not None and not (
                np.all(np.isfinite(self.radial_velocity)) and self.radial_velocity[1] > 0):
            raise ValueError("--radial-velocity MEAN SD: SD must be positive (km/s), got "
                             f"{' '.join(f'{v:g}' for v in self.radial_velocity)}")
        if self.center is not None and not (np.all(np.isfinite(self.center))
                                            and -90 <= self.center[1] <= 90):
            raise ValueError(f"--center RA DEC in degrees, DEC within [-90, 90], got "
                             f"{' '.join(f'{v:g}' for v in self.center)}")
        if self.footprint is not None and not (np.all(np.isfinite(self.footprint))
                                               and self.footprint[2] > 0
                                               and -90 <= self.footprint[1] <= 90):
            raise ValueError("--footprint RA DEC RADIUS: degrees, degrees, a positive radius "
                             f"in arcmin, got {' '.join(f'{v:g}' for v in self.footprint)}")
        unused = unused_options(self)
        if unused:
            raise ValueError("; ".join(f"{option} {why}" for option, why in unused.items())
                             + ": leave it out")


def unused_options(inputs: "ClusterInput") -> dict[str, str]:
    """Options set away from their defaults that this run would not use: {option: why}."""
    default = ClusterInput.__dataclass_fields__
    takes = model_options(inputs.model)  # the model's own options
    only_parallax = f"is for --model parallax only (this run: --model {inputs.model})"
    gaussian_field = inputs.model != "parallax" or inputs.parallax_field == "gaussian"
    with_data = "is for a --data table (this run uses the simulated field)"
    simulated = "is for the simulated field (this run reads --data)"
    rules = {
        "field_components": ("--field-components", gaussian_field,
                             "is for --model parallax only with --parallax-field gaussian"),
        "parallax_field": ("--parallax-field", "parallax_field" in takes, only_parallax),
        "parallax_offset": ("--parallax-offset",
                            inputs.model == "parallax" and inputs.parallax_field != "gaussian",
                            "is for --model parallax with the exponential or beta field"),
        "cluster_halo": ("--cluster-halo", "cluster_halo" in takes,
                         f"is for --model pm2d or pmplx (this run: --model {inputs.model})"),
        "radial_velocity": ("--radial-velocity", inputs.model == "joint",
                            f"is for --model joint only (this run: --model {inputs.model})"),
        "footprint": ("--footprint", "footprint" in takes,
                      "is for --model joint (the only model with a sky term)"),
        "catalogue": ("--catalogue", inputs.cluster is not None,
                      "is read for the cluster --cluster NAME names: give the name too"),
        "columns": ("--columns", inputs.data is not None, with_data),
        "assign_errors": ("--assign-errors", inputs.data is not None, with_data),
        "zero_point": ("--zero-point", inputs.data is not None, with_data),
        "drop_invalid": ("--drop-invalid", inputs.data is not None, with_data),
        "sim_seed": ("--sim-seed", inputs.data is None, simulated),
        "n_cluster": ("--n-cluster", inputs.data is None, simulated),
        "n_field": ("--n-field", inputs.data is None, simulated),
    }
    return {option: why for name, (option, used, why) in rules.items()
            if not used and getattr(inputs, name) != default[name].default}


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
    provenance = {"source": source_name(inputs.data), "renamed": table.meta.get("renamed", {})}
    if inputs.assign_errors:
        table = assign_dr3_errors(table)
        provenance["errors"] = table.meta["errors"]
    if inputs.zero_point:
        table = correct_parallax_zero_point(table)
        provenance["parallax_zero_point"] = {
            "applied": table.meta["zero_point"],
            "median_mas": float(np.nanmedian(table["parallax_zero_point"]))}
    if "source_id" not in table.colnames:
        table["source_id"] = np.arange(len(table))
        provenance["source_id"] = "absent in the file: row numbers used"
    return table, provenance


def prepare_stars(table: Table, inputs: ClusterInput, center, seed: int, say):
    """Steps 2-3: validate the input for the model, apply quality cuts, optionally subsample."""
    spec = CLUSTER_MODELS[inputs.model]
    cuts = QualityCuts(inputs.ruwe_max, inputs.g_max, inputs.parallax_over_error_min,
                       inputs.radius_arcmin)
    required = (*spec.REQUIRED_COLUMNS, *(("phot_g_mean_mag",) if inputs.magnitude_prior else ()))
    table, dropped = validate_gaia(table, required, inputs.drop_invalid)
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
    check_enough_stars(table, spec.REQUIRED_COLUMNS, record)
    return table, record


def check_enough_stars(table: Table, columns, record: dict) -> None:
    """At least ``MIN_STARS`` stars, and spread in every measured column; else an error
    that gives the counts after each selection step."""
    if len(table) < MIN_STARS:
        steps = [f"{count} removed by {reason}" for reason, count in
                 record["dropped_invalid"].items() if reason == "total"]
        steps += [f"{count} by {cut}" for cut, count in record["quality_cuts"]["removed"].items()
                  if count]
        raise ValueError(
            f"{len(table)} stars left to fit ({'; '.join(steps) or 'no rows removed'}); a "
            f"cluster model needs at least {MIN_STARS}: loosen the cuts or give a larger field")
    for name in columns:
        if name == "source_id" or name.endswith(("_error", "_corr")):
            continue
        values = np.asarray(table[name], float)
        if np.ptp(values) == 0:
            raise DataValidationError(name, f"are all identical ({values[0]:g}): a mixture "
                                      "needs values that differ", len(values), len(values))


def starting_candidates(table: Table, reference) -> list[Candidate]:
    """Step 3b: where the MAP search starts. The named cluster's published values
    (``reference``, from :func:`published_reference`) when there are any, else the field's
    most significant proper-motion overdensities (:mod:`workflows.identification`)."""
    if reference is not None:
        return [published_candidate(reference, table)]
    return candidate_overdensities(table)


def initial_guess(table: Table) -> dict:
    """The start of a run that names no cluster: the field's most significant proper-motion
    overdensity (pmra, pmdec in mas/yr; parallax in mas when the table has it)."""
    return candidate_overdensities(table, n=1)[0].guess()


def prior_center_setter(model: pm.Model, candidates: list[Candidate], model_name: str):
    """A ``before_start(j)`` for the sampler: puts candidate j's values into the model's
    cluster prior centre (a shared variable), so that each MAP search is made under the
    prior centred on its own candidate."""
    from pytensor.graph.traversal import ancestors

    spec = CLUSTER_MODELS[model_name]
    axes = spec.PRIOR_CENTER_AXES
    shared = [var for var in ancestors(model.free_RVs)
              if getattr(var, "name", None) == spec.PRIOR_CENTER_NAME
              and hasattr(var, "set_value")]
    if not shared or len(candidates) < 2:
        return None
    target = shared[0]
    shape = target.get_value().shape

    def before_start(j):
        guess = candidates[j].guess()
        target.set_value(np.reshape([guess[name] for name in axes], shape).astype(float))
    return before_start


def footprint_for(table, inputs: ClusterInput, center) -> Footprint | None:
    """The data's sky footprint (:mod:`data.footprint`) for the joint model, else None."""
    if inputs.model != "joint":
        return None
    return table_footprint(table, inputs.footprint, center, inputs.radius_arcmin)


def build_cluster_model(table, inputs: ClusterInput, guess, center, n_field: int,
                        cluster: bool = True):
    """Step 4: the chosen model from its module's ``from_table`` adapter, and its
    starting-point check (:func:`workflows.sampling.check_starting_point` on the model's
    input columns; the sampler runs it when the log-density at the start is not finite).
    ``cluster=False``: the field-only alternative of the detection step."""
    spec = CLUSTER_MODELS[inputs.model]
    accepted = model_options(inputs.model)
    offered = {"n_field": n_field, "center": center, "parallax_field": inputs.parallax_field,
               "parallax_offset": inputs.parallax_offset,
               "magnitude_prior": inputs.magnitude_prior,
               "cluster_halo": inputs.cluster_halo and cluster, "cluster": cluster}
    if "footprint" in accepted:
        offered["footprint"] = footprint_for(table, inputs, center)
    model = spec.from_table(table, guess, **{name: value for name, value in offered.items()
                                             if name in accepted})
    if not cluster:
        return model, None
    columns = {name: np.asarray(table[name]) for name in spec.REQUIRED_COLUMNS
               if name != "source_id"}
    return model, partial(check_starting_point, model, columns,
                          [name for name in columns if name.endswith("_error")])


def fit(model: pm.Model, sampling: SamplingOptions, say, check_start=None, starts=None,
        before_start=None, component: str = "cluster",
        log_likelihood: str = "auto") -> tuple[xr.DataTree, MixtureDraws]:
    """Steps 5-6: NUTS from the best MAP point of ``starts`` (the per-star
    ``log_component`` is not stored), then one streaming pass over the draws for the
    membership of ``component`` and the pointwise ``log_likelihood`` group for LOO (of the
    draws :func:`workflows.membership.kept_draws` keeps: all of them on small fields)."""
    keep = [rv.name for rv in model.free_RVs] + [
        var.name for var in model.deterministics
        if var.name not in ("log_component", "log_weight")]  # star x component: not stored
    idata = sample_posterior(model, sampling, var_names=keep, log_likelihood=False,
                             start_at_map=True, check_start=check_start, starts=starts,
                             before_start=before_start)
    start = time.perf_counter()
    draws = mixture_draws(model, idata["posterior"].to_dataset(), component=component,
                          say=say, log_likelihood=log_likelihood)
    idata.attrs["membership_draws_seconds"] = round(time.perf_counter() - start, 3)
    stars = model.coords["star"]
    idata["log_likelihood"] = xr.DataTree(xr.Dataset(
        {"stars": (("chain", "draw", "star"), draws.log_likelihood)},
        coords={"chain": idata["posterior"]["chain"],
                "draw": idata["posterior"]["draw"].values[draws.kept],
                "star": np.asarray(stars)}))
    return idata, draws


def choose_field_components(table, inputs, guess, center, sampling, run: Run, starts=None,
                            candidates=None):
    """``--field-components auto``: fit K = 1, 2, 3 field components and keep the one LOO
    ranks first. Returns (K, its model, posterior, per-draw membership, comparison)."""
    fits, loo = {}, {}
    for n_field in AUTO_FIELD_COMPONENTS:
        run.say(f"field components: fitting K = {n_field}")
        model, check_start = build_cluster_model(table, inputs, guess, center, n_field)
        idata, probability = fit(
            model, sampling, run.say, check_start, *start_arguments(
                model, inputs.model, candidates, table, len(model.coords["component"])),
            log_likelihood=inputs.log_likelihood)
        fits[n_field] = (model, idata, probability)
        loo[f"K={n_field}"] = idata
    best, table_out = best_by_loo(loo)
    run.say(f"LOO prefers K = {best} field components")
    return best, *fits[best], table_out


def best_by_loo(fits: dict[str, xr.DataTree]) -> tuple[int, Table]:
    """The K whose fit ("K=2": its posterior with a ``log_likelihood`` group) has the
    highest PSIS-LOO elpd, and ArviZ's comparison table (best first)."""
    comparison = az.compare(fits)
    best = int(str(comparison.index[0]).split("=")[1])
    return best, Table.from_pandas(comparison.reset_index())


def start_arguments(model, model_name: str, candidates, table, n_components: int):
    """(starts, before_start) for :func:`fit` from the starting candidates."""
    if not candidates:
        return None, None
    starts = [start_values(candidate, n_components, len(table)) for candidate in candidates]
    names = {rv.name for rv in model.free_RVs}
    starts = [{key: value for key, value in start.items() if key in names} for start in starts]
    return starts, prior_center_setter(model, candidates, model_name)


def field_only_fits(table, inputs, guess, center, n_field: int, sampling: SamplingOptions,
                    run: Run) -> dict[int, np.ndarray]:
    """Step 7a: pointwise PSIS-LOO elpd (one value per star) of the field-only models with
    K and K + 1 field Gaussians (by K), each sampled with at most ``DETECTION_DRAWS`` draws;
    each fit's per-draw arrays are dropped as soon as its elpd is known."""
    from starmix.models.field import MAX_FIELD_COMPONENTS

    short = dataclasses.replace(sampling, draws=min(sampling.draws, DETECTION_DRAWS))
    found = {}
    for k in sorted({n_field, min(n_field + 1, MAX_FIELD_COMPONENTS)}):
        run.say(f"detection: fitting the field-only model with K = {k}")
        model, _ = build_cluster_model(table, inputs, guess, center, k, cluster=False)
        idata, _ = fit(model, short, run.say, component="field_1",
                       log_likelihood=inputs.log_likelihood)
        found[k] = pointwise_loo(idata["log_likelihood"]["stars"].values)
        del idata
    return found


def detection_step(table, inputs, guess, center, candidates, n_field, fitted, sampling, run):
    """Step 7: the cluster fit against field-only fits (:mod:`workflows.detection`).

    ``fitted`` is (model, posterior, membership per draw) of the cluster model with K field
    Gaussians. The field-only models with K and K + 1 say how many Gaussians the field
    needs without a cluster (K*, the better by PSIS-LOO); the cluster model with K* is
    compared with the field-only model with K*, like with like, so that the difference
    measures the cluster and not the field's flexibility. When K* = K + 1 the cluster model
    with K + 1 is fitted too, at full length, and becomes the run's result if PSIS-LOO
    prefers it to K. Returns (K of the result, its fit, the detection).
    """
    alternatives = field_only_fits(table, inputs, guess, center, n_field, sampling, run)
    field_elpd = {k: float(value.sum()) for k, value in alternatives.items()}
    k_star = max(field_elpd, key=field_elpd.get)
    cluster_fits = {n_field: fitted}
    if k_star != n_field:
        run.say(f"detection: without a cluster the field needs K = {k_star}; fitting the "
                f"cluster model with K = {k_star} too")
        model, check_start = build_cluster_model(table, inputs, guess, center, k_star)
        idata, probability = fit(model, sampling, run.say, check_start, *start_arguments(
            model, inputs.model, candidates, table, len(model.coords["component"])),
            log_likelihood=inputs.log_likelihood)
        cluster_fits[k_star] = (model, idata, probability)
    pointwise = {k: pointwise_loo(fit_[1]["log_likelihood"]["stars"].values)
                 for k, fit_ in cluster_fits.items()}
    cluster_elpd = {k: float(value.sum()) for k, value in pointwise.items()}
    best_k = max(cluster_elpd, key=cluster_elpd.get)
    if best_k != n_field:
        run.say(f"detection: PSIS-LOO prefers K = {best_k} field components for the cluster "
                "model; its fit is the result")
    detection = detect(pointwise[k_star], alternatives[k_star], k_star)
    detection.elpd = {**{f"cluster + field, K={k}": v for k, v in cluster_elpd.items()},
                      **{f"field only, K={k}": v for k, v in field_elpd.items()}}
    return best_k, cluster_fits[best_k], detection


def cluster_gate(idata, model, thresholds: GateThresholds) -> GateReport:
    """The convergence gate on every free parameter, plus plain-words collapse checks and
    cluster dispersions pinned at their prior bounds."""
    names = [rv.name for rv in model.free_RVs]
    report = convergence_gate(idata, names, thresholds)
    report.failures.extend(pinned_at_bounds(idata["posterior"], CLUSTER_BOUNDS))
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
# Systematic floors of a cluster mean from Gaia (E)DR3, which no number of members averages
# away: proper motion 0.026 mas/yr (Vasiliev & Baumgardt 2021, MNRAS 505, 5978; small-scale
# systematics), parallax 0.0103 mas (Maiz Apellaniz et al. 2021). Reported beside each
# statistical sd; the published-comparison figure uses both in quadrature.
SYSTEMATIC_FLOOR = {"pmra": 0.026, "pmdec": 0.026, "parallax": PARALLAX_SYSTEMATIC}


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


def phase_space(idata, plane_center, inputs: ClusterInput, seed: int) -> Table:
    """Joint model only: the cluster centre, distance and motion per draw, in Cartesian.
    ``plane_center``: the centre of the model's tangent plane (the footprint's)."""
    posterior = idata["posterior"]
    offset = posterior["cluster_offset"].values.reshape(-1, 2)
    frame = plane_center.skyoffset_frame()
    centres = SkyCoord(lon=offset[:, 0] / 60, lat=offset[:, 1] / 60, unit="deg",
                       frame=frame).icrs
    pm_draws = posterior["cluster_pm"].values.reshape(-1, 2)
    name = normalise_name(inputs.cluster) if inputs.cluster else None
    rv_mean, rv_sd = inputs.radial_velocity or DEFAULT_RADIAL_VELOCITY.get(
        name, GENERIC_RADIAL_VELOCITY)
    return cluster_phase_space(centres.ra.deg, centres.dec.deg,
                               posterior["cluster_parallax"].values.ravel(), pm_draws[:, 0],
                               pm_draws[:, 1], rv_mean, rv_sd, seed)


def draw_cluster_figures(run, inputs, table, idata, membership, estimates, truth,
                         reference=None, check_arrays=None):
    spec = CLUSTER_MODELS[inputs.model]
    p = membership.mean
    figures = {"pgm": cluster_pgm(inputs.model, inputs.parallax_field == "gaussian")}
    corner_vars = [name for name in (*spec.CLUSTER_PARAMETERS, *HALO_PARAMETERS)
                   if name not in ("cluster_offset", "plummer_radius")
                   and name in idata["posterior"]]
    corner_truths = dict(truth)
    if truth and "is_member" in table.colnames:  # the simulated share of members fitted
        corner_truths["w[cluster]"] = float(np.mean(np.asarray(table["is_member"], bool)))
    figures["corner"] = plots.corner_plot(idata, corner_vars, coords={"component": "cluster"},
                                          truths=corner_truths,
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
    name = normalise_name(inputs.cluster) if inputs.cluster else None
    references = [ref for ref in (reference, HUNT_REFFERT_2023.get(name)) if ref is not None]
    if references:
        # statistical and systematic errors combined (the members' parallax has its floor)
        shown = {"parallax" if k == "parallax_members" else k:
                 (mean, sd if k == "parallax_members" else float(np.hypot(sd,
                                                                          SYSTEMATIC_FLOOR[k])))
                 for k, (mean, sd) in estimates.items()}
        figures["published"] = cluster_plots.published_comparison(shown, references)
    if check_arrays is not None:
        figures["checks"] = predictive_figure(
            check_arrays, f"{inputs.model} model: predictive checks of the observed stars")
    for label, figure in figures.items():
        name = f"{inputs.model}_{label}.png"
        run.keep(f"figure_{label}", save_figure(run.out_dir / "figures" / name, figure))
        plots.close(figure)


def check_inside(table: Table, footprint: Footprint) -> None:
    """Every star must lie inside the footprint (1% tolerance), or the field's sky density
    is wrong: an error names the option and counts the stars outside."""
    import astropy.units as u

    from starmix.data.gaia import separation

    outside = separation(table, footprint.center) > footprint.radius_arcmin * 1.01 * u.arcmin
    if outside.any():
        raise ValueError(
            f"--footprint: {int(outside.sum())} of {len(table)} stars lie outside the "
            f"footprint ({footprint.radius_arcmin:g} arcmin around ({footprint.ra:.4f}, "
            f"{footprint.dec:.4f}), {footprint.origin}); give the cone the data were "
            "selected from")


def resolve_cluster_center(inputs: ClusterInput, reference):
    """(centre or None, where it came from): ``--center``, else the published centre, else
    astropy's name resolver; None when the run names no cluster and gives no centre (only
    the joint model and ``--radius`` need one)."""
    needs_center = inputs.model == "joint" or inputs.radius_arcmin is not None
    if reference is None and inputs.cluster is not None and not needs_center:
        raise ValueError(
            f"--cluster {inputs.cluster!r}: no published values for it (not in "
            f"{'--catalogue ' + inputs.catalogue if inputs.catalogue else 'a --catalogue file'}"
            " nor the built-in list: NGC6819, NGC2682/M67, NGC188); give a catalogue that "
            "holds it, or leave --cluster out to start from the field's overdensities")
    if inputs.center is not None or (reference is None and inputs.cluster is not None):
        return resolve_center(inputs.cluster, inputs.center)
    if reference is not None:
        return reference.center, f"published ({reference.source})"
    if inputs.model == "joint" or inputs.radius_arcmin is not None:
        raise ValueError(f"{'--model joint' if inputs.model == 'joint' else '--radius'} "
                         "needs the cluster centre: give --cluster NAME or --center RA DEC")
    return None, "none (no --cluster or --center)"


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
            reference = published_reference(inputs.cluster, inputs.catalogue)
            center, center_origin = resolve_cluster_center(inputs, reference)
            table, provenance = load_cluster_table(inputs)
            run.say(f"{len(table)} stars from {provenance['source']}")
        with run.step("validate and cut"):
            table, selection = prepare_stars(table, inputs, center, sampling.seed, run.say)
            footprint = footprint_for(table, inputs, center)
            if footprint is not None:
                check_inside(table, footprint)
                run.say(f"footprint: {footprint.radius_arcmin:g} arcmin around "
                        f"({footprint.ra:.4f}, {footprint.dec:.4f}), {footprint.origin}")
            candidates = starting_candidates(table, reference)
            guess = candidates[0].guess()
            if "parallax" in CLUSTER_MODELS[inputs.model].PRIOR_CENTER_AXES:
                guess.setdefault("parallax", float(np.median(np.asarray(table["parallax"]))))
            run.say(f"{len(table)} stars to fit; {len(candidates)} starting candidate(s): "
                    + "; ".join(f"pm ({c.pmra:.2f}, {c.pmdec:.2f}) mas/yr from {c.origin}"
                                for c in candidates))
        gaussian_field = inputs.model != "parallax" or inputs.parallax_field == "gaussian"
        auto = inputs.field_components == "auto" and gaussian_field
        comparison = None
        with run.step("sample"):
            if auto:
                n_field, model, idata, probability, comparison = choose_field_components(
                    table, inputs, guess, center, sampling, run, candidates=candidates)
            else:
                n_field = 2 if inputs.field_components == "auto" else int(inputs.field_components)
                model, check_start = build_cluster_model(table, inputs, guess, center, n_field)
                starts, before_start = start_arguments(model, inputs.model, candidates, table,
                                                       len(model.coords["component"]))
                idata, probability = fit(model, sampling, run.say, check_start, starts,
                                         before_start, log_likelihood=inputs.log_likelihood)
        detection = None
        if inputs.detection and gaussian_field:
            with run.step("detection"):
                n_field, (model, idata, probability), detection = detection_step(
                    table, inputs, guess, center, candidates, n_field, (model, idata, probability),
                    sampling, run)
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
                            cluster_parameters=[name for name in (*spec.CLUSTER_PARAMETERS,
                                                                  *HALO_PARAMETERS)
                                                if name in idata["posterior"]],
                            sampler_used=sampler_used(idata))
        print(report.text())
        if check_report is not None:
            print(check_report.text())
        if detection is not None:
            print(detection.text())
        return result
