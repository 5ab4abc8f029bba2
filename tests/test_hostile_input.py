"""Hostile input, property-based: every random table either loads with the right count of
good and dropped rows, or fails with a :class:`DataValidationError` naming the column and
the number of bad rows; never an exception from deep inside astropy, NumPy or PyMC."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.gaia import load_gaia, validate_gaia
from data.line import load_line_table
from data.validation import DataValidationError
from models.cluster_pm2d import REQUIRED_COLUMNS as PM2D_COLUMNS
from tests.conftest import make_field, make_line_data, write_line_csv
from workflows.cli import main

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
