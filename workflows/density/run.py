"""The density workflows: a Gaussian-mixture density with per-object errors (extreme
deconvolution), its baselines, synthetic samples and, for two samples, their comparison.

* ``starmix run density``: one sample of 1 to 3 columns (:func:`run_density`);
* ``starmix run ages``: the two age columns of ``stellar_ages.dat`` (Joyce, Bensby; Gyr),
  each fitted on its own, then compared (:func:`run_ages`).

Per sample NAME the folder holds ``posterior_NAME.nc`` (ArviZ: posterior, log_likelihood
``y``, observed_data, prior and posterior predictive), ``summary_NAME.ecsv``,
``k_selection_NAME.ecsv``, ``density_NAME.ecsv`` (1-D: the posterior density's mean and
16/50/84% band and every baseline on a grid), ``baselines_NAME.ecsv``,
``synthetic_NAME.ecsv`` and ``figures/``; the run record holds the numbers.
"""

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from astropy.table import Table

from starmix.data.density import (
    AGE_COLUMNS,
    AGE_OF_UNIVERSE,
    DensityData,
    count_outside,
    load_density_table,
    log_values,
    simulate_ages,
    simulate_density,
    two_galaxies,
)
from starmix.data.input_checks import source_name
from starmix.models.density import MAX_COMPONENTS, MIN_OBJECTS
from starmix.workflows.base import Outcome, execute
from starmix.workflows.density import baselines as baselines_mod
from starmix.workflows.density.fit import (
    DENSITY_SAMPLING,
    OBSERVED,
    DensityFit,
    fit_density,
    grid_for,
    interval,
    mass_outside,
    mixture_log_density,
    mixture_moments,
    posterior_density,
    synthetic_sets,
)
from starmix.workflows.inference.checks import check_step
from starmix.workflows.inference.sampling import sampler_used
from starmix.workflows.inference.summary import summary_table
from starmix.workflows.plots import common as plots
from starmix.workflows.runs.files import save_figure, write_posterior, write_table
from starmix.workflows.runs.options import GateThresholds, SamplingOptions, as_record
from starmix.workflows.runs.run import Run, RunResult, final_status

EXAMPLES = ("mixture", "two-galaxies")


@dataclass(frozen=True)
class DensityInput:
    """What to fit. ``data`` None: the built-in simulated sample (0.6 N(4, 1.5²) + 0.4 N(10,
    2²) with errors 0.5-1.5; ``example="two-galaxies"``: the 2-D lesson, 3,000 points from
    a unit sphere at (5, 5) and 3,000 from an inclined disc, no errors). ``columns``: 1 to
    3 comma-separated names; ``errors``: one 1-sigma error per column, a column name or a
    constant. ``log``: fit ln(value).
    ``lower``/``upper``: physical limits; values beyond are counted and reported, and
    with ``truncate`` (one column) the intrinsic density is cut there. ``components``: a
    fixed K, else K by PSIS-LOO over 1..``max_components``."""

    data: str | None = None
    columns: str | None = None
    errors: str | None = None
    log: bool = False
    lower: float | None = None
    upper: float | None = None
    truncate: bool = False
    components: int | None = None
    max_components: int = 4
    synthetic_sets: int = 20
    drop_invalid: bool = False
    example: str = "mixture"

    def __post_init__(self):
        if self.example not in EXAMPLES:
            raise ValueError(f"--example must be one of {', '.join(EXAMPLES)}, got "
                             f"{self.example!r}")
        if self.data is not None and self.example != "mixture":
            raise ValueError("--example picks built-in data: leave it out with --data")
        if self.data is None and (self.columns or self.errors or self.drop_invalid):
            raise ValueError("--columns, --errors and --drop-invalid name columns of --data: "
                             "give --data FILE too (without it the built-in sample is used)")
        if self.data is not None and not self.columns:
            raise ValueError("--data needs --columns: the 1 to 3 columns to fit")
        check_shape_options(self)

    def column_list(self) -> list[str]:
        return [c.strip() for c in (self.columns or "x").split(",") if c.strip()]


