"""Steps 4-7 of the cluster workflow: starting candidates (published values, or ranked
overdensities: :mod:`starmix.workflows.cluster.identification`), the model, the MAP from each
candidate and
NUTS from the best, membership and pointwise log-likelihood per draw, the choice of the
number of field components by PSIS-LOO, the detection step against field-only models
(:mod:`starmix.workflows.cluster.detection`) and the convergence gate.
"""

import dataclasses
import time
from functools import partial

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr
from astropy.table import Table

from starmix.models import CLUSTER_MODELS
from starmix.models.field import CLUSTER_BOUNDS, MAX_FIELD_COMPONENTS
from starmix.workflows.cluster.detection import detect, pinned_at_bounds
from starmix.workflows.cluster.identification import (
    Candidate,
    candidate_overdensities,
    published_candidate,
    start_values,
)
from starmix.workflows.cluster.inputs import (
    CLUSTER_WEIGHT_RANGE,
    ClusterInput,
    footprint_for,
)
from starmix.workflows.inference.gate import GateReport, convergence_gate
from starmix.workflows.inference.loo import pointwise_loo
from starmix.workflows.inference.membership import MixtureDraws, kept_draws, mixture_draws
from starmix.workflows.inference.sampling import (
    check_draw_budget,
    check_starting_point,
    sample_posterior,
    stored_values_per_draw,
)
from starmix.workflows.runs.options import GateThresholds, SamplingOptions
from starmix.workflows.runs.run import Run

AUTO_FIELD_COMPONENTS = (1, 2, 3)
DETECTION_DRAWS = 500  # draws per chain of each field-only alternative (PSIS-LOO only)


def starting_candidates(table: Table, reference) -> list[Candidate]:
    """Step 3b: where the MAP search starts. The named cluster's published values
    (``reference``, from :func:`published_reference`) when there are any, else the field's
    most significant proper-motion overdensities
    (:mod:`starmix.workflows.cluster.identification`)."""
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
    axes = spec.prior_center_axes
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


def build_cluster_model(table, inputs: ClusterInput, guess, center, n_field: int,
                        cluster: bool = True, cluster_on_sky: bool = True):
    """Step 4: the chosen model from its module's ``from_table`` adapter, and its
    starting-point check (:func:`starmix.workflows.inference.sampling.check_starting_point` on the
    model's input columns; the sampler runs it when the log-density at the start is not finite).
    ``cluster=False``: the field-only alternative of the detection step;
    ``cluster_on_sky=False`` (models with sky positions): its narrow field lump."""
    spec, shape = CLUSTER_MODELS[inputs.model], inputs.shape
    accepted = spec.options
    offered = {"n_field": n_field, "center": center, "parallax_field": shape.parallax_field,
               "parallax_offset": shape.parallax_offset,
               "magnitude_prior": shape.magnitude_prior,
               "cluster_halo": shape.cluster_halo and cluster, "cluster": cluster,
               "priors": shape.priors}
    if not cluster_on_sky:
        offered["cluster_on_sky"] = False
    if "footprint" in accepted:
        offered["footprint"] = footprint_for(table, inputs, center)
    model = spec.from_table(table, guess, **{name: value for name, value in offered.items()
                                             if name in accepted})
    if not cluster or not cluster_on_sky:
        return model, None
    columns = {name: np.asarray(table[name]) for name in spec.required_columns
               if name != "source_id"}
    return model, partial(check_starting_point, model, columns,
                          [name for name in columns if name.endswith("_error")])


def stored_variables(model: pm.Model) -> list[str]:
    """What a cluster fit's posterior stores: every free variable and deterministic but the
    per-star ``log_component`` and ``log_weight`` (star x component)."""
    return [rv.name for rv in model.free_RVs] + [
        var.name for var in model.deterministics
        if var.name not in ("log_component", "log_weight")]


def check_fit_budget(model: pm.Model, sampling: SamplingOptions, log_likelihood: str = "auto",
                     out_dir=None, copies: int = 1) -> None:
    """:func:`starmix.workflows.inference.sampling.check_draw_budget` for ``copies`` cluster fits
    held at once:
    the stored variables per draw, plus the per-star membership and log-likelihood
    (float32) of the draws :func:`starmix.workflows.inference.membership.kept_draws` keeps."""
    stars = len(model.coords["star"])
    kept = len(kept_draws(sampling.chains, sampling.draws, stars, log_likelihood))
    per_star = 2 * 4 * sampling.chains * kept * stars
    check_draw_budget(copies * stored_values_per_draw(model, stored_variables(model), False),
                      sampling, out_dir, extra_bytes=copies * per_star)


