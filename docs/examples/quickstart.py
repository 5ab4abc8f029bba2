"""starmix from Python: each workflow on built-in data, in a few lines each.

    python docs/examples/quickstart.py [OUT]          # full-length chains (a minute or two)
    python docs/examples/quickstart.py OUT --quick    # short chains (the test suite runs this)

Writes each fit's results folder and two figures under OUT (default
``results/quickstart``), and prints what a notebook user would look at.
"""

import argparse
from pathlib import Path

import starmix
from starmix.data.cluster_field import simulate_cluster_field
from starmix.data.line import simulate_outlier_line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="results/quickstart")
    parser.add_argument("--quick", action="store_true", help="short chains, lenient gate")
    args = parser.parse_args(argv)
    out = Path(args.out)
    short = dict(draws=300, tune=300, chains=2, ess_bulk_min=100, ess_tail_min=100,
                 r_hat_max=1.05) if args.quick else {}

    # 1. A straight line with outliers: arrays in, a Fit out.
    points = simulate_outlier_line(seed=42)
    line = starmix.fit_outlier_line(points.x, points.y, points.y_err, seed=1, quiet=True,
                                    **short)
    print(f"outlier line: {line.status}; slope {float(line.idata['posterior']['m'].mean()):.3f}"
          f" (true {points.truth['m']}); points with P(on the line) < 0.5: "
          f"{int((line.membership['p_line'] < 0.5).sum())} of {len(line.membership)}")
    out.mkdir(parents=True, exist_ok=True)
    line.plot_corner().savefig(out / "line_corner.png")
    line.save(out / "outlier-line")

    # 2. A cluster in a Gaia field: an astropy Table in (here a simulated NGC 6819 cone).
    field = simulate_cluster_field("ngc6819", seed=3, n_cluster=300, n_field=700)
    cluster = starmix.fit_cluster(field, model="pm2d", cluster="NGC6819", seed=1, quiet=True,
                                  **short)
    members = cluster.membership[cluster.membership["p_cluster"] > 0.7]
    pm = cluster.idata["posterior"]["cluster_pm"].mean(("chain", "draw")).values
    print(f"cluster: {cluster.status}; mean proper motion ({pm[0]:.3f}, {pm[1]:.3f}) mas/yr "
          f"(true ({field.meta['TRUEPMRA']}, {field.meta['TRUEPMDE']})); {len(members)} stars "
          f"with P > 0.7 ({int(members['is_member'].sum())} true members)")
    cluster.plot_membership().savefig(out / "cluster_vpd.png")
    cluster.save(out / "cluster-pm2d")
    return 0 if line.passed and cluster.passed else 2


if __name__ == "__main__":
    raise SystemExit(main())
