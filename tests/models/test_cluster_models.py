"""Each cluster model's log-likelihood against an independent SciPy computation, on a small
table (celerite2-style reference checks), plus the label-switching guard."""

import numpy as np
import pymc as pm
import pytest
from scipy import integrate
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm

from starmix.data.cluster_field import astrometric_covariance
from starmix.data.clusters import cluster_reference
from starmix.models import CLUSTER_MODELS
from starmix.models.cluster_joint import FROM_ARCHIVE_ORDER, tangent_plane
from starmix.models.field import FIELD_MIN_PM_WIDTH
from tests.conftest import make_field

GUESS = {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}
CENTER = cluster_reference("NGC6819").center


def field_covariance(log_width, chol_diag=(), chol_offdiag=()):
    """NumPy version of models.field.field_covariances for one component."""
    diag = [FIELD_MIN_PM_WIDTH + np.exp(log_width), *chol_diag]
    d = len(diag)
    chol = np.diag(diag)
    chol[np.tril_indices(d, -1)] = chol_offdiag
    return chol @ chol.T


def observed_logp(model):
    """The observed variable's log-density per star, as a graph of the free variables."""
    stars = model["stars"]
    return pm.logp(stars, model.rvs_to_values[stars])


def evaluate(model, values):
    """The model's (w, log_component, total log-likelihood) at constrained parameter values."""
    fn = model.compile_fn(inputs=model.free_RVs,
                          outs=[model["w"], model["log_component"]],
                          on_unused_input="ignore")
    w, log_component = fn(values)
    total = model.compile_fn(inputs=model.free_RVs, outs=observed_logp(model).sum(),
                             on_unused_input="ignore")(values)
    return w, log_component, total


def check_against_reference(model, values, reference_log_component):
    w, log_component, total = evaluate(model, values)
    np.testing.assert_allclose(log_component, reference_log_component, rtol=1e-9, atol=1e-9)
    expected_total = logsumexp(np.log(values["w"]) + reference_log_component, axis=1).sum()
    assert total == pytest.approx(expected_total, rel=1e-10)


@pytest.fixture(scope="module")
def table():
    return make_field(seed=11, n_cluster=15, n_field=25)


W3 = np.array([0.3, 0.5, 0.2])


def test_pmra_model(table):
    model = CLUSTER_MODELS["pmra"].from_table(table, GUESS, n_field=2)
    values = {"w": W3, "cluster_pmra": -2.95, "cluster_pmra_dispersion": 0.12,
              "field_mean": np.array([[-3.0], [-4.0]]),
              "field_cov_log_width": np.array([0.2, 1.1])}
    x, e = np.asarray(table["pmra"]), np.asarray(table["pmra_error"])
    widths = FIELD_MIN_PM_WIDTH + np.exp(values["field_cov_log_width"])
    reference = np.stack([
        norm.logpdf(x, -2.95, np.hypot(0.12, e)),
        norm.logpdf(x, -3.0, np.hypot(widths[0], e)),
        norm.logpdf(x, -4.0, np.hypot(widths[1], e)),
    ], axis=1)
    check_against_reference(model, values, reference)


def test_pm2d_model(table):
    model = CLUSTER_MODELS["pm2d"].from_table(table, GUESS, n_field=2)
    values = {"w": W3, "cluster_pm": np.array([-2.9, -3.8]), "cluster_pm_dispersion": 0.1,
              "field_mean": np.array([[-3.0, -5.0], [-2.0, -6.0]]),
              "field_cov_log_width": np.array([0.1, 0.9]),
              "field_cov_chol_diag": np.array([[1.5], [2.5]]),
              "field_cov_chol_offdiag": np.array([[0.4], [-0.7]])}
    fields = [field_covariance(values["field_cov_log_width"][k],
                               values["field_cov_chol_diag"][k],
                               values["field_cov_chol_offdiag"][k]) for k in range(2)]
    reference = np.empty((len(table), 3))
    for i, row in enumerate(table):
        c = row["pmra_pmdec_corr"] * row["pmra_error"] * row["pmdec_error"]
        error = np.array([[row["pmra_error"] ** 2, c], [c, row["pmdec_error"] ** 2]])
        star = [row["pmra"], row["pmdec"]]
        reference[i, 0] = multivariate_normal.logpdf(star, [-2.9, -3.8], 0.01 * np.eye(2) + error)
        for k in range(2):
            reference[i, k + 1] = multivariate_normal.logpdf(star, values["field_mean"][k],
                                                             fields[k] + error)
    check_against_reference(model, values, reference)


