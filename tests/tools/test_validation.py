"""The fast version of ``make validate``: SBC machinery and a small calibration run that a
broken likelihood fails."""

import json
import time
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr
from scipy.stats import binomtest

from validation.cases import CASES, field_moments
from validation.report import coverage_rows, reliability
from validation.sbc import (
    N_RANK_DRAWS,
    SBC_SAMPLING,
    draw_prior,
    finished,
    passes,
    ranks_of_summaries,
    ranks_of_truth,
    run_replicate,
    uniformity,
)

FAST = SBC_SAMPLING  # as in the full run: 2 chains x 200 draws, thinned to 99
LINE_PARAMETERS = ["m", "b", "ln_s_out", "w[line]"]


def test_ranks_count_the_draws_below_the_truth():
    model = CASES["outlier_line"].build(CASES["outlier_line"].covariates(
        np.random.default_rng(0)))
    draws = np.arange(2 * 4 * N_RANK_DRAWS, dtype=float).reshape(2, -1)  # thinned by 8
    posterior = xr.Dataset({"m": (("chain", "draw"), draws)})
    thinned = draws.ravel()[7::8]
    assert ranks_of_truth({"m": np.array(100.5)}, posterior, model, ["m"]) == {
        "m": int(np.sum(thinned < 100.5))}


def test_field_moments_are_the_field_mixture_moments_and_label_invariant(rng):
    """pm2d's field is ranked through its mixture mean and sd: checked against a Monte
    Carlo draw of the field mixture, and unchanged when the field components swap."""
    w = np.array([0.2, 0.5, 0.3])
    mean = np.array([[1.0, -2.0], [4.0, 0.5]])
    cov = np.array([[[2.0, 0.3], [0.3, 1.0]], [[0.5, 0.0], [0.0, 3.0]]])
    moments = field_moments({"w": w, "field_mean": mean, "field_cov": cov})
    labels = (np.arange(400_000) >= 250_000).astype(int)  # exactly v = (0.625, 0.375)
    samples = np.where(labels[:, None] == 0,
                       rng.multivariate_normal(mean[0], cov[0], len(labels)),
                       rng.multivariate_normal(mean[1], cov[1], len(labels)))
    assert moments["w[cluster]"] == 0.2
    for j, axis in enumerate(("pmra", "pmdec")):
        assert moments[f"field mean[{axis}]"] == pytest.approx(samples[:, j].mean(), abs=0.01)
        assert moments[f"field sd[{axis}]"] == pytest.approx(samples[:, j].std(), rel=0.01)
    swapped = field_moments({"w": w[[0, 2, 1]], "field_mean": mean[::-1],
                             "field_cov": cov[::-1]})
    assert {k: float(v) for k, v in swapped.items()} == pytest.approx(
        {k: float(v) for k, v in moments.items()})
    # vectorised over draws: a stack of two draws gives each draw's own moments
    stacked = field_moments({"w": np.stack([w, w[[0, 2, 1]]]),
                             "field_mean": np.stack([mean, mean[::-1]]),
                             "field_cov": np.stack([cov, cov[::-1]])})
    np.testing.assert_allclose(stacked["field sd[pmdec]"], moments["field sd[pmdec]"])


def test_summary_ranks_count_the_thinned_draws_below_the_truth():
    draws = np.arange(2 * N_RANK_DRAWS, dtype=float).reshape(2, -1)  # thinned by 2
    posterior = xr.Dataset({"a": (("chain", "draw"), draws)})
    ranks = ranks_of_summaries({"a": np.array(50.5)}, posterior,
                               lambda v: {"twice a": 2 * v["a"]}, ("a",))
    assert ranks == {"twice a": int(np.sum(2 * draws.ravel()[1::2] < 101.0))}


def test_prior_draws_respect_the_ordering(rng):
    case = CASES["pm2d"]
    model = case.build(case.covariates(rng))
    for _ in range(20):
        point = draw_prior(model, rng)
        assert np.all(np.diff(point["field_cov_log_width"]) > 0)
        assert point["field_cov"].shape == (2, 2, 2)
        assert 0 < point["cluster_pm_dispersion"] < 0.5


