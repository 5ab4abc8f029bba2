"""Tests that a plausible bug fails: each names the mutation it kills (issue 22).

Every expected value here is computed independently of the code under test: element by
element, by hand from the formula, or by a library the code does not use for it.
"""

import json
import signal

import numpy as np
import pytest
import xarray as xr
from astropy.table import Table

from starmix.data.cluster_field import CORRELATION_COLUMNS, astrometric_covariance
from starmix.workflows.inference.gate import convergence_gate
from starmix.workflows.inference.recovery import (
    membership_quality,
    parameter_bias,
    precision_recall,
    reliability_table,
    roc_auc,
)
from starmix.workflows.runs.options import GateThresholds

K_KMS = 4.740470463  # km/s per (mas/yr x kpc)


# -- data/cluster_field.py: the 3x3 astrometric covariance --------------------------------

def test_astrometric_covariance_matches_an_element_by_element_construction(rng):
    """Kills: the sign of any correlation term flipped, or two terms swapped, in
    ``correlation_matrices`` (the simulator and the joint model share it)."""
    n = 20
    errors = {"parallax_error": rng.uniform(0.02, 0.5, n), "pmra_error": rng.uniform(0.02, 0.5, n),
              "pmdec_error": rng.uniform(0.02, 0.5, n),
              "parallax_pmra_corr": rng.uniform(-0.4, 0.4, n),
              "parallax_pmdec_corr": rng.uniform(-0.4, 0.4, n),
              "pmra_pmdec_corr": rng.uniform(-0.4, 0.4, n)}
    cov = astrometric_covariance(errors)
    s = {0: errors["parallax_error"], 1: errors["pmra_error"], 2: errors["pmdec_error"]}
    rho = {(0, 1): errors["parallax_pmra_corr"], (0, 2): errors["parallax_pmdec_corr"],
           (1, 2): errors["pmra_pmdec_corr"]}
    for i in range(3):
        np.testing.assert_allclose(cov[:, i, i], s[i] ** 2, rtol=1e-12)
        for j in range(i + 1, 3):
            np.testing.assert_allclose(cov[:, i, j], rho[(i, j)] * s[i] * s[j], rtol=1e-12)
            np.testing.assert_allclose(cov[:, j, i], rho[(i, j)] * s[i] * s[j], rtol=1e-12)
    assert {(i, j): name for (i, j), name in CORRELATION_COLUMNS.items()} == {
        (0, 1): "parallax_pmra_corr", (0, 2): "parallax_pmdec_corr",
        (1, 2): "pmra_pmdec_corr"}


def test_simulated_errors_have_the_sign_of_their_correlation():
    """The simulated field's noise is correlated as its own columns say (a flipped sign
    in the covariance gives the opposite sign here)."""
    from starmix.data.cluster_field import _observe

    n = 20_000
    errors = {"parallax_error": np.full(n, 0.1), "pmra_error": np.full(n, 0.2),
              "pmdec_error": np.full(n, 0.3), "parallax_pmra_corr": np.full(n, -0.5),
              "parallax_pmdec_corr": np.full(n, 0.3), "pmra_pmdec_corr": np.full(n, 0.6)}
    stars = {"parallax": np.zeros(n), "pmra": np.zeros(n), "pmdec": np.zeros(n)}
    noise = _observe(np.random.default_rng(4), stars, errors)
    measured = np.corrcoef(noise.T)
    np.testing.assert_allclose([measured[0, 1], measured[0, 2], measured[1, 2]],
                               [-0.5, 0.3, 0.6], atol=0.02)


# -- workflows/inference/gate.py: the gate covers every parameter ----------------------------

def gate_tree(rng, **variables):
    return xr.DataTree.from_dict({
        "posterior": xr.Dataset({name: (("chain", "draw"), value)
                                 for name, value in variables.items()}),
        "sample_stats": xr.Dataset({"diverging": (("chain", "draw"),
                                                  np.zeros((4, 500), bool))})})


