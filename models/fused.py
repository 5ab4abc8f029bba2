"""Fused mixture log-likelihood: one pass over the objects for the value and its gradient.

The cluster models' likelihood is, for N objects with values y_i (d = 1, 2 or 3 coordinates)
and error covariances C_i, and K Gaussian components (means μ_k, covariances S_k, log-weights
log w_k, optional per-object log-offsets o_ik such as a sky density):

    L = Σ_i log Σ_k exp(log w_k + o_ik + log N(y_i | μ_k, S_k + C_i)).

Written as a PyTensor graph (:mod:`models.likelihoods`, the reference implementation) this
makes several passes over (N, K) temporaries, and the gradient several more.
:class:`MixtureLogLike` computes L and its gradient with respect to (log w, o, μ, S) in one
compiled Numba loop, which is about twice as fast (``benchmarks/floor.py``); the gradient
with respect to the sampler's parameters follows by PyTensor's chain rule, O(K) work.

Covariances are read from their upper triangle (as the reference does), so the gradient
with respect to an entry below the diagonal is zero and one above it counts both.
The Op runs on every PyTensor backend: its ``perform`` (C/Python), Numba (PyMC's default
linker, nutpie) and JAX (numpyro, blackjax; see :func:`register_jax`), each tested
against the reference graph.
"""

import hashlib
import math
from pathlib import Path

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

LOG_2PI = math.log(2 * math.pi)


@numba.njit(inline="always")
def _inverse_and_log_det(s, inverse, dim):
    """Inverse (into ``inverse``) and log-determinant of the symmetric matrix whose upper
    triangle is in ``s``, by the adjugate (dim 1 to 3). A non-positive determinant gives NaN."""
    if dim == 1:
        det = s[0, 0]
        inverse[0, 0] = 1.0 / det
    elif dim == 2:
        det = s[0, 0] * s[1, 1] - s[0, 1] * s[0, 1]
        inverse[0, 0], inverse[1, 1] = s[1, 1] / det, s[0, 0] / det
        inverse[0, 1] = inverse[1, 0] = -s[0, 1] / det
    else:
        a, b, c, e, f, i = s[0, 0], s[0, 1], s[0, 2], s[1, 1], s[1, 2], s[2, 2]
        a00, a11, a22 = e * i - f * f, a * i - c * c, a * e - b * b
        a01, a02, a12 = c * f - b * i, b * f - c * e, b * c - a * f
        det = a * a00 + b * a01 + c * a02
        inverse[0, 0], inverse[1, 1], inverse[2, 2] = a00 / det, a11 / det, a22 / det
        inverse[0, 1] = inverse[1, 0] = a01 / det
        inverse[0, 2] = inverse[2, 0] = a02 / det
        inverse[1, 2] = inverse[2, 1] = a12 / det
    return math.log(det) if det > 0 else np.nan