# the joint model's parameters but the cluster's sky position (shared with its lump test)
JOINT_VALUES = {"w": W3, "cluster_pm": np.array([-2.9, -3.8]), "cluster_parallax": 0.35,
                "cluster_pm_dispersion": 0.1,
                "field_mean": np.array([[-3.0, -5.0, 0.3], [-2.0, -6.0, 0.5]]),
                "field_cov_log_width": np.array([0.1, 0.9]),
                "field_cov_chol_diag": np.array([[1.5, 0.2], [2.5, 0.3]]),
                "field_cov_chol_offdiag": np.array([[0.4, 0.01, 0.02], [-0.7, 0.05, -0.03]])}


def joint_depth(parallax, size_arcmin) -> float:
    """The joint model's parallax depth (mas), written out: a Gaussian sphere of per-axis sd
    size / sqrt(2 ln 2) at distance 1 / parallax, with the 0.005 mas floor in quadrature."""
    sd = np.radians(size_arcmin / 60) / np.sqrt(2 * np.log(2))
    return np.hypot(0.005, parallax * sd)


def joint_field_covariances(values) -> list:
    return [field_covariance(values["field_cov_log_width"][k], values["field_cov_chol_diag"][k],
                             values["field_cov_chol_offdiag"][k]) for k in range(2)]


def test_joint_model(table):
    from starmix.data.footprint import Footprint

    cone = Footprint(CENTER.ra.deg, CENTER.dec.deg, 20.0, "the test's")
    model = CLUSTER_MODELS["joint"].from_table(table, GUESS, n_field=2, center=CENTER,
                                               footprint=cone)
    values = {**JOINT_VALUES, "cluster_offset": np.array([0.5, -0.3]), "plummer_radius": 6.0}
    fields = joint_field_covariances(values)
    sky = tangent_plane(np.asarray(table["ra"]), np.asarray(table["dec"]), CENTER)
    errors = astrometric_covariance(table)[:, FROM_ARCHIVE_ORDER][:, :, FROM_ARCHIVE_ORDER]
    a, radius = 6.0, 20.0
    cluster_cov = np.diag([0.01, 0.01, joint_depth(0.35, a) ** 2])
    reference = np.empty((len(table), 3))
    for i, row in enumerate(table):
        star = [row["pmra"], row["pmdec"], row["parallax"]]
        r2 = np.sum((sky[i] - values["cluster_offset"]) ** 2)
        plummer = (1 + r2 / a**2) ** -2 / (np.pi * a**2) / (radius**2 / (radius**2 + a**2))
        reference[i, 0] = np.log(plummer) + multivariate_normal.logpdf(
            star, [-2.9, -3.8, 0.35], cluster_cov + errors[i])
        for k in range(2):
            reference[i, k + 1] = -np.log(np.pi * radius**2) + multivariate_normal.logpdf(
                star, values["field_mean"][k], fields[k] + errors[i])
    check_against_reference(model, values, reference)


def test_joint_narrow_field_lump_is_the_cluster_spread_over_the_footprint(table):
    """The detection's lump alternative (``cluster_on_sky=False``): the same narrow
    component in proper motion and parallax, uniform on the sky like the field, checked
    against SciPy; and the cluster model tends to it as its Plummer radius grows."""
    from starmix.data.footprint import Footprint

    cone = Footprint(CENTER.ra.deg, CENTER.dec.deg, 20.0, "the test's")
    lump = CLUSTER_MODELS["joint"].from_table(table, GUESS, n_field=2, center=CENTER,
                                              footprint=cone, cluster_on_sky=False)
    assert "plummer_radius" not in lump.named_vars and "cluster_offset" not in lump.named_vars
    values = dict(JOINT_VALUES)
    fields = joint_field_covariances(values)
    errors = astrometric_covariance(table)[:, FROM_ARCHIVE_ORDER][:, :, FROM_ARCHIVE_ORDER]
    flat = -np.log(np.pi * 20.0**2)
    lump_depth = joint_depth(0.35, 20.0)  # as deep as the footprint is wide
    reference = np.empty((len(table), 3))
    for i, row in enumerate(table):
        star = [row["pmra"], row["pmdec"], row["parallax"]]
        reference[i, 0] = flat + multivariate_normal.logpdf(
            star, [-2.9, -3.8, 0.35], np.diag([0.01, 0.01, lump_depth**2]) + errors[i])
        for k in range(2):
            reference[i, k + 1] = flat + multivariate_normal.logpdf(
                star, values["field_mean"][k], fields[k] + errors[i])
    check_against_reference(lump, values, reference)
    cluster = CLUSTER_MODELS["joint"].from_table(table, GUESS, n_field=2, center=CENTER,
                                                 footprint=cone)
    wide = {**values, "cluster_offset": np.zeros(2), "plummer_radius": 1e5}
    assert evaluate(cluster, wide)[2] == pytest.approx(evaluate(lump, values)[2], rel=1e-7)