def check_shape_options(inputs) -> None:
    if inputs.components is not None and not 1 <= inputs.components <= MAX_COMPONENTS:
        raise ValueError(f"--components must lie in 1..{MAX_COMPONENTS}, got {inputs.components}")
    if not 1 <= inputs.max_components <= MAX_COMPONENTS:
        raise ValueError(f"--max-components must lie in 1..{MAX_COMPONENTS}, got "
                         f"{inputs.max_components}")
    if inputs.synthetic_sets < 1:
        raise ValueError(f"--synthetic-sets must be at least 1, got {inputs.synthetic_sets}")
    if inputs.lower is not None and inputs.upper is not None and inputs.lower >= inputs.upper:
        raise ValueError(f"--lower ({inputs.lower}) must be below --upper ({inputs.upper})")
    if inputs.truncate and inputs.lower is None and inputs.upper is None:
        raise ValueError("--truncate needs --lower and/or --upper: the limits to cut at")
    if inputs.truncate and inputs.log:
        raise ValueError("--truncate and --log are two ways to bound a density: choose one "
                         "(the ages preset fits ln(age) unless given --linear)")
    if inputs.log and inputs.lower is not None and inputs.lower < 0:
        raise ValueError(f"--log: the density lives above 0, so --lower {inputs.lower} "
                         "cannot be a limit")


@dataclass(frozen=True)
class AgesInput:
    """The ages preset: ``data`` (default: a built-in simulated table of the same shape) with
    the two age columns (Gyr), each fitted on its own, then compared. The densities are of
    ln(age) by default (``log``), so no age below 0 is ever drawn; ``lower``/``upper`` are
    the physical limits reported (0 and the age of the Universe, 13.8 Gyr)."""

    data: str | None = None
    columns: str = ",".join(AGE_COLUMNS)
    errors: str | None = None
    log: bool = True
    lower: float | None = 0.0
    upper: float | None = AGE_OF_UNIVERSE
    truncate: bool = False
    components: int | None = None
    max_components: int = 4
    synthetic_sets: int = 20
    drop_invalid: bool = False
    comparison_draws: int = 1000

    def __post_init__(self):
        if len(self.column_list()) != 2:
            raise ValueError(f"--columns: the ages preset compares two columns, got "
                             f"{self.columns!r}")
        if self.comparison_draws < 10:
            raise ValueError(f"--comparison-draws must be at least 10, got "
                             f"{self.comparison_draws}")
        check_shape_options(self)

    def column_list(self) -> list[str]:
        return [c.strip() for c in self.columns.split(",") if c.strip()]


# -- steps ------------------------------------------------------------------------------------

def load_sample(source, columns: list[str], inputs) -> DensityData:
    """Read ``columns`` of ``source`` (a path or table; None: the simulated default) with
    their errors; ``--log`` takes logarithms. Too few objects is an error saying so."""
    if source is None:
        example = getattr(inputs, "example", "mixture")
        data = simulate_density() if example == "mixture" else two_galaxies()
    else:
        data = load_density_table(source, columns, inputs.errors, inputs.drop_invalid)
    if len(data) < MIN_OBJECTS:
        raise ValueError(f"{data.source}: {len(data)} values in {', '.join(columns)}; a density "
                         f"needs at least {MIN_OBJECTS}")
    if inputs.truncate and data.dim != 1:
        raise ValueError("--truncate is for one column")
    if inputs.log:
        log_values(data)  # a value <= 0 fails here, before any fit
    return data


def truncation_of(inputs) -> tuple[float, float] | None:
    if not inputs.truncate:
        return None
    return (-np.inf if inputs.lower is None else inputs.lower,
            np.inf if inputs.upper is None else inputs.upper)


def check_truncation(data: DensityData, truncation) -> None:
    """Without errors, a value outside the truncation limits has zero likelihood: an error
    naming the column and count, not a fit that cannot start."""
    if truncation is None:
        return
    outside = (data.values[:, 0] < truncation[0]) | (data.values[:, 0] > truncation[1])
    no_error = data.error_sd()[:, 0] == 0
    bad = outside & no_error
    if bad.any():
        from starmix.data.input_checks import DataValidationError

        raise DataValidationError(data.columns[0], f"lie outside --truncate's limits "
                                  f"{truncation} without an error (give --errors, or drop "
                                  "--truncate to report them instead)", int(bad.sum()), len(data))


@dataclass
class SampleResult:
    name: str
    fit: DensityFit
    passed: bool
    record: dict
    checks: object = None
    extras: dict = field(default_factory=dict)


