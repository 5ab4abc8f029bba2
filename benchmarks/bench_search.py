"""Blind-search benchmark: ``starmix search`` on simulated skies with injected clusters.

``make bench-search`` (or ``python benchmarks/bench_search.py [--quick]``). Per field
density, a cone of ``--radius`` degrees (default 2.83: 25 square degrees) holds
``--richness`` injected clusters (members over G = 12-20, parallax alternating 1.0 and
0.4 mas; :mod:`starmix.data.sky`), and the search runs on it with its defaults on
``--workers`` Dask workers. Printed per density and richness: how many injected clusters
HDBSCAN's candidate step proposes (a candidate within 10' and 1 mas/yr of it; the
proposal alone, as a blind HDBSCAN search without a significance test reports it) and
how many the verified search finds; the false candidates and the false clusters found
(matching nothing injected); and the throughput: square degrees and candidates per hour
per core, with the projection to the whole sky (41,253 square degrees) at the measured
rate. Resumable: each density's search folder under ``--out`` is resumed.

The peer is Hunt & Reffert's (2023) blind search on the same stars and the same HEALPix
patches: HDBSCAN in five dimensions (the search's own candidate step, without starmix's
compactness cuts), then each label's cluster significance test (CST) by their own code,
``ocelot.verify.significance.cluster_significance_test`` with its defaults (Mann-Whitney
test of the members' 10th-nearest-neighbour distances against their local field's, as a
one-sided z). Their catalogue keeps CST >= 3 sigma; their "highly reliable" cut is 5 sigma
and a colour-magnitude classifier, which does not apply to simulated astrometry. Both
thresholds are printed, with found and false clusters beside starmix's, and the peer at
the lowest threshold that gives it no more false clusters than starmix (a matched
false-positive rate).
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WHOLE_SKY = 41_253.0  # square degrees
RICHNESS = (25, 25, 50, 50, 100, 100, 200, 200, 500, 1000)
DENSITIES = (0.3, 1.0)  # field stars per arcmin², G = 10-20
PEER_SIGMA = (3.0, 5.0)  # Hunt & Reffert's CST thresholds: catalogue, highly reliable


def matched(truth, table) -> list[bool]:
    """Whether each injected cluster has a row of ``table`` (candidates or clusters) within
    the search's matching distances (``nearest_match``)."""
    from starmix.workflows.search.run import match_values, nearest_match

    rows = [match_values(r) for r in table]
    return [nearest_match(match_values(row), rows) is not None for row in truth]


def false_rows(truth, table, known=()) -> int:
    """Rows of ``table`` that match no injected cluster and no ``known`` (real) one."""
    from starmix.workflows.search.run import match_values, nearest_match

    targets = [match_values(r) for r in truth] + list(known)

    def values(row) -> dict:  # a cone's radius widens the reach to a known cluster
        extra = {"radius_arcmin": float(row["radius_arcmin"])} if "radius_arcmin" in \
            row.colnames else {}
        return match_values(row) | extra

    return sum(nearest_match(values(row), targets) is None for row in table)


def known_clusters(catalogue: str | None) -> list[dict]:
    """The catalogue's clusters as matching targets (a real field's real clusters are not
    false detections, for either method)."""
    if catalogue is None:
        return []
    from starmix.data.survey_catalogue import read_survey_catalogue

    return [{"ra": t.ra, "dec": t.dec, "pmra": t.pmra, "pmdec": t.pmdec,
             "parallax": t.parallax} for t in read_survey_catalogue(catalogue)
            if t.problem is None]


def hdbscan_cst(stars, order: int = 6, margin_arcmin: float = 30.0,
                min_cluster_size: int = 10) -> list[dict]:
    """Every HDBSCAN label of every patch whose centre the patch owns, with its CST (sigma,
    ``cst``) from ocelot and its stars' source_ids (``members``); the same patches and
    labels as the search's candidate step. (The peer keeps the plain ownership rule: the
    search's ``one_view``, which also proposes a cluster seen by several patches and owned
    by none, is starmix's own.)"""
    import warnings

    from ocelot.verify.significance import cluster_significance_test

    from starmix.workflows.search.candidates import describe, owned, patch_labels, patches

    values = np.column_stack([np.asarray(stars[name], float) for name in
                              ("ra", "dec", "pmra", "pmdec", "parallax")])
    found = []
    for job in patches(stars, order, margin_arcmin):
        here = values[job["rows"]]
        scaled, labels, _ = patch_labels(here, job["centre"], min_cluster_size)
        if labels.max() < 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            significance, _ = cluster_significance_test(scaled, labels,
                                                        min_samples=min_cluster_size)
        ids = np.asarray(stars["source_id"])[job["rows"]]
        for label in sorted(set(labels) - {-1}):
            candidate = describe(here, labels == label, job["pixel"])
            if owned(candidate, order):
                found.append(candidate | {"cst": float(significance[label]),
                                          "members": set(ids[labels == label].tolist())})
    return found


