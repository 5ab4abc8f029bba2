"""Hostile files for the table readers (issue 32), property-based and case by case: every
file either reads as a table or fails with one line that names the file (or the column and
its unit, or the column and the count of bad rows); the command line turns each into exit 1
and one "starmix: error:" line. Never a traceback, never a silently ignored column."""

import csv
import gzip
import io
import os
import tempfile
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starmix.data.footprint import estimated_footprint
from starmix.data.gaia import load_gaia, validate_gaia
from starmix.data.input_checks import DataFileError, DataValidationError, read_table
from starmix.data.line import load_line_table
from starmix.models.cluster_joint import REQUIRED_COLUMNS as JOINT_COLUMNS
from starmix.models.cluster_pm2d import REQUIRED_COLUMNS as PM2D_COLUMNS
from starmix.workflows.cli import main
from starmix.workflows.runs.options import ConfigError, read_config_file
from tests.conftest import make_field

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
EXPECTED_ERRORS = (DataFileError, DataValidationError, FileNotFoundError)
SUFFIXES = ["", ".csv", ".csv.gz", ".ecsv", ".fits", ".fits.gz", ".vot", ".xml", ".dat",
            ".txt", ".gz", ".xyz", ".CSV"]
BOMS = {"none": b"", "utf-8": b"\xef\xbb\xbf"}


def one_line_naming(error: Exception, path) -> str:
    """The error's message, checked to be one line that names ``path``."""
    message = str(error)
    assert "\n" not in message and "\r" not in message, message
    assert str(path) in message, message
    return message


def read_or_fail(path):
    """(table, None) or (None, the expected error); anything else fails the test."""
    try:
        return read_table(path), None
    except EXPECTED_ERRORS as error:
        return None, error


# --- properties --------------------------------------------------------------------------

@SETTINGS
@given(content=st.binary(max_size=600), suffix=st.sampled_from(SUFFIXES),
       bom=st.sampled_from(sorted(BOMS)), zipped=st.booleans())
def test_random_bytes_give_a_table_or_one_line_naming_the_file(content, suffix, bom, zipped):
    data = BOMS[bom] + content
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"random{suffix}"
        path.write_bytes(gzip.compress(data) if zipped else data)
        table, error = read_or_fail(path)
    if error is not None:
        one_line_naming(error, path)
        return
    assert len(table.colnames) > 0
    assert not any(name.startswith("\ufeff") for name in table.colnames)


NAMES = st.one_of(st.sampled_from(["pmra", "pmdec", "parallax", "ra", "dec", "pmra_1",
                                   "source_id", "x", "y_err"]),
                  st.from_regex(r"[a-z][a-z_]{0,7}[a-z]", fullmatch=True))


@SETTINGS
@given(names=st.lists(NAMES, min_size=1, max_size=6), n_rows=st.integers(0, 4),
       bom=st.booleans(), crlf=st.booleans(), zipped=st.booleans(),
       data=st.data())
def test_csv_headers_read_exactly_or_name_the_repeated_column(names, n_rows, bom, crlf,
                                                              zipped, data):
    """CSV with any header (repeated names, a BOM, CRLF lines, no rows, gzipped): the
    columns are the header's names in its order, or a repeated name is the error."""
    rows = [[data.draw(st.floats(-1e6, 1e6)) for _ in names] for _ in range(n_rows)]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n" if crlf else "\n").writerows([names, *rows])
    raw = ("\ufeff" if bom else "") + buffer.getvalue()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("stars.csv.gz" if zipped else "stars.csv")
        path.write_bytes(gzip.compress(raw.encode()) if zipped else raw.encode())
        table, error = read_or_fail(path)
    repeated = [name for name in names if names.count(name) > 1]
    if repeated:
        assert isinstance(error, DataFileError), error
        message = one_line_naming(error, path)
        assert f"column {repeated[0]!r} appears {names.count(repeated[0])} times" in message
        return
    assert error is None, error
    assert table.colnames == names and len(table) == n_rows
    for i, name in enumerate(names):
        np.testing.assert_allclose(np.asarray(table[name], float), [row[i] for row in rows])


