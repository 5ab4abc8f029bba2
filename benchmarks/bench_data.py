"""Print the time (and peak memory) to load, validate and simulate Gaia tables.

Run: .venv/bin/python benchmarks/bench_data.py   (real files from ../shared/data if present)
Figures are wall-clock on a shared machine: compare ratios from the same run.
"""

import time
import tracemalloc
from pathlib import Path

from starmix.data.cluster_field import simulate_cluster_field, write_cluster_field
from starmix.data.gaia import load_gaia, validate_gaia

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def timed(label, function, repeat=3):
    """Best wall time of ``repeat`` runs, then one more run under tracemalloc for memory."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"{label:<48s} best of {repeat}: {best:7.3f} s   peak {peak:7.1f} MiB")
    return result


def main():
    table = timed("simulate_cluster_field (17,000 stars)", lambda: simulate_cluster_field(seed=0))
    path = Path("/tmp/starmix_bench_field.fits.gz")
    timed("write FITS.gz (17,000 stars)", lambda: write_cluster_field(table, path))
    data = timed("load_gaia simulated FITS.gz", lambda: load_gaia(path).data)
    timed("validate_gaia (8 columns)", lambda: validate_gaia(
        data, ["source_id", "parallax", "parallax_error", "pmra", "pmra_error", "pmdec",
               "pmdec_error", "pmra_pmdec_corr"]))
    for name in ("ngc188_gaiadr3_field.csv.gz", "m67_gaiadr3_field.csv.gz",
                 "edr3_field_ra345.67_dec59.56.csv"):
        if (SHARED / name).is_file():
            rows = timed(f"load_gaia {name}", lambda n=name: load_gaia(SHARED / n).data)
            print(f"{'':<48s} ({len(rows):,} rows)")
        else:
            print(f"{name}: not found in {SHARED}, skipped")


if __name__ == "__main__":
    main()
