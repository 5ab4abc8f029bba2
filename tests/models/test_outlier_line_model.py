"""The outlier-line model against a hand-written SciPy likelihood, and its two forms."""

import numpy as np
import pymc as pm
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

from starmix.models.outlier_line import outlier_line
from tests.conftest import make_line_data


def reference_loglike(data, m, b, s_out, w_line, x_err=None, rho=None, s_int=0.0):
    """Independent NumPy/SciPy log-likelihood of the outlier-line mixture."""
    line_var = data.y_err**2 + s_int**2
    if x_err is not None:
        rho = np.zeros_like(x_err) if rho is None else rho
        line_var = line_var + m**2 * x_err**2 - 2 * m * rho * x_err * data.y_err
    line = norm.logpdf(data.y, m * data.x + b, np.sqrt(line_var))
    outlier = norm.logpdf(data.y, 0, np.sqrt(data.y_err**2 + s_out**2))
    return logsumexp([np.log(w_line) + line, np.log(1 - w_line) + outlier], axis=0).sum()


def model_loglike(model, **values):
    """The model's observed log-likelihood at given parameter values (constrained space)."""
    point = model.initial_point()
    for name, value in values.items():
        var = model[name]
        value_var = model.rvs_to_values[var]
        transform = model.rvs_to_transforms[var]
        point[value_var.name] = (
            transform.forward(np.asarray(value), *var.owner.inputs).eval()
            if transform is not None else np.asarray(value)
        )
    return model.compile_fn(model.observedlogp, inputs=model.value_vars, on_unused_input="ignore")(
        point
    )


PARAMS = {"m": 2.9, "b": -10.5, "ln_s_out": 2.1, "w": np.array([0.7, 0.3])}


@pytest.mark.parametrize("form", ["components", "marginal"])
def test_loglike_matches_scipy_reference(form):
    data = make_line_data()
    model = outlier_line(data.x, data.y, data.y_err, form=form)
    expected = reference_loglike(data, 2.9, -10.5, np.exp(2.1), 0.7)
    assert model_loglike(model, **PARAMS) == pytest.approx(expected, rel=1e-10)


def test_x_errors_use_projected_variance(rng):
    data = make_line_data()
    x_err = rng.uniform(0.05, 0.3, len(data))
    rho = rng.uniform(-0.8, 0.8, len(data))
    model = outlier_line(data.x, data.y, data.y_err, x_err=x_err, xy_corr=rho,
                         intrinsic_scatter=True)
    got = model_loglike(model, **PARAMS, ln_s_int=np.log(0.4))
    expected = reference_loglike(data, 2.9, -10.5, np.exp(2.1), 0.7, x_err, rho, s_int=0.4)
    assert got == pytest.approx(expected, rel=1e-10)
    # and the x errors really matter
    assert got != pytest.approx(reference_loglike(data, 2.9, -10.5, np.exp(2.1), 0.7), rel=1e-6)


def test_without_x_errors_the_model_is_exactly_the_y_error_model():
    data = make_line_data()
    plain = outlier_line(data.x, data.y, data.y_err)
    tiny = outlier_line(data.x, data.y, data.y_err, x_err=np.full(len(data), 1e-300))
    assert set(plain.named_vars) == set(tiny.named_vars)
    assert model_loglike(plain, **PARAMS) == model_loglike(tiny, **PARAMS)


def test_components_form_stores_unweighted_log_densities():
    data = make_line_data()
    model = outlier_line(data.x, data.y, data.y_err)
    assert model.named_vars_to_dims["log_component"] == ("point", "component")
    assert model.named_vars_to_dims["y"] == ("point",)
    assert list(model.coords["component"]) == ["line", "outlier"]


def test_priors_can_be_replaced_and_unknown_names_fail():
    data = make_line_data()
    model = outlier_line(data.x, data.y, data.y_err, priors={"m": lambda n: pm.Normal(n, 3, 1)})
    assert model["m"].owner.op.name == "normal"
    with pytest.raises(ValueError, match="unknown prior names \\['slope'\\]"):
        outlier_line(data.x, data.y, data.y_err, priors={"slope": lambda n: pm.Normal(n)})


def test_unknown_form_fails():
    data = make_line_data()
    with pytest.raises(ValueError, match="form must be one of"):
        outlier_line(data.x, data.y, data.y_err, form="fast")


