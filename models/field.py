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

from starmix.models.likelihoods import mvnormal_logpdf, normal_logpdf
from starmix.models.observed import (
    SKY_COLUMNS,
    SKY_WITH_HALO,
    SkyStarMixture,
    StarMixture,
    sky_log_densities,
)
from starmix.models.shared import prior_constant

MAX_FIELD_COMPONENTS = 5
# Fewest stars a cluster model is fitted to: a cluster and K field Gaussians in up to six
# dimensions have tens of parameters, and the detection step's PSIS-LOO needs many more
# stars than parameters to tell a cluster from a field feature.
MIN_STARS = 50
FIELD_MIN_PM_WIDTH = 0.5  # mas/yr
# Uniform priors of the cluster models' dispersions, (lower, upper): a posterior pinned at
# the upper bound means the "cluster" is a field feature (see starmix.workflows.cluster.detection).
CLUSTER_BOUNDS = {
    "cluster_pm_dispersion": (0.0, FIELD_MIN_PM_WIDTH),
    "cluster_pmra_dispersion": (0.0, FIELD_MIN_PM_WIDTH),
    "cluster_parallax_dispersion": (0.0, 0.2),
    "cluster_parallax_spread": (0.0, 0.05),
}


HALO_PARAMETERS = ("cluster_halo_fraction", "cluster_halo_dispersion")


def cluster_halo(core_dispersion):
    """A halo for the cluster (``--cluster-halo``): the fraction of the cluster's weight
    ``cluster_halo_fraction`` ~ Beta(2, 2) in a second Gaussian with the cluster's mean and
    an isotropic proper-motion dispersion ``cluster_halo_dispersion`` (mas/yr) between the
    core's and 0.5 mas/yr, the narrowest field Gaussian's width (the label-switching guard
    holds: core, halo and field are ordered in width): core + (0.5 - core) u with
    ``cluster_halo_scale`` u ~ Beta(2, 2). For clusters whose members spread past one
    Gaussian (escaping stars, binaries' orbital motion, mass segregation).

    Both priors vanish at their ends, where the halo is unidentified: with no weight
    (fraction 0) its width is free, and at the core's width (u = 0) or with all the weight
    (fraction 1) the split between core and halo is; a chain that wanders onto such a
    ridge samples it with tiny steps (on the 86,000-star NGC 188 field, one chain of four
    took over an hour with uniform priors). Returns (fraction, dispersion)."""
    fraction = pm.Beta("cluster_halo_fraction", 2.0, 2.0)
    scale = pm.Beta("cluster_halo_scale", 2.0, 2.0)
    dispersion = pm.Deterministic("cluster_halo_dispersion",
                                  core_dispersion + (FIELD_MIN_PM_WIDTH - core_dispersion) * scale)
    return fraction, dispersion


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
    component k has weight (1 - f(G)) v_k, ``field_weights`` v ~ Dirichlet(1, ..., 1) (v = 1
    with one field component). A
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
    offsets = pm.Data("magnitude_offsets", magnitudes - np.median(magnitudes), dims="star")
    logit = pm.Normal("cluster_logit", -2.0, 2.0) + pm.Normal(
        "cluster_logit_slope", 0.0, 1.0) * offsets
    if len(names) == 2:  # one field component: its share of the rest is 1, not a variable
        field = pt.ones(1)
    else:
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


def ordered_normal(name: str, mu, sigma, n: int, dims: str):
    """``n`` i.i.d. N(mu, sigma) values, sorted (PyMC's ``ordered`` transform for n > 1).

    Its support point (the model's initial value) spreads the n values over mu ± sigma,
    where the plain normal's (n equal values) is not a valid ordered vector. The spread
    comes from the distribution itself, not from ``initval``, so that PyMC's model
    transformations (``compute_log_likelihood``, ``do``, ``observe``) accept the model."""
    if n == 1:
        return pm.Normal(name, mu, sigma, dims=dims)
    spread = np.linspace(-1, 1, n)

    def normal(mu, sigma, size):
        return pm.Normal.dist(mu, sigma, size=size)

    def support_point(rv, size, mu, sigma):
        return mu + sigma * spread

    return pm.CustomDist(name, mu, sigma, dist=normal, support_point=support_point,
                         transform=pm.distributions.transforms.ordered, dims=dims,
                         shape=(n,))