def test_uniformity_test_tells_uniform_from_concentrated(rng):
    uniform = uniformity("a", rng.integers(0, N_RANK_DRAWS + 1, 1000))
    squeezed = uniformity("b", np.r_[np.zeros(500, int), np.full(500, N_RANK_DRAWS)])
    assert uniform.p_value > 0.001 and squeezed.p_value < 1e-10
    assert passes([uniform], 0.01) and not passes([uniform, squeezed], 0.01)


def extreme_rank_test(replicates) -> float:
    """Binomial p-value of the share of ranks in the outer 10% (uniform: 0.1 exactly)."""
    ranks = np.array([[rep["ranks"][name] for name in LINE_PARAMETERS] for rep in replicates])
    extreme = int(np.sum((ranks < 5) | (ranks > N_RANK_DRAWS - 5)))
    return binomtest(extreme, ranks.size, 0.1).pvalue


@pytest.mark.smoke
def test_small_sbc_passes_the_model_and_fails_a_broken_likelihood():
    right = CASES["outlier_line"]
    broken = replace(right, fit_transform=lambda data: {**data, "y_err": 0.2 * data["y_err"]})
    reps = 8
    right_p = extreme_rank_test([run_replicate(right, seed, FAST) for seed in range(reps)])
    broken_p = extreme_rank_test([run_replicate(broken, seed, FAST) for seed in range(reps)])
    assert right_p > 0.001, right_p
    assert broken_p < 1e-4, broken_p


def test_coverage_and_reliability_summaries():
    entry = {"truth": 0.0, "quantiles": [-2, -1, 0, 1, 2]}
    miss = {"truth": 1.5, "quantiles": [-2, -1, 0, 1, 2]}
    fields = [{"pm2d": {"parameters": {"cluster_pm[pmra]": entry, "cluster_pm[pmdec]": miss}},
               "parallax": {"parameters": {"cluster_parallax": entry}}}] * 20
    rows = {(r["parameter"], r["interval"]): r for r in coverage_rows(fields)}
    assert rows[("cluster_pm[pmra]", "68%")]["hits"] == 20
    assert rows[("cluster_pm[pmdec]", "68%")]["hits"] == 0
    assert not rows[("cluster_pm[pmdec]", "68%")]["pass"]
    assert rows[("cluster_pm[pmdec]", "95%")]["hits"] == 20

    probability = np.linspace(0, 1, 2001)
    calibrated = reliability(probability, np.random.default_rng(1).random(2001) < probability)
    overconfident = reliability(probability, np.full(2001, True))
    assert all(row["pass"] for row in calibrated)
    assert not all(row["pass"] for row in overconfident)


def sleepy_task(seed):
    time.sleep(60 if seed == 3 else 0.1)
    return {"seed": seed}


def failing_task(seed):
    if seed == 4:
        raise RuntimeError(f"sampler broke on {seed}")
    return {"seed": seed}


def squaring_task(seed):
    return {"seed": seed, "value": seed ** 2}


@pytest.fixture(scope="module")
def dask_client():
    from starmix.workflows.survey.run import close_client
    from validation.runner import make_client

    client = make_client(workers=2)
    yield client
    close_client(client)


@pytest.mark.workflow
def test_slow_or_failing_fits_are_recorded_not_fatal(tmp_path, dask_client):
    from validation.runner import run_all

    results = run_all(tmp_path / "slow.json", sleepy_task, range(2, 6), dask_client,
                      label="slow", header={}, timeout_s=3)
    late = next(r for r in results if r["seed"] == 3)
    assert late["timed_out"] and late["seconds"] < 30  # its worker was restarted
    assert [r["seed"] for r in results if not r.get("timed_out")] == [2, 4, 5]
    broken = run_all(tmp_path / "broken.json", failing_task, range(3, 6), dask_client,
                     label="broken", header={}, timeout_s=30)
    assert broken[1]["error"] == "RuntimeError: sampler broke on 4"
    assert finished([late, broken[1], {"seed": 5, "ranks": {}}]) == [{"seed": 5, "ranks": {}}]


