"""Data and data-derived prior constants as shared variables (models/shared.py): one
compiled log-density serves every dataset of the same model."""

import numpy as np
import pytest
from numba.core.event import install_recorder

from starmix.data.clusters import cluster_reference
from starmix.models import CLUSTER_MODELS
from starmix.models.shared import data_tensor, prior_constant
from starmix.workflows.inference.nutpie_sampler import compile_for_nutpie
from tests.conftest import make_field

GUESS = {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}


def build(name: str, seed: int, n_stars: int):
    table = make_field(seed=seed, n_cluster=n_stars // 3, n_field=n_stars - n_stars // 3)
    extra = {"center": cluster_reference("NGC6819").center} if name == "joint" else {}
    return CLUSTER_MODELS[name].from_table(table, GUESS, n_field=2, **extra)


def compiled_logp_at_start(model) -> float:
    compiled = compile_for_nutpie(model, var_names=[rv.name for rv in model.free_RVs])
    return compiled.logp(compiled.start)[0]


@pytest.mark.parametrize("name", ["pmra", "parallax", "pm2d", "joint"])
def test_a_model_on_new_data_compiles_nothing_new(name):
    """A field with other stars, and another number of them, is new data, not a new
    function: Numba compiles nothing for its log-density (before, every new field was a
    new compiled function, about 35 s for pm2d on a 2.4 GHz core) and the value is still
    the model's own."""
    compiled_logp_at_start(build(name, seed=1, n_stars=120))
    second = build(name, seed=2, n_stars=150)
    with install_recorder("numba:compile") as recorder:
        value = compiled_logp_at_start(second)
    compiled = {event.data["dispatcher"].py_func.__name__ for _, event in recorder.buffer}
    assert "graph_nogil" not in compiled  # the outer function of a compiled log-density
    assert value == pytest.approx(second.compile_logp()(second.initial_point()), rel=1e-10)


def test_data_tensor_keeps_the_object_axis_open():
    values = np.arange(6.0).reshape(3, 2).T  # not C-contiguous: data_tensor copies it
    shared = data_tensor(values, "stars")
    assert shared.type.shape == (2, None)
    np.testing.assert_array_equal(shared.get_value(borrow=True), values)
    assert shared.get_value(borrow=True).flags["C_CONTIGUOUS"]


def test_prior_constant_has_a_fixed_shape():
    assert prior_constant([1.0, 2.0], "centre").type.shape == (2,)
    assert prior_constant(3.0, "scale").type.shape == ()
