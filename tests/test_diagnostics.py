import numpy as np
import xarray as xr

from workflows.config import GateThresholds
from workflows.diagnostics import convergence_gate


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
    assert "PASSED" in report.text()


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
