"""Straight line with outliers: a two-component, marginalised normal mixture.

Hogg, Bovy & Lang (2010, arXiv:1008.4686), sections 3-8. For point n with error
``y_err[n]``:

* line component:    y_n ~ N(m x_n + b, y_err_n**2 [+ m**2 x_err_n**2 - 2 m rho_n x_err_n y_err_n]
  [+ s_int**2])
* outlier component: y_n ~ N(0, y_err_n**2 + s_out**2)

with weights ``w = (w_line, w_outlier) ~ Dirichlet(1, 1)``. The bracketed terms appear only
when x errors (and their correlation ``rho`` with the y errors) or an intrinsic scatter are
asked for. They are HBL's projected variance expressed along y: the true x of each point
is marginalised under a flat prior in x, so with ``x_err=None`` the model is exactly the
y-error-only model. ``s_int`` is a scatter in y about the line.

Label switching cannot occur: the outlier component is distinguished (fixed mean 0 and the
broad width ``s_out``), so the components are not exchangeable.

Two forms give the same posterior:

* ``form="marginal"``: ``pm.NormalMixture`` (the fastest);
* ``form="components"``: the same likelihood as a ``pm.CustomDist``, plus a deterministic
  ``log_component`` (point x component) holding each component's unweighted log-density,
  from which membership probabilities are computed.
"""

from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from starmix.data.line import LineData
from starmix.models.likelihoods import normal_logpdf, normal_mixture_logp, normal_mixture_random
from starmix.models.shared import PriorFactory, data_tensor

LINE_COMPONENTS = ("line", "outlier")
LINE_PARAMETERS = ("m", "b", "ln_s_out", "w")

DEFAULT_PRIORS: dict[str, PriorFactory] = {
    "m": lambda name: pm.Uniform(name, 0, 10),
    "b": lambda name: pm.Normal(name, 0, 25),
    "ln_s_out": lambda name: pm.Uniform(name, -3, 4),
    "w": lambda name: pm.Dirichlet(name, np.ones(2), dims="component"),
    "ln_s_int": lambda name: pm.Uniform(name, -5, 3),
}
FORMS = ("components", "marginal")
# Fewest points a fit is run on: the model has five parameters (m, b, s_out and two
# weights summing to one); with fewer than about two points per parameter the outlier
# component can take any subset of the points and the posterior is its prior.
MIN_POINTS = 10


def outlier_line(
    x,
    y,
    y_err,
    *,
    x_err=None,
    xy_corr=None,
    intrinsic_scatter: bool = False,
    form: str = "components",
    priors: Mapping[str, PriorFactory] | None = None,
) -> pm.Model:
    """Build the outlier-line mixture model.

    Parameters
    ----------
    x, y, y_err : array-like, shape (n_points,)
        Coordinates and 1-sigma y errors (same units as y; errors > 0).
    x_err, xy_corr : array-like, optional
        1-sigma x errors (units of x) and the x-y error correlation coefficient.
    intrinsic_scatter : bool
        Add a scatter ``s_int = exp(ln_s_int)`` in y about the line.
    form : {"components", "marginal"}
        See the module docstring.
    priors : mapping, optional
        Replacements for entries of ``DEFAULT_PRIORS``: a callable taking the variable name
        and returning a PyMC random variable, e.g. ``{"m": lambda n: pm.Normal(n, 3, 1)}``.
        ``w`` must have ``dims="component"`` (line first).

    Returns
    -------
    pm.Model with dims ``point`` and ``component``, observed ``y``; free parameters
    ``m, b, ln_s_out, w`` (and ``ln_s_int``), deterministic ``s_out`` (and ``s_int``).
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    chosen = _resolve_priors(priors)
    data = LineData(
        x=np.asarray(x, float),
        y=np.asarray(y, float),
        y_err=np.asarray(y_err, float),
        x_err=None if x_err is None else np.asarray(x_err, float),
        xy_corr=None if xy_corr is None else np.asarray(xy_corr, float),
        source="arrays",
    )
    coords = {"point": np.arange(len(data)), "component": list(LINE_COMPONENTS)}
    # the points as shared variables, not constants: one compiled log-density serves every
    # data set (models/shared.py), so a new file or an SBC replicate compiles nothing new
    x_data, y_data, y_err_data = (data_tensor(values, name) for values, name in (
        (data.x, "x_data"), (data.y, "y_data"), (data.y_err, "y_err_data")))
    x_err_data = None if data.x_err is None else data_tensor(data.x_err, "x_err_data")
    xy_corr_data = None if data.xy_corr is None else data_tensor(data.xy_corr, "xy_corr_data")
    with pm.Model(coords=coords) as model:
        m = chosen["m"]("m")
        b = chosen["b"]("b")
        s_out = pm.Deterministic("s_out", pt.exp(chosen["ln_s_out"]("ln_s_out")))
        w = chosen["w"]("w")
        s_int = None
        if intrinsic_scatter:
            s_int = pm.Deterministic("s_int", pt.exp(chosen["ln_s_int"]("ln_s_int")))

        line_variance = projected_line_variance(m, y_err_data, x_err_data, xy_corr_data, s_int)
        means = pt.stack([m * x_data + b, pt.zeros_like(x_data)], axis=-1)
        variances = pt.stack([line_variance, y_err_data**2 + s_out**2], axis=-1)

        if form == "marginal":
            pm.NormalMixture(
                "y", w=w, mu=means, sigma=pt.sqrt(variances), observed=y_data, dims="point"
            )
        else:
            pm.Deterministic(
                "log_component",
                normal_logpdf(y_data[:, None], means, variances),
                dims=("point", "component"),
            )
            pm.CustomDist(
                "y",
                pt.log(w),
                means,
                variances,
                logp=normal_mixture_logp,
                random=normal_mixture_random,
                signature="(k),(k),(k)->()",
                observed=y_data,
                dims="point",
            )
    return model


def projected_line_variance(m, y_err, x_err=None, xy_corr=None, s_int=None):
    """Variance of y - (m x + b) about the line for each point (units of y squared).

    ``y_err**2 + m**2 x_err**2 - 2 m rho x_err y_err + s_int**2``, i.e. v^T S v + s_int^2
    with v = (-m, 1) and S each point's 2x2 error covariance; terms are dropped when their
    inputs are None.
    """
    variance = pt.as_tensor_variable(y_err) ** 2
    if x_err is not None:
        variance = variance + m**2 * pt.as_tensor_variable(x_err) ** 2
        if xy_corr is not None:
            variance = variance - 2 * m * xy_corr * x_err * y_err
    if s_int is not None:
        variance = variance + s_int**2
    return variance


def _resolve_priors(priors: Mapping[str, PriorFactory] | None) -> dict[str, PriorFactory]:
    chosen = dict(DEFAULT_PRIORS)
    unknown = set(priors or {}) - set(DEFAULT_PRIORS)
    if unknown:
        raise ValueError(f"unknown prior names {sorted(unknown)}; known: {sorted(DEFAULT_PRIORS)}")
    chosen.update(priors or {})
    return chosen
