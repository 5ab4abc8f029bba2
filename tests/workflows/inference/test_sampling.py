"""Sampler choice (``--sampler auto``) and the nutpie path: same seed, same draws; agrees
with PyMC's NUTS on a cluster posterior."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from starmix.models import CLUSTER_MODELS
from starmix.models.outlier_line import outlier_line
from starmix.workflows.inference.sampling import (
    SMALL_MODEL_OBJECTS,
    resolve_sampler,
    sample_posterior,
)
from starmix.workflows.runs.options import SamplingOptions, available_cores
from tests.conftest import make_field, make_line_data

GUESS = {"pmra": -2.9, "pmdec": -3.9}
HAS_NUTPIE = importlib.util.find_spec("nutpie") is not None


def pm2d_model(n_stars: int, seed: int = 3):
    n_cluster = n_stars // 3
    table = make_field(seed=seed, n_cluster=n_cluster, n_field=n_stars - n_cluster)
    return CLUSTER_MODELS["pm2d"].from_table(table, GUESS, n_field=2)


def test_auto_settles_sampler_tuning_and_cores_by_model_size():
    data = make_line_data()
    small = resolve_sampler(SamplingOptions(), outlier_line(data.x, data.y, data.y_err))
    large = resolve_sampler(SamplingOptions(), pm2d_model(SMALL_MODEL_OBJECTS + 200))
    if HAS_NUTPIE:
        assert (small.sampler, small.tune, small.cores) == ("nutpie", 300, 1)
        assert (large.sampler, large.tune) == ("nutpie", 300)
    else:
        assert (small.sampler, small.tune) == (large.sampler, large.tune) == ("pymc", 1000)
    assert large.cores == min(4, available_cores())


def test_explicit_choices_are_kept():
    model = pm2d_model(SMALL_MODEL_OBJECTS + 200)
    chosen = resolve_sampler(SamplingOptions(sampler="pymc", tune=123, cores=1), model)
    assert (chosen.sampler, chosen.tune, chosen.cores) == ("pymc", 123, 1)
    assert resolve_sampler(SamplingOptions(sampler="nutpie"), model).tune == 300


def test_nutpie_log_density_equals_pymc():
    """The cached, GIL-free function nutpie calls gives PyMC's log-density and gradient
    (the fused Op inside it is checked against PyMC's graph in ``test_fused.py``)."""
    pytest.importorskip("nutpie")
    from starmix.workflows.inference.nutpie_sampler import compile_for_nutpie

    data = make_line_data()
    model = outlier_line(data.x, data.y, data.y_err)
    compiled = compile_for_nutpie(model)
    logp = compiled.model._make_logp_func()
    reference = model.logp_dlogp_function(ravel_inputs=True)
    for seed in range(3):
        x = compiled.model._make_initial_points(seed)
        value, grad = logp(x)
        expected_value, expected_grad = reference(x)
        np.testing.assert_allclose(value, expected_value, rtol=1e-10)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-8, atol=1e-10)
        assert np.all(np.abs(x - compiled.start) <= 1.0)  # jittered around the initial point


@pytest.mark.filterwarnings("ignore:`find_MAP` will return")
@pytest.mark.parametrize("name", ["outlier_line", "pm2d"])
def test_nutpie_map_is_pymcs_map(name):
    """The MAP found on nutpie's compiled log-density (Jacobian removed) is the point
    ``pm.find_MAP`` finds, and the Jacobian term is PyMC's (with minus without)."""
    pytest.importorskip("nutpie")
    import pymc as pm

    from starmix.workflows.inference.nutpie_sampler import (
        compile_for_nutpie,
        log_jacobian,
        map_estimate,
    )

    if name == "pm2d":
        model = pm2d_model(400)
    else:
        data = make_line_data()
        model = outlier_line(data.x, data.y, data.y_err)
    compiled = compile_for_nutpie(model)

    def flat(point):
        return np.concatenate([np.ravel(point[model.rvs_to_values[rv].name])
                               for rv in model.free_RVs])

    with_jacobian, without = (model.compile_logp(jacobian=flag) for flag in (True, False))
    jacobian = log_jacobian(model, compiled.shapes)
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    for seed in range(3):
        x = compiled.model._make_initial_points(seed)
        pieces = np.split(x, np.cumsum([int(np.prod(shape)) for shape in compiled.shapes])[:-1])
        point = {name: piece.reshape(shape) for name, piece, shape in
                 zip(names, pieces, compiled.shapes, strict=True)}
        np.testing.assert_allclose(float(jacobian(x)[0]), with_jacobian(point) - without(point),
                                   rtol=1e-9, atol=1e-9)
    found = pm.find_MAP(model=model, progressbar=False, jitter=False)
    np.testing.assert_allclose(map_estimate(model, compiled)[0], flat(found), atol=2e-3)