def exponential_field_density(x, length):
    return x**-4 * np.exp(-1 / (x * length)) / (2 * length**3) if x > 0 else 0.0


def test_parallax_model_against_adaptive_quadrature(table):
    model = CLUSTER_MODELS["parallax"].from_table(table, GUESS)
    values = {"w": np.array([0.3, 0.7]), "cluster_parallax": 0.35, "field_length_scale": 1.3}
    plx, err = np.asarray(table["parallax"]), np.asarray(table["parallax_error"])
    field = []
    for value, sigma in zip(plx, err, strict=True):
        integral, _ = integrate.quad(
            lambda x, v=value, s=sigma: norm.pdf(v, x, s) * exponential_field_density(x, 1.3),
            0, 20, points=[max(value, 1e-3), 1 / (4 * 1.3)], limit=500)
        field.append(np.log(integral))
    reference = np.stack([norm.logpdf(plx, 0.35, np.hypot(0.005, err)), field], axis=1)
    _, log_component, _ = evaluate(model, values)
    np.testing.assert_allclose(log_component[:, 0], reference[:, 0], rtol=1e-9)
    # Gauss-Legendre (48 nodes) against adaptive quadrature: within 0.1% in density
    np.testing.assert_allclose(log_component[:, 1], reference[:, 1], atol=1e-3)


def test_parallax_beta_field_and_offset(table):
    model = CLUSTER_MODELS["parallax"].from_table(table, GUESS, parallax_field="beta",
                                                  parallax_offset=True)
    assert {"field_beta_alpha", "field_beta_beta", "parallax_offset"} <= set(model.named_vars)
    assert np.isfinite(model.compile_logp()(model.initial_point()))
    with pytest.raises(ValueError, match="parallax field"):
        CLUSTER_MODELS["parallax"].from_table(table, GUESS, parallax_field="gamma")


def test_parallax_gaussian_field(table):
    """--parallax-field gaussian: cluster N(plx, s² + e²) against K field Gaussians at least
    0.2 mas wide, against SciPy; its field-only alternative has no cluster."""
    from starmix.models.cluster_parallax import FIELD_MIN_PARALLAX_WIDTH

    model = CLUSTER_MODELS["parallax"].from_table(table, GUESS, parallax_field="gaussian",
                                                  n_field=2)
    values = {"w": W3, "cluster_parallax": 0.36, "cluster_parallax_spread": 0.03,
              "field_mean": np.array([[0.5], [0.9]]),
              "field_cov_log_width": np.array([-1.0, 0.3])}
    x, e = np.asarray(table["parallax"]), np.asarray(table["parallax_error"])
    widths = FIELD_MIN_PARALLAX_WIDTH + np.exp(values["field_cov_log_width"])
    reference = np.stack([norm.logpdf(x, 0.36, np.hypot(0.03, e)),
                          norm.logpdf(x, 0.5, np.hypot(widths[0], e)),
                          norm.logpdf(x, 0.9, np.hypot(widths[1], e))], axis=1)
    check_against_reference(model, values, reference)
    field_only = CLUSTER_MODELS["parallax"].from_table(table, GUESS, parallax_field="gaussian",
                                                       n_field=3, cluster=False)
    assert list(field_only.coords["component"]) == ["field_1", "field_2", "field_3"]
    assert not [rv for rv in field_only.free_RVs if rv.name.startswith("cluster")]
    with pytest.raises(ValueError, match="offset"):
        CLUSTER_MODELS["parallax"].from_table(table, GUESS, parallax_field="gaussian",
                                              parallax_offset=True)