@SETTINGS
@given(order=st.permutations(PM2D_COLUMNS), extra=st.lists(
    st.from_regex(r"x[a-z]{1,6}", fullmatch=True), max_size=3, unique=True),
    suffix=st.sampled_from([".csv", ".ecsv", ".dat", ".fits", ".vot"]),
    bom=st.booleans())
def test_gaia_columns_in_any_order_load_the_same_values(order, extra, suffix, bom):
    field = make_field(n_cluster=5, n_field=5)
    table = Table([field[name] for name in order])
    for name in extra:
        table[name] = np.arange(len(table), dtype=float)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"field{suffix}"
        table.write(path, format={".dat": "ascii.commented_header", ".vot": "votable"}.get(
            suffix))
        if bom and suffix in (".csv", ".ecsv", ".dat"):
            path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        loaded = load_gaia(path).data
    kept, dropped = validate_gaia(loaded, PM2D_COLUMNS)
    assert dropped == {} and set(order) | set(extra) <= set(kept.colnames)
    for name in order:
        np.testing.assert_allclose(np.asarray(kept[name], float),
                                   np.asarray(field[name], float), rtol=1e-12)


POSITIONS = st.one_of(st.floats(-400, 400), st.sampled_from(
    [np.nan, np.inf, -np.inf, 1e308, -1e308, -360.0, 360.0, -90.0, 90.0, 90.0001, -0.0,
     -1e-20, 359.9999999]))


@SETTINGS
@given(ra=st.lists(POSITIONS, min_size=1, max_size=20), data=st.data())
def test_ra_dec_ranges_count_bad_rows_and_wrap_negative_ra(ra, data):
    dec = data.draw(st.lists(POSITIONS, min_size=len(ra), max_size=len(ra)))
    n = len(ra)
    table = Table({"source_id": np.arange(n), "ra": np.array(ra), "dec": np.array(dec)})
    bad_ra = [bool(np.isfinite(v) and not -360 <= v < 360) for v in ra]
    bad_dec = [bool(np.isfinite(v) and not -90 <= v <= 90) for v in dec]
    bad = [not (np.isfinite(r) and np.isfinite(d)) or br or bd
           for r, d, br, bd in zip(ra, dec, bad_ra, bad_dec, strict=True)]
    if not any(bad):
        kept, dropped = validate_gaia(table, ["source_id", "ra", "dec"])
    elif all(bad):
        with pytest.raises(DataValidationError, match="nothing left"):
            validate_gaia(table, ["source_id", "ra", "dec"], drop_invalid=True)
        return
    else:
        with pytest.raises(DataValidationError) as error:
            validate_gaia(table, ["source_id", "ra", "dec"])
        assert "\n" not in str(error.value) and error.value.column in ("ra", "dec")
        kept, dropped = validate_gaia(table, ["source_id", "ra", "dec"], drop_invalid=True)
        assert dropped["total"] == sum(bad)
        assert dropped.get("ra: are outside [0, 360) degrees (RA in [-360, 0) is wrapped)",
                           0) == sum(bad_ra)
        assert dropped.get("dec: are outside [-90, 90] degrees", 0) == sum(bad_dec)
    good = [r for r, b in zip(ra, bad, strict=True) if not b]
    result = np.asarray(kept["ra"], float)
    assert np.all((result >= 0) & (result < 360))
    np.testing.assert_allclose(np.cos(np.radians(result)), np.cos(np.radians(good)),
                               atol=1e-12)
    np.testing.assert_allclose(np.sin(np.radians(result)), np.sin(np.radians(good)),
                               atol=1e-12)
    assert ("ra_wrapped" in kept.meta) == any(r < 0 for r in good)
    assert "ra_wrapped" not in table.meta  # the caller's table is untouched


# --- item 7: units in the file's header ----------------------------------------------------