def summarise_components(fit: DensityFit) -> list[dict]:
    """Posterior mean and sd of each component's weight, mean and width (model units)."""
    draws = fit.draws()
    rows = []
    for k, name in enumerate(fit.model.coords["component"]):
        width = np.sqrt(np.diagonal(draws["cov"][:, k], axis1=-2, axis2=-1))
        rows.append({"component": str(name),
                     "w": [round(float(draws["w"][:, k].mean()), 4),
                           round(float(draws["w"][:, k].std()), 4)],
                     "mean": np.round(draws["mean"][:, k].mean(0), 4).tolist(),
                     "mean_sd": np.round(draws["mean"][:, k].std(0), 4).tolist(),
                     "width": np.round(width.mean(0), 4).tolist(),
                     "width_sd": np.round(width.std(0), 4).tolist()})
    return rows


def match_components(draws: dict, components: dict) -> np.ndarray:
    """The order of another fit's ``components`` (w, mean, cov) that best matches the
    posterior's components: the permutation with the smallest sum of squared differences
    of the means and widths in units of their posterior sd (K! tried; K <= 6)."""
    from itertools import permutations

    width = np.sqrt(np.diagonal(draws["cov"], axis1=-2, axis2=-1))
    other_width = np.sqrt(np.diagonal(components["cov"], axis1=-2, axis2=-1))
    centre = np.concatenate([draws["mean"].mean(0), width.mean(0)], axis=-1)  # (K, 2d)
    spread = np.concatenate([draws["mean"].std(0), width.std(0)], axis=-1) + 1e-12
    other = np.concatenate([components["mean"], other_width], axis=-1)
    k = len(centre)
    best = min(permutations(range(k)), key=lambda order: (
        ((other[list(order)] - centre) / spread) ** 2).sum())
    return np.array(best)


def xdgmm_agreement(fit: DensityFit, xd) -> dict:
    """How far astroML's XDGMM fit (same K, components in the guard's order) lies from the
    posterior: per component, (XD - posterior mean) / posterior sd of the weight, mean and
    width of each coordinate."""
    draws = fit.draws()
    width = np.sqrt(np.diagonal(draws["cov"], axis1=-2, axis2=-1))  # (S, K, d)
    order = match_components(draws, xd.components)
    xd_components = {key: value[order] for key, value in xd.components.items()}
    xd_width = np.sqrt(np.diagonal(xd_components["cov"], axis1=-2, axis2=-1))

    def z(value, samples):
        spread = samples.std(0)
        offset = value - samples.mean(0)
        safe = np.where(spread > 0, spread, 1.0)
        return np.round(np.where(spread > 0, offset / safe, 0.0), 2).tolist()

    return {"z_w": z(xd_components["w"], draws["w"]),
            "z_mean": z(xd_components["mean"], draws["mean"]),
            "z_width": z(xd_width, width),
            "xdgmm": {"w": np.round(xd_components["w"], 4).tolist(),
                      "mean": np.round(xd_components["mean"], 4).tolist(),
                      "width": np.round(xd_width, 4).tolist()}}


def grid_2d(values: np.ndarray, n: int = 120):
    low, high = values.min(0), values.max(0)
    pad = 0.15 * (high - low)
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(low - pad, high + pad, strict=True)]
    xx, yy = np.meshgrid(*axes)
    return axes, np.column_stack([xx.ravel(), yy.ravel()])


