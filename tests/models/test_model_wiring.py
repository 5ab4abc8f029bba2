"""How each cluster model is wired to its table: the coords and dims the workflows read
(ArviZ groups, membership tables and plots are labelled by them), the star arrays the
observed variable holds, the per-star magnitudes of ``--magnitude-prior``, the number of
field components, and the derived distance.

The log densities themselves are checked against SciPy elsewhere
(tests/models/test_cluster_models.py, tests/models/test_model_priors.py); these tests catch a model
that computes the right density on the wrong columns, or labels it wrongly.
"""

import numpy as np
import pytest

from starmix.models import CLUSTER_MODELS
from starmix.models.cluster_joint import AXES, table_arrays
from starmix.models.cluster_pm2d import pm_covariance
from tests.conftest import make_field

GUESS = {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}
FIELD = ("field_1", "field_2", "field_3")
AXES_OF = {"pmra": ("pmra",), "pm2d": ("pmra", "pmdec"), "pmplx": tuple(AXES), "joint": tuple(AXES)}
COORDINATE_OF = {**AXES_OF, "joint": ("xi", "eta", *AXES)}
CLUSTER_DIMS = {
    "pmra": {},
    "pm2d": {"cluster_pm": ("astrometry",)},
    "pmplx": {"cluster_pm": ("proper_motion",)},
    "joint": {"cluster_pm": ("proper_motion",), "cluster_offset": ("sky",)},
}


@pytest.fixture(scope="module")
def table():
    return make_field(seed=21, n_cluster=20, n_field=40)


def build(name, table, **options):
    if name == "joint":
        from starmix.data.clusters import cluster_reference
        from starmix.data.footprint import Footprint

        centre = cluster_reference("NGC6819").center
        options |= {"center": centre,
                    "footprint": Footprint(centre.ra.deg, centre.dec.deg, 24.0, "the test's")}
    return CLUSTER_MODELS[name].from_table(table, GUESS, **options)


def data_value(model, name):
    return np.asarray(model[name].get_value() if hasattr(model[name], "get_value")
                      else model[name].data)


@pytest.mark.parametrize("name", ["pmra", "pm2d", "pmplx", "joint"])
def test_coords_and_dims_follow_the_table_and_the_field_components(name, table):
    model = build(name, table, n_field=3)
    axes = AXES_OF[name]
    np.testing.assert_array_equal(model.coords["star"], np.asarray(table["source_id"]))
    assert tuple(model.coords["component"]) == ("cluster", *FIELD)
    assert tuple(model.coords["field_component"]) == FIELD
    assert tuple(model.coords["astrometry"]) == axes
    assert tuple(model.coords["astrometry_"]) == axes
    assert tuple(model.coords["coordinate"]) == COORDINATE_OF[name]
    dims = model.named_vars_to_dims
    expected = {"w": ("component",), "field_mean": ("field_component", "astrometry"),
                "field_cov_log_width": ("field_component",),
                "field_cov": ("field_component", "astrometry", "astrometry_"),
                "star_values": ("star", "coordinate"),
                "star_error_cov": ("star", "astrometry", "astrometry_"),
                "stars": ("star", "coordinate"), "log_component": ("star", "component"),
                **CLUSTER_DIMS[name]}
    for variable, variable_dims in expected.items():
        assert dims[variable] == variable_dims, variable
    assert [rv.name for rv in model.observed_RVs] == ["stars"]
    if name == "joint":  # the cluster's offset on the tangent plane
        assert tuple(model.coords["sky"]) == ("xi", "eta")


@pytest.mark.parametrize("field", ["exponential", "beta", "gaussian"])
def test_the_parallax_models_coords_follow_the_table(field, table):
    from starmix.models.cluster_parallax import cluster_parallax

    model = build("parallax", table, parallax_field=field)
    np.testing.assert_array_equal(model.coords["star"], np.asarray(table["source_id"]))
    assert tuple(model.coords["astrometry"]) == ("parallax",)
    assert tuple(model.coords["coordinate"]) == ("parallax",)
    unnamed = cluster_parallax(np.asarray(table["parallax"], float),
                               np.asarray(table["parallax_error"], float), cluster_guess=0.36,
                               field=field)  # no star ids: the stars are numbered
    np.testing.assert_array_equal(unnamed.coords["star"], np.arange(len(table)))