def _specialised_kernel(dim: int):
    """The fused loop for ``dim`` coordinates (a compile-time constant, so Numba unrolls the
    small loops); returns L and fills the ``grad_*`` arrays. Inputs as :class:`MixtureLogLike`.
    """
    @numba.njit(cache=True)
    def kernel(values, error_cov, log_w, offsets, means, covs,
               grad_log_w, grad_offsets, grad_means, grad_covs):
        n_objects = values.shape[0]
        n_comp = means.shape[0]
        with_offsets = offsets.shape[0] > 0
        grad_log_w[:] = 0.0
        grad_means[:] = 0.0
        grad_covs[:] = 0.0
        total_cov = np.empty((dim, dim))
        inverses = np.empty((n_comp, dim, dim))
        projected = np.empty((n_comp, dim))  # (S_k + C_i)^-1 (y_i - mu_k)
        residual = np.empty(dim)
        terms = np.empty(n_comp)
        total = 0.0
        for i in range(n_objects):
            best = -np.inf
            for k in range(n_comp):
                for p in range(dim):
                    residual[p] = values[i, p] - means[k, p]
                    for q in range(p, dim):
                        total_cov[p, q] = covs[k, p, q] + error_cov[i, p, q]
                log_det = _inverse_and_log_det(total_cov, inverses[k], dim)
                quad = 0.0
                for p in range(dim):
                    acc = 0.0
                    for q in range(dim):
                        acc += inverses[k, p, q] * residual[q]
                    projected[k, p] = acc
                    quad += residual[p] * acc
                terms[k] = log_w[k] - 0.5 * (dim * LOG_2PI + log_det + quad)
                if with_offsets:
                    terms[k] += offsets[i, k]
                best = max(best, terms[k])
            norm = 0.0
            for k in range(n_comp):
                terms[k] = math.exp(terms[k] - best)
                norm += terms[k]
            total += best + math.log(norm)
            for k in range(n_comp):
                resp = terms[k] / norm
                grad_log_w[k] += resp
                if with_offsets:
                    grad_offsets[i, k] = resp
                for p in range(dim):
                    grad_means[k, p] += resp * projected[k, p]
                    grad_covs[k, p, p] += 0.5 * resp * (projected[k, p] ** 2
                                                        - inverses[k, p, p])
                    for q in range(p + 1, dim):
                        grad_covs[k, p, q] += resp * (projected[k, p] * projected[k, q]
                                                      - inverses[k, p, q])
        return total

    return kernel


KERNEL_1D, KERNEL_2D, KERNEL_3D = (_specialised_kernel(dim) for dim in (1, 2, 3))


def _specialised_loglike(kernel):
    """L and its gradients as new arrays, through ``kernel`` (one dimension only, so that
    a compiled model contains, and Numba compiles, just the kernel it uses)."""
    @numba.njit(cache=True)
    def loglike_with_grads(values, error_cov, log_w, offsets, means, covs):
        grads = (np.empty_like(log_w), np.empty_like(offsets), np.empty_like(means),
                 np.empty_like(covs))
        total = kernel(values, error_cov, log_w, offsets, means, covs, *grads)
        return np.asarray(total), grads[0], grads[1], grads[2], grads[3]

    return loglike_with_grads


LOGLIKE_WITH_GRADS = {dim: _specialised_loglike(kernel)
                      for dim, kernel in ((1, KERNEL_1D), (2, KERNEL_2D), (3, KERNEL_3D))}


def _loglike_with_grads(values, error_cov, log_w, offsets, means, covs):
    return LOGLIKE_WITH_GRADS[values.shape[1]](values, error_cov, log_w, offsets, means, covs)


class MixtureLogLike(Op):
    """Outputs (L, dL/dlog_w, dL/doffsets, dL/dmeans, dL/dcovs); see the module docstring.

    Inputs: values (N, d), error_cov (N, d, d) (data, no gradient), log_w (K,),
    offsets (N, K) or (0, K), means (K, d), covs (K, d, d). Use :func:`mixture_loglike`.
    """

    __props__ = ()

    def make_node(self, values, error_cov, log_w, offsets, means, covs):
        inputs = [pt.as_tensor_variable(x).astype("float64")
                  for x in (values, error_cov, log_w, offsets, means, covs)]
        outputs = [pt.dscalar()] + [x.type() for x in inputs[2:]]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        for storage, value in zip(output_storage, _loglike_with_grads(*inputs), strict=True):
            storage[0] = value

    def infer_shape(self, node, input_shapes):
        return [(), *input_shapes[2:]]

    def pullback(self, inputs, outputs, cotangents):
        upstream = cotangents[0]
        return [grad_undefined(self, 0, inputs[0], "data: no gradient"),
                grad_undefined(self, 1, inputs[1], "data: no gradient"),
                *(upstream * grad for grad in outputs[1:])]


def mixture_loglike(values, error_cov, log_w, means, covs, offsets=None):
    """The summed mixture log-likelihood L as a PyTensor scalar, through the fused Op.

    values (N, d) and error_cov (N, d, d) are data arrays; log_w (K,), means (K, d),
    covs (K, d, d) and the optional per-object offsets (N, K) are PyTensor expressions.
    """
    values = np.asarray(values, float)
    if offsets is None:
        offsets = pt.zeros((0, log_w.shape[0]))
    return MixtureLogLike()(values, np.asarray(error_cov, float), log_w, offsets, means,
                            covs)[0]


