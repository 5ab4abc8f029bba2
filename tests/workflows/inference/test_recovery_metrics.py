"""The recovery metrics of workflows/inference/recovery.py on cases small enough to score by
hand."""

import numpy as np
import pytest
from astropy.table import Table

from starmix.workflows.inference.recovery import (
    RELIABILITY_MIN_STARS,
    membership_quality,
    parameter_bias,
    precision_recall,
    reliability_table,
    roc_auc,
)


@pytest.mark.filterwarnings("error")  # an empty class is a branch, not a 0/0
def test_auc_is_undefined_without_both_classes_and_half_for_ties():
    assert np.isnan(roc_auc(np.array([0.2, 0.9]), np.array([True, True])))
    assert np.isnan(roc_auc(np.array([0.2, 0.9]), np.array([0, 0])))
    assert roc_auc(np.full(6, 0.3), np.array([1, 0, 1, 0, 0, 1])) == pytest.approx(0.5)
    # 0/1 labels as integers read as booleans
    assert roc_auc(np.array([0.1, 0.8, 0.3]), np.array([0, 1, 0])) == pytest.approx(1.0)


@pytest.mark.filterwarnings("error")  # an empty class is a branch, not a 0/0
def test_precision_and_recall_use_a_strict_threshold():
    p = np.array([0.5, 0.6, 0.9, 0.2])
    members = np.array([1, 1, 0, 1])
    assert precision_recall(p, members) == pytest.approx((1 / 2, 1 / 3))  # 0.5 is not > 0.5
    assert precision_recall(p, members, threshold=0.1) == pytest.approx((3 / 4, 3 / 3))
    precision, recall = precision_recall(np.zeros(3), np.array([1, 0, 0]))
    assert np.isnan(precision) and recall == 0.0
    precision, recall = precision_recall(np.ones(3), np.zeros(3))
    assert precision == 0.0 and np.isnan(recall)


@pytest.mark.filterwarnings("error")  # an empty class is a branch, not a 0/0
def test_reliability_bins_counts_errors_and_edges():
    p = np.r_[np.zeros(RELIABILITY_MIN_STARS), np.full(RELIABILITY_MIN_STARS - 1, 0.55),
              np.ones(RELIABILITY_MIN_STARS)]
    members = np.r_[np.zeros(RELIABILITY_MIN_STARS), np.ones(RELIABILITY_MIN_STARS - 1),
                    np.r_[np.ones(44), np.zeros(6)]].astype(int)
    table = reliability_table(p, members)
    assert table.colnames == ["p_low", "p_high", "n_stars", "mean_p", "member_fraction",
                              "fraction_error", "within_0.1"]
    np.testing.assert_allclose(table["p_low"], np.linspace(0, 0.9, 10), atol=1e-12)
    np.testing.assert_allclose(table["p_high"], np.linspace(0.1, 1, 10), atol=1e-12)
    counts = [0] * 10
    counts[0], counts[5], counts[9] = 50, 49, 50  # P = 1 falls in the last bin, not past it
    assert list(table["n_stars"]) == counts
    first, middle, last = table[0], table[5], table[9]
    assert (first["mean_p"], first["member_fraction"]) == (0.0, 0.0)
    assert first["fraction_error"] == pytest.approx(np.sqrt((1 / 50) / 50))  # the floor
    assert last["member_fraction"] == pytest.approx(0.88)
    assert last["fraction_error"] == pytest.approx(np.sqrt(0.88 * 0.12 / 50))
    assert first["within_0.1"] is np.True_ or first["within_0.1"] is True
    assert middle["within_0.1"] is None  # 49 stars: too few to judge
    assert not last["within_0.1"]  # 0.88 against 1.0: off by more than 0.1
    empty = table[3]
    assert np.isnan(empty["mean_p"]) and np.isnan(empty["fraction_error"])
    assert empty["within_0.1"] is None


def test_membership_quality_reports_every_score():
    p = np.array([0.9, 0.8, 0.3, 0.6, 0.1, 0.05])
    members = np.array([1, 1, 1, 0, 0, 0])
    quality, reliability = membership_quality(p, members)
    assert set(quality) == {"roc_auc", "precision_at_0.5", "recall_at_0.5", "reliability_ok",
                            "brier_score"}
    assert quality["roc_auc"] == pytest.approx(8 / 9)
    assert quality["precision_at_0.5"] == pytest.approx(2 / 3)
    assert quality["recall_at_0.5"] == pytest.approx(2 / 3)
    assert quality["brier_score"] == pytest.approx(np.mean((p - members) ** 2))
    assert quality["reliability_ok"] is True  # no bin has enough stars to be judged
    assert len(reliability) == 10


def test_parameter_bias_is_signed_and_skips_unknown_names():
    summary = Table({"parameter": ["a", "b"], "mean": [1.5, -2.0], "sd": [0.5, 0.25]})
    bias = parameter_bias(summary, {"a": 1.0, "b": -1.0, "c": 3.0})
    assert set(bias) == {"a", "b"}
    assert bias["a"] == {"truth": 1.0, "mean": 1.5, "sd": 0.5, "bias_in_sd": 1.0}
    assert bias["b"]["bias_in_sd"] == pytest.approx(-4.0)


def test_auc_with_one_negative_and_the_error_floor_of_a_one_star_bin():
    # one non-member, ranked below both members: AUC 1; ranked between them: 0.5
    assert roc_auc(np.array([0.1, 0.8, 0.9]), np.array([0, 1, 1])) == pytest.approx(1.0)
    assert roc_auc(np.array([0.1, 0.8, 0.5]), np.array([1, 1, 0])) == pytest.approx(0.5)
    table = reliability_table(np.array([0.35]), np.array([0]))
    assert table[3]["n_stars"] == 1
    assert table[3]["fraction_error"] == pytest.approx(1.0)  # sqrt(max(0, 1/1) / 1)


def test_a_bin_off_by_exactly_the_tolerance_still_passes():
    """|member fraction - mean P| <= 0.1 passes: 60 stars at P = 0.25 of which 9 (0.15)
    are members is off by exactly 0.1 in floating point, and 8 (0.133) is past it."""
    p = np.full(60, 0.25)
    assert 0.25 - 9 / 60 == 0.1
    on_the_edge = reliability_table(p, np.r_[np.ones(9), np.zeros(51)].astype(int))[2]
    past_it = reliability_table(p, np.r_[np.ones(8), np.zeros(52)].astype(int))[2]
    assert on_the_edge["n_stars"] == 60 and on_the_edge["within_0.1"]
    assert not past_it["within_0.1"]
