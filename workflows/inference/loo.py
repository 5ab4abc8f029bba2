"""Pointwise PSIS-LOO for every star at once: ArviZ's formula, vectorised over stars.

ArviZ (``arviz.loo``, ``arviz.loo_approximate_posterior``) is the reference: it smooths
each star's importance ratios with a generalized Pareto fit (Zhang & Stephens 2009, with
the weak prior of Vehtari et al. 2024) in a Python loop, about 1 ms per star, which on a
field of 16,000 stars costs 15-20 s per model compared. :func:`psis_loo` does the same
arithmetic on blocks of stars as NumPy arrays (sort, tail, fit, smoothing, logsumexp) and
agrees with ArviZ to rounding (``tests/workflows/inference/test_loo.py``);
:func:`pointwise_loo` takes ``reference=True`` to run ArviZ instead.

Relative efficiency ``r_eff`` is 1, as ArviZ takes it for the cluster workflows'
log-likelihood groups. The tail holds ``3 sqrt(S)`` draws (``S / 5`` when S <= 225).

Blocks of stars are independent and NumPy releases the GIL in their sorts and array
arithmetic, so they are smoothed on :func:`loo_threads` threads at once: 10,000 stars x
4,000 draws took 3.5 s on one thread and 1.8 s on two (blocks of 1,000), bit-identical.
"""

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr
from scipy.special import logsumexp

from starmix.workflows.runs.options import available_cores

LOO_CHUNK = 1_000  # stars per block: the GPD fit's (stars, 30 + sqrt(M), M) array stays small
PRIOR_BS, PRIOR_K = 3.0, 10.0
EPS = np.finfo(float).eps


def loo_threads() -> int:
    """Threads for the blocks: the CPUs this process may use, at most ``OMP_NUM_THREADS``
    when that is set (the survey's single-threaded Dask workers set it to 1)."""
    cores = available_cores() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(limit) if limit.isdigit() and int(limit) > 0 else cores))


def _over_blocks(function, n_objects: int, chunk: int) -> list:
    """``function(start)`` for every block start, in order, on :func:`loo_threads` threads."""
    starts = range(0, n_objects, chunk)
    threads = min(loo_threads(), len(starts))
    if threads <= 1:
        return [function(start) for start in starts]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(function, starts))


def tail_length(n_draws: int, r_eff: float = 1.0) -> int:
    """Draws in the smoothed right tail (ArviZ's rule)."""
    if n_draws * r_eff > 225:
        return int(np.floor(3 * (n_draws / r_eff) ** 0.5))
    return int(np.floor(n_draws / 5))


def _gpd_fit(tail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, sigma) of the generalized Pareto distribution per row of ``tail`` (rows sorted
    ascending, excesses over the cut-off): ArviZ's ``_gpdfit`` on every row at once."""
    n = tail.shape[1]
    m_est = 30 + int(n**0.5)
    xstar = tail[:, int((n / 4 + 0.5) - 1)]
    grid = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=float) - 0.5))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = grid[None, :] / (PRIOR_BS * xstar[:, None]) + 1 / tail[:, -1:]
        k_grid = np.mean(np.log1p(-b[:, :, None] * tail[:, None, :]), axis=2)
        scale = n * (np.log(-b / k_grid) - k_grid - 1)
        weights = np.exp(scale - logsumexp(scale, axis=1, keepdims=True))
        weights = np.where(weights >= 10 * EPS, weights, 0.0)
        weights /= weights.sum(axis=1, keepdims=True)
        b_post = np.sum(b * weights, axis=1)
        kappa = np.mean(np.log1p(-b_post[:, None] * tail), axis=1)
        sigma = -kappa / b_post
    kappa = (n * kappa + PRIOR_K * 0.5) / (n + PRIOR_K)
    bad_quartile = xstar <= tail[:, 0]  # far from a generalized Pareto: ArviZ gives nan
    sigma = np.where(np.isnan(kappa), np.nan, sigma)
    kappa = np.where(np.isnan(kappa), np.inf, kappa)
    return np.where(bad_quartile, np.nan, kappa), np.where(bad_quartile, np.nan, sigma)


