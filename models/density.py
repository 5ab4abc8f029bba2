"""A Gaussian-mixture density with per-object errors: extreme deconvolution (Bovy, Hogg &
Roweis 2011) as a PyMC model.

N objects with measured values y_i (d = 1, 2 or 3 coordinates) and error covariances C_i
come from K intrinsic Gaussians (means μ_k, covariances V_k, weights w_k), each blurred by
the object's errors:

    y_i ~ Σ_k w_k N(μ_k, V_k + C_i).

This is the cluster models' field likelihood, and the observed variable ``y`` is the same
distribution (:class:`starmix.models.observed.StarMixture`, the fused Numba log-density with
draws), so sampling is as fast and the predictive draws come from the same code. The
component labels are marginalised.

Priors (units those of the values; centre and scale from the data, as shared variables):

* ``w`` ~ Dirichlet(1, ..., 1) over ``component``;
* ``mean`` (K, d) ~ N(centre, 2 scale), centre the median and scale the robust width of
  each coordinate;
* ``cov`` (K, d, d) = L Lᵀ (:func:`starmix.models.field.field_covariances`).

**Label-switching guard** (``guard``): ``width`` orders the widths along the first
coordinate (component_1 the narrowest), as the cluster models' field does: right for a
core with broad wings around one centre. ``mean`` orders the means along the first
coordinate (component_1 the lowest; ``mean_first`` holds them): right for populations at
different places with similar widths, such as two age groups, where width-ordered
components swap (measured: a simulated two-group age sample gave r_hat 1.09 with widths
ordered). ``auto`` (the default) is ``mean`` for one coordinate, ``width`` for more.

With ``truncation`` = (lower, upper) (one coordinate only) the intrinsic density is cut to
that interval and renormalised, and the observed variable is :class:`TruncatedMixture`.
"""

from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.tensor.random.op import RandomVariable

from starmix.models.field import field_covariances, field_means, ordered_normal, robust_scale
from starmix.models.likelihoods import normal_logpdf
from starmix.models.observed import StarMixture, _core_np, core, draw_labels
from starmix.models.shared import PriorFactory, check_priors, prior

MAX_DIMENSIONS = 3
MAX_COMPONENTS = 6
MIN_OBJECTS = 10
REPLACEABLE_PRIORS = ("w", "mean")
DENSITY_PARAMETERS = ("w", "mean", "cov")
GUARDS = ("auto", "mean", "width")


def component_names(n_components: int) -> list[str]:
    if not 1 <= n_components <= MAX_COMPONENTS:
        raise ValueError(f"--components must lie in 1..{MAX_COMPONENTS}, got {n_components}")
    return [f"component_{k + 1}" for k in range(n_components)]


def ordered_means(name: str, centre, scale, n_components: int):
    """(K, d) means, the first coordinate's ordered (``{name}_first`` ~ N(centre_0,
    scale_0), sorted), the others ~ N(centre_j, scale_j); the deterministic ``name``."""
    first = ordered_normal(f"{name}_first", centre[0], scale[0], n_components,
                           dims="component")
    columns = [first[:, None]]
    if len(centre) > 1:
        model = pm.modelcontext(None)
        model.add_coord(f"{name}_other_coordinate", list(model.coords["coordinate"])[1:])
        columns.append(pm.Normal(f"{name}_other", centre[1:], scale[1:],
                                 dims=("component", f"{name}_other_coordinate")))
    return pm.Deterministic(name, pt.concatenate(columns, axis=1),
                            dims=("component", "coordinate"))


