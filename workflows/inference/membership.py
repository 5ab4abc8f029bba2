"""Membership probabilities from per-component log-densities over posterior draws.

For object i and draw d, the probability of belonging to component k is the responsibility
``w_k p_k(y_i) / sum_j w_j p_j(y_i)``, evaluated in log space with logsumexp (the weights
are part of it). The membership probability is its posterior mean; the 16/50/84
percentiles across draws describe its spread. On large fields the mean is streamed over
every draw and the percentiles come from a thinned set of draws (:func:`kept_draws`).
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import xarray as xr

from starmix.workflows.runs.options import available_cores

PERCENTILES = (16, 50, 84)


@dataclass(frozen=True)
class Membership:
    """Per-object membership probability of one component: mean and percentiles over draws."""

    component: str
    mean: np.ndarray
    p16: np.ndarray
    p50: np.ndarray
    p84: np.ndarray

    def columns(self, prefix: str = "p") -> dict[str, np.ndarray]:
        """Columns for a table: ``{prefix}_{component}`` and its percentiles."""
        name = f"{prefix}_{self.component}"
        return {
            name: self.mean,
            f"{name}_p16": self.p16,
            f"{name}_p50": self.p50,
            f"{name}_p84": self.p84,
        }


def logsumexp(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(sum(exp(values))) along ``axis``, shifted by the largest term so it cannot
    overflow; all-(-inf) slices give -inf. (SciPy's version imports JAX when it is
    installed, a second added to every run.)"""
    largest = np.max(values, axis=axis, keepdims=True)
    largest = np.where(np.isfinite(largest), largest, 0.0)
    with np.errstate(divide="ignore"):
        total = np.log(np.sum(np.exp(values - largest), axis=axis, keepdims=True))
    return np.squeeze(total + largest, axis=axis)


def responsibilities(log_weights: np.ndarray, log_components: np.ndarray, component: int):
    """Per-draw probability that each object belongs to ``component``.

    log_weights : (..., K) log mixture weights per draw
    log_components : (..., N, K) unweighted log-density of each object under each component
    returns : (..., N)
    """
    log_joint = log_weights[..., None, :] + log_components
    return np.exp(log_joint[..., component] - logsumexp(log_joint, axis=-1))


def summarise(component: str, per_draw: np.ndarray) -> Membership:
    """Reduce per-draw probabilities of shape (draws, N) to a :class:`Membership`."""
    p16, p50, p84 = np.percentile(per_draw, PERCENTILES, axis=0)
    return Membership(component, per_draw.mean(axis=0), p16, p50, p84)


def membership_from_posterior(
    posterior: xr.Dataset,
    component: str,
    weights: str = "w",
    log_components: str = "log_component",
    object_dim: str = "point",
) -> Membership:
    """Membership of ``component`` from a posterior holding weights and log-densities."""
    stacked = posterior[[weights, log_components]].stack(sample=("chain", "draw"))
    log_w = np.log(stacked[weights].transpose("sample", "component").values)
    log_p = stacked[log_components].transpose("sample", object_dim, "component").values
    index = list(posterior["component"].values).index(component)
    return summarise(component, responsibilities(log_w, log_p, index))


LOG_LIKELIHOOD_MODES = ("auto", "all", "thin", "none")
# Per-draw values (draws x objects) kept in memory and written: above this, "auto" thins.
# 1e8 float32 values are 0.4 GB; 200,000 stars x 4,000 draws would be 3.2 GB per array.
KEEP_BUDGET = 100_000_000
BATCH = 16  # draws evaluated in parallel, then summed in order into the mean


def kept_draws(n_chains: int, n_draws: int, n_objects: int, mode: str = "auto") -> np.ndarray:
    """Indices of the draws (in each chain) whose per-object values are kept: every draw
    for ``all``, or for ``auto`` when chains x draws x objects fits ``KEEP_BUDGET``; else
    every k-th draw, k the smallest that fits (``thin``, ``none``, large ``auto``)."""
    if mode not in LOG_LIKELIHOOD_MODES:
        raise ValueError(f"--log-likelihood must be one of {LOG_LIKELIHOOD_MODES}, got {mode!r}")
    if mode == "all":
        return np.arange(n_draws)
    # the smallest step that fits: 1 (every draw) whenever chains x draws x objects does
    step = max(1, int(np.ceil(n_chains * n_draws * n_objects / KEEP_BUDGET)))
    return np.arange(0, n_draws, step)


@dataclass
class MixtureDraws:
    """What :func:`mixture_draws` gives: the posterior mean membership over every draw
    (float64, streamed), and the per-draw membership and pointwise log-likelihood
    (float32, chain x kept draw x object) of the draws in ``kept``."""

    mean: np.ndarray
    probability: np.ndarray
    log_likelihood: np.ndarray
    kept: np.ndarray
    n_draws: int

    def membership(self, component: str) -> Membership:
        """Mean over every draw; percentiles over the kept draws."""
        p16, p50, p84 = np.percentile(
            self.probability.reshape(-1, self.probability.shape[-1]), PERCENTILES, axis=0)
        return Membership(component, self.mean, p16, p50, p84)


