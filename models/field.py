"""Building blocks shared by the cluster-vs-field mixture models.

* Mixture weights: ``w ~ Dirichlet(1, ..., 1)`` over ``component = [cluster, field_1, ...]``;
  the cluster is always component 0.
* Field: a Gaussian mixture with K components (1-5). **Label switching guard**: the field
  widths along the first coordinate are ordered (PyMC's ``ordered`` transform on their
  logarithms: field_1 is the narrowest), so the field components cannot swap. Widths,
  not means, are ordered because a real field is a core plus broader wings with nearly the
  same centre, where ordered means would still let core and wings trade places. The
  cluster cannot swap with the field: it has its own parametrisation (a narrow intrinsic
  dispersion and, in the joint model, a concentrated sky profile): the cluster's intrinsic
  proper-motion dispersion is bounded by ``FIELD_MIN_PM_WIDTH`` = 0.5 mas/yr (five times
  NGC 6819's) and every field Gaussian is wider than that in pmra, so the cluster and a
  field component can never exchange roles.
* Full field covariances are built from a Cholesky factor (positive log-normal diagonal,
  normal off-diagonal), so every draw is positive definite.

Every observed density is the intrinsic Gaussian convolved with each star's measurement
covariance: variances (or covariance matrices) add.
"""

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from models.fused import mixture_loglike
from models.likelihoods import mixture_logp, mvnormal_logpdf, normal_logpdf
from models.shared import data_tensor, prior_constant

MAX_FIELD_COMPONENTS = 5
# Fewest stars a cluster model is fitted to: a cluster and K field Gaussians in up to six
# dimensions have tens of parameters, and the detection step's PSIS-LOO needs many more
# stars than parameters to tell a cluster from a field feature.
MIN_STARS = 50
FIELD_MIN_PM_WIDTH = 0.5  # mas/yr
# Uniform priors of the cluster models' dispersions, (lower, upper): a posterior pinned at
# the upper bound means the "cluster" is a field feature (see workflows.detection).
CLUSTER_BOUNDS = {
    "cluster_pm_dispersion": (0.0, FIELD_MIN_PM_WIDTH),
    "cluster_pmra_dispersion": (0.0, FIELD_MIN_PM_WIDTH),
    "cluster_parallax_dispersion": (0.0, 0.2),
}


def component_names(n_field: int, cluster: bool = True) -> list[str]:
    """``[cluster, field_1, ..., field_K]`` (without ``cluster`` for a field-only model)."""
    if not 1 <= n_field <= MAX_FIELD_COMPONENTS:
        raise ValueError(f"field components must be 1..{MAX_FIELD_COMPONENTS}, got {n_field}")
    return ["cluster"] * cluster + [f"field_{k + 1}" for k in range(n_field)]


def mixture_weights(magnitudes=None):
    """The mixture weights over the model's ``component`` dim.

    Without ``magnitudes``: ``w ~ Dirichlet(1, ..., 1)``, the same for every star.

    With ``magnitudes`` (G per star, mag; a model with a cluster): the cluster's weight
    depends on magnitude, f(G) = logistic(a + b (G - G_ref)), G_ref the median G, with
    ``cluster_logit`` a ~ N(-2, 2) and ``cluster_logit_slope`` b ~ N(0, 1) per mag; field
    component k has weight (1 - f(G)) v_k, ``field_weights`` v ~ Dirichlet(1, ..., 1). A
    cluster's luminosity function is flatter than the field's, so at faint magnitudes,
    where field stars multiply, the prior odds of membership fall instead of staying at
    the field-wide average. The per-star log weights (star x component) are the
    deterministic ``log_weight``; ``w`` is their average over stars, so the collapse
    checks and summaries read the same.
    """
    model = pm.modelcontext(None)
    names = list(model.coords["component"])
    if magnitudes is None or "cluster" not in names:
        return pm.Dirichlet("w", np.ones(len(names)), dims="component")
    magnitudes = np.asarray(magnitudes, float)
    offsets = data_tensor(magnitudes - np.median(magnitudes), "magnitude_offsets")
    logit = pm.Normal("cluster_logit", -2.0, 2.0) + pm.Normal(
        "cluster_logit_slope", 0.0, 1.0) * offsets
    field = pm.Dirichlet("field_weights", np.ones(len(names) - 1), dims="field_component")
    log_cluster, log_rest = -pt.softplus(-logit), -pt.softplus(logit)
    pm.Deterministic("log_weight", pt.concatenate(
        [log_cluster[:, None], log_rest[:, None] + pt.log(field)[None, :]], axis=1),
        dims=("star", "component"))
    fraction = pt.sigmoid(logit).mean()
    return pm.Deterministic("w", pt.concatenate([fraction[None], (1 - fraction) * field]),
                            dims="component")


def field_means(name: str, centers, scales, dims: tuple[str, str]):
    """(K, d) field means with independent normal priors around ``centers`` (sd ``scales``)."""
    n_field = len(pm.modelcontext(None).coords[dims[0]])
    centers = prior_constant(centers, f"{name}_prior_center")
    scales = prior_constant(scales, f"{name}_prior_scale")
    return pm.Normal(name, pt.tile(centers, (n_field, 1)), pt.tile(scales, (n_field, 1)),
                     dims=dims)


