"""The observed variable of every cluster model: the stars, as one PyMC random variable.

Each distribution is a PyTensor ``RandomVariable`` (its ``rng_fn`` draws a component label
per star, then the star's values; ``draw_labelled`` returns the labels too) wrapped as a
PyMC ``Distribution`` whose ``logp`` is the marginalised mixture, one value per star. The
Gaussian ones take their log-density from the fused Op (:mod:`starmix.models.fused`), so sampling
is as fast as before; their reference graph is :func:`starmix.models.field.gaussian_log_densities`,
tested equal.

* :class:`StarMixture`: K Gaussians (means μ_k, covariances S_k), each convolved with the
  star's error covariance C_i: y_i ~ Σ_k w_k N(μ_k, S_k + C_i). Signature
  ``(k),(k,d),(k,d,d),(d,d)->(d)``: log weights (per star when they depend on magnitude),
  means, covariances, each star's error covariance.
* :class:`SkyStarMixture`: the same, with the star's position (ξ, η) on the tangent plane
  (arcmin) in front of its astrometry, y_i = (ξ, η, a_i). The cluster (component 0, when
  present) has a Plummer profile of scale a around (ξ0, η0), normalised inside the disc of
  radius R around it; each field component is uniform in the footprint's disc of radius R
  around the plane's origin. ``sky`` holds (R, ξ0, η0, a), or (R,) for a field-only model.
* :class:`ParallaxMixture`: the parallax model's cluster, a Gaussian of width s (the fixed
  depth) at ϖ_c + δ, and its field, the true parallax from an exponentially decreasing
  space density (``field`` = (L,), kpc) or a scaled Beta (``field`` = (α, β, ϖ_max)),
  each convolved with the star's error and shifted by δ.

Units: those of the values (mas, mas/yr, arcmin).
"""

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.tensor.random.op import RandomVariable

from starmix.models.fused import mixture_loglike
from starmix.models.likelihoods import convolved_logpdf, normal_logpdf

SKY_COLUMNS = 2
# ``sky`` of this length, (R, ξ0, η0, a, 1), marks a cluster of two Gaussians (core and
# halo, ``--cluster-halo``) that share its Plummer term; (R, ξ0, η0, a): one Gaussian
SKY_WITH_HALO = 5


def cluster_gaussians(sky_length: int) -> int:
    """How many leading Gaussians of a sky mixture are the cluster's (1, or 2 with a halo)."""
    return 2 if sky_length == SKY_WITH_HALO else 1


# -- draws (NumPy) ---------------------------------------------------------------------------

def draw_labels(rng, log_weights: np.ndarray) -> np.ndarray:
    """One component index per row of ``log_weights`` (..., K), with probabilities
    proportional to exp(log_weights) (the Gumbel-max trick)."""
    gumbel = -np.log(-np.log(rng.uniform(size=log_weights.shape)))
    return np.argmax(log_weights + gumbel, axis=-1)


def draw_gaussians(rng, labels, means, covs, error_cov) -> np.ndarray:
    """(N, d) draws from N(means[label_i], covs[label_i] + error_cov[i]).

    Covariances are read from their upper triangle, as the log-density reads them."""
    total = covs[labels] + error_cov
    upper = np.triu(total)
    total = upper + np.swapaxes(np.triu(total, 1), -1, -2)
    factor = np.linalg.cholesky(total)
    noise = rng.standard_normal(labels.shape + (means.shape[-1],))
    return means[labels] + np.einsum("...ij,...j->...i", factor, noise)


def _core_np(x, core_ndim: int) -> np.ndarray:
    """``x`` without leading length-1 batch dimensions (see :func:`core`)."""
    x = np.asarray(x, float)
    while x.ndim > core_ndim and x.shape[0] == 1:
        x = x[0]
    if x.ndim > core_ndim:
        raise ValueError(f"parameters batched over {x.shape[:-core_ndim]} are not supported")
    return x


