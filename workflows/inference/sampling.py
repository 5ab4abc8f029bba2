"""Posterior sampling with NUTS, through PyMC's own sampler or an external backend."""

import contextlib
import dataclasses
import importlib.util
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pymc as pm
import xarray as xr
from pymc.exceptions import SamplingError
from pymc.sampling.parallel import ParallelSamplingError

from starmix.data.input_checks import DataValidationError
from starmix.workflows.inference.membership import logsumexp
from starmix.workflows.runs.folder import shown_folder
from starmix.workflows.runs.options import SamplingOptions, available_cores

SMALL_MODEL_OBJECTS = 1_000
DEFAULT_TUNE = {"nutpie": 300}  # every other sampler: 1000
JAX_SAMPLERS = ("numpyro", "blackjax")


def n_objects(model: pm.Model) -> int:
    """Objects (stars, points) in a model: the length of its longest coordinate."""
    return max((len(values) for values in model.coords.values()), default=0)


def resolve_sampler(options: SamplingOptions, model: pm.Model) -> SamplingOptions:
    """Settle ``sampler="auto"``, ``tune=None`` and ``cores=None`` for ``model``.

    ``auto`` is nutpie (Rust NUTS, mass matrix adapted from gradients as well as draws)
    when it is installed, else PyMC's own NUTS. nutpie needs far fewer tuning steps
    (``tune=None``: 300 for nutpie, its own default, and 1000 otherwise); on the
    log-density compiled once and cached (:mod:`starmix.workflows.inference.nutpie_sampler`) and
    with its
    low-rank mass matrix it gives several times PyMC's NUTS in ESS per second on the
    cluster models (``make bench``). ``cores=None`` is one chain per CPU, except nutpie on
    a model of fewer than ``SMALL_MODEL_OBJECTS`` objects, which runs its chains one after another:
    there a gradient takes microseconds and parallel chains would only queue for
    Python's interpreter lock around each call.
    """
    sampler = options.sampler
    if sampler == "auto":
        sampler = "nutpie" if importlib.util.find_spec("nutpie") else "pymc"
    tune = DEFAULT_TUNE.get(sampler, 1000) if options.tune is None else options.tune
    cores = options.cores
    if cores is None:
        small = sampler == "nutpie" and n_objects(model) < SMALL_MODEL_OBJECTS
        cores = 1 if small else min(options.chains, available_cores())
    return dataclasses.replace(options, sampler=sampler, tune=tune, cores=cores)


BYTES_PER_VALUE = 8  # float64
# Per-draw sampler statistics (step size, tree depth, energy, log-density, divergence, ...):
# PyMC's NUTS stores about 15, nutpie about 10 more.
SAMPLE_STATS_PER_DRAW = 25


def stored_values_per_draw(model: pm.Model, var_names=None,
                           log_likelihood: bool = True) -> int:
    """Values a posterior holds per draw: those of the stored variables (``var_names``, by
    default every free variable and deterministic), the sampler's statistics and, with
    ``log_likelihood``, one pointwise log-likelihood per observed value. Sizes come from
    the model's dimensions and static shapes, without compiling anything."""
    names = set(var_names) if var_names is not None else None
    stored = [var for var in (*model.free_RVs, *model.deterministics)
              if names is None or var.name in names]
    total = sum(_size(model, var) for var in stored) + SAMPLE_STATS_PER_DRAW
    if log_likelihood:
        total += sum(_size(model, var) for var in model.observed_RVs)
    return total


def _size(model: pm.Model, var) -> int:
    """Number of values in ``var``: from its named dimensions, else its static shape, else
    its shape evaluated (one object per row of the model's longest coordinate if that
    fails)."""
    dims = model.named_vars_to_dims.get(var.name) or ()
    lengths = [len(model.coords[dim]) if model.coords.get(dim) is not None else None
               for dim in dims]
    if dims and len(dims) == var.ndim and None not in lengths:
        return math.prod(lengths)
    if None not in var.type.shape:
        return math.prod(var.type.shape)
    try:
        return int(np.prod(var.shape.eval()))
    except Exception:  # noqa: BLE001 - an estimate: never let it stop a run
        return n_objects(model) * math.prod(s or 1 for s in var.type.shape)


