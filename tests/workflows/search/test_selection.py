"""``starmix selection-function``: pooled injection and recovery. The logistic is checked
against searches whose recoveries are drawn from a known logistic (a wrong fit, or one
that ignored density, would miss its coefficients by many standard errors), and the
false-positive rate against its Poisson limit."""

import json

import numpy as np
import pytest
from astropy.table import Table

from starmix.workflows.cli import main
from starmix.workflows.search.selection import selection_function, wilson

TRUE = {"intercept": -5.0, "log10_members": 3.0, "log10_field_density": -1.5}


def fake_search(folder, density, n_members, seed, false=0, area=25.0):
    """A finished search folder on a simulated sky whose recoveries follow ``TRUE``."""
    rng = np.random.default_rng(seed)
    eta = (TRUE["intercept"] + TRUE["log10_members"] * np.log10(n_members)
           + TRUE["log10_field_density"] * np.log10(density))
    found = rng.random(len(n_members)) < 1 / (1 + np.exp(-eta))
    folder.mkdir(parents=True)
    Table({"name": [f"SIM-{i}" for i in range(len(n_members))], "n_members": n_members,
           "parallax": np.full(len(n_members), 1.0),
           "found_as": [f"SMX-{i}" if hit else "" for i, hit in enumerate(found)]}
          ).write(folder / "truth.ecsv", format="ascii.ecsv")
    (folder / "search_record.json").write_text(json.dumps({
        "status": "complete", "settings": {"sim_field_density": density},
        "region": {"area_deg2": area},
        "truth": {"false_detections": [f"SMX-F{i}" for i in range(false)]}}))
    return folder


def test_the_logistic_recovers_known_coefficients_and_the_false_rate(tmp_path):
    richness = np.repeat([10, 25, 50, 100, 200, 400], 60)
    folders = [fake_search(tmp_path / f"s{i}", density, richness, seed=i, false=false)
               for i, (density, false) in enumerate([(0.3, 1), (1.0, 2), (3.0, 0)])]
    result = selection_function(folders, tmp_path / "out")
    fitted, errors = result["logistic"]["coefficients"], result["logistic"]["standard_errors"]
    for name, value in TRUE.items():
        assert abs(fitted[name] - value) < 3 * errors[name], (name, fitted, errors)
    # where the truth crosses 50% at density 1: 10**(5/3) = 46 members
    assert result["members_at_50_percent"]["1"] == pytest.approx(46.4, rel=0.25)
    rate = result["false_positive_rate"]
    assert rate["false_detections"] == 3 and rate["area_deg2"] == 75.0
    assert rate["per_deg2"] == pytest.approx(0.04)
    assert rate["per_deg2_upper_95"] == pytest.approx(7.754 / 75, rel=1e-3)  # Poisson, k = 3
    binned = Table.read(tmp_path / "out" / "selection_function.ecsv", format="ascii.ecsv")
    assert len(binned) == 18 and set(binned["injected"]) == {60}
    assert np.all(binned["completeness_lo68"] <= binned["completeness"])


def test_wilson_interval_and_the_command(tmp_path, capsys):
    low, high = wilson(2, 2)
    assert (low, high) == pytest.approx((2 / 3, 1.0))
    folder = fake_search(tmp_path / "s", 0.5, np.repeat([50, 500], 10), seed=1)
    assert main(["selection-function", str(folder), "--out", str(tmp_path / "o")]) == 0
    assert "injected clusters found" in capsys.readouterr().out
    (tmp_path / "plain").mkdir()
    assert main(["selection-function", str(tmp_path / "plain"), "--out",
                 str(tmp_path / "o2")]) == 1
    assert "no search_record.json" in capsys.readouterr().err