def field_covariances(name: str, scales, dims: tuple[str, str, str], min_width: float = 0.0):
    """(K, d, d) covariances L Lᵀ from Cholesky factors L.

    diag(L)[:, 0] = min_width + exp(ordered log-widths ~ N(log scale_0, 1)): the ordering is
    the label-switching guard, and ``min_width`` keeps every field Gaussian broader than the
    cluster so the two cannot trade places. The other diagonal entries ~ LogNormal(log
    scale_j, 1); below the diagonal ~ N(0, scale).
    """
    n_field = len(pm.modelcontext(None).coords[dims[0]])
    d = len(scales)
    first_kwargs = {}
    if n_field > 1:
        first_kwargs = {"transform": pm.distributions.transforms.ordered,
                        "initval": np.log(scales[0]) + np.linspace(-1, 1, n_field)}
    scales = prior_constant(scales, f"{name}_prior_scale")
    log_width = pm.Normal(f"{name}_log_width", pt.log(scales[0]), 1.0, dims=dims[0],
                          **first_kwargs)
    chol = {(0, 0): min_width + pt.exp(log_width)}  # entries of L, each (K,); zeros absent
    if d > 1:
        others = pm.LogNormal(f"{name}_chol_diag", pt.log(scales[1:]), 1.0,
                              shape=(n_field, d - 1))
        chol.update({(i, i): others[:, i - 1] for i in range(1, d)})
    rows, cols = np.tril_indices(d, -1)
    if len(rows):
        below = pm.Normal(f"{name}_chol_offdiag", 0.0, pt.sqrt(scales[rows] * scales[cols]),
                          shape=(n_field, len(rows)))
        chol.update({(i, j): below[:, n] for n, (i, j) in enumerate(zip(rows, cols, strict=True))})
    # L Lᵀ entry by entry: elementwise products of (K,) vectors instead of a batched matrix
    # product and index assignments, whose Numba code takes ~35 s to compile on a new
    # machine (pm2d), for (K, 2, 2) matrices.
    cov = [sum(chol[i, k] * chol[j, k] for k in range(min(i, j) + 1))
           for i in range(d) for j in range(d)]
    return pm.Deterministic(name, pt.stack(cov, axis=-1).reshape((n_field, d, d)), dims=dims)


def gaussian_log_densities(values, error_cov, means, covs):
    """(N, K) log-densities of N stars under K Gaussians convolved with each star's errors.

    values (N, d); error_cov (N, d, d); means (K, d); covs (K, d, d); d = 1, 2 or 3.
    """
    dim = int(values.shape[-1])
    if dim == 1:
        variance = covs[None, :, 0, 0] + error_cov[:, None, 0, 0]
        return normal_logpdf(values[:, None, 0], means[None, :, 0], variance)
    residual = values[:, None, :] - means[None, :, :]
    return mvnormal_logpdf(residual, covs[None] + error_cov[:, None], dim)


def add_mixture_likelihood(log_component, loglike=None):
    """Register the per-component log-densities (star x component) and the marginalised
    mixture likelihood sum_i log sum_k w_k p_k(y_i) (``loglike`` if the caller computed it,
    as :func:`add_gaussian_mixture_likelihood` does). ``log_component`` is not stored in
    the trace (17,000 stars x components x draws is too large); the workflows recompute
    it per draw for membership and the pointwise log-likelihood."""
    pm.Deterministic("log_component", log_component, dims=("star", "component"))
    if loglike is None:
        loglike = mixture_logp(log_weights(pm.modelcontext(None)), log_component).sum()
    pm.Potential("mixture_loglike", loglike)


def log_weights(model: pm.Model):
    """The model's log mixture weights: (component,), or (star, component) when they depend
    on each star's magnitude (:func:`mixture_weights`)."""
    if "log_weight" in model.named_vars:
        return model["log_weight"]
    return pt.log(model["w"])


def add_gaussian_mixture_likelihood(values, error_cov, means, covs, offsets=None):
    """:func:`add_mixture_likelihood` for K Gaussians convolved with each star's errors.

    values (N, d), error_cov (N, d, d) data; means (K, d), covs (K, d, d) with the cluster
    first; offsets (N, K) optional extra log-densities (the joint model's sky term). The
    sampler's likelihood and gradient come from the fused Op (:mod:`models.fused`, about
    twice as fast); ``log_component`` stays the reference graph, tested equal to it.
    """
    model = pm.modelcontext(None)
    log_component = gaussian_log_densities(values, error_cov, means, covs)
    if offsets is not None:
        log_component = log_component + offsets
    if "log_weight" in model.named_vars:  # per-star weights (magnitude-dependent)
        log_w = pt.zeros(len(model.coords["component"]))
        offsets = model["log_weight"] if offsets is None else offsets + model["log_weight"]
    else:
        log_w = pt.log(model["w"])
    add_mixture_likelihood(log_component, mixture_loglike(values, error_cov, log_w, means,
                                                          covs, offsets=offsets))


def robust_scale(values: np.ndarray) -> float:
    """1.4826 x median absolute deviation: a Gaussian-equivalent width, robust to outliers."""
    values = np.asarray(values, float)
    return float(1.4826 * np.median(np.abs(values - np.median(values))))
