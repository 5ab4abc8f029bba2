"""Membership probabilities from per-component log-densities over posterior draws.

For object i and draw d, the probability of belonging to component k is the responsibility
``w_k p_k(y_i) / sum_j w_j p_j(y_i)``, evaluated in log space with logsumexp (the weights
are part of it). The membership probability is its posterior mean; the 16/50/84
percentiles across draws describe its spread.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import xarray as xr

from workflows.config import available_cores

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


def mixture_draws(model, posterior: xr.Dataset, component: str = "cluster", say=None,
                  threads: int | None = None, fused: bool = True):
    """Per-draw membership of ``component`` and pointwise log-likelihood of every object.

    Per draw, a compiled, GIL-free function (:mod:`workflows.nogil`) gives the
    responsibility of ``component`` and log sum_k w_k p_k for every object; ``threads``
    (default: the CPUs available) evaluate the draws in parallel, so the large per-object
    array is never stored for all draws at once. Models whose likelihood is the fused Op
    (:mod:`models.fused`) use its vectorised membership pass on the Op's own inputs;
    the others (and ``fused=False``, the reference) the model's ``w`` and
    ``log_component`` (object x component) with logsumexp inside the graph.
    Returns two float32 arrays of shape (chain, draw, object).
    """
    index = list(model.coords["component"]).index(component)
    evaluate = (fused and _fused_membership(model, index)) or _graph_membership(model, index)
    names = [rv.name for rv in model.free_RVs]
    values = [posterior[name].values for name in names]
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    n_objects = len(model.coords["star"])
    probability = np.empty((n_chains, n_draws, n_objects), np.float32)
    log_likelihood = np.empty_like(probability)

    def one_draw(chain_draw):
        chain, draw = chain_draw
        probability[chain, draw], log_likelihood[chain, draw] = evaluate(
            *(value[chain, draw, ...] for value in values))  # scalars as 0-d arrays

    with ThreadPoolExecutor(threads or available_cores()) as pool:
        for chain in range(n_chains):
            list(pool.map(one_draw, [(chain, draw) for draw in range(n_draws)]))
            if say:
                say(f"membership: chain {chain + 1}/{n_chains} done")
    return probability, log_likelihood


def _graph_membership(model, index: int):
    import pytensor.tensor as pt

    from models.field import log_weights
    from workflows.nogil import compile_nogil

    log_joint = log_weights(model) + model["log_component"]
    total = pt.logsumexp(log_joint, axis=-1)
    return compile_nogil(model.free_RVs, [pt.exp(log_joint[:, index] - total), total])


def _fused_membership(model, index: int):
    """Membership through the fused Op's vectorised kernel, or None if the model has no
    fused likelihood: a small compiled function gives the Op's parameter inputs (log
    weights, offsets, means, covariances) of a draw."""
    from models.fused import MEMBERSHIP, fused_likelihood_node
    from workflows.nogil import compile_nogil

    likelihood = model.named_vars.get("mixture_loglike")
    node = None if likelihood is None else fused_likelihood_node(likelihood)
    if node is None:
        return None
    values, error_cov = (data.get_value(borrow=True) for data in node.inputs[:2])  # data_tensor
    parameters = compile_nogil(model.free_RVs, node.inputs[2:])
    kernel = MEMBERSHIP[values.shape[0]]

    def evaluate(*draw):
        responsibility, loglike = np.empty(values.shape[1]), np.empty(values.shape[1])
        kernel(values, error_cov, *parameters(*draw), index, responsibility, loglike)
        return responsibility, loglike

    return evaluate
