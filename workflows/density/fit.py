"""Fitting the Gaussian-mixture density (:mod:`starmix.models.density`) and reading its posterior.

* :func:`fit_density`: K chosen by PSIS-LOO over 1..``max_components`` (or fixed), each K
  sampled with NUTS; the smallest K whose elpd lies within ``LOO_SE_MULTIPLE`` standard
  errors of the best K's is chosen (more components than the data support leave an
  unidentified, multimodal posterior that the gate would reject, for no gain in
  prediction).
* :func:`posterior_density`: the intrinsic (deconvolved) density on a grid at each
  posterior draw, its mean and 16/50/84 percentiles.
* :func:`mixture_moments`: the mixture's mean and standard deviation per draw.
* :func:`synthetic_sets`: new samples, each drawn from a different posterior draw.

Units are those of the values; with ``--log`` the model runs on ln(value) and the
densities returned here are per unit of the original value (p(x) = p_ln(ln x) / x).
"""

import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pymc as pm
import xarray as xr
from scipy.special import logsumexp, ndtr

from starmix.data.density import DensityData
from starmix.models.density import gaussian_mixture_density
from starmix.workflows.inference.gate import GateReport, convergence_gate
from starmix.workflows.inference.loo import pointwise_loo
from starmix.workflows.inference.sampling import (
    check_draw_budget,
    sample_posterior,
    stored_values_per_draw,
)
from starmix.workflows.runs.options import GateThresholds, SamplingOptions

LOO_SE_MULTIPLE = 2.0
# The density workflows' sampling defaults: at target acceptance 0.9 and 0.95 a mixture
# whose second component turns broad (a ridge of the posterior) gave 3-16 divergences per
# 4,000 draws on the built-in sample, at 0.99 none; 4 x 1000 draws left the pooled ages'
# bulk ESS at 300-380, under the gate's 400; with nutpie's 300 tuning steps, chains ended
# in different modes (r_hat 1.06-1.62) on 3 of 4 simulated samples, with 1000 on none.
DENSITY_SAMPLING = SamplingOptions(draws=2000, tune=1000, target_accept=0.99)
OBSERVED = "y"


@dataclass
class KChoice:
    """The PSIS-LOO comparison over K (a JSON-ready :meth:`record`)."""

    chosen: int
    rows: list[dict] = field(default_factory=list)

    def record(self) -> dict:
        return {"criterion": f"smallest K within {LOO_SE_MULTIPLE:g} standard errors of the "
                             "best PSIS-LOO elpd", "chosen": self.chosen, "fits": self.rows}


@dataclass
class DensityFit:
    """One fitted density: its model, posterior (with ``log_likelihood``), K choice and the
    chosen K's convergence gate."""

    data: DensityData
    model: pm.Model
    idata: xr.DataTree
    k_choice: KChoice
    gate: GateReport
    log: bool = False
    truncation: tuple[float, float] | None = None

    @property
    def n_components(self) -> int:
        return self.k_choice.chosen

    def parameter_names(self) -> list[str]:
        return (["w"] if self.n_components > 1 else []) + ["mean", "cov"]

    @cached_property
    def _all_draws(self) -> dict[str, np.ndarray]:
        posterior = self.idata["posterior"].to_dataset()
        return {name: np.asarray(posterior[name].values, float).reshape(
            -1, *posterior[name].shape[2:]) for name in ("w", "mean", "cov")}

    def draws(self, max_draws: int | None = None) -> dict[str, np.ndarray]:
        """Posterior draws of ``w`` (S, K), ``mean`` (S, K, d), ``cov`` (S, K, d, d), chains
        stacked, thinned evenly to at most ``max_draws``."""
        out = self._all_draws
        n = len(out["w"])
        if max_draws is not None and n > max_draws:
            pick = np.linspace(0, n - 1, max_draws).round().astype(int)
            out = {name: array[pick] for name, array in out.items()}
        return out


def build_density_model(data: DensityData, n_components: int, truncation=None) -> pm.Model:
    return gaussian_mixture_density(data.values, data.error_cov, n_components, data.columns,
                                    truncation=truncation)