@pytest.mark.workflow
def test_runner_resumes_only_the_missing_seeds(tmp_path, capsys, dask_client):
    from validation.runner import run_all

    path = tmp_path / "sbc_case.json"
    saved = [{"seed": 0, "value": "kept"}, {"seed": 1, "value": "kept"}]
    path.write_text(json.dumps({"results": saved}))
    results = run_all(path, squaring_task, range(4), dask_client, label="case",
                      header={"description": "test"}, timeout_s=30)
    assert [r["value"] for r in results] == ["kept", "kept", 4, 9]  # 0 and 1 not redone
    on_disk = json.loads(path.read_text())
    assert on_disk["description"] == "test"
    assert [r["seed"] for r in on_disk["results"]] == [0, 1, 2, 3]
    assert "2 fits to run (2 already saved), 2 Dask worker(s)" in capsys.readouterr().err
    again = run_all(path, squaring_task, range(4), dask_client, label="case", header={},
                    timeout_s=30)
    assert again == results and capsys.readouterr().err == ""  # nothing left: no tasks


def fake_sbc(ranks_by_label: dict[str, list[int]], **extra) -> dict:
    n = len(next(iter(ranks_by_label.values())))
    results = [{"seed": i, "divergences": 1, "ranks": {label: int(ranks[i]) for label, ranks
                                                      in ranks_by_label.items()}}
               for i in range(n)]
    return {"description": "fake case", "timeout_s": 90,
            "sampling": {"chains": 2, "draws": 200, "tune": 300},
            "results": results + extra.get("more", [])}


def test_report_gives_each_case_its_verdict_and_figure(tmp_path):
    from validation.report import write_report

    rng = np.random.default_rng(0)
    results, figures = tmp_path / "results", tmp_path / "figures"
    results.mkdir()
    uniform = {"m": rng.integers(0, N_RANK_DRAWS + 1, 200),
               "b": rng.integers(0, N_RANK_DRAWS + 1, 200)}
    skewed = {"w": np.minimum(rng.integers(0, 20, 200), N_RANK_DRAWS)}
    (results / "sbc_outlier_line.json").write_text(json.dumps(
        fake_sbc(uniform, more=[{"seed": 999, "timed_out": True}])))
    (results / "sbc_pmra.json").write_text(json.dumps(fake_sbc(skewed)))
    (results / "sbc_pmra_errors_ignored.json").write_text(json.dumps(fake_sbc(skewed)))
    (results / "sbc_outlier_line_errors_halved.json").write_text(json.dumps(fake_sbc(uniform)))
    text = write_report(results, figures).read_text()
    verdicts = dict(line[2:].split(": ") for line in text.splitlines()
                    if line.startswith("- ") and line.endswith(("pass", "FAIL")))
    assert verdicts == {"outlier_line": "pass", "pmra": "FAIL", "pmra_errors_ignored": "pass",
                        "outlier_line_errors_halved": "FAIL"}
    assert "### outlier_line: calibrated" in text
    assert "### pmra: NOT calibrated" in text
    assert "### pmra_errors_ignored: FAILS calibration, as it must" in text
    assert "### outlier_line_errors_halved: PASSES although it is wrong" in text
    assert "### parallax: not run" in text
    assert "200 replicates (1 ran past the 90 s limit" in text  # the timed-out fit is named
    assert "200 divergent transitions in all" in text
    assert "Coverage and membership calibration: not run" in text
    for name in ("outlier_line", "pmra", "pmra_errors_ignored", "outlier_line_errors_halved"):
        assert (figures / f"sbc_{name}.png").stat().st_size > 10_000, name


