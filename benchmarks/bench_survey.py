"""Survey throughput: a serial loop in one process against ``starmix survey`` on Dask.

``make bench-survey`` (or ``python benchmarks/bench_survey.py [--clusters 24] [--configs
...]``). Needs Cantat-Gaudin et al. (2020)'s table in ``../shared/data``.

The clusters: ``--clusters`` CG20 clusters of varied richness, a seeded draw stratified
by member count (``nbstars07``, equal numbers from each quartile), each with a simulated
field (:class:`starmix.data.survey_sources.SimulatedSource`, ``--field-density`` stars per
arcmin²). Every configuration fits the same clusters with the same settings (pmplx,
detection on, 4 chains x ``--draws``, no figures or predictive checks):

* ``serial1``: a loop in one process calling the survey's task function, one chain at a
  time (the same work per cluster as a Dask task);
* ``serial2``: the same loop with the chains on every core (what a user looping over
  ``starmix run`` gets by default);
* ``dask1``, ``dask2``: ``run_survey`` on a local cluster of 1 and 2 single-threaded
  worker processes.

Each configuration starts from empty PyTensor and Numba compile caches of its own (set
for the benchmark process and inherited by its workers), so the first cluster pays the
compile and the benchmark counts the cache files written after the first cluster finished
(0 means no later cluster compiled anything).

Printed per configuration: wall time, clusters per hour, the ratio to the serial loops,
the median sampling time per cluster, the per-cluster overhead (task time minus the run's
own time: task start and the cone's data; and the survey's wall time x workers / clusters
minus the median task time: scheduling and idle tails), the extra time of each worker's
first cluster over the median (compiling into the empty caches, importing), peak memory
per worker, and the projected time for 7,167 clusters (Hunt & Reffert 2023) on N
machines like this one.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CG20 = ROOT.parent / "shared" / "data" / "cg20_cluster_parameters.tsv"
HUNT_REFFERT = 7167
CONFIGS = ("serial1", "serial2", "dask1", "dask2")


def pick_clusters(n: int, seed: int, folder: Path) -> Path:
    """A catalogue of ``n`` CG20 clusters, equal numbers from each richness quartile."""
    from astropy.table import Table

    from starmix.data.catalogue import read_vizier_tsv

    table = read_vizier_tsv(CG20)
    table = table[np.isfinite(np.asarray(table["nbstars07"], float))
                  & (np.asarray(table["RA_ICRS"], float) >= 0)]
    richness = np.asarray(table["nbstars07"], float)
    edges = np.quantile(richness, [0, 0.25, 0.5, 0.75, 1.0])
    rng = np.random.default_rng(seed)
    chosen = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        pool = np.flatnonzero((richness >= low) & (richness <= high))
        pool = np.setdiff1d(pool, chosen)
        chosen.extend(rng.choice(pool, n // 4 + (len(chosen) < n % 4), replace=False))
    picked = Table(table[np.sort(chosen)[:n]])
    path = folder / "catalogue.ecsv"
    picked.write(path, format="ascii.ecsv", overwrite=True)
    return path


def cache_files(root: Path) -> set:
    return {p for p in root.rglob("*") if p.is_file()}


def run_config(name: str, catalogue: Path, work: Path, args) -> dict:
    """One configuration in a fresh process with empty compile caches of its own."""
    import subprocess

    cache = work / f"cache-{name}"
    env = {**os.environ, "PYTENSOR_FLAGS": f"compiledir={cache / 'pytensor'}",
           "NUMBA_CACHE_DIR": str(cache / "numba")}
    out = work / f"result-{name}.json"
    command = [sys.executable, __file__, "--one", name, "--catalogue", str(catalogue),
               "--work", str(work), "--draws", str(args.draws),
               "--field-density", str(args.field_density), "--json", str(out)]
    subprocess.run(command, env=env, check=True)
    return json.loads(out.read_text())


def one(name: str, catalogue: Path, work: Path, draws: int, density: float) -> dict:
    """Run one configuration in this process (its caches are already set by the parent)."""
    import pytensor

    from starmix.data.survey_catalogue import read_survey_catalogue
    from starmix.data.survey_sources import SimulatedSource
    from starmix.workflows.runs.options import SamplingOptions
    from starmix.workflows.survey.run import Execution, SurveyOptions, run_survey, survey_cluster

    caches = [Path(pytensor.config.compiledir), Path(os.environ["NUMBA_CACHE_DIR"])]
    for folder in caches:
        folder.mkdir(parents=True, exist_ok=True)
    options = SurveyOptions(model="pmplx", figures=False, checks="off",
                            sim_field_density=density)
    cores = 1 if name in ("serial1", "dask1", "dask2") else len(os.sched_getaffinity(0))
    sampling = SamplingOptions(draws=draws, cores=cores)
    first_done, new_after_first, finished = {}, [], []

    def after(row, *_):
        finished.append(float(row["task_time"]))
        snapshot = set().union(*(cache_files(c) for c in caches))
        if not first_done:
            first_done["files"] = snapshot
            first_done["count"] = len(snapshot)
        else:
            new_after_first.append(len(snapshot - first_done["files"]))

    out = work / f"survey-{name}"
    began = time.perf_counter()
    if name.startswith("serial"):
        source = SimulatedSource(options.sim_seed, density)
        rows = []
        (out / "logs").mkdir(parents=True, exist_ok=True)
        for target in read_survey_catalogue(catalogue):
            rows.append(survey_cluster(target, source, str(out / "clusters" / target.key),
                                       options, sampling, _gate(), str(out / "logs" /
                                                                        f"{target.key}.log")))
            after(rows[-1])
        workers = 1
        peak = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
    else:
        workers = int(name[-1])
        result = run_survey(catalogue, out, options, sampling, _gate(),
                            Execution(workers=workers, memory_limit="8GiB"), on_result=after,
                            say=lambda message: None)
        rows = [dict(zip(result.table.colnames, row, strict=True)) for row in result.table]
        peak = [float(row["worker_peak_mib"]) for row in rows]
    wall = time.perf_counter() - began
    done = [row for row in rows if row["verdict"] != "error"]
    return {"config": name, "workers": workers, "cores_per_cluster": cores,
            "clusters": len(rows), "errors": len(rows) - len(done), "wall_s": wall,
            "verdicts": sorted(str(row["verdict"]) for row in rows),
            "sampling_s": [float(row["sampling_time"]) for row in done],
            "run_s": [float(row["wall_time"]) for row in done],
            "task_s": [float(row["task_time"]) for row in done],
            "task_s_in_finishing_order": finished,
            "peak_mib": max(peak), "cache_files_first": first_done.get("count", 0),
            "cache_files_after_first": max(new_after_first, default=0)}


def _gate():
    from starmix.workflows.runs.options import GateThresholds

    return GateThresholds()


def report(results: list[dict]) -> None:
    serial = {r["config"]: r["clusters"] / r["wall_s"] * 3600 for r in results
              if r["config"].startswith("serial")}
    print(f"\n{'config':8} {'workers':>7} {'wall':>7} {'clusters/h':>10} {'x serial1':>9} "
          f"{'x serial2':>9} {'median sampling':>15} {'task-run':>8} {'sched+idle':>10} "
          f"{'1st extra':>9} {'peak MiB':>8} {'new cache files after 1st':>25}")
    for r in results:
        rate = r["clusters"] / r["wall_s"] * 3600
        sampling = float(np.median(r["sampling_s"]))
        task_overhead = float(np.median(np.subtract(r["task_s"], r["run_s"])))
        scheduling = r["wall_s"] * r["workers"] / r["clusters"] - float(np.median(r["task_s"]))
        first = r["task_s_in_finishing_order"][:r["workers"]]  # each worker's first cluster
        first_extra = float(np.mean(first) - np.median(r["task_s"])) if first else 0.0
        ratios = [f"{rate / serial[s]:9.2f}" if s in serial else f"{'-':>9}"
                  for s in ("serial1", "serial2")]
        print(f"{r['config']:8} {r['workers']:>7} {r['wall_s']:6.0f}s {rate:10.1f} "
              f"{ratios[0]} {ratios[1]} {sampling:14.1f}s {task_overhead:7.2f}s "
              f"{scheduling:9.1f}s {first_extra:8.1f}s {r['peak_mib']:8.0f} "
              f"{r['cache_files_after_first']:>25}")
        if r["errors"]:
            print(f"   {r['errors']} cluster(s) ended in an error")
    best = max(results, key=lambda r: r["clusters"] / r["wall_s"])
    rate = best["clusters"] / best["wall_s"] * 3600
    print(f"\nprojected time for {HUNT_REFFERT:,} clusters at {rate:.1f} clusters/h per "
          f"machine ({best['config']}):")
    for machines in (1, 10, 100):
        print(f"  {machines:>3} machine(s): {HUNT_REFFERT / rate / machines:8.1f} h")
    print("(same settings; the simulated fields' sizes set the time per cluster: see "
          "docs/survey.md)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=24)
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--field-density", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--one", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--catalogue", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = one(args.one, Path(args.catalogue), Path(args.work), args.draws,
                     args.field_density)
        Path(args.json).write_text(json.dumps(result))
        return 0
    if not CG20.is_file():
        print(f"bench_survey: needs {CG20} (../shared beside the repository)")
        return 1
    with tempfile.TemporaryDirectory(prefix="starmix-bench-survey-") as work:
        work = Path(work)
        catalogue = pick_clusters(args.clusters, args.seed, work)
        print(f"{args.clusters} CG20 clusters (richness quartiles, seed {args.seed}); pmplx, "
              f"4 chains x {args.draws} draws, {args.field_density:g} field stars/arcmin²",
              flush=True)
        results = []
        for name in args.configs:
            print(f"running {name} ...", flush=True)
            results.append(run_config(name, catalogue, work, args))
            r = results[-1]
            print(f"  {name}: {r['wall_s']:.0f} s for {r['clusters']} clusters "
                  f"({r['errors']} errors)", flush=True)
        report(results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
