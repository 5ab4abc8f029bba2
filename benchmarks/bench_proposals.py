"""Which candidate proposal should ``starmix search`` use? Its candidate step alone, on the
simulated skies of ``make bench-search``, for each HDBSCAN setting.

``python benchmarks/bench_proposals.py`` (``make bench-proposals``). The verification
step turns away the false candidates (none passed it in the measured skies, see
docs/search.md), so a proposal's false candidates cost time, not reliability; its missed
clusters are lost for good. Printed per proposal (``selection`` and
``min_cluster_size``): the injected clusters it proposes (a candidate within the search's
matching distances), by richness and field density; its candidates, those matching
nothing injected, and what verifying them costs at ``--seconds-per-candidate`` core
seconds (the verification's measured mean, docs/search.md); the candidate step's own time
on one core. Skies: ``--seeds`` x ``--densities`` cones of ``--radius`` degrees with
``--richness`` clusters each (the bench-search skies at the defaults), simulated here
(seeded, the same stars as bench-search's).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_search import DENSITIES, RICHNESS, false_rows, matched  # noqa: E402

PROPOSALS = (("leaf", 10), ("eom", 10), ("leaf", 5), ("leaf", 20))


def main(argv=None) -> int:
    from starmix.data.sky import parse_region, simulate_sky
    from starmix.workflows.search.candidates import find_candidates

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--radius", type=float, default=2.83, help="degrees (default 2.83)")
    parser.add_argument("--densities", type=float, nargs="+", default=list(DENSITIES))
    parser.add_argument("--richness", type=int, nargs="+", default=list(RICHNESS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    parser.add_argument("--seconds-per-candidate", type=float, default=60.0,
                        help="core seconds to verify one candidate (default 60)")
    parser.add_argument("--quick", action="store_true",
                        help="a 1-degree cone, clusters of 100 and 400, one density and seed")
    args = parser.parse_args(argv)
    if args.quick:
        args.radius, args.richness, args.densities, args.seeds = 1.0, [100, 400], [0.3], [42]
    region = parse_region(f"cone 280 -10 {args.radius}")
    skies = []
    for seed in args.seeds:
        for density in args.densities:
            stars, truth = simulate_sky(region, args.richness, field_density=density, seed=seed)
            skies.append((seed, density, stars, truth))
            print(f"sky seed {seed}, density {density:g}/arcmin²: {len(stars)} stars, "
                  f"{len(truth)} clusters", flush=True)
    richness = sorted(set(args.richness))
    header = " | ".join(f"{n} members" for n in richness)
    print(f"\n| proposal | density | {header} | candidates | matching nothing | "
          "verification (core-hours) | candidate step (s) |")
    print("|---|---|" + "---|" * len(richness) + "---|---|---|---|")
    for selection, size in PROPOSALS:
        for density in args.densities:
            hits = {n: [0, 0] for n in richness}
            candidates = false = 0
            seconds = 0.0
            for _, sky_density, stars, truth in skies:
                if sky_density != density:
                    continue
                began = time.perf_counter()
                found = find_candidates(stars, min_cluster_size=size, selection=selection)
                seconds += time.perf_counter() - began
                proposed = np.asarray(matched(truth, found))
                for n in richness:
                    pick = np.asarray(truth["n_members"]) == n
                    hits[n][0] += int(proposed[pick].sum())
                    hits[n][1] += int(pick.sum())
                candidates += len(found)
                false += false_rows(truth, found)
            cells = " | ".join(f"{k}/{m}" for k, m in hits.values())
            print(f"| {selection} {size} | {density:g} | {cells} | {candidates} | {false} | "
                  f"{candidates * args.seconds_per_candidate / 3600:.2f} | {seconds:.1f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