@pytest.mark.smoke
def test_nutpie_is_deterministic_and_agrees_with_pymc():
    pytest.importorskip("nutpie")
    model = pm2d_model(400)
    keep = ["cluster_pm", "cluster_pm_dispersion", "w"]

    def run(sampler, seed):
        options = SamplingOptions(draws=400, tune=300, chains=2, seed=seed, sampler=sampler)
        idata = sample_posterior(model, options, var_names=keep, log_likelihood=False,
                                 start_at_map=True)
        assert idata.attrs["sampler"] == sampler
        return idata["posterior"]

    first, again = run("nutpie", 5), run("nutpie", 5)
    for name in keep:
        np.testing.assert_array_equal(first[name].values, again[name].values)
    reference = run("pymc", 5)
    for name in keep:
        a, b = first[name], reference[name]
        spread = np.hypot(a.std(("chain", "draw")), b.std(("chain", "draw"))).values
        # Posterior means of two correct samplers: within 0.3 posterior sd (MCSE ~0.04 sd).
        assert np.all(np.abs((a.mean(("chain", "draw")) - b.mean(("chain", "draw"))).values)
                      < 0.3 * spread), name


def test_jax_samplers_get_one_cpu_device_per_chain():
    """PyMC's JAX samplers map chains over devices; with JAX's one CPU device NumPyro
    would draw 4 chains one after another on one core."""
    pytest.importorskip("jax")
    script = ("import jax\n"
              "from starmix.workflows.inference.sampling import jax_devices_for_chains\n"
              "jax_devices_for_chains(4)\n"
              "print(len(jax.devices('cpu')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[3])
    assert done.stdout.strip() == "4"


def test_stray_chains_are_those_far_below_the_best():
    from starmix.workflows.inference.nutpie_sampler import stray_chains

    rng = np.random.default_rng(0)
    logp = rng.normal(-100, 3, (4, 200))
    assert stray_chains(logp) == []
    logp[2] -= 60  # a mode 60 nats lower
    assert stray_chains(logp) == [2]
    logp[2] += 55  # 5 nats: within the chains' own spread, not a stray
    assert stray_chains(logp) == []
    assert stray_chains(logp[:1]) == []


def test_a_chain_stuck_in_a_lower_mode_is_run_again_from_the_best_chain():
    """Two modes NUTS cannot cross (x near 0, and near 100 with 1e-7 of the weight: its
    peak 16 nats below the main mode's, behind a valley 1,200 nats deep, past nutpie's
    divergence limit): one chain is started in each; the stray is found by its
    log-density and run again from the other chain's last draw, so every chain ends in
    the main mode."""
    import pymc as pm

    from starmix.workflows.inference.nutpie_sampler import (
        _sample,
        compile_for_nutpie,
        restart_strays,
        stray_chains,
    )

    with pm.Model() as model:
        pm.NormalMixture("x", w=np.array([1 - 1e-7, 1e-7]), mu=np.array([0.0, 100.0]),
                         sigma=np.array([1.0, 1.0]))
    compiled = compile_for_nutpie(model)
    calls = []

    def one_chain_per_mode(seed):
        calls.append(seed)
        return np.array([0.3 if len(calls) % 2 else 99.7])  # (a zero gradient is refused)

    import dataclasses

    stuck = dataclasses.replace(compiled.model, _make_initial_points=one_chain_per_mode)
    settings = dict(draws=200, tune=200, chains=2, cores=1, seed=3, save_warmup=False,
                    progress_bar=False, target_accept=0.8, adaptation="diag")
    idata = _sample(stuck, settings)
    x = idata["posterior"]["x"].values
    assert sorted(np.round(np.median(x, axis=1), -1)) == [0, 100]  # one chain in each mode
    strays = stray_chains(idata["sample_stats"]["logp"].values)
    assert strays == [int(np.argmax(np.median(x, axis=1)))]
    fixed = restart_strays(idata, model, compiled, compiled.model, settings, strays)
    assert fixed.attrs["restarted_chains"] == strays
    assert np.all(np.abs(np.median(fixed["posterior"]["x"].values, axis=1)) < 0.5)
    assert stray_chains(fixed["sample_stats"]["logp"].values) == []