def test_fits_units_are_converted_to_the_archive_units(tmp_path):
    field = make_field(n_cluster=30, n_field=30)
    table = field.copy()
    table["pmra"] = table["pmra"].quantity.to(u.deg / u.yr)
    table["parallax"] = table["parallax"].quantity.to(u.arcsec)
    table["ra"] = table["ra"].quantity.to(u.rad)
    table["pmdec_error"] = table["pmdec_error"].quantity.to(u.arcsec / u.yr)
    path = tmp_path / "units.fits"
    table.write(path)
    loaded = load_gaia(path).data
    assert loaded.meta["converted_units"] == {
        "ra": "rad -> deg", "parallax": "arcsec -> mas", "pmra": "deg / yr -> mas / yr",
        "pmdec_error": "arcsec / yr -> mas / yr"}
    for name in ("ra", "parallax", "pmra", "pmdec_error"):
        assert loaded[name].unit == field[name].unit
        np.testing.assert_allclose(np.asarray(loaded[name]), np.asarray(field[name]),
                                   rtol=1e-12)


@pytest.mark.parametrize(("unit", "shown"), [
    ("km", "has unit 'km', which does not convert to the archive's mas"),
    ("furlongs", "has unit 'furlongs', which astropy does not recognise: expected mas"),
    ("h:m:s", "has unit 'h:m:s', which astropy does not recognise"),
])
def test_units_that_do_not_convert_name_the_column_and_unit(tmp_path, unit, shown):
    table = make_field(n_cluster=10, n_field=10)
    table["parallax"].unit = unit
    path = tmp_path / "bad.fits"
    table.write(path)
    with pytest.raises(DataValidationError) as error:
        load_gaia(path)
    assert str(error.value).startswith(f"column 'parallax': {shown}")
    assert "\n" not in str(error.value)


def test_a_dimensionless_proper_motion_is_refused_but_magnitudes_pass(tmp_path):
    table = make_field(n_cluster=10, n_field=10)
    table["pmra"].unit = u.dimensionless_unscaled
    table["phot_g_mean_mag"].unit = u.dimensionless_unscaled
    table.write(tmp_path / "bad.ecsv")
    with pytest.raises(DataValidationError,
                       match=r"column 'pmra': has unit '' \(dimensionless\), which does not "
                             r"convert to the archive's mas / yr"):
        load_gaia(tmp_path / "bad.ecsv")
    table["pmra"].unit = "mas/yr"
    table["phot_g_mean_mag"].unit = "mags"  # a harmless spelling
    table["ra"].unit = "degrees"
    table.write(tmp_path / "good.ecsv")
    loaded = load_gaia(tmp_path / "good.ecsv").data
    assert loaded["phot_g_mean_mag"].unit == u.mag and loaded["ra"].unit == u.deg
    assert "converted_units" not in loaded.meta


def test_the_cli_names_a_unit_that_does_not_convert(tmp_path, capsys):
    table = make_field(n_cluster=60, n_field=90)
    table["parallax"].unit = u.km
    path = tmp_path / "field.fits"
    table.write(path)
    assert main(["run", "cluster", "--data", str(path), "--no-figures",
                 "--out", str(tmp_path / "o")]) == 1
    assert_one_error_line(capsys, "column 'parallax': has unit 'km'")


# --- item 8: sky positions out of range ----------------------------------------------------