def _batch(size, *shapes) -> tuple:
    return tuple(size) if size is not None else np.broadcast_shapes(*shapes)


def _gaussian_draws(rng, log_w, means, covs, error_cov, size):
    means, covs = _core_np(means, 2), _core_np(covs, 3)
    n_comp, dim = means.shape[-2:]
    batch = _batch(size, log_w.shape[:-1], error_cov.shape[:-2])
    log_w = np.broadcast_to(log_w, (*batch, n_comp))
    error_cov = np.broadcast_to(error_cov, (*batch, dim, dim))
    labels = draw_labels(rng, log_w)
    return labels, draw_gaussians(rng, labels, means, covs, error_cov)


def plummer_radii(rng, scale, radius, size) -> np.ndarray:
    """Radii from a Plummer surface density of ``scale`` truncated at ``radius``: the
    fraction inside r is r² / (r² + a²), divided by its value at the radius."""
    inside = rng.uniform(size=size) * radius**2 / (radius**2 + scale**2)
    return scale * np.sqrt(inside / (1 - inside))


def draw_sky(rng, is_cluster: np.ndarray, sky: np.ndarray) -> np.ndarray:
    """(N, 2) tangent-plane positions: the Plummer cluster around (ξ0, η0) for the stars
    with ``is_cluster``, uniform in the disc of radius R for the others."""
    radius = sky[0]
    n = is_cluster.shape
    r = radius * np.sqrt(rng.uniform(size=n))
    centre = np.zeros(n + (2,))
    if len(sky) > 1:
        r = np.where(is_cluster, plummer_radii(rng, sky[3], radius, n), r)
        centre[is_cluster] = sky[1:3]
    angle = rng.uniform(0, 2 * np.pi, n)
    return centre + np.stack([r * np.cos(angle), r * np.sin(angle)], axis=-1)


# -- random variables ------------------------------------------------------------------------

class StarMixtureRV(RandomVariable):
    name = "star_mixture"
    signature = "(k),(k,d),(k,d,d),(d,d)->(d)"
    dtype = "floatX"
    _print_name = ("StarMixture", "\\operatorname{StarMixture}")

    @classmethod
    def rng_fn(cls, rng, log_w, means, covs, error_cov, size):
        return cls.draw_labelled(rng, log_w, means, covs, error_cov, size)[1]

    @classmethod
    def draw_labelled(cls, rng, log_w, means, covs, error_cov, size=None):
        """(component index per star, stars): the draw ``rng_fn`` returns, with its labels."""
        return _gaussian_draws(rng, log_w, means, covs, error_cov, size)


class SkyStarMixtureRV(RandomVariable):
    name = "sky_star_mixture"
    signature = "(k),(k,d),(k,d,d),(d,d),(p)->(c)"
    dtype = "floatX"
    _print_name = ("SkyStarMixture", "\\operatorname{SkyStarMixture}")

    def _supp_shape_from_params(self, dist_params, param_shapes=None):
        shapes = param_shapes or [param.shape for param in dist_params]
        return (shapes[1][-1] + SKY_COLUMNS,)

    @classmethod
    def rng_fn(cls, rng, log_w, means, covs, error_cov, sky, size):
        return cls.draw_labelled(rng, log_w, means, covs, error_cov, sky, size)[1]

    @classmethod
    def draw_labelled(cls, rng, log_w, means, covs, error_cov, sky, size=None):
        """(component index per star, stars): the draw ``rng_fn`` returns, with its labels."""
        labels, astrometry = _gaussian_draws(rng, log_w, means, covs, error_cov, size)
        sky = _core_np(sky, 1)
        positions = draw_sky(rng, labels < cluster_gaussians(len(sky)), sky)
        return labels, np.concatenate([positions, astrometry], axis=-1)


