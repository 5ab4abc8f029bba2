"""Hostile input, property-based: every random table either loads with the right count of
good and dropped rows, or fails with a :class:`DataValidationError` naming the column and
the number of bad rows; never an exception from deep inside astropy, NumPy or PyMC."""

import gzip
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starmix.data.gaia import load_gaia, validate_gaia
from starmix.data.input_checks import DataValidationError
from starmix.data.line import load_line_table
from starmix.models.cluster_pm2d import REQUIRED_COLUMNS as PM2D_COLUMNS
from starmix.workflows.cli import main
from tests.conftest import make_field, make_line_data, write_line_csv

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])
NASTY_FLOATS = st.one_of(
    st.floats(-50, 50),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e300, -1e300, 5e-324, 1.0]),
)
NUMERIC = [name for name in PM2D_COLUMNS if name != "source_id"]


@st.composite
def gaia_tables(draw):
    """pm2d input tables with random bad values and repeated source ids."""
    n_rows = draw(st.integers(0, 25))
    columns = {"source_id": draw(st.lists(st.integers(0, 40), min_size=n_rows,
                                          max_size=n_rows))}
    for name in NUMERIC:
        columns[name] = draw(st.lists(NASTY_FLOATS, min_size=n_rows, max_size=n_rows))
    return Table({name: np.asarray(values, dtype=int if name == "source_id" else float)
                  for name, values in columns.items()})


def expected_bad_rows(table: Table) -> dict[tuple[str, str], np.ndarray]:
    """Reference: the bad rows of each (column, reason), written out row by row."""
    expected = {}
    for name in NUMERIC:
        values = list(table[name])
        expected[(name, "not finite")] = np.array([not np.isfinite(v) for v in values], bool)
        if name.endswith("_error"):
            expected[(name, "not positive")] = np.array(
                [bool(np.isfinite(v) and v <= 0) for v in values], bool)
        if name.endswith("_corr"):
            expected[(name, "|correlation| > 1")] = np.array(
                [bool(np.isfinite(v) and abs(v) > 1) for v in values], bool)
    seen, repeated = set(), []
    for source_id in table["source_id"]:
        repeated.append(source_id in seen)
        seen.add(source_id)
    expected[("source_id", "repeat")] = np.array(repeated, bool)
    return expected


def union(masks, n_rows):
    bad = np.zeros(n_rows, bool)
    for mask in masks.values():
        bad |= mask
    return bad


@PROPERTY_SETTINGS
@given(gaia_tables())
def test_validate_gaia_raises_with_the_right_count_or_passes(table):
    expected = expected_bad_rows(table)
    if len(table) == 0:
        with pytest.raises(DataValidationError, match="empty table"):
            validate_gaia(table, PM2D_COLUMNS)
        return
    if not union(expected, len(table)).any():
        kept, dropped = validate_gaia(table, PM2D_COLUMNS)
        assert len(kept) == len(table) and dropped == {}
        return
    with pytest.raises(DataValidationError) as error:
        validate_gaia(table, PM2D_COLUMNS)
    counts = {key: int(mask.sum()) for key, mask in expected.items()
              if key[0] == error.value.column and mask.any()}
    assert error.value.n_bad in counts.values()
    assert error.value.n_total == len(table)
    assert f"column '{error.value.column}': {error.value.n_bad} of {len(table)} rows" in str(
        error.value)


@PROPERTY_SETTINGS
@given(gaia_tables())
def test_drop_invalid_counts_every_dropped_row(table):
    if len(table) == 0:
        return
    bad = union(expected_bad_rows(table), len(table))
    if bad.all():
        with pytest.raises(DataValidationError, match="nothing left"):
            validate_gaia(table, PM2D_COLUMNS, drop_invalid=True)
        return
    kept, dropped = validate_gaia(table, PM2D_COLUMNS, drop_invalid=True)
    assert len(kept) == len(table) - bad.sum()
    assert dropped.get("total", 0) == bad.sum()
    assert validate_gaia(kept, PM2D_COLUMNS) == (kept, {})  # what is left is clean


TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]),
               min_size=1, max_size=12)


@PROPERTY_SETTINGS
@given(names=st.lists(TEXT, min_size=len(PM2D_COLUMNS), max_size=len(PM2D_COLUMNS),
                      unique_by=lambda name: name.strip().casefold()),
       values=st.lists(st.floats(0.05, 0.95), min_size=3, max_size=3))
def test_any_unicode_column_names_load_through_the_mapping(names, values):
    names = [f"c{i}_{name.strip() or 'blank'}" for i, name in enumerate(names)]
    table = Table({name: np.asarray(values) if i else np.arange(3)
                   for i, name in enumerate(names)})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "stars.ecsv"
        table.write(path)
        loaded = load_gaia(path, dict(zip(names, PM2D_COLUMNS, strict=True))).data
    kept, _ = validate_gaia(loaded, PM2D_COLUMNS)
    assert len(kept) == 3
    np.testing.assert_array_equal(np.asarray(kept["pmra"]), values)


CELLS = st.one_of(NASTY_FLOATS.map(repr), st.sampled_from(["", "abc", "1e999", "--", "é", " "]))


@PROPERTY_SETTINGS
@given(rows=st.lists(st.tuples(CELLS, CELLS, CELLS), max_size=12))
def test_line_csv_loads_or_names_the_column(rows):
    text = "x,y,y_err\n" + "".join(f'"{x}","{y}","{e}"\n' for x, y, e in rows)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "points.csv"
        path.write_text(text, encoding="utf-8")
        try:
            data = load_line_table(path)
        except DataValidationError as error:
            assert error.column in {"x", "y", "y_err"}
            assert str(error).startswith(f"column '{error.column}': ")
            return
    assert len(data) == len(rows) > 0
    assert np.all(np.isfinite(data.x)) and np.all(data.y_err > 0)
    # the loaded numbers are the file's numbers, row by row
    for column, values in (("x", data.x), ("y", data.y), ("y_err", data.y_err)):
        index = ("x", "y", "y_err").index(column)
        np.testing.assert_array_equal(values, [float(row[index]) for row in rows])


def test_wrong_dtype_column_is_named_with_its_count():
    table = Table({**{name: np.ones(4) for name in NUMERIC}, "source_id": np.arange(4)})
    table["pmra"] = ["1.0", "fast", "2", "n/a"]
    with pytest.raises(DataValidationError, match=r"column 'pmra': 2 of 4 rows are not numbers"):
        validate_gaia(table, PM2D_COLUMNS)


@pytest.mark.smoke
@pytest.mark.parametrize(("column", "value"), [("y_err", 1e200), ("y", 1e300)])
def test_overflowing_values_stop_before_sampling(tmp_path, capsys, column, value):
    """Finite but absurd values pass the row checks; the starting-point check names them."""
    values = getattr(make_line_data(), column).copy()
    values[[2, 9]] = value
    path = write_line_csv(tmp_path / "bad.csv", **{column: values})
    assert main(["run", "outlier-line", "--data", str(path), "--out", str(tmp_path / "o")]) == 1
    message = capsys.readouterr().err
    assert f"column '{column}': 2 of 32 rows give a non-finite likelihood" in message
    assert not (tmp_path / "o").exists()


@pytest.mark.smoke
def test_overflowing_errors_stop_the_cluster_workflow(tmp_path, capsys):
    table = make_field(n_cluster=60, n_field=90)
    table["pmdec_error"][[0, 5, 7]] = 1e200
    path = tmp_path / "field.ecsv"
    table.write(path)
    code = main(["run", "ngc6819", "--model", "pm2d", "--data", str(path),
                 "--out", str(tmp_path / "o")])
    assert code == 1
    assert "column 'pmdec_error': 3 of" in capsys.readouterr().err


# --- the numbered cases of the hostile-input audit (issue 17) -----------------------------

def cluster_run(tmp_path, table, *options, name="field.ecsv"):
    path = tmp_path / name
    table.write(path, overwrite=True)
    return main(["run", "cluster", "--data", str(path), "--no-figures", *options,
                 "--out", str(tmp_path / "o")])


