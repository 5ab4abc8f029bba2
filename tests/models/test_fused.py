"""The fused mixture log-likelihood against the reference PyTensor graph, on every backend."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest

from starmix.models.field import gaussian_log_densities
from starmix.models.fused import mixture_loglike
from starmix.models.likelihoods import mixture_logp


def make_data(dim, n_objects=60, n_comp=3, seed=0):
    """Random objects with correlated errors and a K-component mixture (upper triangles
    of the component covariances hold the values; below the diagonal is noise the
    likelihood must ignore)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 3, (n_objects, dim))
    factors = rng.normal(0, 0.4, (n_objects, dim, dim))
    error_cov = factors @ factors.transpose(0, 2, 1) + 0.1 * np.eye(dim)
    comp_factors = rng.normal(0, 1.0, (n_comp, dim, dim))
    covs = comp_factors @ comp_factors.transpose(0, 2, 1) + 0.5 * np.eye(dim)
    covs += np.tril(rng.normal(0, 5, (n_comp, dim, dim)), -1)
    params = {"log_w": np.log(rng.dirichlet(np.ones(n_comp))),
              "offsets": rng.normal(0, 1, (n_objects, n_comp)),
              "means": rng.normal(0, 2, (n_comp, dim)), "covs": covs}
    return values, error_cov, params


def compiled(values, error_cov, params, fused: bool, offsets: bool, mode=None):
    """A function of the parameters returning (L, gradients) by one of the two routes."""
    inputs = {name: pt.tensor(name, shape=value.shape) for name, value in params.items()}
    used = [name for name in inputs if offsets or name != "offsets"]
    extra = inputs["offsets"] if offsets else None
    if fused:
        total = mixture_loglike(values, error_cov, inputs["log_w"], inputs["means"],
                                inputs["covs"], offsets=extra).sum()
    else:
        log_component = gaussian_log_densities(values, error_cov, inputs["means"],
                                               inputs["covs"])
        if offsets:
            log_component = log_component + extra
        total = mixture_logp(inputs["log_w"], log_component).sum()
    grads = pt.grad(total, [inputs[name] for name in used])
    function = pytensor.function([inputs[name] for name in used], [total, *grads], mode=mode)
    return lambda: function(*(params[name] for name in used))


def assert_same(got, expected):
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("offsets", [False, True])
def test_fused_matches_reference_value_and_gradient(dim, offsets):
    values, error_cov, params = make_data(dim)
    reference = compiled(values, error_cov, params, fused=False, offsets=offsets)()
    assert_same(compiled(values, error_cov, params, fused=True, offsets=offsets)(), reference)
    assert np.isfinite(reference[0]) and abs(reference[0]) > 1


@pytest.mark.parametrize("dim", [2, 3])
def test_numba_backend_matches_reference(dim):
    values, error_cov, params = make_data(dim, seed=1)
    reference = compiled(values, error_cov, params, fused=False, offsets=True)()
    assert_same(compiled(values, error_cov, params, fused=True, offsets=True,
                         mode="NUMBA")(), reference)


@pytest.mark.jax
@pytest.mark.parametrize("dim", [2, 3])
def test_jax_backend_matches_reference(dim):
    pytest.importorskip("jax")
    import jax

    from starmix.models.fused_jax import register_jax

    jax.config.update("jax_enable_x64", True)
    register_jax()
    values, error_cov, params = make_data(dim, seed=2)
    reference = compiled(values, error_cov, params, fused=False, offsets=True)()
    got = compiled(values, error_cov, params, fused=True, offsets=True, mode="JAX")()
    assert_same([np.asarray(x) for x in got], reference)


def test_gradient_matches_finite_differences():
    values, error_cov, params = make_data(2, n_objects=20, seed=3)
    mean = pt.dmatrix("mean")
    total = mixture_loglike(values, error_cov, pt.as_tensor(params["log_w"]), mean,
                            pt.as_tensor(params["covs"])).sum()
    value, grad = pytensor.function([mean], [total, pt.grad(total, mean)])(params["means"])
    step = 1e-6
    shifted = params["means"].copy()
    shifted[1, 0] += step
    forward = pytensor.function([mean], total)(shifted)
    assert np.isclose((forward - value) / step, grad[1, 0], rtol=1e-4)


def test_non_positive_definite_covariance_gives_nan():
    values, error_cov, params = make_data(2, seed=4)
    covs = params["covs"].copy()
    covs[0] = [[1.0, 50.0], [50.0, 1.0]]
    total = mixture_loglike(values, 0 * error_cov, pt.as_tensor(params["log_w"]),
                            pt.as_tensor(params["means"]), pt.as_tensor(covs))
    assert np.isnan(total.eval()).all()


@pytest.mark.parametrize("name", ["pmra", "pm2d", "joint"])
def test_model_gradient_matches_reference_graph(name):
    """Each model's fused likelihood and its gradient in the sampler's (unconstrained)
    parameters equal the reference graph built from the model's own log_component."""
    from starmix.data.clusters import cluster_reference
    from starmix.models import CLUSTER_MODELS
    from tests.conftest import make_field

    sky = {"center": cluster_reference("NGC6819").center} if name == "joint" else {}
    model = CLUSTER_MODELS[name].from_table(
        make_field(seed=11, n_cluster=15, n_field=25),
        {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}, n_field=2, **sky)
    reference = mixture_logp(pt.log(model["w"]), model["log_component"]).sum()
    stars = model["stars"]
    fused = pm.logp(stars, model.rvs_to_values[stars]).sum()
    fused, reference = model.replace_rvs_by_values([fused, reference])
    outs = [fused, reference, *pt.grad(fused, model.value_vars),
            *pt.grad(reference, model.value_vars)]
    evaluate = model.compile_fn(outs=outs, inputs=model.value_vars, on_unused_input="ignore")
    rng = np.random.default_rng(5)
    point = {key: value + rng.normal(0, 0.1, np.shape(value))
             for key, value in model.initial_point().items()}
    got = evaluate(point)
    half = (len(got) - 2) // 2
    assert_same(got[:1] + got[2:2 + half], got[1:2] + got[2 + half:])