class ParallaxMixtureRV(RandomVariable):
    name = "parallax_mixture"
    signature = "(k),(),(),(),(f),(c,c)->(c)"
    dtype = "floatX"
    _print_name = ("ParallaxMixture", "\\operatorname{ParallaxMixture}")

    @classmethod
    def rng_fn(cls, rng, log_w, cluster_parallax, offset, depth, field, error_cov, size):
        return cls.draw_labelled(rng, log_w, cluster_parallax, offset, depth, field,
                                 error_cov, size)[1]

    @classmethod
    def draw_labelled(cls, rng, log_w, cluster_parallax, offset, depth, field, error_cov,
                      size=None):
        """(component index per star, stars): the draw ``rng_fn`` returns, with its labels
        (0: cluster, 1: field)."""
        cluster_parallax, offset, depth = (_core_np(x, 0) for x in (cluster_parallax, offset,
                                                                     depth))
        field = _core_np(field, 1)
        batch = _batch(size, log_w.shape[:-1], error_cov.shape[:-2])
        labels = draw_labels(rng, np.broadcast_to(log_w, (*batch, log_w.shape[-1])))
        error = np.sqrt(np.broadcast_to(error_cov, (*batch, 1, 1))[..., 0, 0])
        if len(field) == 1:  # p(r) ∝ r² exp(-r / L): r ~ Gamma(3, L), x = 1 / r
            true_field = 1 / rng.gamma(3.0, field[0], batch)
        else:
            true_field = field[2] * rng.beta(field[0], field[1], batch)
        true = np.where(labels == 0, cluster_parallax + depth * rng.standard_normal(batch),
                        true_field)
        return labels, (true + offset + error * rng.standard_normal(batch))[..., None]


star_mixture = StarMixtureRV()
sky_star_mixture = SkyStarMixtureRV()
parallax_mixture = ParallaxMixtureRV()


# -- log-densities ---------------------------------------------------------------------------

def core(x, core_ndim: int):
    """``x`` without the leading length-1 batch dimensions that PyTensor's random variables
    add to parameters of fewer batch dimensions than the value."""
    while x.ndim > core_ndim and x.type.broadcastable[0]:
        x = x[0]
    return x


def _weights_and_offsets(log_w, offsets=None):
    """The fused Op's (K,) log weights and (N, K) offsets: per-star log weights (N, K)
    (magnitude-dependent) go into the offsets."""
    if log_w.ndim == 1:
        return log_w, offsets
    offsets = log_w if offsets is None else offsets + log_w
    return pt.zeros(log_w.shape[-1]), offsets


def star_mixture_logp(value, log_w, means, covs, error_cov, offsets=None):
    """(N,) log Σ_k w_k e^(o_ik) N(y_i | μ_k, S_k + C_i), through the fused Op."""
    log_w, means, covs = core(log_w, 1), core(means, 2), core(covs, 3)
    log_w, offsets = _weights_and_offsets(log_w, offsets)
    return mixture_loglike(value, error_cov, log_w, means, covs, offsets=offsets)


def sky_log_densities(sky_values, sky, n_components: int):
    """(N, K) log surface density (per arcmin²) of each star's position under each
    component: the truncated Plummer cluster first when ``sky`` holds its parameters."""
    radius = sky[0]
    n_stars = sky_values.shape[0]
    n_field = n_components - int(sky.type.shape[-1] > 1)
    columns = []
    if sky.type.shape[-1] > 1:
        centre, scale = sky[1:3], sky[3]
        r2 = ((sky_values - centre[None, :]) ** 2).sum(axis=-1)
        norm = pt.log(np.pi * scale**2) + pt.log(radius**2 / (radius**2 + scale**2))
        columns.append((-2 * pt.log1p(r2 / scale**2) - norm)[:, None])
    columns.append(pt.full((n_stars, n_field), -pt.log(np.pi * radius**2)))
    return pt.concatenate(columns, axis=1)


