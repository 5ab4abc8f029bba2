"""The benchmark's job planning (benchmarks/bench_speed.py): which jobs the warm-up runs."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_speed import DEFAULT_JOBS, WARM_UP_GROUPS, warm_groups  # noqa: E402


def test_the_default_warm_up_leaves_w1_to_its_cold_run_and_splits_the_models():
    groups = warm_groups(DEFAULT_JOBS)
    warmed = [name for group in groups for name in group]
    assert "W1-warm" not in warmed  # W1-cold runs first and fills W1-warm's caches
    assert {"W2-starmix", "W2-pymc-default-nuts", "W3-starmix", "W4-gradient"} <= set(warmed)
    assert "W3-starmix" not in groups[0] and "W2-starmix" not in groups[1]


def test_a_warm_job_without_its_cold_run_first_is_warmed():
    assert warm_groups(["W1-warm"]) == [(), ("W1-warm",)]
    assert warm_groups(["W1-warm", "W1-cold"])[1] == ("W1-warm",)


def test_warm_up_groups_hold_only_jobs_asked_for():
    assert warm_groups(["W2-numpyro-peer"]) == [(), ()]
    assert len(warm_groups(DEFAULT_JOBS)) == len(WARM_UP_GROUPS)


def test_membership_peers_find_an_obvious_cluster():
    """bench-membership's peers on a field with a tight, rich cluster: each must put its
    members at P > 0.5 (a peer scored on the wrong component would not)."""
    import numpy as np
    from astropy.table import Table
    from bench_membership import aligned, gmm_membership, hdbscan_membership

    rng = np.random.default_rng(0)
    member = np.arange(2300) < 300
    values = np.where(member[:, None], rng.normal([-3, -4, 0.5], [0.05, 0.05, 0.02],
                                                  (2300, 3)),
                      rng.normal([0, 0, 1.0], [4, 4, 0.6], (2300, 3)))
    table = Table({"source_id": np.arange(2300) + 10, "pmra": values[:, 0],
                   "pmdec": values[:, 1], "parallax": values[:, 2]})
    # HDBSCAN's P is a membership strength, not a probability: members are P > 0
    for (p, _), cut in ((gmm_membership(table, (-3, -4, 0.5)), 0.5),
                        (hdbscan_membership(table, (-3, -4, 0.5), "eom"), 0.0)):
        assert (p[member] > cut).mean() > 0.95
        assert (p[~member] > cut).mean() < 0.02
    shuffled = table[::-1]
    shuffled["p_cluster"] = member[::-1].astype(float)
    assert np.array_equal(aligned(shuffled, table), member.astype(float))