def fit_density(data: DensityData, sampling: SamplingOptions, components: int | None = None,
                max_components: int = 4, truncation=None, log: bool = False,
                say=print, gate: GateThresholds | None = None, out_dir=None) -> DensityFit:
    """Fit the density with ``components`` Gaussians, or with each K in
    1..``max_components`` and keep the one PSIS-LOO chooses (see the module docstring).
    Every fit uses ``sampling`` (same seed; the workflows' default is
    ``DENSITY_SAMPLING``) and starts at the MAP, so that the chains explore one labelling
    of the components; ``say`` reports each K's numbers. Every K's fit is judged by the
    convergence gate with ``gate`` (default thresholds); the chosen K's report is kept.
    Draws that would not fit in memory with every K's fit held (or, with ``out_dir``, on
    its disk) are refused before the first fit."""
    ks = [components] if components else list(range(1, max_components + 1))
    fits, pointwise, rows = {}, {}, []
    for k in ks:
        began = time.perf_counter()
        model = build_density_model(data, k, truncation)
        if not fits:  # every K's fit is held until PSIS-LOO has compared them
            check_draw_budget(len(ks) * stored_values_per_draw(model), sampling)
        idata = sample_posterior(model, sampling, start_at_map=True, out_dir=out_dir)
        loglike = np.asarray(idata["log_likelihood"][OBSERVED].values, float)
        pointwise[k] = pointwise_loo(loglike.reshape(*loglike.shape[:2], -1))
        names = (["w"] if k > 1 else []) + ["mean", "cov"]
        report = convergence_gate(idata, names, gate)
        rows.append({"K": k, "elpd": float(pointwise[k].sum()),
                     "se": float(np.sqrt(len(pointwise[k]) * pointwise[k].var())),
                     "max_r_hat": float(np.nanmax(report.diagnostics["r_hat"])),
                     "min_ess_bulk": float(np.nanmin(report.diagnostics["ess_bulk"])),
                     "divergences": report.divergences,
                     "seconds": round(time.perf_counter() - began, 2)})
        if log:  # the same elpd per unit of the original values: comparable with a linear fit
            rows[-1]["elpd_original_units"] = rows[-1]["elpd"] - float(data.values.sum())
        fits[k] = (model, idata, report)
        say(f"K = {k}: elpd {rows[-1]['elpd']:.1f} ± {rows[-1]['se']:.1f}, max r_hat "
            f"{rows[-1]['max_r_hat']:.3f}, {report.divergences} divergences, "
            f"{rows[-1]['seconds']:.0f} s")
    best = max(pointwise, key=lambda k: pointwise[k].sum())
    for row in rows:
        diff = pointwise[best] - pointwise[row["K"]]
        row["elpd_behind_best"] = float(diff.sum())
        row["se_behind_best"] = float(np.sqrt(len(diff) * diff.var()))
    chosen = min(row["K"] for row in rows
                 if row["elpd_behind_best"] <= LOO_SE_MULTIPLE * row["se_behind_best"])
    for row in rows:
        row["chosen"] = row["K"] == chosen
    model, idata, report = fits[chosen]
    if len(ks) > 1:
        say(f"chosen K = {chosen} (best elpd at K = {best})")
    return DensityFit(data, model, idata, KChoice(chosen, rows), report, log=log,
                      truncation=truncation)


# -- the posterior density -----------------------------------------------------------------

def interval(samples) -> dict:
    """Mean, sd and the 2.5/16/50/84/97.5 percentiles of draws, rounded for the record."""
    samples = np.asarray(samples, float)
    p2, p16, p50, p84, p97 = np.percentile(samples, [2.5, 16, 50, 84, 97.5])
    return {"mean": round(float(samples.mean()), 4), "sd": round(float(samples.std()), 4),
            "p16": round(float(p16), 4), "p50": round(float(p50), 4),
            "p84": round(float(p84), 4), "p2.5": round(float(p2), 4),
            "p97.5": round(float(p97), 4)}



def mixture_log_density(points: np.ndarray, w, mean, cov, truncation=None) -> np.ndarray:
    """(S, G) log-density of the intrinsic mixture at (G, d) ``points`` for each of S draws
    (w (S, K), mean (S, K, d), cov (S, K, d, d)); with ``truncation`` (1-D) renormalised
    inside it and -inf outside."""
    points = np.asarray(points, float)
    residual = points[None, None, :, :] - mean[:, :, None, :]  # (S, K, G, d)
    chol = np.linalg.cholesky(cov)  # (S, K, d, d)
    solved = np.linalg.solve(chol[:, :, None], residual[..., None])[..., 0]
    log_det = 2 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)  # (S, K)
    d = points.shape[1]
    log_n = -0.5 * ((solved**2).sum(-1) + d * np.log(2 * np.pi) + log_det[..., None])
    log_w = np.log(w)[..., None]
    if truncation is not None:
        sd = np.sqrt(cov[..., 0, 0])
        mass = ndtr((truncation[1] - mean[..., 0]) / sd) - ndtr((truncation[0] - mean[..., 0]) / sd)
        log_w = log_w - np.log(np.maximum(mass, 1e-300))[..., None]
        outside = (points[:, 0] < truncation[0]) | (points[:, 0] > truncation[1])
        log_n = np.where(outside[None, None], -np.inf, log_n)
    return logsumexp(log_w + log_n, axis=1)


@dataclass
class DensityBand:
    """The posterior density on a 1-D ``grid`` (original units): mean and percentiles."""

    grid: np.ndarray
    mean: np.ndarray
    p16: np.ndarray
    p50: np.ndarray
    p84: np.ndarray
    draws: np.ndarray  # (S, G)