def available_memory() -> int | None:
    """Bytes of memory this process could still take: the system's available memory
    (psutil, else ``MemAvailable`` in /proc/meminfo, else free pages), capped by the
    cgroup's (container's) limit; None when none of these can be read."""
    found = []
    try:
        import psutil

        found.append(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil is optional
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
        except (OSError, ValueError, IndexError):
            pass
    if not found:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            found.append(max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def _gb(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


def check_draw_budget(n_values_per_draw: int, sampling: SamplingOptions, out_dir=None,
                      extra_bytes: int = 0) -> int:
    """Refuse, before any sampling, draws that would not fit: the posterior is estimated
    as chains x draws x ``n_values_per_draw`` values of 8 bytes (what ``posterior.nc``
    holds, see :func:`stored_values_per_draw`), plus ``extra_bytes`` (per-object arrays
    kept beside it), and compared with the memory available (:func:`available_memory`)
    and, with ``out_dir``, the free space of the disk it will be written to (its nearest
    existing folder). Raises ValueError naming ``--draws`` and ``--chains`` and saying what
    they would need; returns the estimate in bytes."""
    need = sampling.chains * sampling.draws * n_values_per_draw * BYTES_PER_VALUE + extra_bytes
    what = (f"--draws {sampling.draws} x --chains {sampling.chains}: the posterior "
            f"({n_values_per_draw:,} values per draw) would need {_gb(need)}")
    memory = available_memory()
    if memory is not None and need > memory:
        raise ValueError(f"{what} in memory ({_gb(memory)} available); lower --draws or "
                         "--chains")
    if out_dir is not None:
        folder = Path(os.path.abspath(out_dir))
        folder = next((path for path in (folder, *folder.parents) if path.exists()), None)
        if folder is not None:
            free = shutil.disk_usage(folder).free
            if need > free:
                shown = shown_folder(folder)  # --out, not its staging folder
                raise ValueError(f"{what} on disk ({_gb(free)} free for {shown}); lower "
                                 "--draws or --chains, or give --out on a larger disk")
    return need


def show_progress() -> bool:
    """PyMC's progress bar only on an interactive terminal outside CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def sample_posterior(
    model: pm.Model,
    options: SamplingOptions,
    var_names=None,
    log_likelihood: bool = True,
    start_at_map: bool = False,
    check_start: Callable[[], None] | None = None,
    starts=None,
    before_start: Callable[[int], None] | None = None,
    out_dir=None,
) -> xr.DataTree:
    """Run NUTS; with ``log_likelihood`` add PyMC's pointwise ``log_likelihood`` group.

    ``var_names`` limits what the trace stores (large per-star deterministics stay out).
    ``start_at_map`` starts every chain at the MAP point (PyMC's NUTS exactly there;
    nutpie jittered around it by U(-1, 1) on the unconstrained scale, its own default), so
    that chains of a model with distant secondary modes explore the main one; the time it
    took is the result's attribute ``map_seconds``. ``check_start`` (no arguments, such as
    :func:`check_starting_point` with the model's input columns) should raise an error
    naming the input to blame when the log-density at the model's starting point is not
    finite: nutpie calls it only then (its compiled log-density tells), PyMC's samplers
    always, before sampling.

    ``starts`` (with ``start_at_map``): dicts of constrained starting values of some free
    variables; the MAP is searched from each and the highest kept (``before_start(j)``
    runs before start j, and again for the winner).

    Before anything is compiled, :func:`check_draw_budget` refuses draws whose posterior
    would not fit in memory (or, with ``out_dir``, on the disk of the results folder).

    The same ``options.seed`` gives the same draws for the same model and sampler.
    ``numpyro``/``blackjax`` run through JAX (CPU is fine) and need the ``jax`` extra.
    The sampler and tuning length used (:func:`resolve_sampler`) are stored in the
    result's attributes ``sampler`` and ``tune``.
    """
    options = resolve_sampler(options, model)
    check_draw_budget(stored_values_per_draw(model, var_names, log_likelihood), options,
                      out_dir)
    if options.sampler == "nutpie":
        from starmix.workflows.inference.nutpie_sampler import sample_nutpie

        idata = sample_nutpie(model, draws=options.draws, tune=options.tune,
                              chains=options.chains, cores=options.cores, seed=options.seed,
                              target_accept=options.target_accept,
                              mass_matrix=options.mass_matrix, var_names=var_names,
                              start_at_map=start_at_map, check_start=check_start,
                              progressbar=show_progress(), starts=starts,
                              before_start=before_start)
    else:
        if check_start is not None:
            check_start()
        began = time.perf_counter()
        point = (best_map_point(model, options.seed, starts, before_start) if start_at_map
                 else None)
        map_seconds = round(time.perf_counter() - began, 3)
        idata = _sample_with_pymc(model, options, var_names, point)
        if start_at_map:
            idata.attrs["map_seconds"] = map_seconds
    idata.attrs.update(sampler=options.sampler, tune=options.tune,
                       mass_matrix=options.mass_matrix if options.sampler == "nutpie" else "diag")
    if log_likelihood:
        pm.compute_log_likelihood(idata, model=model, progressbar=False)
    return idata


def _sample_with_pymc(model, options: SamplingOptions, var_names, initvals=None):
    """``pm.sample`` with PyMC's own NUTS or its JAX samplers, from ``initvals`` if given
    (falling back to PyMC's default initialisation); see :func:`sample_posterior`."""
    nuts = {"target_accept": options.target_accept}
    if options.sampler in JAX_SAMPLERS:
        from starmix.models.fused_jax import register_jax

        register_jax()
        if not jax_devices_for_chains(options.chains):
            # too few devices to map the chains over: vectorise them on one (BlackJAX's
            # device map fails outright)
            nuts["chain_method"] = "vectorized"

    def run_nuts(initvals=None):
        return pm.sample(
            draws=options.draws,
            tune=options.tune,
            chains=options.chains,
            cores=options.cores,
            random_seed=options.seed,
            nuts_sampler=options.sampler,
            progressbar=show_progress(),
            model=model,
            nuts=nuts,
            var_names=var_names,
            initvals=initvals,
            **({"init": "adapt_diag"} if initvals and options.sampler == "pymc" else {}),
        )

    if initvals is None:
        return run_nuts()
    try:
        return run_nuts(initvals=initvals)
    except (SamplingError, ParallelSamplingError) as error:
        # A MAP on a parameter's boundary (a dispersion at its bound, say) has no finite
        # log-density on the sampler's unconstrained scale.
        print(f"starting at the MAP point failed ({str(error).splitlines()[0]}); "
              "using PyMC's default initialisation instead", file=sys.stderr)
        return run_nuts()


def jax_devices_for_chains(chains: int) -> bool:
    """Give JAX one CPU device per chain, so that PyMC's JAX samplers run chains in
    parallel (``chain_method="parallel"`` maps chains over devices; with JAX's single CPU
    device NumPyro draws them one after another, on one core: 4x the wall time for
    4 chains). Possible only before JAX's first computation in the process; later, a note
    says that the chains are vectorised on the devices JAX has. Returns whether there is a
    device per chain."""
    import jax

    if jax.config.jax_num_cpu_devices >= chains:
        return True
    try:
        jax.config.update("jax_num_cpu_devices", chains)
    except RuntimeError:
        if len(jax.devices("cpu")) < chains:
            print(f"note: JAX was set up with {len(jax.devices('cpu'))} CPU device(s) before "
                  f"sampling; its {chains} chains are vectorised on one", file=sys.stderr)
            return False
    return True


def sampler_used(idata: xr.DataTree) -> dict:
    """The sampler and tuning length a run used (``auto`` and ``tune=None`` settled)."""
    return {key: idata.attrs.get(key) for key in ("sampler", "tune", "mass_matrix")}


def map_point(model: pm.Model, seed: int, start=None) -> dict[str, np.ndarray]:
    """The seeded MAP estimate of every free variable (no jitter), searched from ``start``
    (constrained values of some free variables) or the model's initial point."""
    found = pm.find_MAP(model=model, random_seed=seed, progressbar=False, jitter=False,
                        return_inferencedata=True, start=start)["posterior"]
    return {rv.name: found[rv.name].values[0, 0] for rv in model.free_RVs}


def unconstrained_point(model: pm.Model, point: dict) -> dict[str, np.ndarray]:
    """The sampler's point (value variables, transformed where the model transforms) from
    constrained values of every free variable."""
    values = {}
    for rv in model.free_RVs:
        transform = model.rvs_to_transforms.get(rv)
        value = np.asarray(point[rv.name], float)
        if transform is not None:
            value = np.asarray(transform.forward(value, *rv.owner.inputs).eval(), float)
        values[model.rvs_to_values[rv].name] = value
    return values


def best_map_point(model: pm.Model, seed: int, starts=None, before_start=None):
    """:func:`map_point` from each of ``starts``, the one of highest log posterior."""
    if not starts:
        return map_point(model, seed)
    logp = model.compile_logp(jacobian=False)
    points, values = [], []
    for j, start in enumerate(starts):
        if before_start is not None:
            before_start(j)
        point = map_point(model, seed, start)
        points.append(point)
        values.append(float(logp({**model.initial_point(), **unconstrained_point(model, point)})))
    best = int(np.argmax(values))
    if before_start is not None:
        before_start(best)
    return points[best]


def check_starting_point(model: pm.Model, columns: Mapping[str, np.ndarray],
                         error_columns=()) -> None:
    """Fail before sampling when some rows give a non-finite likelihood at the start.

    Values so extreme that floating point overflows (an error of 1e200 or 1e-300, say) pass
    the row checks of :mod:`starmix.data.input_checks` but would stop PyMC with a traceback
    from deep inside the sampler. ``columns`` are the model's input columns, one value per row, and
    ``error_columns`` those among them that are 1-sigma errors (which overflow when tiny as
    well as when huge); the error names the column whose values in the bad rows lie
    furthest from their typical size.
    """
    from starmix.models.field import log_weights

    outs = model.replace_rvs_by_values([log_weights(model), model["log_component"]])
    evaluate = model.compile_fn(outs=outs, inputs=model.value_vars, on_unused_input="ignore")
    log_w, log_component = evaluate(model.initial_point())
    with np.errstate(all="ignore"):
        bad = ~np.isfinite(logsumexp(log_w + log_component, axis=-1))
    if not bad.any():
        return
    column, decades = _most_extreme_column(columns, bad, set(error_columns))
    if decades >= EXTREME_DECADES:
        raise DataValidationError(
            column, "give a non-finite likelihood (floating-point overflow: values "
            f"{decades:.0f} orders of magnitude from the column's typical size)",
            int(bad.sum()), len(bad))
    raise DataValidationError(
        ", ".join(columns), "give a non-finite likelihood at the starting point, and no "
        "column holds extreme values", int(bad.sum()), len(bad))


EXTREME_DECADES = 20  # orders of magnitude from a column's typical size that count as extreme


def _most_extreme_column(columns: Mapping[str, np.ndarray], bad: np.ndarray,
                         error_columns: set) -> tuple[str, float]:
    """(column, decades): the column whose values in the bad rows lie the most orders of
    magnitude from its typical size (its median |value| over the good rows, else 1);
    above it for values, above or below it for errors."""
    def excess(name):
        size = np.abs(np.asarray(columns[name], float))
        typical = np.median(size[~bad]) if (~bad).any() else 1.0
        with np.errstate(divide="ignore"):
            log_size = np.log10(np.maximum(size[bad], 1e-320))
        high = log_size.max() - np.log10(max(typical, 1e-320))
        low = np.log10(max(typical, 1e-320)) - log_size.min() if name in error_columns else 0
        return float(max(high, low))
    best = max(columns, key=excess)
    return best, excess(best)
