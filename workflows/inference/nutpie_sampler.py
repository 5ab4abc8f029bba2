"""nutpie on a log-density compiled once and kept: PyTensor's Numba cache, GIL released.

``pm.sample(nuts_sampler="nutpie")`` wraps the model's compiled log-density in a new
``numba.cfunc`` on every run, which Numba cannot cache: 6 s for the outlier line, 12 s for
pm2d on 16,535 stars, each time. Here the log-density and its gradient are an ordinary
PyTensor function compiled by Numba, whose compiled code PyTensor keeps on disk between
runs, with the one change that it releases the GIL (:mod:`starmix.workflows.inference.nogil`), so
that
nutpie's chains (threads) evaluate gradients in parallel. nutpie calls it through its
Python-function interface (:func:`nutpie.compiled_pyfunc.from_pyfunc`), the same route
its JAX backend takes.

Built on two helpers of nutpie's PyMC front end (``_make_functions`` and
``_prepare_dims_and_coords``, pinned by the version range in ``pyproject.toml``; the
sampling tests exercise them).
"""

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords
from nutpie.compiled_pyfunc import PyFuncModel, from_pyfunc
from nutpie.sample import sample as nutpie_sample
from pymc.backends.arviz import patch_nutpie_idata
from pymc.exceptions import SamplingError
from pymc.initial_point import make_initial_point_fn
from pytensor.graph.replace import clone_replace
from scipy.optimize import minimize

from starmix.workflows.inference.nogil import compile_nogil, nogil_numba_mode, thread_safe

JITTER = 1.0  # starting points: U(-1, 1) on the unconstrained scale, as PyMC jitters
# Around a MAP point the chains start within U(-0.1, 0.1): a jitter of 1 on the
# unconstrained scale moves a cluster's mean proper motion by up to 1 mas/yr, several times
# a cluster's width, and sent chains into other modes on real fields.
MAP_JITTER = 0.1
# A chain is a stray when its median log-density lies this many nats below the best
# chain's, and this many within-chain sds (chains in one mode differ by a fraction of one).
STRAY_GAP_NATS = 10.0
STRAY_GAP_SDS = 3.0
RESTART_SEED_OFFSET = 7919  # restarted chains' seed: the run's seed plus this


class CompiledForNutpie(NamedTuple):
    """What :func:`compile_for_nutpie` gives: nutpie's model object (log-density and
    gradient, the function giving the stored variables of a draw, starting points jittered
    around ``start``), the model's initial point ``start`` (flat, unconstrained), the
    log-density-and-gradient function ``logp`` (thread-safe, of a flat unconstrained point)
    and the ``shapes`` of the free variables' unconstrained values, in their flat order."""

    model: PyFuncModel
    start: np.ndarray
    logp: Callable
    shapes: list[tuple[int, ...]]


def compile_for_nutpie(model: pm.Model, var_names=None) -> CompiledForNutpie:
    """Compile ``model``'s log-density and gradient for nutpie (see :class:`CompiledForNutpie`)."""
    initial_point = make_initial_point_fn(model=model, jitter_rvs=set(),
                                          return_transformed=True)
    n_dim, _, logp_fn, expand_fn, _, shape_info, transformed = _make_functions(
        model, mode=nogil_numba_mode(), compute_grad=True, join_expanded=False,
        pymc_initial_point_fn=initial_point, var_names=var_names)
    names, _, shapes = shape_info
    logp_and_grad, expand = thread_safe(logp_fn), thread_safe(expand_fn)

    def logp(x):
        value, grad = logp_and_grad(x)
        return float(value), grad

    def make_expand_fn(seed1, seed2, chain):
        def expand_draw(x):
            return {name: value.reshape(shape)
                    for name, value, shape in zip(names, expand(x), shapes, strict=True)}
        return expand_draw

    point = initial_point(0)
    values = [point[model.rvs_to_values[rv].name] for rv in model.free_RVs]
    start = np.concatenate([np.ravel(value) for value in values])
    dims, coords = _prepare_dims_and_coords(model, shape_info, transformed)
    compiled = from_pyfunc(
        ndim=n_dim, make_logp_fn=lambda: logp, make_expand_fn=make_expand_fn,
        make_initial_point_fn=jittered_around(start),
        expanded_dtypes=[np.dtype("float64")] * len(names), expanded_shapes=shapes,
        expanded_names=names, dims=dims, coords=coords, reparameterized_names=transformed)
    return CompiledForNutpie(compiled, start, logp, [np.shape(value) for value in values])


