"""Loading, validation, quality cuts and sky selection of Gaia tables."""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from starmix.data.clusters import cluster_reference, resolve_center
from starmix.data.gaia import (
    QualityCuts,
    apply_quality_cuts,
    assign_dr3_errors,
    correct_parallax_zero_point,
    load_gaia,
    validate_gaia,
)
from starmix.data.input_checks import DataValidationError
from tests.conftest import make_field

ASTROMETRY = ["source_id", "parallax", "parallax_error", "pmra", "pmra_error", "pmdec",
              "pmdec_error", "pmra_pmdec_corr"]


def small_table(**changes):
    table = make_field(n_cluster=5, n_field=5)
    for name, (index, value) in changes.items():
        table[name][index] = value
    return table


@pytest.mark.parametrize(
    ("changes", "column", "reason", "count"),
    [
        ({"pmra": ([0, 3], np.nan)}, "pmra", "not finite", 2),
        ({"parallax": ([1], np.inf)}, "parallax", "not finite", 1),
        ({"pmra_error": ([0, 1, 2], 0.0)}, "pmra_error", "not positive", 3),
        ({"parallax_error": ([4], -0.1)}, "parallax_error", "not positive", 1),
        ({"pmra_pmdec_corr": ([2], 1.2)}, "pmra_pmdec_corr", "correlation", 1),
    ],
)
def test_each_bad_value_is_named_with_its_count(changes, column, reason, count):
    with pytest.raises(DataValidationError) as caught:
        validate_gaia(small_table(**changes), ASTROMETRY)
    assert (caught.value.column, caught.value.n_bad) == (column, count)
    assert reason in str(caught.value) and f"{count} of 10 rows" in str(caught.value)


def test_duplicate_ids_missing_columns_and_empty_tables():
    table = small_table()
    table["source_id"][3] = table["source_id"][0]
    with pytest.raises(DataValidationError, match="'source_id': 1 of 10 rows repeat"):
        validate_gaia(table, ASTROMETRY)
    with pytest.raises(DataValidationError, match="'ruwe_x'.*missing"):
        validate_gaia(small_table(), [*ASTROMETRY, "ruwe_x"])
    with pytest.raises(DataValidationError, match="empty table"):
        validate_gaia(small_table()[:0], ASTROMETRY)


def test_drop_invalid_counts_every_reason():
    table = small_table(pmra=([0, 1], np.nan), pmra_error=([1, 2], -1.0))
    kept, dropped = validate_gaia(table, ASTROMETRY, drop_invalid=True)
    assert len(kept) == 7
    assert dropped == {"pmra: are not finite (NaN or inf)": 2,
                       "pmra_error: are not positive": 2, "total": 3}
    everything_bad = small_table(pmra=(slice(None), np.nan))
    with pytest.raises(DataValidationError, match="nothing left"):
        validate_gaia(everything_bad, ASTROMETRY, drop_invalid=True)


def test_column_mapping_and_units(tmp_path):
    path = tmp_path / "vizier.csv"
    Table({"Plx": [0.5, np.nan], "pmRA": [-2.0, -3.0], "my_pmdec": [1.0, 2.0]}).write(path)
    data = load_gaia(path, columns={"my_pmdec": "pmdec"}).data
    assert data.colnames == ["parallax", "pmra", "pmdec"]
    assert data["parallax"].unit == u.mas and data["pmdec"].unit == u.mas / u.yr
    assert np.isnan(data["parallax"][1])
    assert data.meta["renamed"] == {"Plx": "parallax", "pmRA": "pmra", "my_pmdec": "pmdec"}
    with pytest.raises(DataValidationError, match="'nope'.*missing"):
        load_gaia(path, columns={"nope": "pmdec"})


