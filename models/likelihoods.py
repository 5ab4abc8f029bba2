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
