"""The SBC cases: the outlier line, pmra, parallax (with one weight, and with the weight
logistic in magnitude) and pm2d models, and deliberately wrong variants that must fail
calibration.

The cluster models get fixed, data-independent prior centres and scales here (the
workflows centre the field priors on the data's median and robust width, which SBC cannot
allow). Data sets are small so that hundreds of fits take minutes: 40 points for the line,
200 stars for the cluster models. Errors are drawn per replicate, log-uniform over the
range of Gaia DR3 errors for G = 12-19. Every data set is drawn from the fitted model
itself (:func:`forward_sample`).
"""

import numpy as np
from pymc.pytensorf import compile as compile_pymc

from starmix.models.cluster_parallax import cluster_parallax
from starmix.models.cluster_pm2d import cluster_pm2d, pm_covariance
from starmix.models.cluster_pmra import cluster_pmra
from starmix.models.density import gaussian_mixture_density
from starmix.models.outlier_line import outlier_line
from starmix.workflows.runs.options import SamplingOptions
from validation.sbc import SBCCase, run_replicate

N_POINTS = 40
N_STARS = 200
FIELD_CENTER, FIELD_SCALE = 0.0, 3.0  # mas/yr: the field priors' centre and width
CLUSTER_PM_PRIOR_CENTER = 0.0  # mas/yr
CLUSTER_PARALLAX_PRIOR_CENTER = 0.5  # mas


def log_uniform(rng, low, high, size):
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def forward_sample(build, put):
    """A case's simulator: the model's own observed variable drawn, by PyMC's forward
    sampling, at the true parameter values; ``put(data, draw)`` stores the draw in the
    data dict. There is no second, hand-written copy of the generative model to keep in
    agreement with it.

    For the cluster models (whose random variable has ``draw_labelled``, the function its
    ``rng_fn`` calls) the draw is made by that function on the variable's own parameters,
    and the true labels are stored as ``data["is_cluster"]`` for the membership
    calibration."""

    def simulate(truth, data, rng):
        model = build(data)
        observed = model.observed_RVs[0]
        op = observed.owner.op
        values = [truth[rv.name] for rv in model.free_RVs]
        if not hasattr(op, "draw_labelled"):
            draw = compile_pymc(model.free_RVs, [observed], random_seed=int(rng.integers(2**31)),
                                on_unused_input="ignore", mode="FAST_COMPILE")  # NumPy draws
            return put(data, draw(*values)[0])
        inputs = compile_pymc(model.free_RVs, [op.size_param(observed.owner),
                                               *op.dist_params(observed.owner)],
                              on_unused_input="ignore", mode="FAST_COMPILE")(*values)
        labels, stars = op.draw_labelled(rng, *inputs[1:], size=tuple(inputs[0]))
        return {**put(data, stars), "is_cluster": labels == 0}

    return simulate


# --- the outlier line ------------------------------------------------------------------

def line_covariates(rng):
    return {"x": np.sort(rng.uniform(0, 10, N_POINTS)), "y_err": rng.uniform(0.5, 3, N_POINTS),
            "y": np.zeros(N_POINTS)}


def build_line(data):
    return outlier_line(data["x"], data["y"], data["y_err"])


simulate_line = forward_sample(build_line, lambda data, y: {**data, "y": y})


def halve_line_errors(data):
    return {**data, "y_err": 0.5 * data["y_err"]}


# --- pmra ------------------------------------------------------------------------------

def pmra_covariates(rng):
    return {"pmra": np.zeros(N_STARS), "pmra_error": log_uniform(rng, 0.02, 0.5, N_STARS)}


def build_pmra(data):
    return cluster_pmra(data["pmra"], data["pmra_error"], cluster_guess=CLUSTER_PM_PRIOR_CENTER,
                        field_center=FIELD_CENTER, field_scale=FIELD_SCALE)


simulate_pmra = forward_sample(build_pmra, lambda data, stars: {**data, "pmra": stars[:, 0]})