def jittered_around(center: np.ndarray, jitter: float = JITTER):
    """nutpie's starting-point function: ``center`` plus seeded U(-jitter, jitter)."""
    def initial_point(seed):
        return center + np.random.default_rng(seed).uniform(-jitter, jitter, center.shape)
    return initial_point


def flat_point(model: pm.Model, compiled: CompiledForNutpie, values: dict) -> np.ndarray:
    """``compiled.start`` with the free variables named in ``values`` (constrained values,
    e.g. ``{"cluster_pm": [-2.3, -1.0], "w": [...]}``) put on the unconstrained scale."""
    point, offset = compiled.start.copy(), 0
    for rv, shape in zip(model.free_RVs, compiled.shapes, strict=True):
        length = int(np.prod(shape))
        if rv.name in values:
            value = pt.as_tensor(np.asarray(values[rv.name], float))
            transform = model.rvs_to_transforms.get(rv)
            if transform is not None:
                value = transform.forward(value, *rv.owner.inputs)
            point[offset:offset + length] = np.ravel(value.eval())
        offset += length
    return point


def map_estimate(model: pm.Model, compiled: CompiledForNutpie, starts=None,
                 before_start=None) -> tuple[np.ndarray, list[float]]:
    """The MAP point on the unconstrained scale (flat, nutpie's layout) and the log
    posterior (without Jacobian) reached from each start.

    Searched from the model's initial point, or from each of ``starts`` (dicts of
    constrained values, see :func:`flat_point`), keeping the highest. ``before_start(j)``
    runs before start j is searched and again for the winner (the workflow sets the
    cluster's prior centre of candidate j there). Maximises what ``pm.find_MAP``
    maximises, the log-density without the transforms' Jacobian, with the same optimiser
    (L-BFGS-B), but through the log-density already compiled for nutpie minus a small
    compiled Jacobian term (:func:`log_jacobian`), so that the large likelihood graph is
    compiled once per run instead of twice.
    """
    jacobian = log_jacobian(model, compiled.shapes)

    def negative_objective(x):
        value, grad = compiled.logp(x)
        log_jac, log_jac_grad = jacobian(x)
        return -(value - float(log_jac)), -(grad - log_jac_grad)

    points = [compiled.start] if not starts else [flat_point(model, compiled, start)
                                                   for start in starts]
    found, values = [], []
    for j, point in enumerate(points):
        if before_start is not None:
            before_start(j)
        result = minimize(negative_objective, point, jac=True, method="L-BFGS-B")
        found.append(result.x)
        values.append(float(-result.fun) if np.isfinite(result.fun) else -np.inf)
    best = int(np.argmax(values))
    if before_start is not None and best != len(points) - 1:
        before_start(best)
    return found[best], values


def log_jacobian(model: pm.Model, shapes: list[tuple[int, ...]]):
    """log|det J| of the model's transforms, and its gradient, as a function of the flat
    unconstrained point (free variables in order, each flattened, as nutpie joins them).

    Only the transforms' own terms are compiled, not the log-density: a small graph.
    """
    flat = pt.dvector("unconstrained")
    terms = [pt.sum(transform.log_jac_det(model.rvs_to_values[rv], *rv.owner.inputs))
             for rv in model.free_RVs
             if (transform := model.rvs_to_transforms.get(rv)) is not None]
    (log_jac,) = model.replace_rvs_by_values([pt.sum(pt.stack(terms)) if terms
                                              else pt.constant(0.0)])
    replacements, offset = {}, 0
    for rv, shape in zip(model.free_RVs, shapes, strict=True):
        length = int(np.prod(shape))
        replacements[model.rvs_to_values[rv]] = flat[offset:offset + length].reshape(shape)
        offset += length
    log_jac = clone_replace(log_jac, replacements)
    return compile_nogil([flat], [log_jac, pt.grad(log_jac, flat)])