def assert_one_error_line(capsys, *named):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("starmix: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for text in named:
        assert text in lines[0], lines[0]
    return lines[0]


def test_ra_beyond_360_in_the_joint_model_is_named_with_its_count(tmp_path, capsys):
    table = make_field(n_cluster=300, n_field=800)
    table["ra"][[3, 50, 400, 1099]] = [400.0, 1e308, 400.0, 1e308]
    path = tmp_path / "field.ecsv"
    table.write(path)
    assert main(["run", "cluster", "--model", "joint", "--cluster", "NGC6819", "--data",
                 str(path), "--no-figures", "--out", str(tmp_path / "o")]) == 1
    assert_one_error_line(capsys, "column 'ra': 4 of 1100 rows are outside [0, 360)")
    assert not (tmp_path / "o").exists()


def test_dec_beyond_the_pole_is_named_with_its_count(tmp_path, capsys):
    table = make_field(n_cluster=100, n_field=200)
    table["dec"][[0, 9]] = [91.0, -135.0]
    with pytest.raises(DataValidationError,
                       match=r"^column 'dec': 2 of 300 rows are outside \[-90, 90\] degrees$"):
        validate_gaia(table, JOINT_COLUMNS)
    kept, dropped = validate_gaia(table, JOINT_COLUMNS, drop_invalid=True)
    assert len(kept) == 298
    assert dropped == {"dec: are outside [-90, 90] degrees": 2, "total": 2}
    path = tmp_path / "field.ecsv"  # --radius on pm2d checks positions too
    table.write(path)
    assert main(["run", "cluster", "--data", str(path), "--radius", "5", "--center", "295.33",
                 "40.19", "--no-figures", "--out", str(tmp_path / "o")]) == 1
    assert_one_error_line(capsys, "column 'dec': 2 of 300 rows are outside [-90, 90]")


def test_negative_ra_wraps_with_a_note_and_keeps_the_footprint():
    """Blanco 1's field is stored with RA from -2 to +3.8 degrees."""
    table = make_field(n_cluster=100, n_field=200, center_ra=0.05, center_dec=-29.9)
    assert (np.asarray(table["ra"]) > 180).any()
    table["ra"] = np.where(table["ra"] > 180, np.asarray(table["ra"]) - 360, table["ra"])
    before = estimated_footprint(table)
    kept, dropped = validate_gaia(table, JOINT_COLUMNS)
    assert dropped == {} and len(kept) == len(table)
    n_negative = int((np.asarray(table["ra"]) < 0).sum())
    assert kept.meta["ra_wrapped"].startswith(
        f"{n_negative} rows with ra in [-360, 0) degrees wrapped into [0, 360)")
    assert np.all((np.asarray(kept["ra"]) >= 0) & (np.asarray(kept["ra"]) < 360))
    assert (np.asarray(table["ra"]) < 0).any()  # the caller's table is untouched
    after = estimated_footprint(kept)
    assert after.radius_arcmin == before.radius_arcmin
    assert after.center.separation(before.center).arcsec < 1e-6


def test_ra_below_minus_360_and_not_finite_are_dropped_and_counted():
    table = make_field(n_cluster=100, n_field=200)
    table["ra"][[1, 2, 3]] = [-400.0, np.nan, -1e308]
    kept, dropped = validate_gaia(table, JOINT_COLUMNS, drop_invalid=True)
    assert len(kept) == 297
    assert dropped == {"ra: are not finite (NaN or inf)": 1,
                       "ra: are outside [0, 360) degrees (RA in [-360, 0) is wrapped)": 2,
                       "total": 3}


# --- item 9: a column name twice -----------------------------------------------------------

def test_a_repeated_csv_column_is_an_error_not_pmra_1(tmp_path, capsys):
    field = make_field(n_cluster=60, n_field=90)
    path = tmp_path / "field.csv"
    field.write(path, format="ascii.csv")
    lines = path.read_text().splitlines()
    lines = [f"{line},{line.split(',')[list(field.colnames).index('pmra')]}" if i else
             f"{line},pmra" for i, line in enumerate(lines)]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError) as error:
        read_table(path)
    assert str(error.value) == (f"data file {path}: column 'pmra' appears 2 times; every "
                                "column needs its own name")
    assert main(["run", "cluster", "--data", str(path), "--no-figures",
                 "--out", str(tmp_path / "o")]) == 1
    assert_one_error_line(capsys, f"Gaia table {path}: column 'pmra' appears 2 times")


