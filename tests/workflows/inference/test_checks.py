"""Predictive checks: numbers by hand, and a wrong model that the checks catch."""

import numpy as np
import pytest
from astropy.table import Table

from starmix.models import CLUSTER_MODELS
from starmix.workflows.cluster.fit import fit
from starmix.workflows.inference.checks import (
    ppc_p_values,
    predictive_checks,
    statistics,
    uniformity_distance,
)
from starmix.workflows.runs.options import SamplingOptions
from tests.conftest import make_field

GUESS = {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36}
QUICK = SamplingOptions(draws=200, tune=200, chains=2, seed=5)


def test_statistics_and_p_values_by_hand():
    values = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    median, width, low, high = statistics(values)
    assert median == 3.0 and width == pytest.approx(1.4826)
    assert low == pytest.approx(np.percentile(values, 1))
    assert high == pytest.approx(np.percentile(values, 99))
    replicated = np.stack([values + shift for shift in (-2.0, -1.0, 1.0, 2.0)])
    p = ppc_p_values(replicated, values)
    assert p[0] == 0.5  # two of four replicated medians are above the observed one
    assert p[1] == 1.0  # widths are equal: T(y_rep) >= T(y) every time


def test_uniformity_distance_tells_uniform_from_squeezed(rng):
    distance, allowed = uniformity_distance(rng.uniform(size=2000))
    assert distance < allowed and allowed == pytest.approx(1.628 / np.sqrt(2000), rel=1e-3)
    squeezed, _ = uniformity_distance(0.25 + 0.5 * rng.uniform(size=2000))
    assert squeezed == pytest.approx(0.25, abs=0.02) and squeezed > allowed


def run_checks(table: Table, n_field: int = 2):
    model = CLUSTER_MODELS["pm2d"].from_table(table, GUESS, n_field=n_field)
    idata, _ = fit(model, QUICK, lambda _message: None)
    return predictive_checks(model, idata, 1, "stars")


@pytest.mark.smoke
def test_a_right_model_passes_and_a_field_it_cannot_describe_fails():
    table = make_field(seed=3, n_cluster=150, n_field=250)
    report, groups, arrays = run_checks(table)
    assert report.passed, report.failures
    assert set(report.posterior) == {"pmra", "pmdec"} and set(report.loo_pit) == {"pmra",
                                                                               "pmdec"}
    assert groups["posterior_predictive"]["stars"].dtype == np.float32
    assert arrays["posterior"].shape[1:] == (len(table), 2)
    assert report.record()["draws"]["posterior_per_chain"] == 100
    # a field of two lumps 12 mas/yr apart in pmra, fitted with one field Gaussian: the
    # model puts stars where there are none, and the checks must say so (measured: the
    # pmra 1st percentile at p = 0.005, and LOO-PIT distances 0.1 against 0.08 allowed)
    wrong = table.copy()
    field = np.flatnonzero(~np.asarray(wrong["is_member"]))
    wrong["pmra"][field[::2]] += 12.0
    bad, _, _ = run_checks(wrong, n_field=1)
    assert not bad.passed
    assert any(reason.startswith("pmra:") for reason in bad.failures), bad.failures


def test_a_large_field_keeps_draws_enough_for_loo_pit():
    """On 86,000 stars x 3 coordinates the value budget allows 19 draws in all; the checks
    keep MIN_DRAWS, which ArviZ's LOO-PIT needs (it failed with 5 per chain of 4)."""
    import xarray as xr

    from starmix.workflows.inference.checks import MIN_DRAWS, thinned

    chains, draws = 4, 250
    posterior = xr.Dataset({"x": (("chain", "draw"), np.zeros((chains, draws)))})
    tree = xr.DataTree.from_dict({"posterior": posterior})
    subset, of = thinned(tree, 86_131 * 3)
    kept = subset["posterior"].sizes["chain"] * subset["posterior"].sizes["draw"]
    assert kept >= MIN_DRAWS >= 25 and of == draws


def test_checks_that_cannot_run_are_reported_not_fatal(monkeypatch):
    from starmix.workflows.inference import checks

    class Run:
        said = []

        def step(self, name):
            import contextlib
            return contextlib.nullcontext()

        def say(self, text):
            self.said.append(text)

    def broken(*args, **kwargs):
        raise ValueError("n_draws_tail must be at least 5")

    monkeypatch.setattr(checks, "predictive_checks", broken)
    details = {}
    report, arrays = checks.check_step(Run(), None, None, 0, "stars", "on", details)
    assert arrays is None and not report.passed
    assert "could not run: n_draws_tail" in details["predictive_checks"]["failures"][0]
    assert Run.said and "could not run" in Run.said[0]