def peer_clusters(groups: list[dict], threshold: float, cuts: bool = False) -> list[dict]:
    """The peer's clusters: groups with CST >= ``threshold`` sigma (and, with ``cuts``,
    compact by starmix's own cuts on size and motion spread: HR23's colour-magnitude
    classifier, which would turn away a whole-field label, cannot run on these stars),
    pieces of one cluster merged as the search merges its candidates."""
    from starmix.workflows.search.candidates import compact, merge

    return merge([g for g in groups if g["cst"] >= threshold and (not cuts or compact(g))])


def peer_score(truth, clusters: list[dict], injected: dict, known=()) -> dict:
    """The peer's clusters scored by the search's own rule (``recoveries``: position, or
    members that are mostly one injected cluster's), real clusters ``known`` not false."""
    from starmix.workflows.search.run import match_values, nearest_match, recoveries

    return recoveries(truth, clusters, [c["members"] for c in clusters], injected,
                      lambda i: nearest_match(match_values(clusters[i]), list(known))
                      is not None)


def matched_threshold(groups: list[dict], truth, allowed: int, injected: dict,
                      known=()) -> float:
    """The lowest CST threshold (sigma, at least 3) at which the peer reports at most
    ``allowed`` false clusters: the peer at starmix's false-positive count."""
    for threshold in sorted({3.0} | {g["cst"] for g in groups if g["cst"] >= 3.0}):
        if len(peer_score(truth, peer_clusters(groups, threshold), injected,
                          known)["false"]) <= allowed:
            return threshold
    return math.inf


