"""starmix's membership against PyMC's own marginalisation (pymc-extras).

The outlier line written with a discrete indicator z (0: on the line, 1: outlier) is
marginalised by ``pymc_extras.marginal.marginalize`` and sampled; ``recover`` then draws
each point's z from its conditional posterior at every posterior draw. The fraction of
draws with z = 0 estimates the point's probability of lying on the line, which starmix
computes (``starmix.workflows.line.run.line_membership``, from the model's ``log_component``
and weights) on the same posterior draws. The two agree within the Monte Carlo error of
the recovered indicators.
"""

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
import xarray as xr

from starmix.data.line import simulate_outlier_line
from starmix.models.outlier_line import outlier_line
from starmix.workflows.line.run import line_membership

pytest.importorskip("pymc_extras")


def test_membership_equals_pymc_extras_marginalisation():
    from pymc_extras.marginal import marginalize, recover

    data = simulate_outlier_line()
    with pm.Model(coords={"point": np.arange(len(data)),
                          "component": ["line", "outlier"]}) as discrete:
        m = pm.Uniform("m", 0, 10)
        b = pm.Normal("b", 0, 25)
        ln_s_out = pm.Uniform("ln_s_out", -3, 4)
        w = pm.Dirichlet("w", np.ones(2), dims="component")
        z = pm.Bernoulli("z", w[1], dims="point")
        mean = pt.switch(z, 0.0, m * data.x + b)
        sd = pt.switch(z, pt.sqrt(data.y_err**2 + pt.exp(ln_s_out) ** 2), data.y_err)
        pm.Normal("y", mean, sd, observed=data.y, dims="point")
    marginal = marginalize(discrete, ["z"])
    with marginal:
        idata = pm.sample(draws=1000, tune=1000, chains=2, random_seed=11, progressbar=False)
    recovered = recover(idata, model=marginal, random_seed=12, extend_inferencedata=False)
    z_draws = np.asarray(recovered["z"].values).reshape(-1, len(data))
    theirs = 1 - z_draws.mean(axis=0)

    # starmix's membership on the same draws, through its own model and workflow step
    model = outlier_line(data.x, data.y, data.y_err)
    posterior = idata["posterior"].to_dataset()[["m", "b", "ln_s_out", "w"]]
    derived = pm.compute_deterministics(posterior, model=model, var_names=["log_component"],
                                        progressbar=False)
    tree = xr.DataTree.from_dict({"posterior": xr.merge([posterior, derived])})
    ours = line_membership(tree).mean

    n_draws = z_draws.shape[0]
    monte_carlo_sd = np.sqrt(np.maximum(ours * (1 - ours), 1 / n_draws) / n_draws)
    assert np.all(np.abs(theirs - ours) < 5 * monte_carlo_sd + 1e-3), np.max(
        np.abs(theirs - ours) / monte_carlo_sd)
    # the check has teeth: ignoring the weights gives probabilities that do not agree
    log_component = derived["log_component"].values.reshape(n_draws, len(data), 2)
    unweighted = np.exp(log_component[..., 0] - np.logaddexp(log_component[..., 0],
                                                             log_component[..., 1]))
    assert np.max(np.abs(theirs - unweighted.mean(axis=0))) > 0.05