@pytest.mark.parametrize("name", ["pmra", "pm2d", "joint"])
def test_field_widths_are_ordered_and_named_dims(table, name):
    sky = {"center": CENTER} if name == "joint" else {}  # the only model with positions
    model = CLUSTER_MODELS[name].from_table(table, GUESS, n_field=3, **sky)
    assert model.rvs_to_transforms[model["field_cov_log_width"]] is not None
    assert list(model.coords["component"]) == ["cluster", "field_1", "field_2", "field_3"]
    assert model.named_vars_to_dims["log_component"] == ("star", "component")
    np.testing.assert_array_equal(model.coords["star"], table["source_id"])
    start = model.initial_point()["field_cov_log_width_ordered__"]
    assert np.isfinite(model.compile_logp()(model.initial_point())) and len(start) == 3


def test_field_component_count_is_checked(table):
    with pytest.raises(ValueError, match="1..5"):
        CLUSTER_MODELS["pm2d"].from_table(table, GUESS, n_field=6)


def test_a_model_takes_only_its_own_options(table):
    """A misspelt or foreign option is an error, and each model declares what it takes."""
    with pytest.raises(TypeError, match="cluster_hallo"):
        CLUSTER_MODELS["pm2d"].from_table(table, GUESS, cluster_hallo=True)
    with pytest.raises(TypeError, match="center"):
        CLUSTER_MODELS["pmra"].from_table(table, GUESS, center=CENTER)
    assert "cluster_halo" in CLUSTER_MODELS["pm2d"].options
    assert "cluster_halo" not in CLUSTER_MODELS["pmra"].options
    assert {"center", "footprint"} <= CLUSTER_MODELS["joint"].options
    assert "parallax_field" in CLUSTER_MODELS["parallax"].options


@pytest.mark.parametrize("name", ["pmra", "parallax", "pm2d", "pmplx", "joint"])
def test_each_cluster_model_is_one_object_that_knows_its_facts(table, name):
    """What the workflows read from a model: its columns (archive names), the parameters
    its model defines, the axes of its starting guess, its options and PGM labels."""
    from starmix.data.gaia import ARCHIVE_COLUMNS

    spec = CLUSTER_MODELS[name]
    assert spec.name == name and set(spec.required_columns) <= set(ARCHIVE_COLUMNS)
    assert set(spec.prior_center_axes) <= {"pmra", "pmdec", "parallax"}
    assert {"n_field", "cluster", "magnitude_prior"} <= spec.options
    assert len(spec.pgm_labels) == 3 and all("$" in label for label in spec.pgm_labels)
    sky = {"center": CENTER} if name == "joint" else {}
    names = set(spec.from_table(table, GUESS, **sky).named_vars)
    if name == "parallax":  # the Gaussian field's variant adds the cluster's spread
        names |= set(spec.from_table(table, GUESS, parallax_field="gaussian").named_vars)
    assert set(spec.parameters) <= names, spec.parameters


@pytest.mark.parametrize("name", ["pmra", "parallax", "pm2d", "pmplx", "joint"])
def test_the_cluster_priors_can_be_replaced_and_unknown_names_fail(table, name):
    """A replacement prior is the model's prior (its log-density at a point is the
    replacement's), the other priors stay, and a name the model cannot replace fails."""
    import pymc as pm
    from scipy.stats import halfnorm

    spec = CLUSTER_MODELS[name]
    sky = {"center": CENTER} if name == "joint" else {}
    options = {"parallax_field": "gaussian"} if name == "parallax" else {}
    replaced = spec.replaceable_priors[-1]  # a dispersion or spread: bounded by default
    model = spec.from_table(table, GUESS, **sky, **options,
                            priors={replaced: lambda n: pm.HalfNormal(n, 0.2)})
    value = 0.3
    logp = model.compile_fn(model.logp(vars=[model[replaced]], jacobian=False),
                            inputs=[model.rvs_to_values[model[replaced]]],
                            on_unused_input="ignore")
    assert float(logp({f"{replaced}_log__": np.log(value)})) == pytest.approx(
        halfnorm.logpdf(value, scale=0.2))
    default = spec.from_table(table, GUESS, **sky, **options)
    assert type(default[replaced].owner.op).__name__ == "UniformRV"  # without a replacement
    assert type(model[replaced].owner.op).__name__ == "HalfNormalRV"
    with pytest.raises(ValueError, match="no replaceable prior named 'field_mean'"):
        spec.from_table(table, GUESS, **sky, **options,
                        priors={"field_mean": lambda n: pm.Normal(n, 0, 1)})