def analyse_sample(run: Run, data: DensityData, name: str, inputs, sampling: SamplingOptions,
                   gate: GateThresholds, checks: str, figures: bool) -> SampleResult:
    """Fit one sample and write its files (see the module docstring)."""
    from starmix.workflows.density import plots as density_plots

    truncation = truncation_of(inputs)
    check_truncation(data, truncation)
    model_data = log_values(data) if inputs.log else data
    record: dict = {"n": len(data), "source": data.source, "columns": data.columns,
                    "errors": data.errors or "none", "dropped": data.dropped,
                    "model_space": "ln(value)" if inputs.log else "value"}
    limits = (inputs.lower, inputs.upper)
    if data.dim == 1 and any(limit is not None for limit in limits):
        outside = count_outside(data.values[:, 0], *limits)
        record["limits"] = {"lower": inputs.lower, "upper": inputs.upper, "data_outside": outside}
        if outside["below"] or outside["above"]:
            run.say(f"{name}: {outside['below']} values below {inputs.lower} and "
                    f"{outside['above']} above {inputs.upper} (counted, kept in the fit)")
    with run.step(f"fit {name}"):
        fit = fit_density(model_data, sampling, inputs.components, inputs.max_components,
                          truncation, inputs.log, say=lambda m: run.say(f"{name}: {m}"),
                          gate=gate, out_dir=run.out_dir)
    record["k_selection"] = fit.k_choice.record()
    report = fit.gate
    record["convergence"] = report.as_record()
    print(f"[{name}] {report.text()}")
    details: dict = {}
    check_report, check_arrays = check_step(run, fit.model, fit.idata, sampling.seed, OBSERVED,
                                            checks, details)
    record.update(details)
    record["components"] = summarise_components(fit)
    with run.step(f"baselines {name}"):
        fitted = baselines_mod.fit_baselines(model_data.values, model_data.error_cov,
                                             inputs.max_components, fit.n_components,
                                             sampling.seed)
    record["baselines"] = {key: {"label": b.label, **b.settings} for key, b in fitted.items()}
    record["xdgmm_agreement"] = xdgmm_agreement(fit, fitted["xdgmm"])
    tables, extras = {}, {"baselines": fitted}
    with run.step(f"density {name}"):
        if data.dim == 1:
            tables["density"], band = density_table(fit, data, fitted, inputs, truncation)
            extras["band"] = band
            record["density"] = density_record(fit, data, band, fitted, inputs)
        else:
            record["density"] = density_record_nd(fit, model_data, fitted)
        moments = mixture_moments(fit, 2000)
        record["intrinsic_moments"] = {key: interval(value) for key, value in moments.items()}
    with run.step(f"synthetic samples {name}"):
        sets, origin = synthetic_sets(fit, inputs.synthetic_sets, len(data), sampling.seed)
        rng = np.random.default_rng(sampling.seed)
        kde_sets = np.stack([fitted["kde_scott"].sample(len(data), rng)
                             for _ in range(inputs.synthetic_sets)])
        kde_sets = np.exp(kde_sets) if inputs.log else kde_sets
        tables["synthetic"] = synthetic_table(sets, origin, kde_sets, data.columns)
        extras.update(sets=sets, kde_sets=kde_sets)
        record["synthetic"] = synthetic_record(sets, kde_sets, inputs if data.dim == 1 else None)
    with run.step(f"save results {name}"):
        run.keep(f"posterior_{name}", write_posterior(run.out_dir / f"posterior_{name}.nc",
                                                      fit.idata))
        run.keep(f"summary_{name}", write_table(run.out_dir / f"summary_{name}.ecsv",
                                                summary_table(fit.idata, fit.parameter_names())))
        run.keep(f"k_selection_{name}", write_table(run.out_dir / f"k_selection_{name}.ecsv",
                                                    Table(rows=[tuple(r.values()) for r in
                                                                fit.k_choice.rows],
                                                          names=list(fit.k_choice.rows[0]))))
        run.keep(f"baselines_{name}", write_table(run.out_dir / f"baselines_{name}.ecsv",
                                                  baselines_table(record)))
        for label, table in tables.items():
            run.keep(f"{label}_{name}", write_table(run.out_dir / f"{label}_{name}.ecsv", table))
    if figures:
        with run.step(f"figures {name}"):
            drawn = density_plots.sample_figures(data, fit, extras, inputs, check_arrays)
            for label, figure in drawn.items():
                run.keep(f"figure_{label}_{name}",
                         save_figure(run.out_dir / "figures" / f"{label}_{name}.png", figure))
                plots.close(figure)
    record["sampler"] = sampler_used(fit.idata)
    return SampleResult(name, fit, report.passed, record, check_report, extras)


def density_table(fit, data, fitted, inputs, truncation):
    grid = grid_for(data.values[:, 0], positive=inputs.log)
    band = posterior_density(fit, grid)
    columns = {"x": grid, "posterior_mean": band.mean, "posterior_p16": band.p16,
               "posterior_p50": band.p50, "posterior_p84": band.p84}
    for key, baseline in fitted.items():
        columns[key] = baselines_mod.grid_density(baseline, grid, inputs.log)
    table = Table(columns)
    table.meta["description"] = (f"density of {data.columns[0]} (per unit of it): the "
                                 "posterior's mean and 16/50/84% band, and each baseline")
    return table, band


def density_record(fit, data, band, fitted, inputs) -> dict:
    grid = band.grid
    out = {"posterior_sd_of_density": round(baselines_mod.density_sd(grid, band.mean), 4),
           "methods": {}}
    for key, baseline in fitted.items():
        density = baselines_mod.grid_density(baseline, grid, inputs.log)
        out["methods"][key] = {
            "sd_of_density": round(baselines_mod.density_sd(grid, density), 4),
            "l1_to_posterior_mean": round(baselines_mod.l1_distance(grid, density, band.mean), 4)}
    if inputs.lower is not None or inputs.upper is not None:
        mass = mass_outside(fit, inputs.lower, inputs.upper)
        out["mass_outside_limits"] = interval(mass)
        kde = baselines_mod.grid_density(fitted["kde_scott"], grid, inputs.log)
        beyond = np.zeros_like(grid, bool)
        if inputs.lower is not None:
            beyond |= grid < inputs.lower
        if inputs.upper is not None:
            beyond |= grid > inputs.upper
        out["kde_scott_mass_outside_limits"] = round(float(kde[beyond].sum() *
                                                           (grid[1] - grid[0])), 4)
    return out