def field_covariances(name: str, scales, dims: tuple[str, str, str], min_width: float = 0.0,
                      ordered: bool = True):
    """(K, d, d) covariances L Lᵀ from Cholesky factors L.

    diag(L)[:, 0] = min_width + exp(ordered log-widths ~ N(log scale_0, 1)): the ordering is
    the label-switching guard (``ordered=False``: unordered, for a model guarded otherwise),
    and ``min_width`` keeps every field Gaussian broader than the cluster so the two cannot
    trade places. The other diagonal entries ~ LogNormal(log
    scale_j, 1); below the diagonal ~ N(0, scale).
    """
    model = pm.modelcontext(None)
    n_field = len(model.coords[dims[0]])
    axes = list(model.coords[dims[1]])
    d = len(scales)
    scales = prior_constant(scales, f"{name}_prior_scale")
    if ordered:
        log_width = ordered_normal(f"{name}_log_width", pt.log(scales[0]), 1.0, n_field,
                                   dims=dims[0])
    else:
        log_width = pm.Normal(f"{name}_log_width", pt.log(scales[0]), 1.0, dims=dims[0])
    chol = {(0, 0): min_width + pt.exp(log_width)}  # entries of L, each (K,); zeros absent
    if d > 1:
        model.add_coord(f"{name}_chol_diag_axis", axes[1:])
        others = pm.LogNormal(f"{name}_chol_diag", pt.log(scales[1:]), 1.0,
                              dims=(dims[0], f"{name}_chol_diag_axis"))
        chol.update({(i, i): others[:, i - 1] for i in range(1, d)})
    rows, cols = np.tril_indices(d, -1)
    if len(rows):
        model.add_coord(f"{name}_chol_offdiag_pair",
                        [f"{axes[i]}-{axes[j]}" for i, j in zip(rows, cols, strict=True)])
        below = pm.Normal(f"{name}_chol_offdiag", 0.0, pt.sqrt(scales[rows] * scales[cols]),
                          dims=(dims[0], f"{name}_chol_offdiag_pair"))
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
    dim = values.type.shape[-1] if hasattr(values, "type") else np.shape(values)[-1]
    if dim == 1:
        variance = covs[None, :, 0, 0] + error_cov[:, None, 0, 0]
        return normal_logpdf(values[:, None, 0], means[None, :, 0], variance)
    residual = values[:, None, :] - means[None, :, :]
    return mvnormal_logpdf(residual, covs[None] + error_cov[:, None], dim)


def log_weights(model: pm.Model):
    """The model's log mixture weights: (component,), or (star, component) when they depend
    on each star's magnitude (:func:`mixture_weights`)."""
    if "log_weight" in model.named_vars:
        return model["log_weight"]
    return pt.log(model["w"])


def star_data(values, error_cov):
    """The stars' values (``star`` x ``coordinate``) and error covariances (``star`` x
    ``astrometry`` x ``astrometry_``) as ``pm.Data`` named ``star_values`` and
    ``star_error_cov``: the observed data of the model, replaceable with ``pm.set_data`` (any
    number of stars)."""
    values = np.asfortranarray(values, float)
    error_cov = np.asfortranarray(error_cov, float)
    if not np.allclose(error_cov, np.swapaxes(error_cov, 1, 2), rtol=1e-12, atol=0):
        raise ValueError("error covariances must be symmetric")
    observed = pm.Data("star_values", values, dims=("star", "coordinate"),
                       shape=(None, values.shape[1]))
    errors = pm.Data("star_error_cov", error_cov, dims=("star", "astrometry", "astrometry_"),
                     shape=(None, *error_cov.shape[1:]))
    return observed, errors