@pytest.mark.workflow
def test_both_forms_give_the_same_posterior():
    """Independent chains of each form agree within their Monte Carlo errors (K-S too)."""
    from scipy.stats import ks_2samp

    data = make_line_data()
    draws = {}
    for form in ("components", "marginal"):
        model = outlier_line(data.x, data.y, data.y_err, form=form)
        idata = pm.sample(1000, tune=1000, chains=2, random_seed=11 if form == "marginal" else 5,
                          model=model, progressbar=False, compute_convergence_checks=False)
        draws[form] = {name: idata["posterior"][name].values.reshape(2000, -1)[:, 0]
                       for name in ("m", "b", "ln_s_out", "w")}
    for name in ("m", "b", "ln_s_out", "w"):
        a, b = draws["components"][name], draws["marginal"][name]
        # ~1000 effective draws each: means agree to within 5 combined standard errors
        assert abs(a.mean() - b.mean()) < 5 * np.sqrt(2 * a.var() / 800), name
        assert ks_2samp(a[::4], b[::4]).pvalue > 1e-3, name


def test_mixture_random_draws_follow_the_mixture_logp():
    """The CustomDist's ``random`` against its own logp: K-S test of 100,000 draws against
    the mixture CDF, and the share of the broad component, for fixed parameters."""
    from scipy.stats import kstest

    from starmix.models.likelihoods import normal_mixture_random

    log_w = np.log([0.7, 0.3])
    means, variances = np.array([[2.0, 0.0]]), np.array([[0.25, 9.0]])
    draws = normal_mixture_random(log_w, means, variances, rng=np.random.default_rng(4),
                                  size=(100_000, 1))[:, 0]

    def cdf(x):
        return 0.7 * norm.cdf(x, 2.0, 0.5) + 0.3 * norm.cdf(x, 0.0, 3.0)

    assert kstest(draws, cdf).pvalue > 0.01
    assert np.mean(np.abs(draws - 2.0) > 2.5) == pytest.approx(
        0.3 * (1 - (norm.cdf(4.5, 0, 3) - norm.cdf(-0.5, 0, 3))), abs=0.01)
    wrong = normal_mixture_random(np.log([0.3, 0.7]), means, variances,
                                  rng=np.random.default_rng(4), size=(100_000, 1))[:, 0]
    assert kstest(wrong, cdf).pvalue < 1e-6  # swapped weights are told apart


def test_outlier_line_prior_predictive_runs():
    data = make_line_data()
    model = outlier_line(data.x, data.y, data.y_err)
    with model:
        prior = pm.sample_prior_predictive(draws=200, random_seed=1)
    y = prior["prior_predictive"]["y"]
    assert y.dims == ("chain", "draw", "point") and y.shape == (1, 200, 32)
    assert np.isfinite(y.values).all()


def test_mixture_random_broadcasts_per_point_parameters_without_size():
    """Per-point means, variances and weights (as the model passes them), no ``size``:
    one draw per point, from that point's own mixture."""
    from scipy.stats import kstest

    from starmix.models.likelihoods import normal_mixture_random

    n = 50_000
    x = np.linspace(0, 10, n)
    means = np.stack([2 * x + 1, np.zeros(n)], axis=-1)
    variances = np.stack([np.full(n, 0.04), np.full(n, 100.0)], axis=-1)
    log_w = np.log(np.stack([np.where(x < 5, 0.9, 0.2), np.where(x < 5, 0.1, 0.8)], -1))
    draws = normal_mixture_random(log_w, means, variances, rng=np.random.default_rng(6))
    assert draws.shape == (n,)
    on_line = np.abs(draws - means[:, 0]) < 1.0  # 5 sd of the line
    # P(within 1 of the line) = w_line + w_outlier P(|N(0, 10) - line| < 1), point by point
    near = norm.cdf((means[:, 0] + 1) / 10) - norm.cdf((means[:, 0] - 1) / 10)
    expected = np.exp(log_w[:, 0]) + np.exp(log_w[:, 1]) * near
    for part in (x < 5, x >= 5):
        assert on_line[part].mean() == pytest.approx(expected[part].mean(), abs=0.01)
    line = draws[on_line & (x < 5)] - means[on_line & (x < 5), 0]
    assert kstest(line / 0.2, "norm").pvalue > 1e-3
    assert normal_mixture_random(log_w[:3], means[:3], variances[:3]).shape == (3,)  # no rng


