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
the best recall a method without positions can reach. It also prints the member fraction
among parallax-consistent stars in rings of proper-motion distance from the members'
median, which shows where the members and the field overlap.

With ``--colour`` it also asks whether photometry (the BP-RP colour at given G, which
the fields do hold) would raise that ceiling: the k-NN odds are multiplied by a colour
likelihood ratio, a Gaussian about the listed members' running median colour (robust
width per 0.5 mag bin of G, 10% outlier allowance) against the field's colour density at
that G (a 2D kernel density estimate divided by the 1D one in G). The ridge is drawn
from the labels, so this too is a supervised upper estimate.

The stars are those the membership benchmark uses (G < 18, finite astrometry, DR3 errors
from pygaia), matched to the list as :mod:`starmix.data.members` describes.
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


def colour_likelihood_ratio(g: np.ndarray, colour: np.ndarray, members: np.ndarray,
                            bin_width: float = 0.5, outliers: float = 0.1) -> np.ndarray:
    """p(colour | G, cluster) / p(colour | G, field) per star (1 where BP-RP is missing).

    ``g`` and ``colour`` in mag; the cluster sequence is the members' running median
    colour over a 1.5 mag window with a robust (MAD) width of at least 0.03 mag."""
    from scipy.stats import gaussian_kde

    finite = np.isfinite(colour)
    ridge = np.full(len(g), np.nan)
    width = np.full(len(g), np.nan)
    for lo in np.arange(np.floor(g.min()), np.ceil(g.max()), bin_width):
        near = members & finite & (g >= lo - bin_width) & (g < lo + 2 * bin_width)
        here = (g >= lo) & (g < lo + bin_width)
        if near.sum() > 5:
            median = np.median(colour[near])
            ridge[here] = median
            width[here] = max(1.4826 * np.median(np.abs(colour[near] - median)), 0.03)
    sample = np.flatnonzero(finite)[::5]  # every fifth star: the KDE is O(n^2)
    joint = gaussian_kde(np.vstack([g[sample], colour[sample]]), bw_method=0.1)
    marginal = gaussian_kde(g[sample], bw_method=0.1)
    field = np.full(len(g), np.nan)
    field[finite] = joint(np.vstack([g[finite], colour[finite]])) / marginal(g[finite])
    sequence = np.exp(-0.5 * ((colour - ridge) / width) ** 2) / (np.sqrt(2 * np.pi) * width)
    cluster = (1 - outliers) * sequence + outliers * field
    usable = finite & np.isfinite(cluster) & (field > 0)
    return np.where(usable, cluster / np.where(usable, field, 1.0), 1.0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=sorted(REAL), choices=sorted(REAL))
    parser.add_argument("--k", nargs="+", type=int, default=[30, 100])
    parser.add_argument("--colour", action="store_true",
                        help="also estimate the ceiling with a BP-RP colour term")
    args = parser.parse_args(argv)
    from starmix.data.gaia import assign_dr3_errors, load_gaia
    from starmix.data.members import load_member_list, match_members

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
        ratio = None
        if args.colour:
            ratio = colour_likelihood_ratio(np.asarray(table["phot_g_mean_mag"], float),
                                            np.asarray(table["bp_rp"], float), truth)
        for k in args.k:
            p = knn_member_fraction(x, listed.astype(float), k)
            estimates = {"astrometry": p}
            if ratio is not None:
                odds = np.clip(p, 1e-3, 1 - 1e-3) / (1 - np.clip(p, 1e-3, 1 - 1e-3)) * ratio
                estimates["astrometry + colour"] = odds / (1 + odds)
            for label, estimate in estimates.items():
                chosen = estimate > 0.5
                print(f"  k = {k}, {label}: recall at P > 0.5 "
                      f"{(chosen & truth).sum() / truth.sum():.3f}, {int(chosen.sum())} "
                      f"selected, {int((chosen & ~listed).sum())} not listed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