def main(argv=None) -> int:
    from astropy.table import Table

    from starmix.workflows.runs.options import SamplingOptions
    from starmix.workflows.search.run import SearchOptions, injected_stars, run_search
    from starmix.workflows.survey.run import Execution

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--radius", type=float, default=2.83, help="degrees (default 2.83)")
    parser.add_argument("--densities", type=float, nargs="+", default=list(DENSITIES))
    parser.add_argument("--richness", type=int, nargs="+", default=list(RICHNESS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42,
                        help="seed of the simulated skies (default 42)")
    parser.add_argument("--quick", action="store_true",
                        help="a 1-degree cone, clusters of 100 and 400, one density")
    parser.add_argument("--gaia", default="simulate",
                        help="a real Gaia table to inject the clusters into instead of "
                             "simulated skies (one search over --region)")
    parser.add_argument("--region", help="the region searched (default 'cone 280 -10 "
                                         "RADIUS'; with --gaia FILE, required)")
    parser.add_argument("--catalogue", help="a cluster catalogue: the real clusters it names "
                                            "are not false detections, for either method")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench_search"))
    args = parser.parse_args(argv)
    if args.quick:
        args.radius, args.richness, args.densities = 1.0, [100, 400], [0.3]
    if args.gaia != "simulate" and args.region is None:
        parser.error("--gaia FILE needs --region")
    region = args.region or f"cone 280 -10 {args.radius}"
    known = known_clusters(args.catalogue)
    if args.gaia == "simulate":
        jobs = [(f"density-{density:g}", SearchOptions(
            region=region, sim_seed=args.seed, sim_field_density=density,
            sim_richness=tuple(args.richness), catalogue=args.catalogue))
            for density in args.densities]
    else:
        jobs = [(f"real-seed{args.seed}", SearchOptions(
            region=region, gaia=args.gaia, sim_seed=args.seed,
            inject_richness=tuple(args.richness), catalogue=args.catalogue))]
    rows = []
    for name, options in jobs:
        out = Path(args.out) / name
        began = time.perf_counter()
        result = run_search(out, options, SamplingOptions(draws=args.draws, seed=args.seed),
                            execution=Execution(workers=args.workers))
        seconds = time.perf_counter() - began
        density = float(result.record["stars"]["field_density"])
        truth = Table.read(out / "truth.ecsv", format="ascii.ecsv")
        candidates = Table.read(out / "candidates.ecsv", format="ascii.ecsv")
        proposed = matched(truth, candidates)
        # the search's own scoring (position, or members that are one injected cluster's)
        found = [str(v).strip() not in ("", "--") for v in truth["found_as"]]
        stars = Table.read(out / "stars.parquet")
        injected = injected_stars(stars)
        began_peer = time.perf_counter()
        groups = hdbscan_cst(stars, order=options.order, margin_arcmin=options.margin_arcmin,
                             min_cluster_size=options.min_cluster_size)
        peer_seconds = time.perf_counter() - began_peer
        false_candidates = false_rows(truth, candidates, known)
        false_found = len(result.record["truth"]["false_detections"])
        fair = matched_threshold(groups, truth, false_found, injected, known)
        variants = {f"{t:g}": (t, False) for t in PEER_SIGMA} | {
            "cuts": (PEER_SIGMA[0], True), "fair": (fair, False)}
        peers = {key: peer_clusters(groups, *how) for key, how in variants.items()}
        scores = {key: peer_score(truth, peers[key], injected, known) for key in peers}
        peer_found = {key: [i is not None for i in scores[key]["found_as"]] for key in peers}
        peer_false = {key: len(scores[key]["false"]) for key in peers}
        record = result.record
        verify_seconds = json.loads((out / "verify" / "survey_record.json").read_text()).get(
            "wall_time_s", seconds)
        for n in sorted(set(args.richness)):
            pick = np.asarray(truth["n_members"]) == n
            in_data = np.asarray(truth["n_injected"])[pick] if "n_injected" in \
                truth.colnames else np.full(int(pick.sum()), n)
            rows.append({"density": density, "richness": f"{n} ({np.median(in_data):.0f})",
                         "injected": int(pick.sum()),
                         "candidates": int(np.sum(np.asarray(proposed)[pick])),
                         "found": int(np.sum(np.asarray(found)[pick])),
                         **{key: int(np.sum(np.asarray(peer_found[key])[pick]))
                            for key in peers}, "at": fair})
        rows.append({"density": density, "richness": "false", "injected": "",
                     "candidates": false_candidates, "found": false_found,
                     **{key: peer_false[key] for key in peers}, "at": fair})
        area = record["region"]["area_deg2"]
        print(f"\n{name}, density {density:.3g}/arcmin²: {record['stars']['n']} stars in "
              f"{area:.1f} "
              f"deg², {len(candidates)} candidates ({false_candidates} matching "
              f"nothing injected), {len(result.clusters)} clusters found "
              f"({false_found} false, "
              f"{sum(result.clusters['gate'] == 'failed')} with a failed gate); "
              f"{seconds:.0f} s this invocation, whole search {record['total_wall_time_s']:.0f} s "
              f"on {args.workers} worker(s); verification {verify_seconds}")
        print(f"  blended (one cluster found for two injected ones): starmix "
              f"{len(result.record['truth'].get('blended', []))}, HDBSCAN + CST "
              + ", ".join(f"{len(scores[f'{t:g}']['blended'])} at {t:g} sigma"
                          for t in PEER_SIGMA))
        print(f"  HDBSCAN + CST (ocelot): {len(groups)} HDBSCAN groups, "
              + ", ".join(f"{len(peers[f'{t:g}'])} clusters at CST >= {t:g} sigma "
                          f"({peer_false[f'{t:g}']} false)" for t in PEER_SIGMA)
              + f"; {peer_seconds:.0f} s on one core")
        core_hours = record["total_wall_time_s"] * args.workers / 3600
        if core_hours > 0:
            print(f"  throughput: {area / core_hours:.1f} deg² and "
                  f"{len(candidates) / core_hours:.1f} candidates per core-hour; the whole "
                  f"sky at this density: {WHOLE_SKY / (area / core_hours):,.0f} core-hours")
    print("\n| density (stars/arcmin²) | members (median in the data) | injected | HDBSCAN "
          "candidates | starmix found (verified) | " + " | ".join(f"HDBSCAN + CST >= {t:g} sigma"
                                             for t in PEER_SIGMA)
          + f" | HDBSCAN + CST >= {PEER_SIGMA[0]:g} sigma, starmix's cuts"
          + " | HDBSCAN + CST at starmix's false count |")
    print("|---|---|---|---|---|" + "---|" * (len(PEER_SIGMA) + 2))
    for row in rows:
        print(f"| {row['density']:.3g} | {row['richness']} | {row['injected']} | "
              f"{row['candidates']} | {row['found']} | "
              + " | ".join(str(row[f"{t:g}"]) for t in PEER_SIGMA)
              + f" | {row['cuts']} | {row['fair']} (CST >= {row['at']:.1f}) |")
    print("(rows 'false': candidates or clusters matching nothing injected nor named by "
          "--catalogue; the last column is the peer at the lowest CST threshold with no more "
          "false clusters than starmix)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
