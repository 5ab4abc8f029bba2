"""The whole ``starmix run cluster`` as a user runs it: wall time per step, gradients per
draw and the detection verdict, per model and field size (``make bench-run``).

Each case is one ``starmix run cluster`` process (detection, gate, membership, predictive
checks, results; figures off) with 4 chains x 1000 draws by default, after one warm-up
run per model so that compile caches are warm. Cases: simulated NGC 6819 fields of 1k,
10k and 50k stars, and the real cones with sky positions in ``../shared/data`` (NGC 188
DR2 cone, Blanco 1 DR2 field) when they are there. ``--detection-methods laplace nuts``
runs every case with each detection method, in the same run, and prints the verdict
table (verdict, Δelpd and its se of each, and whether the fast one is within one se).

    python benchmarks/bench_run.py                          # everything (about an hour)
    python benchmarks/bench_run.py --sizes 1000 --models pmplx --no-real   # a minute

Prints one line per case and a summary; ``--json FILE`` writes every number.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SIZES = {1000: (100, 900), 10000: (400, 9600), 50000: (1000, 49000)}
REAL = {
    "ngc188-dr2": (["--data", str(SHARED / "ngc188_gaiadr2_cone.csv.gz"), "--cluster", "NGC188",
                    "--assign-errors", "--drop-invalid"], "ngc188_gaiadr2_cone.csv.gz"),
    "blanco1-dr2": (["--data", str(SHARED / "blanco1_gaiadr2_field.csv.gz"), "--cluster",
                     "Blanco_1", "--catalogue", str(SHARED / "cg20_cluster_parameters.tsv"),
                     "--drop-invalid"], "blanco1_gaiadr2_field.csv.gz"),
}
STEPS = ("load data", "validate and cut", "field-only models", "sample", "detection",
         "convergence gate", "membership and summaries", "predictive checks", "save results")


def run_case(name, args, model, method, draws, chains, out_root) -> dict:
    out = out_root / f"{name}-{model}-{method}"
    command = [sys.executable, "-m", "starmix.workflows.cli", "run", "cluster", "--model", model,
               *args, "--draws", str(draws), "--chains", str(chains), "--no-figures",
               "--detection-method", method, "--out", str(out)]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - began
    row = {"case": name, "model": model, "detection_method": method, "exit_code": done.returncode,
           "wall_s": round(wall, 1)}
    record_path = out / "run_record.json"
    if not record_path.is_file():
        row["error"] = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"
        return row
    record = json.loads(record_path.read_text())
    row["status"] = record["status"]
    row["timings_s"] = record["timings_s"]
    row["n_stars"] = (record.get("selection") or {}).get("n_stars")
    row["field_components"] = record.get("field_components")
    detection = record.get("detection") or {}
    row["verdict"] = detection.get("verdict")
    row["delta_elpd"], row["se"] = detection.get("delta_elpd"), detection.get("se")
    row["alternatives"] = detection.get("alternatives")
    row["gradients_per_draw"] = gradients_per_draw(out / "posterior.nc")
    return row


def gradients_per_draw(path: Path) -> float | None:
    """Mean leapfrog steps (gradient evaluations) per draw, from the sample stats."""
    try:
        import xarray as xr

        with xr.open_datatree(path) as tree:
            stats = tree["sample_stats"]
            for name in ("n_steps", "tree_size"):
                if name in stats:
                    return round(float(stats[name].mean()), 1)
    except (OSError, KeyError, ValueError):
        return None
    return None


def line(row: dict) -> str:
    if "error" in row:
        return (f"{row['case']:>12} {row['model']:>6} {row['detection_method']:>8}: "
                f"ERROR {row['error']}")
    t = row["timings_s"]
    steps = " ".join(f"{step.split()[0][:6]}={t[step]:.0f}" for step in STEPS if step in t)
    return (f"{row['case']:>12} {row['model']:>6} {row['detection_method']:>8} "
            f"{row['n_stars']} stars K={row['field_components']}: total "
            f"{t.get('total', row['wall_s']):6.1f} s (process {row['wall_s']:.0f} s) | {steps} | "
            f"grad/draw {row['gradients_per_draw']} | {row['verdict']} "
            f"Δelpd {row['delta_elpd']} ± {row['se']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--models", nargs="+", default=["pmplx", "joint"])
    parser.add_argument("--detection-methods", nargs="+", default=["laplace", "nuts"])
    parser.add_argument("--no-real", action="store_true", help="skip the real cones")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "results" / "bench_run"))
    parser.add_argument("--json", help="write every number to this file")
    options = parser.parse_args(argv)
    out_root = Path(options.out)
    out_root.mkdir(parents=True, exist_ok=True)
    cases = [(f"sim-{size // 1000}k", ["--n-cluster", str(SIZES[size][0]), "--n-field",
                                       str(SIZES[size][1])]) for size in options.sizes]
    if not options.no_real:
        missing = [name for name, (_, file) in REAL.items() if not (SHARED / file).is_file()]
        if missing:
            print(f"skipping {missing}: ../shared/data is not beside the project")
        cases += [(name, args) for name, (args, _) in REAL.items() if name not in missing]
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    rows = []
    print(f"{options.chains} chains x {options.draws} draws; warm-up run per model first",
          flush=True)
    for model in options.models:
        run_case("warm-up", ["--n-cluster", "100", "--n-field", "900"], model,
                 options.detection_methods[0], 100, 2, out_root)
        for name, args in cases:
            for method in options.detection_methods:
                row = run_case(name, args, model, method, options.draws, options.chains,
                               out_root)
                rows.append(row)
                print(line(row), flush=True)
    print_verdict_table(rows, options.detection_methods)
    if options.json:
        Path(options.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def print_verdict_table(rows, methods) -> None:
    if len(methods) < 2:
        return
    fast, reference = methods[0], methods[1]
    print(f"\nverdicts: {fast} against {reference} (same run)")
    print(f"{'case':>12} {'model':>6} | {reference + ' verdict':>18} Δ ± se | "
          f"{fast + ' verdict':>18} Δ ± se | same | |ΔΔ| <= se | detection s ({fast}/{reference})")
    by_key = {(row["case"], row["model"], row["detection_method"]): row for row in rows}
    for (case, model, method), ref in by_key.items():
        if method != reference or (case, model, fast) not in by_key:
            continue
        new = by_key[(case, model, fast)]
        if "error" in ref or "error" in new:
            print(f"{case:>12} {model:>6} | error in one of the runs")
            continue
        same = ref["verdict"] == new["verdict"]
        close = (ref["delta_elpd"] is not None and new["delta_elpd"] is not None
                 and abs(ref["delta_elpd"] - new["delta_elpd"]) <= ref["se"])
        times = (new["timings_s"].get("detection"), ref["timings_s"].get("detection"))
        print(f"{case:>12} {model:>6} | {ref['verdict']!s:>18} {ref['delta_elpd']} ± {ref['se']} | "
              f"{new['verdict']!s:>18} {new['delta_elpd']} ± {new['se']} | {same} | {close} | "
              f"{times[0]} / {times[1]}")


if __name__ == "__main__":
    sys.exit(main())