def grid_for(values: np.ndarray, n: int = 400, pad: float = 0.25, positive=False) -> np.ndarray:
    low, high = np.min(values), np.max(values)
    span = (high - low) or 1.0
    low, high = low - pad * span, high + pad * span
    if positive:
        low = max(low, 1e-3 * high)
    return np.linspace(low, high, n)


def posterior_density(fit: DensityFit, grid: np.ndarray, max_draws: int = 1000) -> DensityBand:
    """The 1-D intrinsic density at ``grid`` (original units) for up to ``max_draws``
    posterior draws, with its mean and 16/50/84 percentiles."""
    draws = fit.draws(max_draws)
    points = np.log(grid) if fit.log else grid
    log_p = mixture_log_density(points[:, None], draws["w"], draws["mean"], draws["cov"],
                                fit.truncation)
    density = np.exp(log_p) / (grid if fit.log else 1.0)
    p16, p50, p84 = np.percentile(density, [16, 50, 84], axis=0)
    return DensityBand(grid, density.mean(0), p16, p50, p84, density)


def mass_outside(fit: DensityFit, lower, upper, max_draws: int = 1000) -> np.ndarray:
    """(S,) posterior draws of the density's probability below ``lower`` plus above
    ``upper`` (original units; None: no bound), for 1-D densities."""
    draws = fit.draws(max_draws)
    mean, sd = draws["mean"][..., 0], np.sqrt(draws["cov"][..., 0, 0])

    def cdf(x):
        if x is None:
            return None
        if fit.log and x <= 0:
            return np.zeros_like(mean)
        point = np.log(x) if fit.log else x
        return ndtr((point - mean) / sd)

    low, high = cdf(lower), cdf(upper)
    outside = (low if low is not None else 0) + (1 - high if high is not None else 0)
    if fit.truncation is not None:
        inside = cdf(fit.truncation[1]) - cdf(fit.truncation[0])
        outside = np.clip(outside - (1 - inside), 0, None) / inside
    return (draws["w"] * outside).sum(-1)


def mixture_moments(fit: DensityFit, max_draws: int | None = None) -> dict[str, np.ndarray]:
    """(S,) draws of the intrinsic density's mean and standard deviation (first coordinate;
    original units, from samples when ``log`` or truncated)."""
    draws = fit.draws(max_draws)
    if fit.log or fit.truncation is not None:
        rng = np.random.default_rng(0)
        samples = draw_from(rng, draws, 2000, fit.truncation)[..., 0]
        samples = np.exp(samples) if fit.log else samples
        return {"mean": samples.mean(1), "sd": samples.std(1)}
    w, mean, var = draws["w"], draws["mean"][..., 0], draws["cov"][..., 0, 0]
    m = (w * mean).sum(-1)
    return {"mean": m, "sd": np.sqrt((w * (var + mean**2)).sum(-1) - m**2)}


def draw_from(rng, draws: dict, n: int, truncation=None) -> np.ndarray:
    """(S, n, d) intrinsic values: n from each posterior draw's mixture."""
    from starmix.models.density import truncated_normal_draws
    from starmix.models.observed import draw_labels

    w, mean, cov = draws["w"], draws["mean"], draws["cov"]
    s, d = len(w), mean.shape[-1]
    labels = draw_labels(rng, np.log(np.repeat(w[:, None, :], n, axis=1)))  # (S, n)
    rows = np.arange(s)[:, None]
    if truncation is not None:
        sd = np.sqrt(cov[..., 0, 0])[rows, labels]
        return truncated_normal_draws(rng, mean[..., 0][rows, labels], sd, truncation)[..., None]
    chol = np.linalg.cholesky(cov)[rows, labels]  # (S, n, d, d)
    noise = rng.standard_normal((s, n, d))
    return mean[rows, labels] + np.einsum("snij,snj->sni", chol, noise)


def synthetic_sets(fit: DensityFit, n_sets: int, size: int, seed: int) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """(n_sets, size, d) synthetic samples of the intrinsic density in original units, set j
    from posterior draw j of ``n_sets`` evenly spaced over all chains (so the sets carry
    the density's uncertainty), and the (chain, draw) each came from."""
    posterior = fit.idata["posterior"]
    chains, per_chain = posterior.sizes["chain"], posterior.sizes["draw"]
    flat = np.linspace(0, chains * per_chain - 1, n_sets).round().astype(int)
    full = fit.draws()
    chosen = {name: array[flat] for name, array in full.items()}
    values = draw_from(np.random.default_rng(seed), chosen, size, fit.truncation)
    if fit.log:
        values = np.exp(values)
    return values, np.stack([flat // per_chain, flat % per_chain], axis=1)
