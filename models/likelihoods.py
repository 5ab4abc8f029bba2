"""Log-density pieces shared by every mixture model (PyTensor, vectorised over objects).

Variances, not standard deviations, are passed around so that measurement errors and
intrinsic widths add directly: a Gaussian of intrinsic width s observed with error e has
variance s**2 + e**2.
"""

import numpy as np
import pytensor.tensor as pt

LOG_2PI = float(np.log(2 * np.pi))


def normal_logpdf(value, mean, variance):
    """Elementwise log N(value | mean, variance)."""
    return -0.5 * (LOG_2PI + pt.log(variance) + (value - mean) ** 2 / variance)


def mixture_logp(log_weights, log_components):
    """log sum_k w_k p_k, with components along the last axis."""
    return pt.logsumexp(log_weights + log_components, axis=-1)


def normal_mixture_logp(value, log_weights, means, variances):
    """Pointwise log-likelihood of a normal mixture; means/variances end in a component axis.

    Written as a ``pm.CustomDist`` logp with signature ``(k),(k),(k)->()``.
    """
    return mixture_logp(log_weights, normal_logpdf(value[..., None], means, variances))


def normal_mixture_random(log_weights, means, variances, rng=None, size=None):
    """Draws from the normal mixture of :func:`normal_mixture_logp` (NumPy): per object a
    component label from the weights ``exp(log_weights)``, then a normal draw from that
    component's mean and variance. The ``random`` of the same ``pm.CustomDist``."""
    rng = np.random.default_rng() if rng is None else rng
    log_weights, means, variances = (np.asarray(a, float) for a in (log_weights, means,
                                                                     variances))
    n_components = means.shape[-1]
    batch = tuple(size) if size is not None else np.broadcast_shapes(
        log_weights.shape[:-1], means.shape[:-1], variances.shape[:-1])
    weights = np.exp(np.broadcast_to(log_weights, (*batch, n_components)))
    cumulative = np.cumsum(weights / weights.sum(axis=-1, keepdims=True), axis=-1)
    label = np.minimum((rng.uniform(size=batch)[..., None] > cumulative).sum(axis=-1),
                       n_components - 1)[..., None]
    mean = np.take_along_axis(np.broadcast_to(means, (*batch, n_components)), label, -1)
    variance = np.take_along_axis(np.broadcast_to(variances, (*batch, n_components)), label,
                                  -1)
    return rng.normal(mean[..., 0], np.sqrt(variance[..., 0]))


def mvnormal_logpdf(residual, cov, dim: int):
    """log N(residual | 0, cov) for ``dim`` = 2 or 3, in closed form, batched.

    residual : (..., dim); cov : (..., dim, dim), symmetric positive definite. Uses the
    adjugate and determinant, so it vectorises over stars without batched factorisations.
    """
    r = [residual[..., i] for i in range(dim)]
    c = [[cov[..., i, j] for j in range(dim)] for i in range(dim)]
    if dim == 2:
        det = c[0][0] * c[1][1] - c[0][1] ** 2
        quad = c[1][1] * r[0] ** 2 - 2 * c[0][1] * r[0] * r[1] + c[0][0] * r[1] ** 2
    elif dim == 3:
        (a, b, d), (_, e, f), (_, _, i) = c
        adj = {
            (0, 0): e * i - f * f, (1, 1): a * i - d * d, (2, 2): a * e - b * b,
            (0, 1): d * f - b * i, (0, 2): b * f - d * e, (1, 2): b * d - a * f,
        }
        det = a * adj[0, 0] + b * adj[0, 1] + d * adj[0, 2]
        quad = sum(adj[k, k] * r[k] ** 2 for k in range(3)) + 2 * sum(
            adj[j, k] * r[j] * r[k] for j, k in [(0, 1), (0, 2), (1, 2)]
        )
    else:
        raise ValueError(f"dim must be 2 or 3, got {dim}")
    return -0.5 * (dim * LOG_2PI + pt.log(det) + quad / det)


def convolved_logpdf(log_density, observed, error, lower: float, n_nodes: int = 48,
                     half_width: float = 6.0):
    """log ∫ N(observed | x, error²) p(x) dx for a density p supported on x > ``lower``.

    Gauss-Legendre quadrature, per object, on the window observed ± half_width·error clipped
    below at ``lower`` (so the nodes crowd where p rises from zero); the Gaussian factor is
    evaluated exactly at every node. ``log_density(x)`` must accept (..., n_nodes) arrays.
    """
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    start = pt.maximum(observed - half_width * error, lower)
    stop = pt.maximum(observed + half_width * error, start + half_width * error)
    half = (stop - start) / 2
    x = (start + half)[..., None] + half[..., None] * nodes
    log_terms = (np.log(weights) + pt.log(half)[..., None]
                 + normal_logpdf(observed[..., None], x, (error**2)[..., None]) + log_density(x))
    return pt.logsumexp(log_terms, axis=-1)
