"""The benchmark's job planning (benchmarks/bench_speed.py): which jobs the warm-up runs."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

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


def test_asteca_finds_an_obvious_cluster_from_the_published_values():
    """ASteCA's fastMP as the benchmark runs it: a tight, rich cluster at the published
    position and motion gets its members at P > 0.5; without positions it is not run."""
    import numpy as np
    from astropy.table import Table
    from bench_membership import asteca_membership

    rng = np.random.default_rng(1)
    n, n_members = 3000, 300
    member = np.arange(n) < n_members
    values = np.where(member[:, None], rng.normal([-3, -4, 0.5], [0.05, 0.05, 0.02], (n, 3)),
                      rng.normal([0, 0, 1.0], [4, 4, 0.6], (n, 3)))
    radius = np.where(member, 0.05 * np.sqrt(rng.uniform(size=n)), 0.3 * np.sqrt(
        rng.uniform(size=n)))
    angle = rng.uniform(0, 2 * np.pi, n)
    table = Table({"ra": 100 + radius * np.cos(angle), "dec": 20 + radius * np.sin(angle),
                   "pmra": values[:, 0], "pmdec": values[:, 1], "parallax": values[:, 2],
                   "pmra_error": np.full(n, 0.05), "pmdec_error": np.full(n, 0.05),
                   "parallax_error": np.full(n, 0.03), "phot_g_mean_mag": rng.uniform(12, 18, n)})
    p, note = asteca_membership(table, (-3, -4, 0.5), (100.0, 20.0), seed=0)
    assert note.startswith("N_cluster=")
    assert (p[member] > 0.5).mean() > 0.9
    assert (p[~member] > 0.5).mean() < 0.02
    assert asteca_membership(table[["pmra", "pmdec", "parallax"]], (-3, -4, 0.5), None) == (
        None, "needs ra/dec")


def test_reliability_gap_is_scaled_by_its_binomial_noise():
    import numpy as np
    from bench_membership import reliability_gap

    p = np.repeat([0.05, 0.5, 0.95], 100)
    truth = np.concatenate([np.arange(100) < 5, np.arange(100) < 30, np.arange(100) < 95])
    gap, in_sd = reliability_gap(p, truth)
    assert gap == pytest.approx(0.2)  # the middle bin: 0.5 against 0.3
    assert in_sd == pytest.approx(0.2 / np.sqrt(0.25 / 100))
    assert np.isnan(reliability_gap(p[:10], truth[:10])[0])  # no bin holds 20 stars


def test_detection_benchmark_injects_a_plummer_cluster_with_real_errors_inside_the_cone():
    """benchmarks/bench_detection.py: the injected members lie inside the region's cone
    (across RA 0), carry errors taken from field stars of nearly their G, scatter about
    the planned motion by those errors, and the planned proper motion sits in the
    region's own core at the planned parallax."""
    import astropy.units as u
    import numpy as np
    from astropy.coordinates import SkyCoord
    from astropy.table import Table
    from bench_detection import inject, plan, separation_arcmin

    rng = np.random.default_rng(0)
    n, centre, radius = 3000, (0.2, -30.0), 20.0  # the cone crosses RA 0
    where = SkyCoord(centre[0] * u.deg, centre[1] * u.deg).directional_offset_by(
        rng.uniform(0, 360, n) * u.deg, radius * np.sqrt(rng.uniform(size=n)) * u.arcmin)
    g = rng.uniform(12, 18, n)
    field = Table({"source_id": np.arange(n), "ra": where.ra.wrap_at(180 * u.deg).deg,
                   "dec": where.dec.deg, "phot_g_mean_mag": g,
                   "parallax": rng.gamma(2, 0.5, n),
                   "parallax_error": 0.01 * 10 ** (0.2 * (g - 12)),
                   "pmra": rng.normal(5, 3, n), "pmra_error": 0.02 * 10 ** (0.2 * (g - 12)),
                   "pmdec": rng.normal(-5, 3, n), "pmdec_error": 0.02 * 10 ** (0.2 * (g - 12)),
                   "pmra_pmdec_corr": np.zeros(n), "parallax_pmra_corr": np.zeros(n),
                   "parallax_pmdec_corr": np.zeros(n), "ruwe": np.ones(n)})
    planned = plan(field, centre, 1.0, seed=4, radius_arcmin=radius)
    near = np.abs(np.asarray(field["parallax"]) - 1.0) < 0.2
    assert abs(planned["pmra"] - np.median(np.asarray(field["pmra"])[near])) < 4  # 1 mas/yr sd
    table = inject(field, planned, 200, seed=4, centre=centre, radius_arcmin=radius)
    members = table[np.asarray(table["is_member"], bool)]
    assert 150 <= len(members) <= 200 and len(table) == n + len(members)
    assert np.all(separation_arcmin(members, centre) < radius)
    # errors follow G as the field's do (same law, to the donors' small G offsets)
    expected = 0.01 * 10 ** (0.2 * (np.asarray(members["phot_g_mean_mag"]) - 12))
    np.testing.assert_allclose(members["parallax_error"], expected, rtol=1e-12)
    pulls = (np.asarray(members["parallax"]) - 1.0) / np.asarray(members["parallax_error"])
    assert abs(pulls.mean()) < 0.3 and 0.8 < pulls.std() < 1.2
    assert len(np.unique(members["source_id"])) == len(members)
    assert not set(members["source_id"]) & set(field["source_id"])