def fit(model: pm.Model, sampling: SamplingOptions, say, check_start=None, starts=None,
        before_start=None, component: str = "cluster",
        log_likelihood: str = "auto", out_dir=None) -> tuple[xr.DataTree, MixtureDraws]:
    """Steps 5-6: NUTS from the best MAP point of ``starts`` (the per-star
    ``log_component`` is not stored), then one streaming pass over the draws for the
    membership of ``component`` and the pointwise ``log_likelihood`` group for LOO (of the
    draws :func:`starmix.workflows.inference.membership.kept_draws` keeps: all of them on small
    fields).
    Draws that would not fit in memory, or on the disk of ``out_dir``, are refused before
    sampling (:func:`check_fit_budget`)."""
    keep = stored_variables(model)
    check_fit_budget(model, sampling, log_likelihood, out_dir)
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
        if not fits:  # every K's fit is held until LOO has compared them
            check_fit_budget(model, sampling, inputs.log_likelihood,
                             copies=len(AUTO_FIELD_COMPONENTS))
        idata, probability = fit(
            model, sampling, run.say, check_start, *start_arguments(
                model, inputs.model, candidates, table, len(model.coords["component"])),
            log_likelihood=inputs.log_likelihood, out_dir=run.out_dir)
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
                    run: Run) -> tuple[dict[int, np.ndarray], dict[int, dict]]:
    """Step 7a: pointwise PSIS-LOO elpd (one value per star) of the field-only models with
    K and K + 1 field Gaussians (by K), and how each was found (by K).

    With ``inputs.detection_method == "laplace"`` each model's LOO comes from its Laplace
    approximation corrected by importance sampling
    (:func:`starmix.workflows.inference.laplace.approximate_loo`); a model whose
    approximation its Pareto k calls poor is sampled with NUTS instead, as every model is
    with ``"nuts"`` (at most ``DETECTION_DRAWS`` draws per chain). Each fit's per-draw
    arrays are dropped as soon as its elpd is known."""
    from starmix.workflows.inference.laplace import approximate_loo

    short = dataclasses.replace(sampling, draws=min(sampling.draws, DETECTION_DRAWS))
    found, how = {}, {}
    for k in sorted({n_field, min(n_field + 1, MAX_FIELD_COMPONENTS)}):
        model, _ = build_cluster_model(table, inputs, guess, center, k, cluster=False)
        if inputs.detection_method == "laplace":
            run.say(f"detection: Laplace approximation of the field-only model with K = {k}")
            approx = approximate_loo(model, sampling.seed, "field_1",
                                     log_likelihood=inputs.log_likelihood)
            how[k] = approx.record()
            if approx.reliable:
                found[k] = approx.elpd_i
                run.say(f"detection: K = {k} field only: elpd {approx.elpd_i.sum():.1f} "
                        f"({how[k]['method']}, Pareto k of p/q {approx.k_posterior:.2f}, "
                        f"{approx.seconds:.1f} s)")
                continue
            run.say(f"detection: {approx.reason}; sampling K = {k} with NUTS instead")
        run.say(f"detection: fitting the field-only model with K = {k} (NUTS)")
        began = time.perf_counter()
        idata, _ = fit(model, short, run.say, component="field_1",
                       log_likelihood=inputs.log_likelihood, out_dir=run.out_dir)
        found[k] = pointwise_loo(idata["log_likelihood"]["stars"].values)
        how[k] = {**({"laplace": how[k]} if k in how else {}), "method": "nuts",
                  "draws": short.draws, "chains": short.chains,
                  "seconds": round(time.perf_counter() - began, 3)}
        del idata
    return found, how


def field_components_needed(alternatives: dict[int, np.ndarray]) -> int:
    """K*: the number of field Gaussians whose field-only model PSIS-LOO ranks first."""
    field_elpd = {k: float(value.sum()) for k, value in alternatives.items()}
    return max(field_elpd, key=field_elpd.get)


def has_lump_alternative(inputs: ClusterInput) -> bool:
    """Whether the model has sky positions, and so the narrow-field-lump alternative."""
    return "cluster_on_sky" in CLUSTER_MODELS[inputs.model].options