def test_mixture_random_broadcasts_batch_shapes_and_uses_its_rng():
    """Weights, means and variances each with their own batch shape broadcast to one draw
    per cell from that cell's chosen component; the given rng is used (same seed, same
    draws), and unnormalised log-weights are normalised."""
    from starmix.models.likelihoods import normal_mixture_random

    p_first = np.array([1 - 1e-12, 1e-12, 1 - 1e-12, 1e-12])  # per column of the batch
    log_w = np.log(np.stack([p_first, 1 - p_first], -1))[None]  # (1, 4, 2)
    means = np.stack([np.arange(3.0), 100 + np.arange(3.0)], -1)[:, None]  # (3, 1, 2)
    variances = np.full((3, 4, 2), 1e-8)
    draws = normal_mixture_random(log_w, means, variances, rng=np.random.default_rng(1))
    assert draws.shape == (3, 4)
    expected = np.where(p_first > 0.5, 0.0, 100.0)[None] + np.arange(3.0)[:, None]
    np.testing.assert_allclose(draws, expected, atol=1e-3)

    log_w2, means2, variances2 = np.log([2.0, 6.0]), np.array([0.0, 5.0]), np.array([1.0, 1.0])
    one = normal_mixture_random(log_w2, means2, variances2, rng=np.random.default_rng(7),
                                size=(2000,))
    again = normal_mixture_random(log_w2, means2, variances2, rng=np.random.default_rng(7),
                                  size=(2000,))
    normalised = normal_mixture_random(np.log([0.25, 0.75]), means2, variances2,
                                       rng=np.random.default_rng(7), size=(2000,))
    np.testing.assert_array_equal(one, again)
    np.testing.assert_allclose(one, normalised)
    assert np.mean(one > 2.5) == pytest.approx(0.75, abs=0.04)


def test_outlier_line_wiring_names_dims_and_forms():
    """Both forms observe ``y`` over the ``point`` dim; only the components form keeps the
    per-component log-densities; the points are the shared variables the workflows
    replace by name (x_data, y_data, y_err_data, and x_err_data / xy_corr_data when given)
    and hold the given values."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import ancestors

    x, y, y_err = np.arange(5.0), np.array([1.0, 2.0, 2.5, 4.0, 9.0]), np.full(5, 0.3)
    x_err, corr = np.full(5, 0.1), np.full(5, 0.2)
    for form in ("components", "marginal"):
        model = outlier_line(x, y, y_err, x_err=x_err, xy_corr=corr, form=form)
        assert [rv.name for rv in model.observed_RVs] == ["y"]
        assert model.named_vars_to_dims["y"] == ("point",)
        assert ("log_component" in model.named_vars) is (form == "components")
        shared = {v.name: v.get_value() for v in ancestors([model.logp()])
                  if isinstance(v, SharedVariable) and v.name and v.name.endswith("_data")}
        assert sorted(shared) == ["x_data", "x_err_data", "xy_corr_data", "y_data",
                                  "y_err_data"]
        for name, values in {"x_data": x, "y_data": y, "y_err_data": y_err,
                             "x_err_data": x_err, "xy_corr_data": corr}.items():
            np.testing.assert_array_equal(shared[name], values)
    if_given = outlier_line(x, y, y_err)
    names = {v.name for v in ancestors([if_given.logp()]) if isinstance(v, SharedVariable)}
    assert {"x_data", "y_data", "y_err_data"} <= names and "x_err_data" not in names


@pytest.mark.parametrize("batched", ["log_weights", "means", "variances"])
def test_mixture_random_takes_its_batch_shape_from_any_one_parameter(batched):
    """Only one of the three parameters per point (shape (n, 2)), the others shared (2,):
    one draw per point, and the per-point parameter is the one each point uses."""
    from starmix.models.likelihoods import normal_mixture_random

    n = 4000
    shared = {"log_weights": np.log([0.5, 0.5]), "means": np.array([0.0, 0.0]),
              "variances": np.array([1.0, 1.0])}
    split = np.arange(n) < n // 2  # the first half differs from the second
    per_point = {"log_weights": np.log(np.where(split[:, None], [1 - 1e-12, 1e-12],
                                                [1e-12, 1 - 1e-12])),
                 "means": np.where(split[:, None], [-5.0, -5.0], [5.0, 5.0]),
                 "variances": np.where(split[:, None], [1e-4, 1e-4], [1.0, 1.0])}
    if batched != "variances":  # narrow components, so each draw shows where it came from
        shared["variances"] = np.array([0.01, 0.01])
    if batched == "log_weights":  # components told apart by their means
        shared["means"] = np.array([-5.0, 5.0])
    arguments = {**shared, batched: per_point[batched]}
    draws = normal_mixture_random(arguments["log_weights"], arguments["means"],
                                  arguments["variances"], rng=np.random.default_rng(2))
    assert draws.shape == (n,)
    if batched == "variances":
        assert np.std(draws[split]) < 0.05 and 0.9 < np.std(draws[~split]) < 1.1
    else:
        assert np.all(draws[split] < -2) and np.all(draws[~split] > 2)