# Salts PyTensor's on-disk cache key of compiled graphs (otherwise just the Op's type), so
# that a changed kernel is never replaced by a stale compiled copy.
_SOURCE_VERSION = int(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12], 16)


@register_funcify_default_op_cache_key(MixtureLogLike)
def _numba_mixture_loglike(op, node=None, **kwargs):
    dim = node.inputs[0].type.shape[1]  # the values are a constant of known shape
    return LOGLIKE_WITH_GRADS[dim], _SOURCE_VERSION * 4 + dim


def register_jax() -> None:
    """Give :class:`MixtureLogLike` its JAX implementation (for ``numpyro``/``blackjax``).

    Not done on import, which would import JAX (about a second) for every run;
    :func:`workflows.sampling.sample_posterior` calls it for the JAX samplers.
    """
    from pytensor.link.jax.dispatch import jax_funcify

    jax_funcify.register(MixtureLogLike)(_jax_mixture_loglike)


def _jax_mixture_loglike(op, node=None, **kwargs):
    """The fused Op in JAX: the closed-form reference formula with ``jax.value_and_grad``
    (XLA fuses and vectorises it over objects)."""
    import jax
    import jax.numpy as jnp

    def loglike(values, error_cov, log_w, offsets, means, covs):
        c = covs[None] + error_cov[:, None]  # (N, K, d, d); upper triangle read
        r = [values[:, None, p] - means[None, :, p] for p in range(values.shape[1])]
        if len(r) == 1:
            det, quad = c[..., 0, 0], r[0] ** 2 / c[..., 0, 0]
        elif len(r) == 2:
            det = c[..., 0, 0] * c[..., 1, 1] - c[..., 0, 1] ** 2
            quad = (c[..., 1, 1] * r[0] ** 2 - 2 * c[..., 0, 1] * r[0] * r[1]
                    + c[..., 0, 0] * r[1] ** 2) / det
        else:
            a, b, d = c[..., 0, 0], c[..., 0, 1], c[..., 0, 2]
            e, f, i = c[..., 1, 1], c[..., 1, 2], c[..., 2, 2]
            adj = {(0, 0): e * i - f * f, (1, 1): a * i - d * d, (2, 2): a * e - b * b,
                   (0, 1): d * f - b * i, (0, 2): b * f - d * e, (1, 2): b * d - a * f}
            det = a * adj[0, 0] + b * adj[0, 1] + d * adj[0, 2]
            quad = (sum(adj[k, k] * r[k] ** 2 for k in range(3)) + 2 * sum(
                adj[j, k] * r[j] * r[k] for j, k in [(0, 1), (0, 2), (1, 2)])) / det
        terms = log_w - 0.5 * (len(r) * LOG_2PI + jnp.log(det) + quad)
        if offsets.shape[0]:
            terms = terms + offsets
        return jax.scipy.special.logsumexp(terms, axis=1).sum()

    value_and_grad = jax.value_and_grad(loglike, argnums=(2, 3, 4, 5))

    # JAX samplers differentiate the whole log-density themselves: the custom VJP hands
    # them the gradient already computed instead of differentiating value_and_grad again.
    @jax.custom_vjp
    def fused(values, error_cov, log_w, offsets, means, covs):
        total, grads = value_and_grad(values, error_cov, log_w, offsets, means, covs)
        return (total, *grads)

    def forward(*inputs):
        outputs = fused(*inputs)
        return outputs, (inputs[0], inputs[1], outputs[1:])

    def backward(saved, cotangents):
        values, error_cov, grads = saved
        return (jnp.zeros_like(values), jnp.zeros_like(error_cov),
                *(cotangents[0] * grad for grad in grads))

    fused.defvjp(forward, backward)
    return fused