def mixture_draws(model, posterior: xr.Dataset, component: str = "cluster", say=None,
                  threads: int | None = None, fused: bool = True,
                  log_likelihood: str = "auto") -> MixtureDraws:
    """Per-draw membership of ``component`` and pointwise log-likelihood of every object,
    in one streaming pass over the draws.

    Per draw, a compiled, GIL-free function (:mod:`starmix.workflows.inference.nogil`) gives the
    responsibility of ``component`` and log sum_k w_k p_k for every object; ``threads``
    (default: the CPUs available) evaluate the draws in parallel. The mean
    membership sums every draw; per-draw values are kept only for the draws
    :func:`kept_draws` picks (``log_likelihood`` mode), so memory stays bounded at any
    number of stars. Models whose likelihood is the fused Op (:mod:`starmix.models.fused`) use
    its vectorised membership pass on the Op's own inputs; the others (and
    ``fused=False``, the reference) the model's ``w`` and ``log_component`` (object x
    component) with logsumexp inside the graph.
    """
    index = list(model.coords["component"]).index(component)
    evaluate = ((fused and _fused_membership(model, component))
                or _graph_membership(model, index))
    names = [rv.name for rv in model.free_RVs]
    values = [posterior[name].values for name in names]
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    n_objects = len(model.coords["star"])
    kept = kept_draws(n_chains, n_draws, n_objects, log_likelihood)
    slot = {int(draw): position for position, draw in enumerate(kept)}
    probability = np.empty((n_chains, len(kept), n_objects), np.float32)
    loglike = np.empty_like(probability)
    total = np.zeros(n_objects)
    batch = np.empty((BATCH, n_objects))  # summed in draw order: the same seed, the same bits

    def one_draw(chain_draw_slot):
        chain, draw, row = chain_draw_slot
        p, ll = evaluate(*(value[chain, draw, ...] for value in values))  # 0-d for scalars
        batch[row] = p
        if draw in slot:
            probability[chain, slot[draw]], loglike[chain, slot[draw]] = p, ll

    with ThreadPoolExecutor(threads or available_cores()) as pool:
        for chain in range(n_chains):
            for start in range(0, n_draws, BATCH):
                rows = range(min(BATCH, n_draws - start))
                list(pool.map(one_draw, [(chain, start + row, row) for row in rows]))
                total += batch[:len(rows)].sum(axis=0)
            if say:
                say(f"membership: chain {chain + 1}/{n_chains} done")
    return MixtureDraws(total / (n_chains * n_draws), probability, loglike, kept, n_draws)


def _graph_membership(model, index: int):
    import pytensor.tensor as pt

    from starmix.models.field import log_weights
    from starmix.workflows.inference.nogil import compile_nogil

    log_joint = log_weights(model) + model["log_component"]
    total = pt.logsumexp(log_joint, axis=-1)
    return compile_nogil(model.free_RVs, [pt.exp(log_joint[:, index] - total), total])


def _fused_membership(model, component: str):
    """Membership through the fused Op's vectorised kernel, or None if the model's observed
    stars do not go through it: a small compiled function gives the Op's inputs (data, log
    weights, offsets, means, covariances) of a draw, taken from the observed variable's
    own log-density. ``component``'s responsibility sums its Gaussians (two for a cluster
    with a halo: :func:`starmix.models.field.gaussian_components`)."""
    import pymc as pm

    from starmix.models.field import gaussian_components
    from starmix.models.fused import MEMBERSHIP, fused_likelihood_node
    from starmix.workflows.inference.nogil import compile_nogil

    stars = model.named_vars.get("stars")
    if stars is None or stars not in model.observed_RVs:
        return None
    node = fused_likelihood_node(pm.logp(stars, model.rvs_to_values[stars]))
    if node is None:
        return None
    data = model.compile_fn(outs=node.inputs[:2], inputs=[], on_unused_input="ignore")({})
    values = np.ascontiguousarray(data[0].T)  # the kernel's layout: objects last
    error_cov = np.ascontiguousarray(data[1].transpose(1, 2, 0))
    parameters = compile_nogil(model.free_RVs, node.inputs[2:])
    kernel = MEMBERSHIP[values.shape[0]]
    members = np.array([name == component for name in gaussian_components(model)], float)

    def evaluate(*draw):
        responsibility, loglike = np.empty(values.shape[1]), np.empty(values.shape[1])
        kernel(values, error_cov, *parameters(*draw), members, responsibility, loglike)
        return responsibility, loglike

    return evaluate