def test_blank_cells_become_nan_not_fill_values(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("source_id,parallax,pmra\n1,0.5,\n2,,-2.0\n")
    data = load_gaia(path).data
    assert np.isnan(data["pmra"][0]) and np.isnan(data["parallax"][1])
    with pytest.raises(DataValidationError, match="'parallax': 1 of 2"):
        validate_gaia(data, ["parallax"])


@pytest.mark.parametrize("suffix", [".fits", ".ecsv", ".vot", ".csv"])
def test_formats(tmp_path, suffix):
    table = make_field(n_cluster=3, n_field=3)[["source_id", "ra", "dec", "parallax", "pmra"]]
    path = tmp_path / f"t{suffix}"
    table.write(path, format={".vot": "votable", ".csv": "ascii.csv"}.get(suffix))
    data = load_gaia(path).data
    np.testing.assert_allclose(data["pmra"], table["pmra"])
    assert data["pmra"].unit == u.mas / u.yr


def test_quality_cuts_are_counted_and_missing_columns_noted():
    table = make_field(n_cluster=200, n_field=800)
    kept, record = apply_quality_cuts(table, QualityCuts(g_max=19.0, radius_arcmin=10),
                                      center=cluster_reference("NGC6819").center)
    assert len(kept) == len(table) - sum(record["removed"].values())
    assert np.all(kept["ruwe"] < 1.4) and np.all(kept["phot_g_mean_mag"] <= 19)
    assert record["removed"]["ruwe_max"] > 0
    _, record = apply_quality_cuts(table[["parallax", "phot_g_mean_mag"]], QualityCuts())
    assert record["not_applied"] == ["ruwe_max: no 'ruwe' column"]


def test_cluster_centres_offline():
    center, origin = resolve_center("NGC 6819")
    assert (center.ra.deg, center.dec.deg) == (295.327, 40.190) and "built-in" in origin
    assert resolve_center("m67")[0].ra.deg == 132.846
    assert resolve_center(center=(10.0, -5.0))[1] == "given by --center"
    with pytest.raises(ValueError, match="out of range"):
        resolve_center(center=(400.0, 0.0))


def test_unknown_cluster_offline_says_what_to_do(monkeypatch):
    from astropy.coordinates import SkyCoord

    def offline(name):
        raise OSError("no network")

    monkeypatch.setattr(SkyCoord, "from_name", offline)
    with pytest.raises(ValueError, match="Pass --center RA DEC"):
        resolve_center("Berkeley 99")


def test_errors_from_g():
    table = Table({"phot_g_mean_mag": [12.0, 17.0, 20.0]})
    with_errors = assign_dr3_errors(table)
    assert np.all(np.diff(with_errors["parallax_error"]) > 0)
    assert with_errors["parallax_error"][1] == pytest.approx(0.079, abs=0.005)
    assert "pygaia" in with_errors.meta["errors"]


def test_zero_point_correction():
    pytest.importorskip("zero_point")
    table = Table({"parallax": [0.3, 0.4] * u.mas, "phot_g_mean_mag": [15.0, 17.0],
                   "nu_eff_used_in_astrometry": [1.5, 1.55], "pseudocolour": [np.nan, np.nan],
                   "ecl_lat": [40.0, 20.0], "astrometric_params_solved": [31, 31]})
    corrected = correct_parallax_zero_point(table)
    assert np.all(corrected["parallax"] > table["parallax"])  # the DR3 zero-point is negative
    assert "Lindegren" in corrected.meta["zero_point"]
    with pytest.raises(DataValidationError, match="'nu_eff_used_in_astrometry'"):
        correct_parallax_zero_point(table[["parallax", "phot_g_mean_mag"]])


def test_zero_point_without_its_package_says_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_zero_point(name, *args, **kwargs):
        if name == "zero_point":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_zero_point)
    table = Table({name: [1.0] for name in ("parallax", "phot_g_mean_mag",
                                             "nu_eff_used_in_astrometry", "pseudocolour",
                                             "ecl_lat", "astrometric_params_solved")})
    with pytest.raises(ValueError, match=r"gaiadr3-zeropoint.*\.\[zeropoint\]"):
        correct_parallax_zero_point(table)