def sample_nutpie(model: pm.Model, *, draws: int, tune: int, chains: int, cores: int,
                  seed: int, target_accept: float, mass_matrix: str = "low_rank",
                  var_names=None, start_at_map: bool = False, check_start=None,
                  progressbar: bool = False, starts=None, before_start=None) -> xr.DataTree:
    """nutpie's NUTS on ``model``; the result has PyMC's groups (posterior, sample_stats,
    observed and constant data), ``sampling_time`` (s) in the posterior's attributes and,
    with ``start_at_map``, ``map_seconds`` in its own.

    ``check_start`` (no arguments) runs if the log-density at the model's initial point is
    not finite; it should raise an error that says which input is to blame. With
    ``start_at_map``, chains start jittered around the MAP point (:func:`map_estimate`);
    if none can start there (a MAP on a parameter's boundary), around the model's initial
    point, with a message, without compiling again. No finite starting point at all
    raises :class:`pymc.exceptions.SamplingError`, as PyMC does.
    """
    compiled = compile_for_nutpie(model, var_names=var_names)
    if check_start is not None and not np.isfinite(compiled.logp(compiled.start)[0]):
        check_start()
    nutpie_model, map_seconds, map_values = compiled.model, None, None
    if start_at_map:
        began = time.perf_counter()
        best, map_values = map_estimate(model, compiled, starts, before_start)
        nutpie_model = dataclasses.replace(
            nutpie_model, _make_initial_points=jittered_around(best, MAP_JITTER))
        map_seconds = round(time.perf_counter() - began, 3)
    settings = dict(draws=draws, tune=max(tune, 1), chains=chains, cores=cores, seed=seed,
                    save_warmup=False, progress_bar=progressbar,
                    target_accept=target_accept, adaptation=mass_matrix)
    print(f"NUTS: nutpie, {chains} chains x ({tune} tuning + {draws} draws), "
          f"{cores} at a time, {mass_matrix} mass matrix", file=sys.stderr, flush=True)
    began = time.time()
    try:
        idata = _sample(nutpie_model, settings)
    except SamplingError as error:
        if not start_at_map:
            raise
        print(f"starting at the MAP point failed ({error}); using the model's initial "
              "point instead", file=sys.stderr)
        began = time.time()
        idata = _sample(compiled.model, settings)
    strays = stray_chains(idata["sample_stats"]["logp"].values)
    if strays:
        idata = restart_strays(idata, model, compiled, nutpie_model, settings, strays)
    patch_nutpie_idata(idata, model, sampling_time=time.time() - began)
    if map_seconds is not None:
        idata.attrs["map_seconds"] = map_seconds
        idata.attrs["map_log_posteriors"] = [round(value, 3) for value in map_values]
    return idata


def stray_chains(logp: np.ndarray) -> list[int]:
    """Chains (indices) settled in a mode of lower density: their median log-density
    (``logp``, chain x draw) lies more than ``STRAY_GAP_NATS`` and ``STRAY_GAP_SDS``
    within-chain sds below the best chain's. Empty with one chain."""
    logp = np.asarray(logp, float)
    if logp.shape[0] < 2:
        return []
    median = np.median(logp, axis=1)
    spread = float(np.sqrt(np.mean(np.var(logp, axis=1))))
    gap = max(STRAY_GAP_NATS, STRAY_GAP_SDS * spread)
    return [int(c) for c in np.flatnonzero(median < median.max() - gap)]


def restart_strays(idata, model, compiled, nutpie_model, settings, strays) -> xr.DataTree:
    """Run the ``strays`` again (their own tuning and draws, seed + RESTART_SEED_OFFSET),
    started around the last draw of the chain of highest median log-density, and put
    their draws in place of the strays'. The run's attributes say which were restarted;
    the convergence gate still judges the result."""
    logp = idata["sample_stats"]["logp"].values
    best = int(np.argmax(np.median(logp, axis=1)))
    last = idata["posterior"].to_dataset().isel(chain=best, draw=-1)
    start = flat_point(model, compiled, {rv.name: last[rv.name].values
                                         for rv in model.free_RVs if rv.name in last})
    print(f"NUTS: chain(s) {', '.join(str(c) for c in strays)} settled in a mode "
          f"{np.median(logp, axis=1).max() - np.median(logp[strays], axis=1).min():.0f}"
          f" nats below chain {best}'s; running them again from chain {best}'s last draw",
          file=sys.stderr, flush=True)
    rerun = _sample(dataclasses.replace(nutpie_model,
                                        _make_initial_points=jittered_around(start,
                                                                             MAP_JITTER)),
                    {**settings, "chains": len(strays),
                     "seed": settings["seed"] + RESTART_SEED_OFFSET})
    for group in ("posterior", "sample_stats"):
        dataset = idata[group].to_dataset()
        again = rerun[group].to_dataset().assign_coords(chain=dataset["chain"].values[strays])
        for name in dataset.data_vars:
            if name in again:
                dataset[name].loc[{"chain": dataset["chain"].values[strays]}] = again[name]
        idata[group] = xr.DataTree(dataset)
    idata.attrs["restarted_chains"] = strays
    return idata


def _sample(compiled, settings: dict) -> xr.DataTree:
    try:
        return nutpie_sample(compiled, **settings)
    except RuntimeError as error:
        if "initialization points failed" in str(error):
            raise SamplingError(f"nutpie: {str(error).splitlines()[0]}") from error
        raise