def sky_star_mixture_logp(value, log_w, means, covs, error_cov, sky):
    sky, n_gaussians = core(sky, 1), core(means, 2).shape[0]
    halo = cluster_gaussians(sky.type.shape[-1]) - 1
    offsets = sky_log_densities(value[:, :SKY_COLUMNS], sky, n_gaussians - halo)
    if halo:  # the halo's Gaussian shares the cluster's sky term
        offsets = pt.concatenate([offsets[:, :1], offsets], axis=1)
    return star_mixture_logp(value[:, SKY_COLUMNS:], log_w, means, covs, error_cov, offsets)


SMALLEST_PARALLAX = 1e-3  # mas; true parallaxes below this have negligible field density


def exponential_density_log_parallax_pdf(x, length_scale):
    """log p(x) of true parallax x (mas) under p(r) ∝ r² exp(-r/L), r = 1/x (kpc)."""
    x = pt.maximum(x, SMALLEST_PARALLAX)
    return -4 * pt.log(x) - 1 / (x * length_scale) - pt.log(2 * length_scale**3)


def beta_log_parallax_pdf(x, alpha, beta, x_max):
    """log p(x) for x / x_max ~ Beta(alpha, beta), clipped just inside (0, x_max)."""
    u = pt.clip(x / x_max, 1e-6, 1 - 1e-6)
    return pm.logp(pm.Beta.dist(alpha, beta), u) - pt.log(x_max)


def parallax_log_components(value, cluster_parallax, offset, depth, field, error_cov,
                            n_nodes: int = 48):
    """(N, 2) log-densities of each star's parallax under the cluster and the field
    (48-node Gauss-Legendre quadrature over the true parallax; see
    :func:`starmix.models.likelihoods.convolved_logpdf`)."""
    observed, error = value[:, 0], pt.sqrt(error_cov[:, 0, 0])
    if field.type.shape[-1] == 1:
        def log_density(x):
            return exponential_density_log_parallax_pdf(x, field[0])
    else:
        def log_density(x):
            return beta_log_parallax_pdf(x, field[0], field[1], field[2])
    cluster = normal_logpdf(observed, cluster_parallax + offset, depth**2 + error**2)
    field_logp = convolved_logpdf(log_density, observed - offset, error, SMALLEST_PARALLAX,
                                  n_nodes)
    return pt.stack([cluster, field_logp], axis=1)


def parallax_mixture_logp(value, log_w, cluster_parallax, offset, depth, field, error_cov):
    log_components = parallax_log_components(
        value, core(cluster_parallax, 0), core(offset, 0), core(depth, 0), core(field, 1),
        error_cov)
    return pt.logsumexp(core(log_w, 1) + log_components, axis=-1)


# -- PyMC distributions ----------------------------------------------------------------------

class StarMixture(pm.Continuous):
    """Stars from K Gaussians convolved with their errors (see the module docstring)."""

    rv_op = star_mixture

    @classmethod
    def dist(cls, log_w, means, covs, error_cov, **kwargs):
        return super().dist([log_w, means, covs, error_cov], **kwargs)


    def logp(value, log_w, means, covs, error_cov):
        return star_mixture_logp(value, log_w, means, covs, error_cov)


class SkyStarMixture(pm.Continuous):
    """Stars with tangent-plane positions (see the module docstring)."""

    rv_op = sky_star_mixture

    @classmethod
    def dist(cls, log_w, means, covs, error_cov, sky, **kwargs):
        return super().dist([log_w, means, covs, error_cov, sky], **kwargs)


    def logp(value, log_w, means, covs, error_cov, sky):
        return sky_star_mixture_logp(value, log_w, means, covs, error_cov, sky)


class ParallaxMixture(pm.Continuous):
    """Parallaxes of a cluster and a field (see the module docstring)."""

    rv_op = parallax_mixture

    @classmethod
    def dist(cls, log_w, cluster_parallax, offset, depth, field, error_cov, **kwargs):
        return super().dist([log_w, cluster_parallax, offset, depth, field, error_cov],
                            **kwargs)


    def logp(value, log_w, cluster_parallax, offset, depth, field, error_cov):
        return parallax_mixture_logp(value, log_w, cluster_parallax, offset, depth, field,
                                     error_cov)