def test_a_real_pmra_1_column_is_not_a_repeat(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("pmra,pmdec,pmra_1\n1,2,3\n")
    assert read_table(path).colnames == ["pmra", "pmdec", "pmra_1"]
    path.write_text("a,a,a_1\n1,2,3\n")
    with pytest.raises(DataFileError, match="column 'a' appears 2 times"):
        read_table(path)


@pytest.mark.parametrize("kind", ["fits", "dat", "ecsv", "vot"])
def test_repeated_names_in_other_formats(tmp_path, kind):
    table = Table({"pmra": [1.0, 2.0], "pmdec": [3.0, 4.0]})
    path = tmp_path / f"t.{kind}"
    if kind == "fits":
        table.write(path)
        with fits.open(path, mode="update") as hdus:
            hdus[1].header["TTYPE2"] = "pmra"
    elif kind == "dat":
        path.write_text("# pmra pmdec pmra\n1 2 3\n")
    elif kind == "ecsv":
        table.write(path)
        path.write_text(path.read_text().replace("name: pmdec", "name: pmra")
                        .replace("pmra pmdec\n", "pmra pmra\n"))
    else:
        table.write(path, format="votable")
        path.write_text(path.read_text().replace('"pmdec"', '"pmra"'))
    with pytest.raises(DataFileError) as error:
        read_table(path)
    assert one_line_naming(error.value, path).endswith(
        "column 'pmra' appears 2 times; every column needs its own name")


# --- item 15: a byte-order mark -----------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path, encoding):
    field = make_field(n_cluster=30, n_field=30)
    path = tmp_path / "field.csv"
    field.write(path, format="ascii.csv")
    path.write_bytes(path.read_text().replace("\n", "\r\n").encode(encoding))
    loaded = load_gaia(path).data
    assert loaded.colnames == field.colnames
    kept, _ = validate_gaia(loaded, PM2D_COLUMNS)
    np.testing.assert_allclose(np.asarray(kept["pmra"]), np.asarray(field["pmra"]))


def test_a_byte_order_mark_before_a_commented_header_and_in_line_data(tmp_path):
    path = tmp_path / "points.dat"
    path.write_bytes(b"\xef\xbb\xbf# x y y_err\n" + b"".join(
        f"{i} {2 * i + 0.5} 1\n".encode() for i in range(12)))
    assert read_table(path).colnames == ["x", "y", "y_err"]
    points = tmp_path / "points.csv"
    points.write_bytes(b"\xef\xbb\xbfx,y,y_err\r\n" + b"".join(
        f"{i},{2 * i - i % 3},1\r\n".encode() for i in range(12)))
    assert len(load_line_table(points)) == 12


# --- item 16: paths that are not table files ------------------------------------------------

def special_paths(tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.csv"
    loop.symlink_to(tmp_path / "loop2.csv")
    (tmp_path / "loop2.csv").symlink_to(loop)
    bare = tmp_path / "stars"
    bare.write_text("pmra,pmdec\n1,2\n")
    return {"directory": (folder, "is a directory, not a table file"),
            "fifo": (fifo, "is a FIFO (named pipe), not a regular file"),
            "loop": (loop, "is a symbolic link loop"),
            "device": (Path("/dev/zero"), "is a device, not a regular file"),
            "bare": (bare, "has no suffix: starmix reads CSV"),
            "missing": (tmp_path / "nope.csv", "not found")}


@pytest.mark.parametrize("case", ["directory", "fifo", "loop", "device", "bare", "missing"])
def test_paths_that_are_not_table_files_say_what_they_are(tmp_path, capsys, case):
    path, said = special_paths(tmp_path)[case]
    with pytest.raises(EXPECTED_ERRORS) as error:
        read_table(path)
    assert said in one_line_naming(error.value, path)
    assert main(["run", "cluster", "--data", str(path), "--no-figures",
                 "--out", str(tmp_path / "o")]) == 1
    assert_one_error_line(capsys, str(path), said)
    assert main(["run", "outlier-line", "--data", str(path), "--out",
                 str(tmp_path / "o")]) == 1
    assert_one_error_line(capsys, f"data file {path}" if case != "missing" else str(path))
    assert not (tmp_path / "o").exists()


def test_a_bare_name_tells_how_to_rename(tmp_path):
    path = special_paths(tmp_path)["bare"][0]
    with pytest.raises(DataFileError) as error:
        read_table(path)
    assert str(error.value).endswith("; rename it with the suffix of its format (e.g. "
                                     "stars.csv)")
    zipped = tmp_path / "stars.gz"
    zipped.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    with pytest.raises(DataFileError, match="has no suffix"):
        read_table(zipped)


@pytest.mark.parametrize("case", ["directory", "fifo", "loop", "device"])
def test_config_paths_that_are_not_files_say_what_they_are(tmp_path, capsys, case):
    path, said = special_paths(tmp_path)[case]
    said = said.replace("a table file", "a TOML file")
    with pytest.raises(ConfigError) as error:
        read_config_file(path)
    assert str(error.value).startswith(f"config file {path} {said.split(',')[0]}")
    assert main(["run", "outlier-line", "--config", str(path),
                 "--out", str(tmp_path / "o")]) == 1
    assert_one_error_line(capsys, f"config file {path}")
    with pytest.raises(FileNotFoundError, match="config file not found"):
        read_config_file(tmp_path / "missing.toml")


CORRELATIONS = ("pmra_pmdec_corr", "parallax_pmra_corr", "parallax_pmdec_corr")


def test_a_table_without_correlation_columns_gets_zeros_and_says_so():
    """Most users' own archive queries select the errors but not the correlations: they are
    taken as zero, with a note in the run's data provenance, and the errors are kept."""
    from starmix.workflows.cluster.inputs import ClusterInput, load_cluster_table

    table = make_field(seed=3, n_cluster=20, n_field=80)
    table.remove_columns(list(CORRELATIONS))
    loaded, provenance = load_cluster_table(ClusterInput(model="pmplx", data=table))
    assert "taken as zero" in provenance["correlations"]
    for name in CORRELATIONS:
        assert np.all(np.asarray(loaded[name]) == 0)
    np.testing.assert_array_equal(loaded["pmra_error"], table["pmra_error"])


@pytest.mark.parametrize("kept", [["pmra_pmdec_corr"], ["parallax_pmra_corr",
                                                          "parallax_pmdec_corr"]])
def test_a_table_with_some_correlation_columns_names_the_missing_ones(kept):
    from starmix.workflows.cluster.inputs import ClusterInput, load_cluster_table

    table = make_field(seed=3, n_cluster=20, n_field=80)
    missing = [name for name in CORRELATIONS if name not in kept]
    table.remove_columns(missing)
    with pytest.raises(DataValidationError) as caught:
        load_cluster_table(ClusterInput(model="pmplx", data=table))
    message = str(caught.value)
    assert all(name in message for name in missing) and "or none" in message
    # pm2d reads only pmra_pmdec_corr: a table that has it is complete for pm2d
    if "pmra_pmdec_corr" in kept:
        load_cluster_table(ClusterInput(model="pm2d", data=table))


def test_assigned_errors_keep_the_files_own_and_follow_the_release():
    """--assign-errors fills only the error columns a file lacks; the DR2 model follows
    Brown et al. (2018)'s Table 3 at its magnitudes and is larger than DR3's."""
    from starmix.data.gaia import assign_errors, model_errors

    table = make_field(seed=3, n_cluster=10, n_field=40)
    table.remove_columns(["pmra_error", "pmdec_error", *CORRELATIONS])
    own = np.asarray(table["parallax_error"]).copy()
    filled = assign_errors(table, "dr2")
    np.testing.assert_array_equal(filled["parallax_error"], own)
    assert "pmra_error, pmdec_error" in filled.meta["errors"]
    assert "own parallax_error kept" in filled.meta["errors"]
    assert np.all(np.asarray(filled["pmra_error"]) > 0)
    dr2 = model_errors(np.array([17.0, 20.0, 21.0]), "dr2")
    np.testing.assert_allclose(dr2["parallax_error"], [0.1, 0.7, 2.0])
    np.testing.assert_allclose(dr2["pmra_error"], [0.2, 1.2, 3.0])
    dr3 = model_errors(np.array([17.0, 20.0]), "dr3")
    assert np.all(dr2["pmra_error"][:2] > 1.5 * dr3["pmra_error"])
    with pytest.raises(ValueError, match="--error-model"):
        model_errors(np.array([17.0]), "dr1")


def test_error_model_without_assign_errors_is_an_error(tmp_path, capsys):
    path = tmp_path / "field.ecsv"
    make_field(seed=3, n_cluster=10, n_field=40).write(path)
    code = main(["run", "cluster", "--data", str(path), "--error-model", "dr2",
                 "--out", str(tmp_path / "out")])
    assert code == 1
    assert "--error-model" in capsys.readouterr().err