@pytest.mark.workflow
def test_jax_samplers_gradient_through_the_op():
    """PyMC's JAX samplers differentiate the jaxified log-density with ``jax.grad``, which
    goes through the Op's custom VJP: it must equal PyMC's own gradient."""
    pytest.importorskip("jax")
    import jax
    from pymc.sampling.jax import get_jaxified_logp

    from starmix.models import CLUSTER_MODELS
    from starmix.models.fused_jax import register_jax
    from tests.conftest import make_field

    jax.config.update("jax_enable_x64", True)
    register_jax()
    model = CLUSTER_MODELS["pm2d"].from_table(make_field(seed=11, n_cluster=15, n_field=25),
                                              {"pmra": -2.9, "pmdec": -3.9}, n_field=2)
    point = model.initial_point()
    values = [point[var.name] for var in model.value_vars]
    jax_grads = jax.grad(lambda args: get_jaxified_logp(model)(args))(values)
    dlogp = pt.grad(model.logp(), model.value_vars)
    expected = model.compile_fn(outs=dlogp, inputs=model.value_vars)(point)
    for got, want in zip(jax_grads, expected, strict=True):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-8, atol=1e-10)


def test_vectorisable_exp_matches_numpy():
    from starmix.models.fused import exp_non_positive

    x = -np.concatenate([np.geomspace(1e-12, 700.0, 20_000), np.linspace(0, 30, 5_001)])
    got = x.copy()
    exp_non_positive(got)
    np.testing.assert_allclose(got, np.exp(x), rtol=2e-15, atol=0)
    far = np.array([-708.5, -745.0, -1e6, -np.inf])
    exp_non_positive(far)
    assert np.all((far >= 0) & (far < 1e-307))


CACHE_PROBE = """
import numpy as np
from starmix.models.fused import LOGLIKE_WITH_GRADS, MEMBERSHIP
values, error_cov = np.zeros((2, 3)), np.tile(np.eye(2)[:, :, None], (1, 1, 3))
log_w, means, covs = np.log([0.5, 0.5]), np.zeros((2, 2)), np.tile(np.eye(2), (2, 1, 1))
LOGLIKE_WITH_GRADS[2](values.T.copy(), error_cov.transpose(2, 0, 1).copy(), log_w,
                      np.zeros((0, 2)), means, covs)
MEMBERSHIP[2](values, error_cov, log_w, np.zeros((0, 2)), means, covs, np.array([1.0, 0.0]),
              np.empty(3), np.empty(3))
print(sum(f.stats.cache_hits[s] for f in (LOGLIKE_WITH_GRADS[2], MEMBERSHIP[2])
          for s in f.stats.cache_hits), end="")
"""


@pytest.mark.workflow
def test_kernels_load_from_numbas_disk_cache_in_a_new_process(tmp_path):
    """A second process loads both kernels from Numba's on-disk cache instead of compiling
    them again (the cache key must not depend on anything that changes between processes)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    root = Path(__file__).resolve().parents[2]

    def cache_hits():
        return subprocess.run([sys.executable, "-c", CACHE_PROBE], cwd=root, env=env,
                              capture_output=True, text=True, check=True).stdout

    assert cache_hits() == "0"  # an empty cache: compiled and stored
    assert cache_hits() == "2"  # both loaded


def test_per_object_values_and_the_gradient_of_weighted_sums():
    """The Op's output is one log-likelihood per object. Its gradient is exact for the
    plain sum (what a sampler takes) and, through the offsets, for any weights; a weighted
    sum's gradient in the shared parameters is refused, not silently wrong."""
    values, error_cov, params = make_data(2, n_objects=30, seed=6)
    log_w, offsets = pt.dvector("log_w"), pt.dmatrix("offsets")
    means, covs = pt.as_tensor(params["means"]), pt.as_tensor(params["covs"])
    fused = mixture_loglike(values, error_cov, log_w, means, covs, offsets=offsets)
    reference = mixture_logp(log_w, gaussian_log_densities(values, error_cov, means, covs)
                             + offsets)
    weights = np.linspace(0.5, 2.0, len(values))
    outs = [fused, reference, pt.grad((weights * fused).sum(), offsets),
            pt.grad((weights * reference).sum(), offsets), pt.grad(3 * fused.sum(), log_w),
            pt.grad(3 * reference.sum(), log_w)]
    got = pytensor.function([log_w, offsets], outs)(params["log_w"], params["offsets"][:30])
    assert got[0].shape == (30,)
    for fused_value, reference_value in zip(got[::2], got[1::2], strict=True):
        np.testing.assert_allclose(fused_value, reference_value, rtol=1e-9, atol=1e-12)
    refused = pytensor.function([log_w, offsets], pt.grad((weights * fused).sum(), log_w))
    with pytest.raises(AssertionError, match="equally weighted sum"):
        refused(params["log_w"], params["offsets"][:30])


@pytest.mark.parametrize("dim", [1, 3])
def test_python_perform_matches_reference(dim):
    """The Op's ``perform`` (PyTensor's Python/C backends) gives the reference values."""
    values, error_cov, params = make_data(dim, seed=8)
    reference = compiled(values, error_cov, params, fused=False, offsets=True)()
    got = compiled(values, error_cov, params, fused=True, offsets=True, mode="FAST_COMPILE")()
    assert_same(got, reference)