def density_record_nd(fit, model_data, fitted) -> dict:
    """L1 distances between each baseline and the posterior-mean density on a 2-D grid
    (3-D: not computed)."""
    if model_data.dim != 2:
        return {}
    axes, points = grid_2d(model_data.values)
    draws = fit.draws(200)
    mean = np.exp(mixture_log_density(points, draws["w"], draws["mean"], draws["cov"])).mean(0)
    cell = (axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0])
    return {"methods": {key: {"l1_to_posterior_mean": round(float(
        np.abs(np.exp(b.log_density(points)) - mean).sum() * cell), 4)}
        for key, b in fitted.items()}}


def synthetic_table(sets, origin, kde_sets, columns) -> Table:
    n_sets, size, d = sets.shape
    rows = {"method": np.repeat(["posterior", "kde_scott"], n_sets * size),
            "set": np.tile(np.repeat(np.arange(n_sets), size), 2),
            "chain": np.concatenate([np.repeat(origin[:, 0], size), np.full(n_sets * size, -1)]),
            "draw": np.concatenate([np.repeat(origin[:, 1], size), np.full(n_sets * size, -1)])}
    for j, column in enumerate(columns):
        rows[column] = np.concatenate([sets[..., j].ravel(), kde_sets[..., j].ravel()])
    table = Table(rows)
    table.meta["description"] = ("synthetic samples: 'posterior' set j drawn from posterior "
                                 "draw (chain, draw) of the intrinsic density; 'kde_scott' "
                                 "from gaussian_kde.resample (chain, draw = -1); units those "
                                 "of the data")
    return table


def synthetic_record(sets, kde_sets, inputs) -> dict:
    """Spread between sets: the posterior's sets differ more (they carry the density's
    uncertainty); fractions beyond the limits."""
    out = {"n_sets": int(sets.shape[0]), "size": int(sets.shape[1])}
    for key, values in (("posterior", sets[..., 0]), ("kde_scott", kde_sets[..., 0])):
        entry = {"sd_of_set_means": round(float(values.mean(1).std()), 4),
                 "sd_of_set_sds": round(float(values.std(1).std()), 4)}
        if inputs is not None and (inputs.lower is not None or inputs.upper is not None):
            beyond = np.zeros(values.shape, bool)
            if inputs.lower is not None:
                beyond |= values < inputs.lower
            if inputs.upper is not None:
                beyond |= values > inputs.upper
            entry["fraction_outside_limits"] = round(float(beyond.mean()), 4)
        out[key] = entry
    return out


def baselines_table(record: dict) -> Table:
    rows = []
    for key, entry in record["baselines"].items():
        metrics = record["density"].get("methods", {}).get(key, {})
        rows.append((key, entry["label"], metrics.get("sd_of_density", np.nan),
                     metrics.get("l1_to_posterior_mean", np.nan)))
    table = Table(rows=rows, names=("method", "label", "sd_of_density", "l1_to_posterior_mean"))
    table.meta["description"] = ("baselines; sd_of_density: standard deviation of the method's "
                                 "density (1-D, data units); l1: integral of |p - posterior "
                                 "mean| (0 same, 2 disjoint)")
    return table