@pytest.mark.parametrize("bad_position", [0, 1, 2])
def test_the_gate_fails_on_any_parameter_not_only_the_first(rng, bad_position):
    """Kills: the gate checking only the first (or last) name of ``var_names``."""
    good = [rng.normal(size=(4, 500)) for _ in range(3)]
    stuck = rng.normal(size=(4, 500)) + np.array([0, 0, 3, 3])[:, None]  # chains disagree
    values = {f"p{k}": (stuck if k == bad_position else good[k]) for k in range(3)}
    report = convergence_gate(gate_tree(rng, **values), list(values), GateThresholds())
    assert not report.passed
    assert any(reason.startswith(f"p{bad_position}: r_hat") for reason in report.failures)
    assert not any(reason.startswith(f"p{k}:") for k in range(3) if k != bad_position
                   for reason in report.failures)
    assert set(report.diagnostics.index) == set(values)


def test_the_gate_passes_good_chains_and_counts_divergences(rng):
    tree = gate_tree(rng, a=rng.normal(size=(4, 500)), b=rng.normal(size=(4, 500)))
    assert convergence_gate(tree, ["a", "b"], GateThresholds()).passed
    tree["sample_stats"]["diverging"][0, :3] = True
    report = convergence_gate(tree, ["a", "b"], GateThresholds(divergences_max=2))
    assert not report.passed and report.divergences == 3


# -- workflows/runs/files.py: every writer is atomic ----------------------------------------

def _writers():
    from starmix.workflows.runs import files as results

    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"a": ("draw", np.arange(3.0))})})
    table = Table({"a": [1.0, 2.0]})
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure = plt.figure()
    return {
        # writer, what it writes, file name, the library call it makes, the position of
        # that call's destination argument
        # a posterior above IN_MEMORY_BYTES is streamed by HDF5, one below it is encoded
        # in memory and written as bytes
        "write_posterior": (results.write_posterior, tree, "posterior.nc",
                            "xarray:DataTree.to_netcdf", 1),
        "write_posterior_in_memory": (results.write_posterior, tree, "posterior.nc",
                                      "starmix.workflows.runs.files:_write_bytes", 0),
        "write_table": (results.write_table, table, "summary.ecsv",
                        "astropy.io.ascii.ui:write", 1),
        "write_json": (results.write_json, {"a": 1}, "record.json",
                       "pathlib:Path.write_text", 0),
        "write_text": (results.write_text, "text", "notes.txt", "pathlib:Path.write_text", 0),
        "save_figure": (results.save_figure, figure, "figure.png",
                        "matplotlib.figure:Figure.savefig", 1),
    }


@pytest.mark.parametrize("name", ["write_posterior", "write_posterior_in_memory",
                                  "write_table", "write_json", "write_text", "save_figure"])
def test_every_writer_is_atomic(tmp_path, monkeypatch, name):
    """Kills: any writer of :mod:`starmix.workflows.runs.files` writing straight to its final name.
    The underlying library call is made to write half a file and then fail; the file
    from before must be untouched and no partial file left."""
    import importlib

    writer, payload, filename, target, position = _writers()[name]
    path = tmp_path / filename
    path.write_bytes(b"the earlier, complete file")
    module_name, attribute = target.split(":")
    owner = importlib.import_module(module_name)
    *parents, method = attribute.split(".")
    for parent in parents:
        owner = getattr(owner, parent)

    def half_then_fail(*args, **kwargs):
        with open(args[position], "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(owner, method, half_then_fail)
    if name == "write_posterior":  # the streamed route
        monkeypatch.setattr("starmix.workflows.runs.files.IN_MEMORY_BYTES", 0)
    with pytest.raises(OSError, match="disk full"):
        writer(path, payload)
    assert path.read_bytes() == b"the earlier, complete file"
    assert [p.name for p in tmp_path.iterdir()] == [filename]


def test_a_signal_during_a_write_waits_for_the_write(tmp_path, monkeypatch):
    """A signal inside the atomic block is deferred: the file is complete, and the signal
    is raised at the next write."""
    import os

    from starmix.workflows.runs.files import write_json, write_text
    from starmix.workflows.runs.interrupt import RunInterrupted, stop_on_signals

    original = os.replace

    def replace_after_a_signal(source, destination):
        os.kill(os.getpid(), signal.SIGTERM)
        return original(source, destination)

    with stop_on_signals():
        monkeypatch.setattr(os, "replace", replace_after_a_signal)
        write_json(tmp_path / "a.json", {"complete": True})
        monkeypatch.setattr(os, "replace", original)
        with pytest.raises(RunInterrupted):
            write_text(tmp_path / "b.txt", "never written")
    assert json.loads((tmp_path / "a.json").read_text()) == {"complete": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


# -- workflows/inference/recovery.py: the recovery metrics themselves ------------------------------

def test_parameter_bias_is_signed():
    """Kills: the sign of ``bias_in_sd`` flipped (|bias| < 4 sd cannot tell)."""
    summary = Table({"parameter": ["a", "b"], "mean": [1.2, -0.5], "sd": [0.1, 0.25]})
    bias = parameter_bias(summary, {"a": 1.0, "b": 0.0, "c": 3.0})
    assert bias["a"]["bias_in_sd"] == pytest.approx(2.0)
    assert bias["b"]["bias_in_sd"] == pytest.approx(-2.0)
    assert set(bias) == {"a", "b"}


def test_roc_auc_precision_recall_and_brier_on_known_cases():
    is_member = np.array([1, 1, 1, 0, 0, 0, 0, 1], bool)
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.1, 0.6, 0.05, 0.7])
    # (member, non-member) pairs ranked right, by hand: 4 + 4 + 3 + 4 = 15 of 16
    assert roc_auc(p, is_member) == pytest.approx(15 / 16)
    assert roc_auc(1 - p, is_member) == pytest.approx(1 / 16)
    precision, recall = precision_recall(p, is_member)
    assert (precision, recall) == pytest.approx((3 / 4, 3 / 4))
    quality, _ = membership_quality(p, is_member)
    assert quality["brier_score"] == pytest.approx(np.mean((p - is_member) ** 2))
    assert quality["roc_auc"] == pytest.approx(15 / 16)