def ignore_pmra_errors(data):
    return {**data, "pmra_error": np.full_like(data["pmra_error"], 1e-3)}


# --- parallax --------------------------------------------------------------------------

def parallax_covariates(rng):
    return {"parallax": np.zeros(N_STARS),
            "parallax_error": log_uniform(rng, 0.02, 0.3, N_STARS)}


def build_parallax(data):
    return cluster_parallax(data["parallax"], data["parallax_error"],
                            cluster_guess=CLUSTER_PARALLAX_PRIOR_CENTER)


simulate_parallax = forward_sample(build_parallax,
                                   lambda data, stars: {**data, "parallax": stars[:, 0]})


def parallax_magnitude_covariates(rng):
    """G uniform on 12-20 mag, and parallax errors that grow with it as Gaia's do, from
    0.02 mas at G = 12 to 0.3 mas at G = 20 (times a log-normal scatter of 0.2)."""
    magnitudes = rng.uniform(12, 20, N_STARS)
    errors = 0.02 * 15 ** ((magnitudes - 12) / 8) * np.exp(rng.normal(0, 0.2, N_STARS))
    return {"parallax": np.zeros(N_STARS), "parallax_error": errors, "magnitudes": magnitudes}


def build_parallax_magnitude(data):
    return cluster_parallax(data["parallax"], data["parallax_error"],
                            cluster_guess=CLUSTER_PARALLAX_PRIOR_CENTER,
                            magnitudes=data["magnitudes"])


simulate_parallax_magnitude = forward_sample(
    build_parallax_magnitude, lambda data, stars: {**data, "parallax": stars[:, 0]})


# --- pm2d ------------------------------------------------------------------------------

def pm2d_covariates(rng):
    errors = log_uniform(rng, 0.02, 0.5, (N_STARS, 2))
    corr = rng.uniform(-0.4, 0.4, N_STARS)
    return {"pm": np.zeros((N_STARS, 2)), "pm_cov": pm_covariance(errors[:, 0], errors[:, 1],
                                                                    corr)}


def build_pm2d(data):
    return cluster_pm2d(data["pm"], data["pm_cov"], cluster_guess=[CLUSTER_PM_PRIOR_CENTER] * 2,
                        field_center=[FIELD_CENTER] * 2, field_scale=[FIELD_SCALE] * 2)


simulate_pm2d = forward_sample(build_pm2d, lambda data, stars: {**data, "pm": stars})


def field_moments(values: dict) -> dict:
    """Label-invariant summaries of a model's field (arrays with any leading sample axes):
    the cluster's weight, and the mean and sd (mas/yr) of the field's mixture density
    along each axis, sum_k v_k mu_k and sqrt(sum_k v_k (Sigma_k,jj + mu_k,j^2) - mean_j^2)
    with v_k = w_k / sum of the field weights.

    Why pm2d's field is ranked through these: two field Gaussians of nearly equal width
    can describe the same field density in two ways with their roles swapped (the
    ordered-width guard cannot tell them apart then), and NUTS started at the MAP explores
    one of them; ranks of the per-component parameters are then U-shaped although the
    field density, and everything a user reads (the cluster's parameters, membership), is
    calibrated. These summaries do not change when the components swap."""
    w, mean, cov = values["w"], values["field_mean"], values["field_cov"]
    v = w[..., 1:] / w[..., 1:].sum(axis=-1, keepdims=True)
    centre = np.einsum("...k,...kj->...j", v, mean)
    second = np.einsum("...k,...kj->...j", v, np.diagonal(cov, axis1=-2, axis2=-1) + mean**2)
    sd = np.sqrt(np.maximum(second - centre**2, 0.0))
    out = {"w[cluster]": w[..., 0]}
    for j, axis in enumerate(("pmra", "pmdec")[: centre.shape[-1]]):
        out[f"field mean[{axis}]"] = centre[..., j]
        out[f"field sd[{axis}]"] = sd[..., j]
    return out