def test_labelled_forward_draws_are_the_model_draws_and_label_the_cluster():
    """The SBC simulator draws stars through the observed variable's own ``draw_labelled``
    (what its ``rng_fn`` returns, labels kept): same seed, same stars; the labelled
    cluster stars sit at the cluster's parallax, and their share is the weight."""
    from starmix.models.observed import ParallaxMixtureRV

    n = 20_000
    params = (np.log([0.3, 0.7]), 0.5, 0.0, 0.005, np.array([1.35]), np.full((n, 1, 1), 1e-4))
    labels, stars = ParallaxMixtureRV.draw_labelled(np.random.default_rng(3), *params)
    again = ParallaxMixtureRV.rng_fn(np.random.default_rng(3), *params, None)
    np.testing.assert_array_equal(stars, again)
    cluster = labels == 0
    assert abs(cluster.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    assert np.abs(stars[cluster, 0] - 0.5).max() < 0.06  # 6 sd of the 0.01 mas error
    assert np.abs(stars[~cluster, 0] - 0.5).mean() > 0.2

    case = CASES["pmra"]
    rng = np.random.default_rng(1)
    covariates = case.covariates(rng)
    truth = draw_prior(case.build(covariates), rng)
    data = case.simulate(truth, covariates, rng)
    members = data["is_cluster"]
    assert members.shape == (len(data["pmra"]),) and 0 < members.sum() < len(members)
    pull = (data["pmra"][members] - truth["cluster_pmra"]) / np.sqrt(
        data["pmra_error"][members] ** 2 + truth["cluster_pmra_dispersion"] ** 2)
    assert abs(pull.mean()) < 0.5 and 0.7 < pull.std() < 1.3


def test_simulator_parallax_membership_is_calibrated():
    """The simulator's own P from parallax and G at its true parameters (the reference
    the parallax fits are compared with) is calibrated on its own fields: a wrong
    luminosity slope, field law or error would put bins off by more than 0.05."""
    from starmix.data.cluster_field import PRESETS, parallax_membership, simulate_cluster_field

    params = replace(PRESETS["ngc6819"], n_cluster=2000, n_field=4000)
    tables = [simulate_cluster_field("ngc6819", seed=seed, n_cluster=2000, n_field=4000)
              for seed in (1, 2, 3)]
    probability = np.concatenate([parallax_membership(t, params) for t in tables])
    is_member = np.concatenate([np.asarray(t["is_member"]) for t in tables])
    rows = reliability(probability, is_member)
    assert all(row["pass"] for row in rows), rows
    assert np.mean((probability - is_member) ** 2) < 0.9 * np.mean(
        (is_member.mean() - is_member) ** 2)
    swapped = replace(params, n_cluster=4000, n_field=2000)  # wrong prior odds
    assert not all(row["pass"] for row in reliability(
        np.concatenate([parallax_membership(t, swapped) for t in tables]), is_member))


def test_report_judges_membership_on_sbc_replicates_and_against_the_reference(tmp_path):
    """SBC replicates carrying P and labels get a membership verdict (calibrated data
    pass, over-confident data fail); on the NGC 6819 fields, a fit whose bins miss passes
    only within ORACLE_MARGIN of the simulator's own P, and the one-weight parallax fit is
    reported, not judged."""
    from validation.report import ORACLE_MARGIN, write_report

    rng = np.random.default_rng(2)
    results, figures = tmp_path / "results", tmp_path / "figures"
    results.mkdir()
    uniform = {"cluster_pmra": rng.integers(0, N_RANK_DRAWS + 1, 100)}
    saved = fake_sbc(uniform)
    for rep in saved["results"]:
        p = rng.random(200)
        rep.update(p_cluster=p.tolist(), is_member=(rng.random(200) < p).astype(int).tolist(),
                   divergences=0)
    saved["results"][0].update(divergences=3, is_member=[1] * 200,  # fits the gate fails:
                               p_cluster=[0.45] * 200)  # divergent transitions,
    saved["results"][1].update(max_r_hat=2.2, is_member=[1] * 200,  # chains that disagree
                               p_cluster=[0.55] * 200)
    (results / "sbc_pmra.json").write_text(json.dumps(saved))
    for rep in saved["results"]:  # members are those with P > 0.5: over-confident P
        rep["is_member"] = (np.asarray(rep["p_cluster"]) > 0.5).astype(int).tolist()
    for rep in saved["results"]:
        rep["p_cluster"] = (0.5 + 0.5 * (np.asarray(rep["p_cluster"]) - 0.5)).tolist()
    (results / "sbc_pm2d.json").write_text(json.dumps(saved))

    truth = rng.random(900) < 0.33
    good = np.where(truth, 0.6, 0.2)  # bins miss (0.6 vs 1.0, 0.2 vs 0.0)

    def fit(p, oracle=None):
        entry = {"parameters": {"cluster_parallax": {"truth": 0.0,
                                                     "quantiles": [-2, -1, 0, 1, 2]}},
                 "divergences": 0, "p_cluster": p.tolist(), "is_member": truth.astype(int).tolist()}
        return {**entry, **({"p_oracle": oracle.tolist()} if oracle is not None else {})}

    brier_fit = np.mean((good - truth) ** 2)
    close = good  # the reference no better than the fit
    far_oracle = np.where(truth, 0.9, 0.05)  # much better than the fit
    assert np.mean((far_oracle - truth) ** 2) + ORACLE_MARGIN < brier_fit
    fields = [{"seed": seed, "parallax": fit(good, close), "parallax_magnitude": fit(good, close),
               "pm2d": {**fit(good, far_oracle), "parameters": {
                   label: {"truth": 0.0, "quantiles": [-2, -1, 0, 1, 2]}
                   for label in ("cluster_pm[pmra]", "cluster_pm[pmdec]")}}}
              for seed in range(10)]
    (results / "coverage.json").write_text(json.dumps(
        {"sampling": {"chains": 2, "draws": 400}, "timeout_s": 600, "results": fields}))
    text = write_report(results, figures).read_text()
    verdicts = dict(line[2:].split(": ") for line in text.splitlines()
                    if line.startswith("- ") and line.endswith(("pass", "FAIL")))
    assert verdicts["membership_pmra (prior predictive)"] == "pass"
    assert "over the 98 replicates whose fits have no divergent" in text
    assert "With all 100 fits, the 2 with divergent transitions or disagreeing chains" in text
    assert verdicts["membership_pm2d (prior predictive)"] == "FAIL"
    assert verdicts["membership_parallax_magnitude (NGC 6819 fields)"] == "pass"
    assert verdicts["membership_pm2d (NGC 6819 fields)"] == "FAIL"
    assert "membership_parallax (NGC 6819 fields)" not in verdicts
    assert "### parallax: Brier score" in text and "reported, not judged" in text
    assert (figures / "membership_sbc.png").stat().st_size > 10_000


def test_reliability_allows_for_stars_fitted_together():
    """Four fits of 100 stars, all given P = 0.45, whose member fractions are 0.15, 0.35,
    0.55 and 0.75: right on average, but the stars of a fit move together. The binomial sd
    (400 independent stars) calls the bin miscalibrated by chance of the draw; the
    bootstrap over fits sees four fits that disagree, and its sd is several times larger.
    Fits that all put too few members in the bin fail either way."""
    probability = np.full(400, 0.45)
    groups = np.repeat(np.arange(4), 100)
    is_member = np.concatenate([np.arange(100) < k for k in (15, 35, 55, 75)])
    binomial = reliability(probability, is_member)[0]
    by_fit = reliability(probability, is_member, groups)[0]
    assert by_fit["fraction"] == binomial["fraction"] == 0.45
    assert by_fit["sd"] > 3 * binomial["sd"]
    assert binomial["sd"] == pytest.approx(np.sqrt(0.45 * 0.55 / 400))
    wrong = np.concatenate([np.arange(100) < 75 for _ in range(4)])
    assert not reliability(probability, wrong)[0]["pass"]
    assert not reliability(probability, wrong, groups)[0]["pass"]