@pytest.mark.parametrize(("options", "named"), [
    (["--g-max", "5"], "quality cut --g-max 5 leaves no star to fit"),
    (["--ruwe-max", "0.5"], "quality cut --ruwe-max 0.5 leaves no star to fit"),
    (["--radius", "0.01", "--center", "295.33", "40.19"], "quality cut --radius 0.01"),
    (["--radius", "0.5", "--center", "10", "-30"], "quality cut --radius 0.5"),
    (["--g-max", "13"], "cluster model needs at least 50"),
])
def test_nothing_left_to_fit_names_the_cut_and_counts(tmp_path, capsys, options, named):
    assert cluster_run(tmp_path, make_field(n_cluster=100, n_field=200), *options) == 1
    message = capsys.readouterr().err
    assert named in message and "Traceback" not in message
    assert "before it" in message or "stars left to fit" in message
    assert not (tmp_path / "o").exists()


def test_radius_on_a_table_without_positions_names_the_column(tmp_path, capsys):
    table = make_field(n_cluster=100, n_field=200)
    table.remove_columns(["ra", "dec"])
    assert cluster_run(tmp_path, table, "--radius", "5", "--cluster", "NGC6819") == 1
    assert "column 'ra': is missing, and --radius cuts on the sky position" in (
        capsys.readouterr().err)


def test_unreadable_files_name_the_file(tmp_path, capsys):
    junk = tmp_path / "junk.fits"
    junk.write_bytes(np.random.default_rng(3).bytes(5000))
    truncated = tmp_path / "cut.csv.gz"
    full = tmp_path / "full.csv"
    make_field(n_cluster=100, n_field=200).write(full, format="ascii.csv")
    truncated.write_bytes(gzip.compress(full.read_bytes())[:4000])
    for path, command in [(junk, "outlier-line"), (junk, "cluster"), (truncated, "cluster"),
                          (truncated, "outlier-line")]:
        assert main(["run", command, "--data", str(path), "--out", str(tmp_path / "o")]) == 1
        message = capsys.readouterr().err
        assert f"{path}: cannot be read as" in message and "Traceback" not in message
    assert not (tmp_path / "o").exists()


def test_a_gzipped_csv_of_points_loads(tmp_path):
    path = write_line_csv(tmp_path / "points.csv")
    zipped = tmp_path / "points.csv.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    assert len(load_line_table(zipped)) == 32


@pytest.mark.smoke
def test_tiny_errors_blame_the_error_column(tmp_path, capsys):
    path = write_line_csv(tmp_path / "bad.csv", y_err=np.full(32, 1e-300))
    assert main(["run", "outlier-line", "--data", str(path), "--out", str(tmp_path / "o")]) == 1
    message = capsys.readouterr().err
    assert "column 'y_err': 32 of 32 rows give a non-finite likelihood" in message


def test_identical_values_and_single_stars_say_so(tmp_path, capsys):
    table = make_field(n_cluster=100, n_field=200)
    table["pmra"] = 1.5
    assert cluster_run(tmp_path, table) == 1
    assert re.search(r"column 'pmra': (\d+) of \1 rows are all identical \(1.5\)",
                     capsys.readouterr().err)
    assert cluster_run(tmp_path, make_field(n_cluster=100, n_field=200)[:1]) == 1
    message = capsys.readouterr().err
    assert "1 stars left to fit" in message and "at least 50" in message
    path = write_line_csv(tmp_path / "flat.csv", x=np.full(32, 2.0))
    assert main(["run", "outlier-line", "--data", str(path), "--out", str(tmp_path / "o")]) == 1
    assert "column 'x': 32 of 32 rows are all identical" in capsys.readouterr().err