def test_reliability_judges_calibrated_and_miscalibrated_probabilities():
    """Kills: every bin marked within tolerance, or none."""
    rng = np.random.default_rng(8)
    p = rng.uniform(0, 1, 20_000)
    calibrated = rng.uniform(0, 1, p.size) < p
    table = reliability_table(p, calibrated)
    assert all(row["within_0.1"] for row in table)
    np.testing.assert_allclose(table["member_fraction"], table["mean_p"], atol=0.03)
    overconfident = rng.uniform(0, 1, p.size) < 0.5 + 0.5 * (p - 0.5) * 0.2
    flags = list(reliability_table(p, overconfident)["within_0.1"])
    assert not flags[0] and not flags[-1] and flags[5]
    assert membership_quality(p, overconfident)[0]["reliability_ok"] is False
    assert membership_quality(p, calibrated)[0]["reliability_ok"] is True


def test_reliability_leaves_small_bins_unjudged():
    p = np.r_[np.full(60, 0.05), np.full(10, 0.55)]
    table = reliability_table(p, p > 1)  # no members at all
    assert table["within_0.1"][0]  # 60 stars, none a member, mean P 0.05: within 0.1
    assert table["within_0.1"][5] is None  # 10 stars: not judged
    assert table["n_stars"][0] == 60 and table["n_stars"][5] == 10


# -- workflows/cluster/run.py: the joint model's 3D motion ------------------------------------

def test_phase_space_matches_a_hand_computed_velocity():
    """Kills: pmra and pmdec swapped (or the parallax inverted wrongly) on the way into
    ``cluster_phase_space``: the ICRS velocity of a known cluster, by hand."""
    from astropy.coordinates import SkyCoord

    from starmix.workflows.cluster.inputs import ClusterInput
    from starmix.workflows.cluster.outputs import phase_space

    ra, dec, parallax, pmra, pmdec, rv = 295.33, 40.19, 0.36, -2.9, -3.9, 2.45
    draws = 50
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({
        "cluster_offset": (("chain", "draw", "sky"), np.zeros((1, draws, 2))),
        "cluster_pm": (("chain", "draw", "pm"), np.tile([pmra, pmdec], (1, draws, 1))),
        "cluster_parallax": (("chain", "draw"), np.full((1, draws), parallax))})})
    center = SkyCoord(ra, dec, unit="deg")
    table = phase_space(tree, center, ClusterInput(model="joint",
                                                   radial_velocity=(rv, 1e-9)), seed=1)
    rows = {row["quantity"]: row for row in table}
    distance_kpc = 1 / parallax
    v_ra, v_dec = K_KMS * pmra * distance_kpc, K_KMS * pmdec * distance_kpc
    a, d = np.radians(ra), np.radians(dec)
    expected = {  # radial, east and north unit vectors in ICRS Cartesian
        "icrs_vx": rv * np.cos(d) * np.cos(a) - v_ra * np.sin(a) - v_dec * np.sin(d) * np.cos(a),
        "icrs_vy": rv * np.cos(d) * np.sin(a) + v_ra * np.cos(a) - v_dec * np.sin(d) * np.sin(a),
        "icrs_vz": rv * np.sin(d) + v_dec * np.cos(d),
        "icrs_x": 1000 * distance_kpc * np.cos(d) * np.cos(a),
        "distance": 1000 * distance_kpc}
    for name, value in expected.items():
        assert rows[name]["mean"] == pytest.approx(value, rel=1e-6, abs=1e-6), name