def lump_fit(table, inputs, guess, center, n_field: int, idata: xr.DataTree,
             sampling: SamplingOptions, run: Run) -> tuple[np.ndarray, dict]:
    """Step 7b (models with sky positions): pointwise PSIS-LOO elpd of the narrow field
    lump with ``n_field`` field Gaussians (the cluster component spread uniformly over the
    footprint; :mod:`starmix.workflows.cluster.detection`) and how it was found. Its mode search
    starts
    from the cluster fit's posterior means (``idata``), where the narrow component already
    sits on the stars it would take; Laplace with importance sampling, or NUTS when that
    approximation is poor or ``inputs.detection_method`` is ``"nuts"``."""
    from starmix.workflows.inference.laplace import approximate_loo

    model, _ = build_cluster_model(table, inputs, guess, center, n_field, cluster_on_sky=False)
    posterior = idata["posterior"]
    start = {rv.name: posterior[rv.name].mean(("chain", "draw")).values
             for rv in model.free_RVs if rv.name in posterior}
    how = {}
    if inputs.detection_method == "laplace":
        run.say(f"detection: Laplace approximation of the narrow field lump with K = {n_field}")
        approx = approximate_loo(model, sampling.seed, "cluster", start=start,
                                 log_likelihood=inputs.log_likelihood)
        how = approx.record()
        if approx.reliable:
            run.say(f"detection: narrow field lump: elpd {approx.elpd_i.sum():.1f} "
                    f"({how['method']}, Pareto k of p/q {approx.k_posterior:.2f}, "
                    f"{approx.seconds:.1f} s)")
            return approx.elpd_i, how
        run.say(f"detection: {approx.reason}; sampling the narrow field lump with NUTS instead")
    short = dataclasses.replace(sampling, draws=min(sampling.draws, DETECTION_DRAWS))
    began = time.perf_counter()
    lump, _ = fit(model, short, run.say, starts=[start], log_likelihood=inputs.log_likelihood,
                  out_dir=run.out_dir)
    elpd = pointwise_loo(lump["log_likelihood"]["stars"].values)
    return elpd, {**({"laplace": how} if how else {}), "method": "nuts",
                  "draws": short.draws, "chains": short.chains,
                  "seconds": round(time.perf_counter() - began, 3)}


def _with_lump(detection, lump: tuple[np.ndarray, dict] | None, n_field: int):
    """``detection`` with the narrow field lump's elpd and how it was fitted recorded."""
    if lump is not None:
        name = f"narrow field lump + field, K={n_field}"
        detection.elpd[name] = float(lump[0].sum())
        detection.alternatives[name] = lump[1]
    return detection


def detection_against(idata: xr.DataTree, n_field: int, alternatives: dict[int, np.ndarray],
                      how: dict[int, dict], lump: tuple[np.ndarray, dict] | None = None):
    """Step 7 when the field-only models came first (``--detection-method laplace``): the
    cluster fit with K* field Gaussians (``idata``) against the field-only model with K*,
    like with like, as :func:`detection_step` compares them, and against the narrow field
    lump with K* (``lump``: its pointwise elpd and how it was found; models with sky
    positions)."""
    cluster = pointwise_loo(idata["log_likelihood"]["stars"].values)
    detection = detect(cluster, alternatives[n_field], n_field,
                       None if lump is None else lump[0])
    detection.elpd = {f"cluster + field, K={n_field}": float(cluster.sum()),
                      **{f"field only, K={k}": float(v.sum()) for k, v in alternatives.items()}}
    detection.alternatives = {f"field only, K={k}": value for k, value in how.items()}
    return _with_lump(detection, lump, n_field)