# --- the Gaussian-mixture density (extreme deconvolution) -----------------------------------

N_DENSITY = 150
DENSITY_CENTRE, DENSITY_SCALE = 0.0, 2.0


def density_covariates(rng):
    return {"values": np.zeros(N_DENSITY), "error": log_uniform(rng, 0.5, 3.0, N_DENSITY)}


def build_density(data):
    return gaussian_mixture_density(data["values"], (data["error"] ** 2)[:, None, None], 2,
                                    centre=DENSITY_CENTRE, scale=DENSITY_SCALE)


_forward_density = forward_sample(build_density,
                                  lambda data, values: {**data, "values": values[:, 0]})


def simulate_density(truth, data, rng):
    """The density's forward draw, without the component labels (no membership to
    calibrate: a density has no cluster)."""
    data = _forward_density(truth, data, rng)
    data.pop("is_cluster", None)
    return data


def ignore_density_errors(data):
    return {**data, "error": np.full_like(data["error"], 1e-3)}


def density_moments(values: dict) -> dict:
    """Label-invariant summaries of a 1-D mixture: its mean and sd (the same whichever
    component is which)."""
    w, mean, cov = values["w"], values["mean"][..., 0], values["cov"][..., 0, 0]
    centre = (w * mean).sum(-1)
    return {"density mean": centre,
            "density sd": np.sqrt(np.maximum((w * (cov + mean**2)).sum(-1) - centre**2, 0))}


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
        SBCCase("parallax_magnitude", f"parallax with --magnitude-prior (the cluster's "
                f"weight logistic in G), {N_STARS} stars", parallax_magnitude_covariates,
                build_parallax_magnitude, simulate_parallax_magnitude,
                ("cluster_parallax", "field_length_scale", "cluster_logit",
                 "cluster_logit_slope")),
        SBCCase("pm2d", f"pm2d, {N_STARS} stars, K = 2 (the field ranked through "
                "label-invariant summaries: validation.cases.field_moments)", pm2d_covariates,
                build_pm2d, simulate_pm2d, ("cluster_pm", "cluster_pm_dispersion"),
                summaries=field_moments, summary_inputs=("w", "field_mean", "field_cov")),
        SBCCase("density", f"Gaussian-mixture density, {N_DENSITY} values with errors, "
                "K = 2 (means ordered: the 1-D guard)", density_covariates, build_density,
                simulate_density, ("mean_first", "cov_log_width", "w"), summaries=density_moments,
                summary_inputs=("w", "mean", "cov")),
        SBCCase("density_errors_ignored", "WRONG on purpose: the density fitted as if the "
                "errors were 0.001", density_covariates, build_density, simulate_density,
                ("mean_first", "cov_log_width", "w"), ignore_density_errors,
                summaries=density_moments,
                summary_inputs=("w", "mean", "cov")),
        SBCCase("pmra_errors_ignored", "WRONG on purpose: pmra fitted as if errors were "
                "0.001 mas/yr", pmra_covariates, build_pmra, simulate_pmra,
                ("cluster_pmra", "cluster_pmra_dispersion", "w"), ignore_pmra_errors),
        SBCCase("outlier_line_errors_halved", "WRONG on purpose: outlier line fitted with "
                "half the true y errors", line_covariates, build_line, simulate_line,
                ("m", "b", "ln_s_out", "w"), halve_line_errors),
    ]
}
CORRECT_CASES = ("outlier_line", "pmra", "parallax", "parallax_magnitude", "pm2d", "density")
WRONG_CASES = ("pmra_errors_ignored", "outlier_line_errors_halved", "density_errors_ignored")


def sbc_task(seed: int, case_name: str, sampling: dict) -> dict:
    """Worker entry point: one replicate of the named case in ``CASES``."""
    return run_replicate(CASES[case_name], seed, SamplingOptions(**sampling))