# -- workflows/cluster/run.py: --field-components auto keeps the K that LOO ranks first -------

def test_loo_keeps_the_best_k_not_the_worst(rng):
    """Kills: the choice of K taking the last row of the comparison (the worst K)."""
    from scipy.stats import norm

    from starmix.workflows.cluster.fit import best_by_loo

    data = rng.normal(0, 1, 300)
    trees = {}
    for k, (mu, sigma) in {1: (0.8, 1.0), 2: (0.0, 1.0), 3: (0.0, 1.6)}.items():
        draws_mu = rng.normal(mu, 0.05, (2, 200))
        loglike = norm.logpdf(data[None, None, :], draws_mu[..., None], sigma)
        trees[f"K={k}"] = xr.DataTree.from_dict({
            "posterior": xr.Dataset({"mu": (("chain", "draw"), draws_mu)}),
            "log_likelihood": xr.Dataset({"stars": (("chain", "draw", "star"), loglike)})})
    best, table = best_by_loo(trees)
    assert best == 2
    assert list(table[table.colnames[0]]) == ["K=2", "K=3", "K=1"]


# -- workflows/cluster/run.py: the members' parallax (no ../shared needed) ---------------------

def test_weighted_median_and_members_parallax():
    from starmix.workflows.cluster.outputs import (
        PARALLAX_SYSTEMATIC,
        members_parallax,
        weighted_median,
    )

    assert weighted_median(np.array([4.0, 1.0, 3.0, 2.0]), np.array([1, 0, 1, 0.0])) == 3.0
    assert weighted_median(np.array([1.0, 2.0, 3.0]), np.ones(3)) == 2.0
    rng = np.random.default_rng(12)
    parallax = np.r_[rng.normal(0.5, 0.05, 400), rng.normal(0.1, 0.3, 4000)]
    probability = np.r_[np.full(400, 0.95), np.full(4000, 0.001)]
    value, sd = members_parallax(Table({"parallax": parallax}), probability, seed=1)
    assert value == pytest.approx(0.5, abs=0.01)  # the field (P ~ 0) does not pull it
    assert PARALLAX_SYSTEMATIC <= sd < 0.02  # statistical and systematic, in quadrature


def test_detection_record_holds_the_verdict_and_its_numbers():
    """The run record's detection entry, key by key (the numbers a user reads)."""
    from starmix.workflows.cluster.detection import DELTA_MIN, FOUND, Z_MIN, Z_MIN_SKY, Detection

    detection = Detection(FOUND, 123.4567, 8.91011, {"cluster + field, K=2": -10.12345},
                          ["a reason"])
    assert detection.record() == {
        "verdict": FOUND, "criterion": "PSIS-LOO elpd difference", "delta_elpd": 123.457,
        "se": 8.91, "z_min": Z_MIN, "delta_min": DELTA_MIN, "against": "", "comparisons": {},
        "elpd": {"cluster + field, K=2": -10.123}, "alternatives": {},
        "reasons": ["a reason"]}
    assert detection.found and (Z_MIN, Z_MIN_SKY, DELTA_MIN) == (4.0, 2.5, 10.0)
    assert detection.text().startswith("detection: CLUSTER FOUND (PSIS-LOO: cluster model "
                                       "ahead of the best field-only model by 123.5 ± 8.9 nats)")
    assert detection.text().endswith("\n  - a reason")
