"""nutpie on a log-density compiled once and kept: PyTensor's Numba cache, GIL released.

``pm.sample(nuts_sampler="nutpie")`` wraps the model's compiled log-density in a new
``numba.cfunc`` on every run, which Numba cannot cache: 6 s for the outlier line, 12 s for
pm2d on 16,535 stars, each time. Here the log-density and its gradient are an ordinary
PyTensor function compiled by Numba, whose compiled code PyTensor keeps on disk between
runs, with the one change that it releases the GIL (:mod:`workflows.nogil`), so that
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

import numpy as np
import pymc as pm
import xarray as xr
from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords
from nutpie.compiled_pyfunc import from_pyfunc
from nutpie.sample import sample as nutpie_sample
from pymc.backends.arviz import patch_nutpie_idata
from pymc.exceptions import SamplingError
from pymc.initial_point import make_initial_point_fn

from workflows.nogil import nogil_numba_mode, thread_safe

JITTER = 1.0  # starting points: U(-1, 1) on the unconstrained scale, as PyMC jitters


def compile_for_nutpie(model: pm.Model, var_names=None, initvals=None):
    """nutpie's model object for ``model`` (log-density and gradient, the function giving
    the stored variables of a draw, starting points jittered around the model's initial
    point or ``initvals``), the unjittered starting point used (flat, unconstrained), and
    a function giving the model's own (they differ when ``initvals`` are given)."""
    def unjittered(overrides):
        return make_initial_point_fn(model=model, overrides=overrides, jitter_rvs=set(),
                                     return_transformed=True)

    initial_point = unjittered(initvals)
    n_dim, _, logp_fn, expand_fn, flat_initial_point, shape_info, transformed = _make_functions(
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

    start = flat_initial_point(0)

    def own_start():
        point = unjittered(None)(0)
        return np.concatenate([np.ravel(point[model.rvs_to_values[rv].name])
                               for rv in model.free_RVs])
    dims, coords = _prepare_dims_and_coords(model, shape_info, transformed)
    compiled = from_pyfunc(
        ndim=n_dim, make_logp_fn=lambda: logp, make_expand_fn=make_expand_fn,
        make_initial_point_fn=jittered_around(start),
        expanded_dtypes=[np.dtype("float64")] * len(names), expanded_shapes=shapes,
        expanded_names=names, dims=dims, coords=coords, reparameterized_names=transformed)
    return compiled, start, own_start


def jittered_around(center: np.ndarray):
    """nutpie's starting-point function: ``center`` plus seeded U(-1, 1) jitter."""
    def initial_point(seed):
        return center + np.random.default_rng(seed).uniform(-JITTER, JITTER, center.shape)
    return initial_point


def sample_nutpie(model: pm.Model, *, draws: int, tune: int, chains: int, cores: int,
                  seed: int, target_accept: float, mass_matrix: str = "low_rank",
                  var_names=None, initvals=None, progressbar: bool = False) -> xr.DataTree:
    """nutpie's NUTS on ``model``; the result has PyMC's groups (posterior, sample_stats,
    observed and constant data) and ``sampling_time`` (s) in the posterior's attributes.

    Chains start jittered around ``initvals`` ({variable: value}, such as the MAP point)
    if given; if none can start there (a MAP on a parameter's boundary), around the model's
    initial point, with a message, without compiling again. No finite starting point at
    all raises :class:`pymc.exceptions.SamplingError`, as PyMC does.
    """
    centered, _, own_start = compile_for_nutpie(model, var_names=var_names,
                                                initvals=initvals)
    settings = dict(draws=draws, tune=max(tune, 1), chains=chains, cores=cores, seed=seed,
                    save_warmup=False, progress_bar=progressbar,
                    target_accept=target_accept, adaptation=mass_matrix)
    print(f"NUTS: nutpie, {chains} chains x ({tune} tuning + {draws} draws), "
          f"{cores} at a time, {mass_matrix} mass matrix", file=sys.stderr, flush=True)
    began = time.time()
    try:
        idata = _sample(centered, settings)
    except SamplingError as error:
        if initvals is None:
            raise
        print(f"starting at the MAP point failed ({error}); using the model's initial "
              "point instead", file=sys.stderr)
        began = time.time()
        idata = _sample(dataclasses.replace(
            centered, _make_initial_points=jittered_around(own_start())), settings)
    patch_nutpie_idata(idata, model, sampling_time=time.time() - began)
    return idata


def _sample(compiled, settings: dict) -> xr.DataTree:
    try:
        return nutpie_sample(compiled, **settings)
    except RuntimeError as error:
        if "initialization points failed" in str(error):
            raise SamplingError(f"nutpie: {str(error).splitlines()[0]}") from error
        raise
