import numpy as np
import pytest

from starmix.data.input_checks import DataValidationError
from starmix.data.line import LineData, load_line_table, simulate_outlier_line
from tests.conftest import make_line_data, write_line_csv


def test_reference_data_is_the_documented_draw_sequence():
    data = make_line_data()
    rng = np.random.default_rng(42)
    x = np.sort(rng.uniform(0, 10, 32))
    true_y = 3.17 * x - 11.9
    index = rng.choice(32, size=8)
    true_y[index] = rng.normal(0, 15, size=8)
    y_err = rng.uniform(0.5, 3, 32)
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.y_err, y_err)
    np.testing.assert_array_equal(data.y, rng.normal(true_y, y_err))
    assert data.is_outlier.sum() == len(set(index))
    assert data.truth == {"m": 3.17, "b": -11.9, "w_line": 1 - len(set(index)) / 32}


def test_simulator_is_deterministic_by_seed():
    first, again, other = make_line_data(1), make_line_data(1), make_line_data(2)
    np.testing.assert_array_equal(first.y, again.y)
    assert not np.allclose(first.y, other.y)


def test_table_round_trip_with_user_column_names(tmp_path):
    data = make_line_data()
    path = tmp_path / "points.csv"
    from astropy.table import Table

    Table({"mass": data.x, "lum": data.y, "e_lum": data.y_err}).write(path, format="ascii.csv")
    loaded = load_line_table(path, x="mass", y="lum", y_err="e_lum")
    np.testing.assert_allclose(loaded.y, data.y)
    assert loaded.source == str(path)


@pytest.mark.parametrize(
    ("columns", "column", "count", "reason"),
    [
        ({"y": [1.0, np.nan, np.inf] + [1.0] * 29}, "y", 2, "not finite"),
        ({"y_err": [0.0, -1.0] + [1.0] * 30}, "y_err", 2, "not positive"),
        ({"x": ["a"] * 32}, "x", None, "not numbers"),
    ],
)
def test_bad_table_values_name_the_column_and_count(tmp_path, columns, column, count, reason):
    path = write_line_csv(tmp_path / "bad.csv", **columns)
    with pytest.raises(DataValidationError) as caught:
        load_line_table(path)
    assert caught.value.column == column
    assert reason in str(caught.value)
    if count is not None:
        assert caught.value.n_bad == count
        assert f"{count} of 32 rows" in str(caught.value)


def test_missing_column_is_named(tmp_path):
    path = write_line_csv(tmp_path / "points.csv")
    with pytest.raises(DataValidationError, match="'sigma'.*missing"):
        load_line_table(path, y_err="sigma")


def test_empty_and_mismatched_arrays():
    with pytest.raises(DataValidationError, match="empty"):
        LineData(x=np.array([]), y=np.array([]), y_err=np.array([]))
    with pytest.raises(DataValidationError, match="'y': 3 of 3 rows do not match column 'x'"):
        LineData(x=np.ones(4), y=np.ones(3), y_err=np.ones(4))


def test_correlation_out_of_range_and_without_x_errors():
    ones = np.ones(5)
    with pytest.raises(DataValidationError, match="'xy_corr': 1 of 5 rows have \\|correlation"):
        LineData(ones, ones, ones, x_err=ones, xy_corr=np.array([0, 0, 1.5, 0, 0.0]))
    with pytest.raises(DataValidationError, match="need x_err"):
        LineData(ones, ones, ones, xy_corr=np.zeros(5))


def test_simulator_options_change_the_data():
    data = simulate_outlier_line(seed=3, n_points=50, n_outliers=0)
    assert len(data) == 50 and not data.is_outlier.any()
