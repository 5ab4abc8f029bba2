"""W2 (pm2d, default simulated NGC 6819 field) in this checkout and in a baseline revision,
in one run on one machine: sampling speed in ESS per second, and the time of one
log-density-plus-gradient evaluation.

Run: ``make bench-baseline`` (or ``.venv/bin/python benchmarks/bench_baseline.py
[--baseline REV] [--repeats N]``). The baseline is checked out with ``git worktree`` into
a temporary folder and run with this checkout's virtual environment; the jobs alternate
(baseline, current, baseline, ...), each in a fresh process after an untimed warm-up that
fills the compile caches, so that slow and fast moments of a shared machine fall on both.
Compare the ratio, never the absolute numbers across machines.

The default baseline is the last revision whose cluster models registered their
likelihood with ``pm.Potential``, before the observed ``stars`` variable (issue 18).
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "663a109"  # tests for the recovery metrics; models still on pm.Potential

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, "benchmarks")
import numpy as np
import arviz as az
from bench_speed import default_field
from fields import pm_arrays
if os.path.isdir("starmix"):  # this checkout's own code, whichever layout it has
    from starmix.models.cluster_pm2d import cluster_pm2d
    from starmix.workflows.runs.options import SamplingOptions
    from starmix.workflows.inference.sampling import sample_posterior
else:  # revisions before the starmix package: the top-level folders were the packages
    from models.cluster_pm2d import cluster_pm2d
    from starmix.workflows.runs.options import SamplingOptions
    from starmix.workflows.inference.sampling import sample_posterior

draws, chains, seed = {draws}, {chains}, {seed}
stars, guess = default_field()
values, cov = pm_arrays(stars)
model = cluster_pm2d(values, cov, cluster_guess=[guess["pmra"], guess["pmdec"]])
point = model.initial_point()
evaluate = model.logp_dlogp_function(ravel_inputs=True)
evaluate.set_extra_values({{}})
flat = np.concatenate([np.ravel(v) for v in point.values()])
evaluate(flat)
best = float("inf")
for _ in range(5):
    start = time.perf_counter()
    for _ in range(200):
        evaluate(flat)
    best = min(best, (time.perf_counter() - start) / 200)
keep = [rv.name for rv in model.free_RVs]
start = time.perf_counter()
idata = sample_posterior(model, SamplingOptions(draws=draws, chains=chains, seed=seed),
                         var_names=keep, log_likelihood=False, start_at_map=True)
seconds = time.perf_counter() - start
names = ["cluster_pm", "cluster_pm_dispersion", "w"]
ess = az.ess(idata["posterior"], var_names=names, method="bulk")
low = float(min(np.min(ess[name].values) for name in names))
print(json.dumps({{"logp_dlogp_ms": best * 1e3, "sampling_s": seconds, "min_ess_bulk": low,
                  "ess_per_s": low / seconds, "sampler": idata.attrs.get("sampler")}}))
"""


def run_job(checkout: Path, draws: int, chains: int, seed: int) -> dict:
    code = CHILD.format(draws=draws, chains=chains, seed=seed)
    done = subprocess.run([sys.executable, "-c", code], cwd=checkout, capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f"job in {checkout} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    parser.add_argument("--repeats", type=int, default=2, help="timed jobs per checkout")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--json", default="results/bench_baseline.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.baseline],
                       cwd=ROOT, check=True)
        try:
            checkouts = {"baseline": base, "current": ROOT}
            print(f"W2 pm2d, {args.chains} x {args.draws} draws: baseline {args.baseline} "
                  f"against the working tree; warm-up ...", flush=True)
            for checkout in checkouts.values():  # fills PyTensor's and Numba's caches
                run_job(checkout, 100, 2, 0)
            results = {name: [] for name in checkouts}
            for repeat in range(args.repeats):
                for name, checkout in checkouts.items():
                    result = run_job(checkout, args.draws, args.chains, seed=repeat + 1)
                    results[name].append(result)
                    print(f"  {name:<9} run {repeat + 1}: {result['ess_per_s']:7.1f} ESS/s "
                          f"(min bulk ESS {result['min_ess_bulk']:.0f} in "
                          f"{result['sampling_s']:.1f} s, {result['sampler']}); logp+grad "
                          f"{result['logp_dlogp_ms']:.3f} ms", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)
    summary = {}
    for key in ("ess_per_s", "logp_dlogp_ms"):
        base_value = float(np.median([r[key] for r in results["baseline"]]))
        current = float(np.median([r[key] for r in results["current"]]))
        summary[key] = {"baseline": base_value, "current": current,
                        "ratio": current / base_value}
    print(f"median ESS/s: baseline {summary['ess_per_s']['baseline']:.1f}, current "
          f"{summary['ess_per_s']['current']:.1f} (ratio {summary['ess_per_s']['ratio']:.2f}); "
          f"logp+grad: {summary['logp_dlogp_ms']['baseline']:.3f} ms against "
          f"{summary['logp_dlogp_ms']['current']:.3f} ms (ratio "
          f"{summary['logp_dlogp_ms']['ratio']:.2f})")
    out = ROOT / args.json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"baseline": args.baseline, "runs": results,
                               "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