def detection_step(table, inputs, guess, center, candidates, n_field, fitted, sampling, run):
    """Step 7: the cluster fit against field-only fits (:mod:`starmix.workflows.cluster.detection`).

    ``fitted`` is (model, posterior, membership per draw) of the cluster model with K field
    Gaussians. The field-only models with K and K + 1 say how many Gaussians the field
    needs without a cluster (K*, the better by PSIS-LOO); the cluster model with K* is
    compared with the field-only model with K*, like with like, so that the difference
    measures the cluster and not the field's flexibility. When K* = K + 1 the cluster model
    with K + 1 is fitted too, at full length, and becomes the run's result if PSIS-LOO
    prefers it to K. Returns (K of the result, its fit, the detection).
    """
    alternatives, how = field_only_fits(table, inputs, guess, center, n_field, sampling, run)
    field_elpd = {k: float(value.sum()) for k, value in alternatives.items()}
    k_star = max(field_elpd, key=field_elpd.get)
    cluster_fits = {n_field: fitted}
    if k_star != n_field:
        run.say(f"detection: without a cluster the field needs K = {k_star}; fitting the "
                f"cluster model with K = {k_star} too")
        model, check_start = build_cluster_model(table, inputs, guess, center, k_star)
        idata, probability = fit(model, sampling, run.say, check_start, *start_arguments(
            model, inputs.model, candidates, table, len(model.coords["component"])),
            log_likelihood=inputs.log_likelihood, out_dir=run.out_dir)
        cluster_fits[k_star] = (model, idata, probability)
    pointwise = {k: pointwise_loo(fit_[1]["log_likelihood"]["stars"].values)
                 for k, fit_ in cluster_fits.items()}
    cluster_elpd = {k: float(value.sum()) for k, value in pointwise.items()}
    best_k = max(cluster_elpd, key=cluster_elpd.get)
    if best_k != n_field:
        run.say(f"detection: PSIS-LOO prefers K = {best_k} field components for the cluster "
                "model; its fit is the result")
    lump = (lump_fit(table, inputs, guess, center, k_star, cluster_fits[k_star][1], sampling,
                     run) if has_lump_alternative(inputs) else None)
    detection = detect(pointwise[k_star], alternatives[k_star], k_star,
                       None if lump is None else lump[0])
    detection.elpd = {**{f"cluster + field, K={k}": v for k, v in cluster_elpd.items()},
                      **{f"field only, K={k}": v for k, v in field_elpd.items()}}
    detection.alternatives = {f"field only, K={k}": value for k, value in how.items()}
    return best_k, cluster_fits[best_k], _with_lump(detection, lump, k_star)


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


@dataclasses.dataclass
class Fitted:
    """The cluster fit a run keeps: K field Gaussians (``n_field``), the model, its
    posterior (``idata``), membership per draw (``probability``), the LOO table over K
    (``comparison``; ``--field-components auto``) and the detection (None without one)."""

    n_field: int
    model: pm.Model
    idata: xr.DataTree
    probability: MixtureDraws
    comparison: Table | None = None
    detection: object = None


def fit_and_detect(run: Run, inputs: ClusterInput, stars, sampling: SamplingOptions) -> Fitted:
    """Steps 4-7 on ``stars`` (:class:`starmix.workflows.cluster.stars.Stars`): with
    detection by Laplace (the default) the field-only models with K and K + 1 Gaussians
    first, whose PSIS-LOO sets the field's own K*; the cluster model with K*, MAP from each
    candidate and NUTS from the best; then the detection against the field-only model with
    K* (and, with sky positions, the narrow field lump). With ``--detection-method nuts``
    the cluster model is fitted with K first and again with K* if they differ
    (:func:`detection_step`); with ``--field-components auto``, K by PSIS-LOO over
    :data:`AUTO_FIELD_COMPONENTS` (:func:`choose_field_components`)."""
    table, guess, center, candidates = stars.table, stars.guess, stars.center, stars.candidates
    gaussian_field = inputs.model != "parallax" or inputs.parallax_field == "gaussian"
    auto = inputs.field_components == "auto" and gaussian_field
    alternatives = None
    if inputs.detection and gaussian_field and not auto and inputs.detection_method == "laplace":
        with run.step("field-only models"):  # the field's own K first: one cluster fit
            k_given = int(inputs.field_components)
            # what the cluster fit will need (memory, disk) and rows whose likelihood is not
            # finite stop the run here, before any model is fitted
            largest, check_start = build_cluster_model(
                table, inputs, guess, center, min(k_given + 1, MAX_FIELD_COMPONENTS))
            check_fit_budget(largest, sampling, inputs.log_likelihood, run.out_dir)
            check_start()
            alternatives = field_only_fits(table, inputs, guess, center, k_given, sampling, run)
            n_field = field_components_needed(alternatives[0])
            if n_field != k_given:
                run.say(f"detection: without a cluster the field needs K = {n_field}; the "
                        f"cluster model is fitted with K = {n_field}")
    with run.step("sample"):
        if auto:
            fitted = Fitted(*choose_field_components(table, inputs, guess, center, sampling,
                                                     run, candidates=candidates))
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
            fitted = Fitted(n_field, model, idata, probability)
    if inputs.detection and gaussian_field:
        with run.step("detection"):
            if alternatives is not None:
                lump = (lump_fit(table, inputs, guess, center, fitted.n_field, fitted.idata,
                                 sampling, run) if has_lump_alternative(inputs) else None)
                fitted.detection = detection_against(fitted.idata, fitted.n_field,
                                                     *alternatives, lump=lump)
            else:
                n_field, result, detection = detection_step(
                    table, inputs, guess, center, candidates, fitted.n_field,
                    (fitted.model, fitted.idata, fitted.probability), sampling, run)
                fitted = Fitted(n_field, *result, fitted.comparison, detection)
    return fitted
