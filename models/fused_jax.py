"""The JAX implementation of :class:`starmix.models.fused.MixtureLogLike`, for PyMC's JAX samplers
(numpyro, blackjax): the closed-form reference formula of :mod:`starmix.models.fused`, per object,
with its gradient through a custom VJP. Kept apart from the Numba kernels so that JAX is
imported only when a JAX sampler runs.
"""

from starmix.models.fused import LOG_2PI, MixtureLogLike


def register_jax() -> None:
    """Give :class:`MixtureLogLike` its JAX implementation (for ``numpyro``/``blackjax``).

    Not done on import, which would import JAX (about a second) for every run;
    :func:`starmix.workflows.inference.sampling.sample_posterior` calls it for the JAX samplers.
    """
    from pytensor.link.jax.dispatch import jax_funcify

    jax_funcify.register(MixtureLogLike)(jax_mixture_loglike)


def jax_mixture_loglike(op, node=None, **kwargs):
    """The fused Op in JAX: the closed-form reference formula per object (objects first,
    as the Op takes them), with the gradients of the sum as the Op's other outputs."""
    import jax
    import jax.numpy as jnp

    def pointwise(values, error_cov, log_w, offsets, means, covs):
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
        return jax.scipy.special.logsumexp(terms, axis=1)

    def fused(values, error_cov, log_w, offsets, means, covs):
        def total(*parameters):
            return pointwise(values, error_cov, *parameters).sum()

        grads = jax.grad(total, argnums=(0, 1, 2, 3))(log_w, offsets, means, covs)
        return (pointwise(values, error_cov, log_w, offsets, means, covs), *grads)

    # JAX samplers differentiate the whole log-density themselves: through the per-object
    # values, exactly, for any weights of the objects (XLA fuses and vectorises it).
    @jax.custom_vjp
    def op(*inputs):
        return fused(*inputs)

    def forward(*inputs):
        return fused(*inputs), inputs

    def backward(inputs, cotangents):
        values, error_cov = inputs[:2]
        _, pullback = jax.vjp(lambda *p: pointwise(values, error_cov, *p), *inputs[2:])
        return (jnp.zeros_like(values), jnp.zeros_like(error_cov), *pullback(cotangents[0]))

    op.defvjp(forward, backward)
    return op