@pytest.mark.parametrize("name", ["pmra", "pm2d", "pmplx"])
def test_the_observed_stars_hold_the_tables_astrometry_and_error_covariance(name, table):
    model = build(name, table, n_field=2)
    astrometry, cov = table_arrays(table)
    columns = [AXES.index(axis) for axis in AXES_OF[name]]
    if name == "pm2d":  # its own builder, from the errors and the one correlation
        cov = pm_covariance(np.asarray(table["pmra_error"], float),
                            np.asarray(table["pmdec_error"], float),
                            np.asarray(table["pmra_pmdec_corr"], float))
    else:
        cov = cov[:, columns][:, :, columns]
    np.testing.assert_allclose(data_value(model, "star_values"), astrometry[:, columns])
    np.testing.assert_allclose(data_value(model, "star_error_cov"), cov)
    assert np.any(cov[:, 0, 1] != 0) if len(columns) > 1 else True


@pytest.mark.parametrize("name", ["pmra", "pm2d", "pmplx", "joint", "parallax"])
def test_the_magnitude_prior_reads_each_stars_g_magnitude(name, table):
    """--magnitude-prior: the offsets are G - median(G) of the table's own stars (mag),
    and without it there are none and w is a Dirichlet."""
    g = np.asarray(table["phot_g_mean_mag"], float)
    model = build(name, table, n_field=2, magnitude_prior=True)
    np.testing.assert_allclose(data_value(model, "magnitude_offsets"), g - np.median(g))
    assert {"cluster_logit", "cluster_logit_slope"} <= {
        rv.name for rv in model.free_RVs}
    plain = build(name, table, n_field=2)
    assert "magnitude_offsets" not in plain.named_vars
    assert "w" in {rv.name for rv in plain.free_RVs}


@pytest.mark.parametrize("name", ["pmplx", "joint", "parallax"])
def test_the_cluster_distance_is_one_over_its_parallax(name, table):
    model = build(name, table)
    distance = model.compile_fn(inputs=[model["cluster_parallax"]],
                                outs=model["cluster_distance"])
    assert distance({"cluster_parallax": 0.4}) == pytest.approx(2.5)  # kpc
    assert distance({"cluster_parallax": 2.0}) == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["pm2d", "pmplx", "joint"])
def test_the_field_only_alternative_has_no_cluster(name, table):
    model = build(name, table, n_field=2, cluster=False)
    assert tuple(model.coords["component"]) == FIELD[:2]
    assert not any(rv.name.startswith("cluster") for rv in model.free_RVs)


@pytest.mark.parametrize("field", ["exponential", "gaussian"])
def test_the_parallax_likelihood_weighs_each_star_by_its_own_magnitude(field, table):
    """With --magnitude-prior, each star's log-likelihood is logsumexp over components of
    its own log weight (logistic in G) plus the component's log-density; a star's weight
    changes with its G, and the summed likelihood is the stars' sum."""
    import pymc as pm
    from scipy.special import expit, logsumexp

    from tests.conftest import observed_loglike

    model = build("parallax", table, parallax_field=field, n_field=2, magnitude_prior=True)
    outs = [model["log_weight"], model["log_component"], observed_loglike(model)]
    f = model.compile_fn(model.replace_rvs_by_values(outs), inputs=model.value_vars,
                         on_unused_input="ignore")
    point = model.initial_point()
    point["cluster_logit"], point["cluster_logit_slope"] = np.array(-0.5), np.array(-0.7)
    log_weight, log_component, loglike = f(point)
    g = np.asarray(table["phot_g_mean_mag"], float)
    cluster = expit(-0.5 - 0.7 * (g - np.median(g)))
    np.testing.assert_allclose(np.exp(log_weight[:, 0]), cluster, rtol=1e-10)
    np.testing.assert_allclose(np.exp(log_weight).sum(axis=1), 1.0, rtol=1e-10)
    assert float(loglike) == pytest.approx(logsumexp(log_weight + log_component, axis=1).sum(),
                                           rel=1e-9)
    assert pm.draw(model["stars"], random_seed=1).shape == (len(table), 1)


@pytest.mark.parametrize("name", ["pmra", "pm2d", "pmplx", "joint", "parallax"])
def test_by_default_a_model_has_a_cluster_and_two_field_components(name, table):
    # the documented defaults of from_table: cluster on, K = 2 field components (one
    # parallax field law for the parallax model), no magnitude-dependent weights
    model = build(name, table)
    components = tuple(model.coords["component"])
    assert components == (("cluster", "field_1") if name == "parallax"
                          else ("cluster", "field_1", "field_2"))
    assert "cluster_logit" not in model.named_vars and "w" in model.named_vars