def _psis_block(log_ratios: np.ndarray, n_tail: int) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed, normalised log weights and Pareto k for rows of log importance ratios
    (stars x draws): ArviZ's ``_psislw`` per row."""
    ratios = log_ratios - log_ratios.max(axis=1, keepdims=True)
    n_draws = ratios.shape[1]
    # only the n_tail + 1 largest ratios need their order (the cut-off and the tail): a
    # partition, then a sort of those, instead of sorting every draw (3x faster at S = 4000)
    top = np.argpartition(ratios, n_draws - n_tail - 1, axis=1)[:, n_draws - n_tail - 1:]
    top = np.take_along_axis(top, np.argsort(np.take_along_axis(ratios, top, axis=1), axis=1,
                                             kind="stable"), axis=1)
    rows = np.arange(ratios.shape[0])[:, None]
    tail_index = top[:, 1:]
    tail = ratios[rows, tail_index]
    cutoff = ratios[rows[:, 0], top[:, 0]]
    max_tail = tail.max(axis=1)
    excess = np.exp(tail) - np.exp(cutoff)[:, None]
    k, sigma = _gpd_fit(excess)
    smooth = np.isfinite(k) & (sigma > 0)
    if smooth.any():
        p = (np.arange(0.5, n_tail) / n_tail)[None, :]
        ks, ss = k[smooth, None], sigma[smooth, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            quantile = np.where(ks == 0, -ss * np.log1p(-p),
                                ss * np.expm1(-ks * np.log1p(-p)) / np.where(ks == 0, 1, ks))
            smoothed = np.log(np.exp(cutoff[smooth, None]) + quantile)
        smoothed = np.minimum(smoothed, max_tail[smooth, None])
        block = ratios[smooth]
        np.put_along_axis(block, tail_index[smooth], smoothed, axis=1)
        ratios[smooth] = block
    ratios -= logsumexp(ratios, axis=1, keepdims=True)
    return ratios, k


def psis_loo(log_likelihood: np.ndarray, correction: np.ndarray | None = None,
             chunk: int = LOO_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise PSIS-LOO elpd (nats) and Pareto k of every object.

    ``log_likelihood``: (chain, draw, object) or (draw, object). ``correction``: for draws
    from an approximation q of the posterior p, log p - log q per draw (same leading
    shape), folded into the importance ratios as ``arviz.loo_approximate_posterior``
    does. ``chunk`` objects are smoothed at a time."""
    n_objects = log_likelihood.shape[-1]
    if n_objects == 0:
        return np.zeros(0), np.zeros(0)
    draws = np.asarray(log_likelihood).reshape(-1, n_objects)
    n_draws = draws.shape[0]
    n_tail = tail_length(n_draws)
    if n_tail < 5:
        raise ValueError(f"PSIS-LOO needs at least 25 draws, got {n_draws}")
    shift = 0.0
    if correction is not None:
        shift = np.asarray(correction, float).reshape(-1)
        shift = shift - shift.max()
    elpd, k = np.empty(n_objects), np.empty(n_objects)

    def smooth(start):
        block = np.asarray(draws[:, start:start + chunk], float).T  # objects x draws
        log_weights, k[start:start + chunk] = _psis_block(-block + shift, n_tail)
        elpd[start:start + chunk] = logsumexp(log_weights + block, axis=1)

    _over_blocks(smooth, n_objects, chunk)
    return elpd, k


def pointwise_loo(log_likelihood: np.ndarray, chunk: int = LOO_CHUNK,
                  reference: bool = False) -> np.ndarray:
    """Pointwise PSIS-LOO elpd of (chain, draw, object) log-likelihoods, one value per
    object: :func:`psis_loo` (``chunk`` objects at a time), or ArviZ's ``loo`` itself with
    ``reference=True``."""
    if not reference:
        return psis_loo(log_likelihood, chunk=chunk)[0]
    import arviz as az

    n_objects = log_likelihood.shape[-1]
    dummy = xr.Dataset({"dummy": (("chain", "draw"), np.zeros(log_likelihood.shape[:2]))})
    pieces = []
    for start in range(0, n_objects, chunk):
        piece = np.asarray(log_likelihood[..., start:start + chunk], float)
        tree = xr.DataTree.from_dict({
            "posterior": dummy,
            "log_likelihood": xr.Dataset({"stars": (("chain", "draw", "star"), piece)})})
        with warnings.catch_warnings():  # high Pareto k is reported by the elpd's se
            warnings.simplefilter("ignore", UserWarning)
            result = az.loo(tree, pointwise=True)
        pieces.append(np.asarray(result.elpd_i, float).ravel())
    return np.concatenate(pieces) if pieces else np.zeros(0)


def psis_log_weights(log_likelihood: np.ndarray, chunk: int = LOO_CHUNK
                     ) -> tuple[np.ndarray, np.ndarray]:
    """PSIS-smoothed, normalised log weights of leaving each object out (the shape of the
    (chain, draw, object) ``log_likelihood``) and every object's Pareto k: what
    ``arviz.loo_pit`` takes as ``log_weights`` and ``pareto_k``, so that objects with
    several coordinates (one LOO-PIT per coordinate) are smoothed once, not per call."""
    shape = np.shape(log_likelihood)
    n_objects = shape[-1]
    draws = np.asarray(log_likelihood).reshape(-1, n_objects)
    n_tail = tail_length(draws.shape[0])
    weights, k = np.empty(draws.shape), np.empty(n_objects)

    def smooth(start):
        block = np.ascontiguousarray(np.asarray(draws[:, start:start + chunk], float).T)
        smoothed, k[start:start + chunk] = _psis_block(-block, n_tail)
        weights[:, start:start + chunk] = smoothed.T

    _over_blocks(smooth, n_objects, chunk)
    return weights.reshape(shape), k