def data_scales(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate prior centre (median) and scale (robust width, else the standard
    deviation, else 1) of the (N, d) values."""
    values = np.asarray(values, float)
    centre = np.median(values, axis=0)
    scale = np.array([robust_scale(column) or np.std(column) or 1.0 for column in values.T])
    return centre, scale


def gaussian_mixture_density(
    values,
    error_cov=None,
    n_components: int = 2,
    coordinates: list[str] | None = None,
    truncation: tuple[float, float] | None = None,
    priors: Mapping[str, PriorFactory] | None = None,
    object_ids=None,
    centre=None,
    scale=None,
    guard: str = "auto",
) -> pm.Model:
    """The density model of the (N, d) ``values`` with (N, d, d) ``error_cov`` (None: no
    errors). ``coordinates`` names the columns (coords ``coordinate``); ``priors`` may
    replace ``w`` or ``mean`` (``{"w": lambda name: pm.Dirichlet(name, ...)}``).
    ``truncation`` = (lower, upper) cuts a one-coordinate intrinsic density to that range
    (either bound may be infinite); every value must lie inside it unless it has an error.
    ``centre``/``scale`` (d,) fix the priors' centre and scale instead of the data's median
    and robust width (simulation-based calibration needs priors that ignore the data).
    ``guard``: ``auto``, ``mean`` or ``width`` (see the module docstring).
    """
    values = np.asarray(values, float)
    if values.ndim == 1:
        values = values[:, None]
    n_objects, dim = values.shape
    if not 1 <= dim <= MAX_DIMENSIONS:
        raise ValueError(f"a density has 1 to {MAX_DIMENSIONS} coordinates, got {dim}")
    if error_cov is None:
        error_cov = np.zeros((n_objects, dim, dim))
    error_cov = np.asarray(error_cov, float)
    if error_cov.shape != (n_objects, dim, dim):
        raise ValueError(f"error covariances must have shape {(n_objects, dim, dim)}, "
                         f"got {error_cov.shape}")
    if guard not in GUARDS:
        raise ValueError(f"guard must be one of {', '.join(GUARDS)}, got {guard!r}")
    if guard == "auto":
        guard = "mean" if dim == 1 else "width"
    if truncation is not None and dim != 1:
        raise ValueError("truncation is for a density of one coordinate")
    priors = check_priors(priors, REPLACEABLE_PRIORS, "density")
    coordinates = list(coordinates or [f"x{j + 1}" for j in range(dim)])
    names = component_names(n_components)
    coords = {"object": np.arange(n_objects) if object_ids is None else np.asarray(object_ids),
              "coordinate": coordinates, "coordinate_": coordinates, "component": names}
    data_centre, data_scale = data_scales(values)
    centre = data_centre if centre is None else np.broadcast_to(np.asarray(centre, float), dim)
    scale = data_scale if scale is None else np.broadcast_to(np.asarray(scale, float), dim)
    with pm.Model(coords=coords) as model:
        w = prior("w", lambda name: pm.Dirichlet(name, np.ones(n_components),
                                                 dims="component"), priors)
        if guard == "width":
            means = prior("mean", lambda name: field_means(name, centre, 2 * scale,
                                                           ("component", "coordinate")),
                          priors)
        else:
            means = prior("mean", lambda name: ordered_means(name, centre, 2 * scale,
                                                             n_components), priors)
        covs = field_covariances("cov", scale, ("component", "coordinate", "coordinate_"),
                                 ordered=guard == "width")
        observed = pm.Data("values", np.asfortranarray(values), dims=("object", "coordinate"),
                           shape=(None, dim))
        errors = pm.Data("error_cov", np.asfortranarray(error_cov),
                         dims=("object", "coordinate", "coordinate_"), shape=(None, dim, dim))
        if truncation is None:
            StarMixture("y", pt.log(w), means, covs, errors, observed=observed,
                        dims=("object", "coordinate"))
        else:
            lower, upper = (float(bound) for bound in truncation)
            TruncatedMixture("y", pt.log(w), means[:, 0], covs[:, 0, 0], errors[:, 0, 0],
                             pt.as_tensor([lower, upper]), observed=observed,
                             dims=("object", "coordinate"))
    return model


# -- the truncated density of one coordinate --------------------------------------------------

def _log_normal_mass(lower, upper, mean, sd):
    """log Φ((upper - m)/s) - Φ((lower - m)/s), without cancellation in either tail."""
    a, b = (lower - mean) / sd, (upper - mean) / sd
    # Φ(b) - Φ(a) = Φ(-a) - Φ(-b): take the side where both are small
    left = pt.log(pt.maximum(pt.erfc(-b / np.sqrt(2)) - pt.erfc(-a / np.sqrt(2)), 1e-300))
    right = pt.log(pt.maximum(pt.erfc(a / np.sqrt(2)) - pt.erfc(b / np.sqrt(2)), 1e-300))
    return pt.switch(a > 0, right, left) - np.log(2.0)


def truncated_log_components(value, means, variances, error_var, bounds):
    """(N, K) log-densities of y_i = x + e, x ~ N(μ_k, V_k) cut to [lower, upper] and
    renormalised, e ~ N(0, σ_i²): N(y | μ, V + σ²) times the mass of x's conditional
    N(m', s'²) inside the bounds, divided by the mass of N(μ, V) inside them."""
    y = value[:, None]
    mu, var, err = means[None, :], variances[None, :], error_var[:, None]
    total = var + err
    lower, upper = bounds[0], bounds[1]
    cond_mean = (mu * err + y * var) / total
    cond_sd = pt.sqrt(pt.maximum(var * err / total, 1e-300))
    # an object without an error: its true value is y itself (inside the bounds, or zero)
    inside = pt.switch(pt.gt(err, 0), _log_normal_mass(lower, upper, cond_mean, cond_sd),
                       pt.switch(pt.and_(pt.ge(y, lower), pt.le(y, upper)), 0.0, -np.inf))
    norm = _log_normal_mass(lower, upper, mu, pt.sqrt(var))
    return normal_logpdf(y, mu, total) + inside - norm


class TruncatedMixtureRV(RandomVariable):
    name = "truncated_mixture"
    signature = "(k),(k),(k),(),(b)->(c)"
    dtype = "floatX"
    _print_name = ("TruncatedMixture", "\\operatorname{TruncatedMixture}")

    def _supp_shape_from_params(self, dist_params, param_shapes=None):
        return (1,)

    @classmethod
    def rng_fn(cls, rng, log_w, means, variances, error_var, bounds, size):
        log_w, means, variances = (_core_np(x, 1) for x in (log_w, means, variances))
        bounds = _core_np(bounds, 1)
        error_var = np.asarray(error_var, float)
        batch = tuple(size) if size is not None else error_var.shape
        labels = draw_labels(rng, np.broadcast_to(log_w, (*batch, len(log_w))))
        true = truncated_normal_draws(rng, means[labels], np.sqrt(variances[labels]), bounds)
        noise = np.sqrt(np.broadcast_to(error_var, batch)) * rng.standard_normal(batch)
        return (true + noise)[..., None]


def truncated_normal_draws(rng, mean, sd, bounds) -> np.ndarray:
    """Draws of N(mean, sd²) cut to ``bounds`` by inverting the CDF (scipy's ``ndtr``)."""
    from scipy.special import ndtr, ndtri

    low, high = ndtr((bounds[0] - mean) / sd), ndtr((bounds[1] - mean) / sd)
    u = low + (high - low) * rng.uniform(size=np.shape(mean))
    return mean + sd * ndtri(np.clip(u, 1e-300, 1 - 1e-16))


truncated_mixture = TruncatedMixtureRV()


class TruncatedMixture(pm.Continuous):
    """One coordinate from K Gaussians cut to [lower, upper], each blurred by the object's
    error (see :func:`truncated_log_components`)."""

    rv_op = truncated_mixture

    @classmethod
    def dist(cls, log_w, means, variances, error_var, bounds, **kwargs):
        return super().dist([log_w, means, variances, error_var, bounds], **kwargs)

    def logp(value, log_w, means, variances, error_var, bounds):
        components = truncated_log_components(value[:, 0], core(means, 1), core(variances, 1),
                                              error_var, core(bounds, 1))
        return pt.logsumexp(core(log_w, 1) + components, axis=-1)