def truth_record(fit: DensityFit, truth: dict) -> dict:
    """For simulated data: is each true parameter inside the posterior's 68% and 95%
    intervals, and the K-S distance between the true and posterior-mean CDFs (1-D)."""
    if not truth or len(truth["w"]) != fit.n_components:
        return {"comparable": False, "reason": "the chosen K differs from the true K"
                if truth else "no truth"}
    draws = fit.draws()
    width = np.sqrt(np.diagonal(draws["cov"], axis1=-2, axis2=-1))
    true_width = np.sqrt(np.diagonal(truth["cov"], axis1=-2, axis2=-1))
    out = {"comparable": True}
    for key, samples, value in (("w", draws["w"], truth["w"]), ("mean", draws["mean"],
                                                                 truth["mean"]),
                                ("width", width, true_width)):
        low68, high68, low95, high95 = np.percentile(samples, [16, 84, 2.5, 97.5], axis=0)
        out[key] = {"true": np.round(value, 4).tolist(),
                    "in_68": ((value >= low68) & (value <= high68)).tolist(),
                    "in_95": ((value >= low95) & (value <= high95)).tolist()}
    if draws["mean"].shape[-1] == 1:
        grid = grid_for(np.asarray(truth["mean"])[:, 0], 2000, pad=3.0)
        post = np.exp(mixture_log_density(grid[:, None], draws["w"][::10], draws["mean"][::10],
                                          draws["cov"][::10])).mean(0)
        true = np.exp(mixture_log_density(grid[:, None], truth["w"][None], truth["mean"][None],
                                          truth["cov"][None]))[0]
        step = grid[1] - grid[0]
        out["ks_distance_cdf"] = round(float(np.abs(np.cumsum(post - true) * step).max()), 4)
    return out


# -- the workflows --------------------------------------------------------------------------

def run_density(out_dir: str | Path, inputs: DensityInput = DensityInput(),
                sampling: SamplingOptions = DENSITY_SAMPLING,
                gate: GateThresholds = GateThresholds(), figures: bool = True,
                quiet: bool = False, checks: str = "on") -> RunResult:
    """Fit a density to one sample; returns the result also when the gate fails (status
    ``failed``, exit code 2). Bad input raises before anything is written."""
    final_status(True, None, checks)  # an unknown mode fails before the data are read
    columns = inputs.column_list()
    data = load_sample(inputs.data, columns, inputs)
    name = "_".join(data.columns)

    def steps(run: Run) -> Outcome:
        run.say(f"{len(data)} objects, {data.dim} column(s) {', '.join(data.columns)} from "
                f"{data.source}; errors: {', '.join(data.errors) or 'none'}")
        result = analyse_sample(run, data, name, inputs, sampling, gate, checks, figures)
        if data.truth:
            result.record["truth"] = truth_record(result.fit, data.truth)
        return Outcome(final_status(result.passed, result.checks, checks),
                       {"samples": {name: result.record}})

    return execute(run_density, out_dir, as_record(inputs, sampling, gate), steps, quiet=quiet,
                   checks=checks)


def run_ages(out_dir: str | Path, inputs: AgesInput = AgesInput(),
             sampling: SamplingOptions = DENSITY_SAMPLING,
             gate: GateThresholds = GateThresholds(), figures: bool = True,
             quiet: bool = False, checks: str = "on") -> RunResult:
    """The ages preset: each age column's density, then are the two drawn from the same
    distribution (:mod:`starmix.workflows.density.compare`)? Without ``data``, a built-in simulated
    table (two known, different mixtures)."""
    from starmix.workflows.density.compare import compare_samples

    final_status(True, None, checks)  # an unknown mode fails before the data are read
    columns = inputs.column_list()
    table = simulate_ages(seed=sampling.seed) if inputs.data is None else inputs.data
    errors = [None] * 2 if inputs.errors is None else [e.strip() for e in
                                                         inputs.errors.split(",")]
    if len(errors) == 1:
        errors *= 2
    if len(errors) != 2:
        raise ValueError(f"--errors: one entry for both age columns or one per column "
                         f"({', '.join(columns)}), got {inputs.errors!r}")
    samples = [load_sample(table, [column], replace(inputs, errors=error))
               for column, error in zip(columns, errors, strict=True)]

    def steps(run: Run) -> Outcome:
        run.say(f"ages from {source_name(table)}: {', '.join(columns)}")
        results = [analyse_sample(run, data, data.columns[0], inputs, sampling, gate, checks,
                                  figures) for data in samples]
        truth = table.meta.get("truth_ln_age") if inputs.data is None else None
        for result in results:
            if truth and inputs.log:  # the truth is a mixture in ln(age)
                true = {k: np.asarray(v, float) for k, v in truth[result.name].items()}
                result.record["truth"] = truth_record(result.fit, true)
        comparison = compare_samples(run, results, inputs, sampling, gate, figures)
        passed = all(r.passed for r in results) and comparison["pooled_passed"]
        checks_any = next((r.checks for r in results if r.checks is not None
                           and not r.checks.passed), results[0].checks)
        return Outcome(final_status(passed, checks_any, checks),
                       {"samples": {r.name: r.record for r in results},
                        "comparison": comparison})

    return execute(run_ages, out_dir, as_record(inputs, sampling, gate), steps, quiet=quiet,
                   checks=checks)
