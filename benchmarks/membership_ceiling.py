"""How much of a published member list proper motion and parallax alone can recover.

``python benchmarks/membership_ceiling.py [--cases m67 ngc188] [--k 30 100]``

The real fields in ``../shared/data`` have no positions, and the Cantat-Gaudin et al.
(2018) lists were drawn with positions as well as astrometry (UPMASK). A member whose
proper motion and parallax look like those of many field stars cannot get P > 0.5 from
any calibrated method that sees only (pmra, pmdec, parallax). This script estimates that
ceiling with the labels themselves: for every star, the fraction of listed members among
its k nearest neighbours in (pmra, pmdec, parallax), each scaled to unit 16-84% width
(leave-one-out). That is a supervised, calibrated classifier in the same coordinates as
``--model pmplx``; its recall at P > 0.5 of the PMemb >= 0.7 members is an estimate of
the best recall a method without positions (or photometry) can reach. It also prints the
member fraction among parallax-consistent stars in rings of proper-motion distance from
the members' median, which shows where the members and the field overlap.

The stars are those the membership benchmark uses (G < 18, finite astrometry, DR3 errors
from pygaia), matched to the list as :mod:`data.members` describes.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_membership import REAL, SHARED, coordinates  # noqa: E402

RINGS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)  # mas/yr


def knn_member_fraction(x: np.ndarray, listed: np.ndarray, k: int) -> np.ndarray:
    """Leave-one-out fraction of listed members among each row's k nearest neighbours,
    in coordinates scaled to unit 16-84% width."""
    from sklearn.neighbors import NearestNeighbors

    low, high = np.percentile(x, [16, 84], axis=0)
    scaled = (x - np.median(x, axis=0)) / (high - low)
    _, index = NearestNeighbors(n_neighbors=k + 1).fit(scaled).kneighbors(scaled)
    return listed[index[:, 1:]].mean(axis=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=sorted(REAL), choices=sorted(REAL))
    parser.add_argument("--k", nargs="+", type=int, default=[30, 100])
    args = parser.parse_args(argv)
    from data.gaia import assign_dr3_errors, load_gaia
    from data.members import load_member_list, match_members

    for name in args.cases:
        field_file, members_file, _ = REAL[name]
        if not (SHARED / field_file).is_file():
            print(f"{name}: skipped, {SHARED / field_file} is absent")
            continue
        table = assign_dr3_errors(load_gaia(SHARED / field_file).data)
        x = coordinates(table)
        table = table[np.isfinite(x).all(axis=1) & (np.asarray(table["phot_g_mean_mag"]) < 18)]
        x = coordinates(table)
        match = match_members(table, load_member_list(SHARED / members_file))
        truth, listed = match.labels(len(table), 0.7), match.labels(len(table), 0.0)
        print(f"{name}: {len(table)} stars at G < 18, match rate {match.rate:.3f}, "
              f"{int(truth.sum())} members with PMemb >= 0.7")
        centre = np.median(x[truth], axis=0)
        distance = np.hypot(x[:, 0] - centre[0], x[:, 1] - centre[1])
        error = np.hypot(np.asarray(table["parallax_error"], float), 0.01)
        consistent = np.abs(x[:, 2] - centre[2]) < 2 * error
        print(f"  members' median (pmra, pmdec, parallax) = "
              f"({centre[0]:.3f}, {centre[1]:.3f}, {centre[2]:.3f})")
        print("  pm distance (mas/yr) | members there | parallax-consistent stars | "
              "member fraction among them")
        for lo, hi in zip(RINGS[:-1], RINGS[1:], strict=True):
            ring = (distance >= lo) & (distance < hi)
            inside = ring & consistent
            print(f"  {lo:.1f}-{hi:.1f} | {int((ring & truth).sum())} | {int(inside.sum())} | "
                  f"{(inside & truth).sum() / max(inside.sum(), 1):.2f}")
        for k in args.k:
            p = knn_member_fraction(x, listed.astype(float), k)
            chosen = p > 0.5
            print(f"  k = {k}: recall at P > 0.5 {(chosen & truth).sum() / truth.sum():.3f}, "
                  f"{int(chosen.sum())} selected, {int((chosen & ~listed).sum())} not listed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
