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

TRUE = {"intercept": -5.0, "log10_members": 3.0, "log10_field_density": -1.5,
        "log10_parallax": 2.0, "log10_size_pc": -1.0}


def fake_search(folder, density, n_members, seed, false=0, area=25.0, measured=False):
    """A finished search folder whose recoveries follow ``TRUE`` in the members in the data
    (``n_injected``: 80% of ``n_members``, as if the field's G range cut the rest), the
    field density (the setting, or ``measured`` on a real field), the parallax (1.0 or
    0.4 mas in turn) and the size (Plummer radius 1, 2 or 4 pc in turn)."""
    rng = np.random.default_rng(seed)
    in_data = np.round(0.8 * np.asarray(n_members)).astype(int)
    parallax = np.resize([1.0, 0.4], len(n_members))
    size = np.resize([1.0, 2.0, 4.0], len(n_members))
    eta = (TRUE["intercept"] + TRUE["log10_members"] * np.log10(in_data)
           + TRUE["log10_field_density"] * np.log10(density)
           + TRUE["log10_parallax"] * np.log10(parallax)
           + TRUE["log10_size_pc"] * np.log10(size))
    found = rng.random(len(n_members)) < 1 / (1 + np.exp(-eta))
    folder.mkdir(parents=True)
    Table({"name": [f"SIM-{i}" for i in range(len(n_members))], "n_members": n_members,
           "parallax": parallax, "n_injected": in_data, "plummer_pc": size,
           "found_as": [f"SMX-{i}" if hit else "" for i, hit in enumerate(found)]}
          ).write(folder / "truth.ecsv", format="ascii.ecsv")
    settings = {"sim_field_density": 0.5 if measured else density}
    (folder / "search_record.json").write_text(json.dumps({
        "status": "complete", "settings": settings, "region": {"area_deg2": area},
        "stars": {"field_density": density} if measured else {},
        "truth": {"false_detections": [f"SMX-F{i}" for i in range(false)]}}))
    return folder


def test_the_logistic_recovers_known_coefficients_and_the_false_rate(tmp_path):
    richness = np.repeat([10, 25, 50, 100, 200, 400], 60)
    folders = [fake_search(tmp_path / f"s{i}", density, richness, seed=i, false=false,
                           measured=i == 2)
               for i, (density, false) in enumerate([(0.3, 1), (1.0, 2), (3.0, 0)])]
    result = selection_function(folders, tmp_path / "out")
    fitted, errors = result["logistic"]["coefficients"], result["logistic"]["standard_errors"]
    for name, value in TRUE.items():
        assert abs(fitted[name] - value) < 3 * errors[name], (name, fitted, errors)
    # where the truth crosses 50% at density 1, 1 mas and 1 pc: 10**(5/3) = 46 members in the data
    assert result["members_at_50_percent"]["1 at 1 mas, 1 pc"] == pytest.approx(46.4,
                                                                                 rel=0.3)
    rate = result["false_positive_rate"]
    assert rate["false_detections"] == 3 and rate["area_deg2"] == 75.0
    assert rate["per_deg2"] == pytest.approx(0.04)
    assert rate["per_deg2_upper_95"] == pytest.approx(7.754 / 75, rel=1e-3)  # Poisson, k = 3
    binned = Table.read(tmp_path / "out" / "selection_function.ecsv", format="ascii.ecsv")
    assert len(binned) == 108 and set(binned["injected"]) == {10}
    assert list(binned["median_n_in_data"][:6]) == [8, 20, 40, 80, 160, 320]
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