def test_cones_match_members_by_source_id_and_hdbscan_5d_uses_the_sky_across_ra_0():
    """bench-membership's cones: CG18 members are matched by source id (a member not in the
    field gets -1), and HDBSCAN-5D finds a cluster that is tight on the sky as well as in
    motion, on tangent-plane offsets, in a field stored with RA through 0 (-1..+1 deg)."""
    import numpy as np
    from astropy.table import Table
    from bench_membership import hdbscan_5d_membership, match_by_source_id

    members = Table({"Source": [7, 3, 99], "PMemb": [0.9, 0.5, 1.0],
                     "phot_g_mean_mag": [12.0, 13.0, 14.0]})
    match = match_by_source_id(Table({"source_id": np.array([3, 5, 7], np.int64)}), members)
    assert match.field_index.tolist() == [2, 0, -1]
    assert match.labels(3, 0.7).tolist() == [False, False, True]
    assert match.labels(3, 0.0).tolist() == [True, False, True]

    rng = np.random.default_rng(2)
    n, n_members = 3000, 200
    member = np.arange(n) < n_members
    values = np.where(member[:, None], rng.normal([-3, -4, 0.5], [0.3, 0.3, 0.05], (n, 3)),
                      rng.normal([0, 0, 1.0], [4, 4, 0.6], (n, 3)))
    ra = np.where(member, rng.normal(0, 0.05, n), rng.uniform(-1, 1, n))
    dec = np.where(member, rng.normal(-30, 0.05, n), rng.uniform(-31, -29, n))
    table = Table({"ra": ra, "dec": dec, "pmra": values[:, 0], "pmdec": values[:, 1],
                   "parallax": values[:, 2]})
    p, note = hdbscan_5d_membership(table, (-3, -4, 0.5), "eom")
    assert note.endswith("5D")
    assert (p[member] > 0).mean() > 0.9 and (p[~member] > 0).mean() < 0.02
    wrapped = table.copy()
    wrapped["ra"] = np.where(ra < 0, ra + 360, ra)  # the same sky, RA in [0, 360)
    assert np.array_equal(hdbscan_5d_membership(wrapped, (-3, -4, 0.5), "eom")[0] > 0, p > 0)
    assert hdbscan_5d_membership(table[["pmra", "pmdec", "parallax"]], (-3, -4, 0.5),
                                 "eom") == (None, "needs ra/dec")


def test_the_search_peer_scores_a_rich_cluster_significant_and_matches_it():
    """bench-search's peer (HDBSCAN + ocelot's CST): a 300-member cluster in a 1-degree
    sky has one HDBSCAN group far above 5 sigma that matches it, and the peer's clusters
    at 3 sigma include it."""
    pytest.importorskip("ocelot", reason="the peer needs ocelot (the bench extra)")
    from bench_search import hdbscan_cst, matched, peer_clusters

    from starmix.data.sky import parse_region, simulate_sky

    stars, truth = simulate_sky(parse_region("cone 120 40 1.0"), (300,),
                                field_density=0.3, seed=3)
    groups = hdbscan_cst(stars)
    assert max(g["cst"] for g in groups) > 5
    assert matched(truth, peer_clusters(groups, 3.0)) == [True]
    assert matched(truth, [g for g in groups if g["cst"] < 3.0]) == [False]


def test_the_proposal_benchmark_finds_two_rich_clusters_with_leaf_selection(capsys):
    """bench-proposals --quick: HDBSCAN `leaf` at its default size proposes both injected
    clusters (100 and 400 members) of a 1-degree sky; the table has one row per proposal."""
    from bench_proposals import PROPOSALS, main

    assert main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| leaf 10 | 0.3 | 1/1 | 1/1 |" in out
    assert sum(line.startswith(f"| {s} {n} |") for line in out.splitlines()
               for s, n in PROPOSALS) == len(PROPOSALS)
