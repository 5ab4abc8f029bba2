"""Peers for the speed benchmark: the same pm2d posterior written the way a user otherwise
would, to time starmix against.

* :func:`numpyro_pm2d`: a hand-written NumPyro model of exactly starmix's pm2d likelihood
  and priors (cluster isotropic Gaussian + K full-covariance field Gaussians, each convolved
  with the star's 2x2 error covariance; Dirichlet weights; ordered field log-widths).
* :func:`reference_style_pm2d`: the reference notebook's style in PyMC: ``pm.Mixture`` of
  per-component ``pm.MvNormal`` distributions batched over stars, same priors.
"""

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from starmix.models.field import FIELD_MIN_PM_WIDTH, robust_scale


@dataclass(frozen=True)
class PriorConstants:
    """The data-dependent prior centres starmix's pm2d uses (see models/cluster_pm2d.py)."""

    cluster_guess: np.ndarray  # (2,) mas/yr
    centers: np.ndarray  # (2,) field prior centre, mas/yr
    scales: np.ndarray  # (2,) field prior widths, mas/yr

    @classmethod
    def from_values(cls, values: np.ndarray, cluster_guess) -> "PriorConstants":
        return cls(np.asarray(cluster_guess, float), np.median(values, axis=0),
                   np.array([robust_scale(values[:, 0]), robust_scale(values[:, 1])]))


def numpyro_pm2d(values: np.ndarray, error_cov: np.ndarray, prior: PriorConstants,
                 n_field: int = 2):
    """Return a NumPyro model function of the pm2d posterior (imports JAX lazily)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from jax.scipy.special import logsumexp

    x, y = jnp.asarray(values[:, 0]), jnp.asarray(values[:, 1])
    c_xx, c_xy, c_yy = (jnp.asarray(error_cov[:, 0, 0]), jnp.asarray(error_cov[:, 0, 1]),
                        jnp.asarray(error_cov[:, 1, 1]))
    s0, s1 = prior.scales

    def log_gauss(mean, s_xx, s_xy, s_yy):
        a, b, d = s_xx + c_xx[:, None], s_xy + c_xy[:, None], s_yy + c_yy[:, None]
        det = a * d - b**2
        rx, ry = x[:, None] - mean[:, 0], y[:, None] - mean[:, 1]
        quad = (d * rx**2 - 2 * b * rx * ry + a * ry**2) / det
        return -jnp.log(2 * jnp.pi) - 0.5 * jnp.log(det) - 0.5 * quad

    def model():
        w = numpyro.sample("w", dist.Dirichlet(jnp.ones(n_field + 1)))
        cluster_pm = numpyro.sample("cluster_pm", dist.Normal(prior.cluster_guess, 1.0))
        dispersion = numpyro.sample("cluster_pm_dispersion", dist.Uniform(0, FIELD_MIN_PM_WIDTH))
        means = numpyro.sample("field_mean", dist.Normal(
            jnp.tile(prior.centers, (n_field, 1)), jnp.tile(2 * prior.scales, (n_field, 1))))
        log_width = numpyro.sample("field_cov_log_width", dist.ImproperUniform(
            dist.constraints.ordered_vector, (), (n_field,)))
        numpyro.factor("log_width_prior", dist.Normal(np.log(s0), 1.0).log_prob(log_width).sum())
        diag = numpyro.sample("field_cov_chol_diag", dist.LogNormal(np.log(s1), 1.0)
                              .expand([n_field, 1]))[:, 0]
        off = numpyro.sample("field_cov_chol_offdiag", dist.Normal(0, np.sqrt(s0 * s1))
                             .expand([n_field, 1]))[:, 0]
        first = FIELD_MIN_PM_WIDTH + jnp.exp(log_width)
        field = log_gauss(means, first**2, first * off, off**2 + diag**2)
        var = dispersion**2
        cluster = log_gauss(cluster_pm[None], var, 0.0, var)
        log_p = jnp.concatenate([cluster, field], axis=1) + jnp.log(w)
        numpyro.factor("stars", logsumexp(log_p, axis=1).sum())

    return model


def reference_style_pm2d(values: np.ndarray, error_cov: np.ndarray, prior: PriorConstants,
                         n_field: int = 2) -> pm.Model:
    """pm2d as the reference notebook would write it: ``pm.Mixture`` of ``pm.MvNormal``s."""
    s0, s1 = prior.scales
    with pm.Model() as model:
        w = pm.Dirichlet("w", np.ones(n_field + 1))
        cluster_pm = pm.Normal("cluster_pm", prior.cluster_guess, 1.0, shape=2)
        dispersion = pm.Uniform("cluster_pm_dispersion", 0.0, FIELD_MIN_PM_WIDTH)
        means = pm.Normal("field_mean", np.tile(prior.centers, (n_field, 1)),
                          np.tile(2 * prior.scales, (n_field, 1)), shape=(n_field, 2))
        log_width = pm.Normal("field_cov_log_width", np.log(s0), 1.0, shape=n_field,
                              transform=pm.distributions.transforms.ordered,
                              initval=np.log(s0) + np.linspace(-1, 1, n_field))
        diag = pm.LogNormal("field_cov_chol_diag", np.log(s1), 1.0, shape=(n_field, 1))[:, 0]
        off = pm.Normal("field_cov_chol_offdiag", 0, np.sqrt(s0 * s1), shape=(n_field, 1))[:, 0]
        first = FIELD_MIN_PM_WIDTH + pt.exp(log_width)
        components = [pm.MvNormal.dist(cluster_pm, dispersion**2 * np.eye(2) + error_cov)]
        for k in range(n_field):
            cov = pt.stack([pt.stack([first[k] ** 2, first[k] * off[k]]),
                            pt.stack([first[k] * off[k], off[k] ** 2 + diag[k] ** 2])])
            components.append(pm.MvNormal.dist(means[k], cov + error_cov))
        pm.Mixture("pm", w=w, comp_dists=components, observed=values)
    return model
