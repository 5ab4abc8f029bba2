"""Posterior sampling with NUTS, through PyMC's own sampler or an external backend."""

import os
import sys

import pymc as pm
import xarray as xr

from workflows.config import SamplingOptions


def show_progress() -> bool:
    """PyMC's progress bar only on an interactive terminal outside CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def sample_posterior(
    model: pm.Model, options: SamplingOptions, var_names=None, log_likelihood: bool = True
) -> xr.DataTree:
    """Run NUTS; with ``log_likelihood`` add PyMC's pointwise ``log_likelihood`` group.

    ``var_names`` limits what the trace stores (large per-star deterministics stay out).

    The same ``options.seed`` gives the same draws for the same model and sampler.
    ``numpyro``/``blackjax`` run through JAX (CPU is fine) and need the ``jax`` extra.
    """
    idata = pm.sample(
        draws=options.draws,
        tune=options.tune,
        chains=options.chains,
        cores=options.cores,
        random_seed=options.seed,
        nuts_sampler=options.sampler,
        progressbar=show_progress(),
        model=model,
        nuts={"target_accept": options.target_accept},
        var_names=var_names,
    )
    if log_likelihood:
        pm.compute_log_likelihood(idata, model=model, progressbar=False)
    return idata
