import numpy as np
import pytest
import xarray as xr

from starmix.workflows.inference.gate import convergence_gate
from starmix.workflows.runs.options import GateThresholds


def fake_idata(rng, chains=4, draws=1000, offset=0.0, divergences=0):
    values = rng.normal(size=(chains, draws)) + offset * np.arange(chains)[:, None]
    diverging = np.zeros((chains, draws), dtype=bool)
    diverging.flat[:divergences] = True
    return xr.DataTree.from_dict({
        "posterior": xr.Dataset({"a": (("chain", "draw"), values),
                                 "b": (("chain", "draw"), rng.normal(size=(chains, draws)))}),
        "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), diverging)}),
    })


def test_independent_draws_pass(rng):
    report = convergence_gate(fake_idata(rng), ["a", "b"])
    assert report.passed, report.failures
    assert report.text().splitlines() == ["convergence gate: PASSED",
                                          "  divergent transitions: 0"]


def test_gate_numbers_are_arviz_diagnostics_unrounded(rng):
    """The gate's table holds exactly r_hat, bulk and tail ESS, at full precision (a
    rounded r_hat of 1.01 would pass a chain at 1.0149)."""
    import arviz as az

    idata = fake_idata(rng)
    rows = convergence_gate(idata, ["a", "b"]).diagnostics
    assert list(rows.columns) == ["r_hat", "ess_bulk", "ess_tail"]
    for name in ("a", "b"):
        assert rows.loc[name, "r_hat"] == pytest.approx(
            float(az.rhat(idata, var_names=[name])[name]), rel=1e-12)
        assert rows.loc[name, "ess_bulk"] == pytest.approx(
            float(az.ess(idata, var_names=[name], method="bulk")[name]),
            rel=1e-12)
        assert rows.loc[name, "ess_tail"] == pytest.approx(
            float(az.ess(idata, var_names=[name], method="tail")[name]),
            rel=1e-12)


def test_disagreeing_chains_fail_on_r_hat(rng):
    report = convergence_gate(fake_idata(rng, offset=1.0), ["a", "b"])
    assert not report.passed
    assert any(reason.startswith("a: r_hat") for reason in report.failures)
    assert not any(reason.startswith("b:") for reason in report.failures)


def test_short_chains_fail_on_ess(rng):
    report = convergence_gate(fake_idata(rng, draws=50), ["a"])
    assert any("bulk ESS" in reason for reason in report.failures)
    assert any("tail ESS" in reason for reason in report.failures)


def test_divergences_fail_and_are_counted(rng):
    report = convergence_gate(fake_idata(rng, divergences=3), ["a"])
    assert report.divergences == 3 and not report.passed
    assert "3 divergent transitions" in report.text()
    relaxed = convergence_gate(fake_idata(rng, divergences=3), ["a"],
                               GateThresholds(divergences_max=5))
    assert relaxed.passed


def test_single_chain_cannot_pass(rng):
    report = convergence_gate(fake_idata(rng, chains=1), ["a"])
    assert any("need >= 2 chains" in reason for reason in report.failures)


def test_record_is_json_ready(rng):
    import json

    record = convergence_gate(fake_idata(rng), ["a"]).as_record()
    assert json.loads(json.dumps(record))["per_parameter"]["a"]["r_hat"] < 1.01


def test_failure_lines_and_record_say_exactly_what_failed(rng):
    import json

    thresholds = GateThresholds(r_hat_max=1.01, ess_bulk_min=400, ess_tail_min=400,
                                divergences_max=0)
    report = convergence_gate(fake_idata(rng, draws=60, offset=1.0, divergences=2),
                              ["a", "b"], thresholds)
    rows = report.diagnostics
    a = rows.loc["a"]
    expected_a = [f"a: r_hat {a.r_hat:.3f} > 1.01", f"a: bulk ESS {a.ess_bulk:.0f} < 400",
                  f"a: tail ESS {a.ess_tail:.0f} < 400"]
    assert report.failures[:3] == expected_a
    assert report.failures[-1] == ("2 divergent transitions (at most 0 allowed): raise "
                                   "--target-accept or reparametrise")
    assert report.text().splitlines() == ["convergence gate: FAILED",
                                          "  divergent transitions: 2",
                                          *[f"  - {line}" for line in report.failures]]
    record = json.loads(json.dumps(report.as_record()))
    assert record["passed"] is False and record["divergences"] == 2
    assert record["failures"] == report.failures
    assert record["thresholds"] == {"r_hat_max": 1.01, "ess_bulk_min": 400,
                                    "ess_tail_min": 400, "divergences_max": 0}
    assert set(record["per_parameter"]) == {"a", "b"}
    for name in ("a", "b"):
        for key in ("r_hat", "ess_bulk", "ess_tail"):
            assert record["per_parameter"][name][key] == pytest.approx(rows.loc[name, key])


def test_thresholds_are_limits_that_pass_when_met_exactly(rng):
    idata = fake_idata(rng, offset=0.05)
    rows = convergence_gate(idata, ["a"]).diagnostics.loc["a"]
    assert rows.r_hat > 1
    exact = GateThresholds(r_hat_max=float(rows.r_hat), ess_bulk_min=float(rows.ess_bulk),
                           ess_tail_min=float(rows.ess_tail), divergences_max=0)
    assert convergence_gate(idata, ["a"], exact).passed
    stricter = GateThresholds(r_hat_max=float(rows.r_hat) - 1e-6)
    assert not convergence_gate(idata, ["a"], stricter).passed


def test_one_chain_record_has_no_number_for_r_hat(rng):
    report = convergence_gate(fake_idata(rng, chains=1), ["a"])
    assert report.failures[0] == "a: r_hat is undefined (need >= 2 chains)"
    assert report.as_record()["per_parameter"]["a"]["r_hat"] is None
    assert report.text().startswith("convergence gate: FAILED")


def test_gate_judges_the_named_variables_only_and_records_its_thresholds(rng):
    """A badly mixed variable that was not asked for does not fail the gate, and the
    record carries the thresholds the gate used."""
    idata = fake_idata(rng)
    idata["posterior"]["c"] = idata["posterior"]["a"] + 3.0 * np.arange(4)[:, None]  # stuck
    limits = GateThresholds(r_hat_max=1.02, ess_bulk_min=300, ess_tail_min=200)
    report = convergence_gate(idata, ["a", "b"], limits)
    assert report.passed, report.failures
    assert list(report.diagnostics.index) == ["a", "b"]
    assert report.as_record()["thresholds"] == vars(limits)
    assert not convergence_gate(idata, ["a", "c"], limits).passed


def test_divergences_are_zero_when_the_sampler_reports_none(rng):
    from starmix.workflows.inference.gate import count_divergences

    idata = fake_idata(rng)
    assert count_divergences(idata) == 0
    without = xr.DataTree.from_dict({"posterior": idata["posterior"].to_dataset(),
                                     "sample_stats": xr.Dataset({"lp": (("chain", "draw"),
                                                                        np.zeros((4, 1000)))})})
    assert count_divergences(without) == 0
    assert count_divergences(fake_idata(rng, divergences=2)) == 2