def test_masked_source_ids_are_bad_rows_not_fill_values(tmp_path):
    table = Table(make_field(n_cluster=100, n_field=200), masked=True)
    table["source_id"].mask[[3, 8]] = True
    path = tmp_path / "field.fits"
    table.write(path)
    loaded = load_gaia(path).data
    with pytest.raises(DataValidationError,
                       match=r"column 'source_id': 2 of 300 rows are blank \(masked\)"):
        validate_gaia(loaded, PM2D_COLUMNS)
    kept, dropped = validate_gaia(loaded, PM2D_COLUMNS, drop_invalid=True)
    assert len(kept) == 298 and dropped["total"] == 2
    assert 999999 not in set(np.asarray(kept["source_id"]))


def test_drop_invalid_drops_text_cells(tmp_path):
    table = Table({**{name: 0.1 + 0.1 * np.arange(6) for name in NUMERIC},
                   "source_id": np.arange(6)})
    table["pmra"] = ["1.0", "fast", "2", "n/a", "3", "4"]
    kept, dropped = validate_gaia(table, PM2D_COLUMNS, drop_invalid=True)
    assert len(kept) == 4 and dropped == {"pmra: are not numbers": 2, "total": 2}
    assert kept["pmra"].dtype.kind == "f"


def test_outlier_line_drop_invalid(tmp_path):
    data = make_line_data()
    y = data.y.astype(object)
    y[[1, 4]] = "oops"
    y_err = data.y_err.copy()
    y_err[7] = -1
    path = write_line_csv(tmp_path / "points.csv", y=y, y_err=y_err)
    with pytest.raises(DataValidationError, match="column 'y': 2 of 32 rows are not numbers"):
        load_line_table(path)
    loaded = load_line_table(path, drop_invalid=True)
    assert len(loaded) == 29
    assert loaded.dropped == {"y: are not numbers": 2, "y_err: are not positive": 1,
                              "total": 3}


@pytest.mark.parametrize("n_points", [1, 2, 9])
def test_too_few_points_are_refused(tmp_path, capsys, n_points):
    data = make_line_data()
    table = Table({"x": data.x[:n_points], "y": data.y[:n_points],
                   "y_err": data.y_err[:n_points]})
    path = tmp_path / "few.csv"
    table.write(path, format="ascii.csv")
    assert main(["run", "outlier-line", "--data", str(path), "--out", str(tmp_path / "o")]) == 1
    assert f"{n_points} points; the outlier line needs at least 10" in capsys.readouterr().err


def test_usage_errors_exit_1_not_the_gate_code(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "outlier-line", "--draws", "abc"])
    assert stop.value.code == 1
    assert "argument --draws: invalid int value: 'abc'" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "named"), [
    ('intrinsic-scatter = "false"', "key 'intrinsic_scatter' must be true or false"),
    ('figures = "no"', "key 'figures' must be true or false"),
    ('draws = "abc"', "key 'draws' must be a whole number"),
    ("draws = 100.5", "key 'draws' must be a whole number"),
    ("target_accept = 0.9\ntarget-accept = 0.8", "'target-accept' sets the same option"),
    ("draws = [", "not valid TOML"),
    ("cores = 0", "--cores must be at least 1"),
])
def test_config_values_are_typed(tmp_path, capsys, text, named):
    path = tmp_path / "run.toml"
    path.write_text(text + "\n")
    assert main(["run", "outlier-line", "--config", str(path),
                 "--out", str(tmp_path / "o")]) == 1
    message = capsys.readouterr().err
    assert named in message and (f"config file {path}" in message or "--cores" in message)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("argv", "named"), [
    (["simulate", "ngc6819", "--radius", "0", "--out", "f.fits"], "--radius must be positive"),
    (["simulate", "ngc6819", "--out", "f.txt"], "--out f.txt: simulate writes FITS"),
    (["simulate", "ngc6819", "--n-cluster", "-5", "--out", "f.fits"], "--n-cluster must be 0"),
    (["simulate", "nope", "--out", "f.fits"], "unknown preset 'nope'"),
    (["fetch-gaia", "NGC188", "--radius", "abc", "--out", "f.fits"], "--radius must be a"),
])
def test_simulate_and_fetch_options_are_checked(tmp_path, monkeypatch, capsys, argv, named):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    assert named.replace("must be positive", "must be a positive") in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
