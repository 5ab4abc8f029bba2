"""The simulated Gaia field: deterministic, shaped as configured, errors as stated."""

import numpy as np
import pytest
from scipy import stats

from starmix.data.cluster_field import (
    astrometric_covariance,
    plummer_radii,
    simulate_cluster_field,
    write_cluster_field,
)
from starmix.data.clusters import cluster_reference
from starmix.data.gaia import ARCHIVE_COLUMNS, load_gaia, separation
from tests.conftest import make_field

CENTER = cluster_reference("NGC6819").center


def test_deterministic_by_seed():
    a, b, c = make_field(seed=3), make_field(seed=3), make_field(seed=4)
    for name in ("ra", "parallax", "pmra", "source_id", "is_member"):
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.allclose(a["pmra"], c["pmra"])


def test_schema_and_counts():
    table = make_field(n_cluster=123, n_field=456)
    assert set(ARCHIVE_COLUMNS) <= set(table.colnames)
    assert (table["is_member"].sum(), (~table["is_member"]).sum()) == (123, 456)
    assert len(set(table["source_id"])) == len(table)
    assert np.all(separation(table, CENTER).arcmin <= 20 + 1e-9)


def test_default_preset_matches_the_reference_counts():
    table = simulate_cluster_field(seed=0)
    radius = separation(table, CENTER).arcmin
    assert len(table) == pytest.approx(17_000, rel=0.02)
    assert (radius < 5).sum() == pytest.approx(3_300, rel=0.05)


def test_radial_profiles():
    table = make_field(n_cluster=3000, n_field=3000)
    radius = separation(table, CENTER).arcmin
    members = table["is_member"]
    a, r_max = 6.3, 20.0
    plummer_cdf = lambda r: (r**2 / (r**2 + a**2)) / (r_max**2 / (r_max**2 + a**2))  # noqa: E731
    assert stats.kstest(radius[members], plummer_cdf).pvalue > 1e-3
    assert stats.kstest(radius[~members], lambda r: (r / r_max) ** 2).pvalue > 1e-3
    # a wrong profile fails the same test
    assert stats.kstest(radius[~members], plummer_cdf).pvalue < 1e-6


def test_observed_scatter_matches_stated_errors():
    """Whitened residuals (full 3x3 covariance) are N(0, I): a simulator that ignored the
    correlations, or mis-scaled the errors, fails."""
    table = make_field(n_cluster=2000, n_field=4000)
    residual = np.stack([table["parallax"] - table["true_parallax"],
                         table["pmra"] - table["true_pmra"],
                         table["pmdec"] - table["true_pmdec"]], axis=-1)
    chol = np.linalg.cholesky(astrometric_covariance(table))
    white = np.linalg.solve(chol, residual[..., None])[..., 0]
    for k in range(3):
        assert stats.kstest(white[:, k], "norm").pvalue > 1e-3
    chi2 = (white**2).sum(axis=1)
    assert stats.kstest(chi2, "chi2", args=(3,)).pvalue > 1e-3
    # the correlations are really there: pulls of parallax and pmra correlate as stated
    pulls = residual / np.stack([table["parallax_error"], table["pmra_error"],
                                 table["pmdec_error"]], axis=-1)
    measured = np.corrcoef(pulls[:, 0], pulls[:, 1])[0, 1]
    assert measured == pytest.approx(np.mean(table["parallax_pmra_corr"]), abs=0.04)


def test_cluster_truth():
    table = make_field(n_cluster=3000, n_field=10)
    members = table[table["is_member"]]
    assert np.all(members["true_parallax"] == 0.356)
    assert np.std(members["true_pmra"]) == pytest.approx(0.1, rel=0.1)
    assert np.mean(members["true_pmdec"]) == pytest.approx(-3.856, abs=0.01)
    assert members["phot_g_mean_mag"].max() <= 20


def test_field_parallaxes_follow_the_exponential_density_prior():
    table = make_field(n_cluster=0, n_field=5000)
    distance = 1 / np.asarray(table["true_parallax"])
    assert stats.kstest(distance, "gamma", args=(3, 0, 1.35)).pvalue > 1e-3


def test_plummer_radii_half_number_radius(rng):
    radii = plummer_radii(rng, 200_000, 6.3, np.inf)
    assert np.median(radii) == pytest.approx(6.3, rel=0.02)


def test_round_trip_through_fits_gz(tmp_path):
    table = make_field()
    path = tmp_path / "field.fits.gz"
    write_cluster_field(table, path)
    loaded = load_gaia(path).data
    for name in table.colnames:
        np.testing.assert_array_equal(loaded[name], table[name])
        assert loaded[name].unit == table[name].unit, name
    assert str(loaded["pmra"].unit) == "mas / yr"
    assert loaded.meta["SIMULATD"] is True


def test_bad_sizes_fail():
    with pytest.raises(ValueError, match="n_cluster"):
        make_field(n_cluster=0, n_field=0)
    with pytest.raises(ValueError, match="unknown preset"):
        simulate_cluster_field("ngc9999")
