"""The SBC cases: the outlier line, pmra, parallax and pm2d models, and deliberately wrong
variants that must fail calibration.

The cluster models get fixed, data-independent prior centres and scales here (the
workflows centre the field priors on the data's median and robust width, which SBC cannot
allow). Data sets are small so that hundreds of fits take minutes: 40 points for the line,
200 stars for the cluster models. Errors are drawn per replicate, log-uniform over the
range of Gaia DR3 errors for G = 12-19.
"""

import numpy as np

from models.cluster_parallax import CLUSTER_PARALLAX_DEPTH, cluster_parallax
from models.cluster_pm2d import cluster_pm2d, pm_covariance
from models.cluster_pmra import cluster_pmra
from models.outlier_line import outlier_line
from validation.sbc import SBCCase

N_POINTS = 40
N_STARS = 200
FIELD_CENTER, FIELD_SCALE = 0.0, 3.0  # mas/yr: the field priors' centre and width
CLUSTER_PM_PRIOR_CENTER = 0.0  # mas/yr
CLUSTER_PARALLAX_PRIOR_CENTER = 0.5  # mas


def log_uniform(rng, low, high, size):
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def sample_components(rng, weights: np.ndarray, size: int) -> np.ndarray:
    return rng.choice(len(weights), size=size, p=weights / weights.sum())


def gaussian_mixture_values(rng, weights, means, covs, error_covs) -> np.ndarray:
    """(N, d) observations: component k ~ N(means[k], covs[k]), plus each row's error."""
    labels = sample_components(rng, weights, len(error_covs))
    true = np.stack([rng.multivariate_normal(means[k], covs[k]) for k in labels])
    noise = np.stack([rng.multivariate_normal(np.zeros(len(c)), c) for c in error_covs])
    return true + noise


# --- the outlier line ------------------------------------------------------------------

def line_covariates(rng):
    return {"x": np.sort(rng.uniform(0, 10, N_POINTS)), "y_err": rng.uniform(0.5, 3, N_POINTS),
            "y": np.zeros(N_POINTS)}


def build_line(data):
    return outlier_line(data["x"], data["y"], data["y_err"])


def simulate_line(truth, data, rng):
    on_line = rng.random(N_POINTS) < truth["w"][0]
    line = truth["m"] * data["x"] + truth["b"] + rng.normal(0, data["y_err"])
    outlier = rng.normal(0, np.sqrt(data["y_err"] ** 2 + truth["s_out"] ** 2))
    return {**data, "y": np.where(on_line, line, outlier)}


def halve_line_errors(data):
    return {**data, "y_err": 0.5 * data["y_err"]}


# --- pmra ------------------------------------------------------------------------------

def pmra_covariates(rng):
    return {"pmra": np.zeros(N_STARS), "pmra_error": log_uniform(rng, 0.02, 0.5, N_STARS)}


def build_pmra(data):
    return cluster_pmra(data["pmra"], data["pmra_error"], cluster_guess=CLUSTER_PM_PRIOR_CENTER,
                        field_center=FIELD_CENTER, field_scale=FIELD_SCALE)


def simulate_pmra(truth, data, rng):
    means = np.concatenate([[[truth["cluster_pmra"]]], truth["field_mean"]])
    covs = np.concatenate([[[[truth["cluster_pmra_dispersion"] ** 2]]], truth["field_cov"]])
    errors = (data["pmra_error"] ** 2)[:, None, None]
    return {**data, "pmra": gaussian_mixture_values(rng, truth["w"], means, covs, errors)[:, 0]}


def ignore_pmra_errors(data):
    return {**data, "pmra_error": np.full_like(data["pmra_error"], 1e-3)}


# --- parallax --------------------------------------------------------------------------

def parallax_covariates(rng):
    return {"parallax": np.zeros(N_STARS),
            "parallax_error": log_uniform(rng, 0.02, 0.3, N_STARS)}


def build_parallax(data):
    return cluster_parallax(data["parallax"], data["parallax_error"],
                            cluster_guess=CLUSTER_PARALLAX_PRIOR_CENTER)


def simulate_parallax(truth, data, rng):
    """Cluster: N(parallax, depth); field: r ~ Gamma(3, L) kpc (p(r) ∝ r² e^(-r/L)), 1/r."""
    is_cluster = rng.random(N_STARS) < truth["w"][0]
    cluster = rng.normal(truth["cluster_parallax"], CLUSTER_PARALLAX_DEPTH, N_STARS)
    field = 1 / rng.gamma(3.0, truth["field_length_scale"], N_STARS)
    true = np.where(is_cluster, cluster, field)
    return {**data, "parallax": true + rng.normal(0, data["parallax_error"])}


# --- pm2d ------------------------------------------------------------------------------

def pm2d_covariates(rng):
    errors = log_uniform(rng, 0.02, 0.5, (N_STARS, 2))
    corr = rng.uniform(-0.4, 0.4, N_STARS)
    return {"pm": np.zeros((N_STARS, 2)), "pm_cov": pm_covariance(errors[:, 0], errors[:, 1],
                                                                    corr)}


def build_pm2d(data):
    return cluster_pm2d(data["pm"], data["pm_cov"], cluster_guess=[CLUSTER_PM_PRIOR_CENTER] * 2,
                        field_center=[FIELD_CENTER] * 2, field_scale=[FIELD_SCALE] * 2)


def simulate_pm2d(truth, data, rng):
    means = np.concatenate([truth["cluster_pm"][None], truth["field_mean"]])
    cluster_cov = truth["cluster_pm_dispersion"] ** 2 * np.eye(2)
    covs = np.concatenate([cluster_cov[None], truth["field_cov"]])
    return {**data, "pm": gaussian_mixture_values(rng, truth["w"], means, covs, data["pm_cov"])}


FIELD_PARAMETERS = ("field_mean", "field_cov_log_width")
CASES = {
    case.name: case for case in [
        SBCCase("outlier_line", f"outlier line, {N_POINTS} points", line_covariates,
                build_line, simulate_line, ("m", "b", "ln_s_out", "w")),
        SBCCase("pmra", f"pmra, {N_STARS} stars, K = 2", pmra_covariates, build_pmra,
                simulate_pmra, ("cluster_pmra", "cluster_pmra_dispersion", "w",
                                *FIELD_PARAMETERS)),
        SBCCase("parallax", f"parallax (exponential field), {N_STARS} stars",
                parallax_covariates, build_parallax, simulate_parallax,
                ("cluster_parallax", "field_length_scale", "w")),
        SBCCase("pm2d", f"pm2d, {N_STARS} stars, K = 2", pm2d_covariates, build_pm2d,
                simulate_pm2d, ("cluster_pm", "cluster_pm_dispersion", "w",
                                *FIELD_PARAMETERS)),
        SBCCase("pmra_errors_ignored", "WRONG on purpose: pmra fitted as if errors were "
                "0.001 mas/yr", pmra_covariates, build_pmra, simulate_pmra,
                ("cluster_pmra", "cluster_pmra_dispersion", "w"), ignore_pmra_errors),
        SBCCase("outlier_line_errors_halved", "WRONG on purpose: outlier line fitted with "
                "half the true y errors", line_covariates, build_line, simulate_line,
                ("m", "b", "ln_s_out", "w"), halve_line_errors),
    ]
}
CORRECT_CASES = ("outlier_line", "pmra", "parallax", "pm2d")
WRONG_CASES = ("pmra_errors_ignored", "outlier_line_errors_halved")