def observe_stars(values, error_cov, means, covs, sky=None, halo=None):
    """The observed variable ``stars`` (:class:`starmix.models.observed.StarMixture`, or
    :class:`~starmix.models.observed.SkyStarMixture` with ``sky``) and the deterministic
    ``log_component`` (star x component): each component's log-density without its weight,
    the reference graph of the likelihood, from which membership is computed.

    values (N, c) data: the astrometry, after the two tangent-plane coordinates when
    ``sky`` is given; error_cov (N, d, d) data; means (K, d), covs (K, d, d) with the
    cluster first; ``sky`` (R, ξ0, η0, a) or (R,) as in :mod:`starmix.models.observed`.
    ``halo`` (fraction, cov (d, d)): the cluster is two Gaussians with
    its mean, its core (covs[0]) with 1 - fraction of its weight and a halo (cov) with
    fraction; the observed variable then has K + 1 Gaussians, named by the model's
    ``gaussian`` coord (``cluster``, ``cluster:halo``, ``field_1``, ...), and the cluster's
    column of ``log_component`` is the two together; with a cluster ``sky`` term both share
    it (:data:`starmix.models.observed.SKY_WITH_HALO`).
    ``log_component`` is not stored in the trace (17,000 stars x components x draws is too
    large); the workflows recompute it per draw.
    """
    model = pm.modelcontext(None)
    observed, errors = star_data(values, error_cov)
    dim = int(np.shape(error_cov)[-1])
    log_w = log_weights(model)
    if halo is not None:
        fraction, halo_cov = halo
        names = list(model.coords["component"])
        model.add_coord("gaussian", [names[0], f"{names[0]}:halo", *names[1:]])
        means = pt.concatenate([means[:1], means])
        covs = pt.concatenate([covs[:1], halo_cov[None], covs[1:]])
        split = pt.stack([pt.log1p(-fraction), pt.log(fraction)])
        log_w = pt.concatenate([log_w[..., :1] + split, log_w[..., 1:]], axis=-1)
    log_component = gaussian_log_densities(observed[:, -dim:], errors, means, covs)
    if halo is not None:
        cluster = pt.logaddexp(split[0] + log_component[:, 0], split[1] + log_component[:, 1])
        log_component = pt.concatenate([cluster[:, None], log_component[:, 2:]], axis=1)
    dims = ("star", "coordinate")
    if sky is None:
        StarMixture("stars", log_w, means, covs, errors, observed=observed, dims=dims)
    else:
        log_component = log_component + sky_log_densities(
            observed[:, :SKY_COLUMNS], sky, len(model.coords["component"]))
        if halo is not None and sky.type.shape[-1] == SKY_WITH_HALO - 1:
            sky = pt.concatenate([sky, pt.ones(1)])  # core and halo share the Plummer term
        SkyStarMixture("stars", log_w, means, covs, errors, sky,
                       observed=observed, dims=dims)
    pm.Deterministic("log_component", log_component, dims=("star", "component"))


def one_axis_coords(axis: str, n_field: int, cluster: bool, n_stars: int,
                    star_ids=None) -> dict:
    """The coords of a mixture on one measured axis (``pmra`` or ``parallax``)."""
    names = component_names(n_field, cluster=cluster)
    return {"star": np.arange(n_stars) if star_ids is None else np.asarray(star_ids),
            "component": names, "field_component": [n for n in names if n != "cluster"],
            "astrometry": [axis], "astrometry_": [axis], "coordinate": [axis]}


def observe_one_axis(values, errors, center: float, scale: float, min_width: float,
                     cluster=None):
    """K field Gaussians on one axis (``field_mean`` ~ N(center, 2 scale), widths from
    ``scale`` and at least ``min_width``: :func:`field_covariances`), after the cluster's
    N(mean, sd²) when ``cluster`` = (mean, sd) is given, observed with each value's
    error (:func:`observe_stars`)."""
    f_means = field_means("field_mean", [center], [2 * scale],
                          ("field_component", "astrometry"))
    f_covs = field_covariances("field_cov", [scale],
                               ("field_component", "astrometry", "astrometry_"),
                               min_width=min_width)
    means, covs = f_means, f_covs
    if cluster is not None:
        mean, sd = cluster
        means = pt.concatenate([mean[None, None], f_means])
        covs = pt.concatenate([(sd**2)[None, None, None], f_covs])
    observe_stars(values[:, None], (errors**2)[:, None, None], means, covs)


def gaussian_components(model: pm.Model) -> list[str]:
    """The model component of each Gaussian of the observed ``stars``: the ``component``
    coord, with the cluster twice when it has a halo (:func:`observe_stars`)."""
    names = model.coords.get("gaussian") or model.coords["component"]
    return [str(name).split(":")[0] for name in names]


def robust_scale(values: np.ndarray) -> float:
    """1.4826 x median absolute deviation: a Gaussian-equivalent width, robust to outliers."""
    values = np.asarray(values, float)
    return float(1.4826 * np.median(np.abs(values - np.median(values))))
