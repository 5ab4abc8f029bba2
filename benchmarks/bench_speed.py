"""Speed benchmark: starmix's workflows against peers, in one run on one machine.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_speed.py [--only W2 ...]``).
Prints a table and writes ``results/bench_speed.json``. Every job runs in a fresh child
process (so import and compile times are real and peak memory is per job); compare ratios
from the same run, never absolute numbers across machines.

Workloads
    W1  the outlier-line workflow end to end, with cold PyTensor and Numba caches and warm;
    W2  pm2d on the default simulated NGC 6819 field (K = 2), 4 chains x 1000 draws:
        starmix's default workflow (sampler "auto": nutpie, 300 tuning steps, low-rank mass
        matrix; warm caches as a researcher rerunning it has, and warm on a field no run
        has seen, as after a new cut; ``W2-starmix-cold``, not in the default set, with
        empty caches), starmix's sampling
        alone (model, MAP start, default sampler: the peers' share of the work), a
        hand-written NumPyro model (``benchmarks/peers.py``), starmix's model through PyMC's
        samplers one by one (``nuts_sampler=`` pymc, nutpie, numpyro) and the reference
        notebook's style (``pm.Mixture`` of ``pm.MvNormal``, PyMC's default sampler, shorter
        chains under a time budget; PyMC's numpyro path under a budget too, see
        ``--pymc-numpyro-budget``); posterior means must agree within 3 MCSE. Tuning: each
        sampler's default (``--tune`` to override): 300 for nutpie, 1000 for the others;
    W3  the joint model on the same field;
    W4  pm2d log-density-plus-gradient time against the number of stars; ``W4-200k-run``
        (not in the default set; ``make bench-large``, about 10 minutes) samples pm2d on a
        200,000-star field at full length.

Phases: import; build (data, model, compile, MAP start); tuning; drawing; post (membership
draws, gate, tables, figures). PyMC reports one wall time for tuning plus drawing; it is
split by the chains' own per-draw timers (drawing = their summed time / parallel chains).
Peak memory is the largest resident set of the job's processes (``ru_maxrss``).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
W4_SIZES = (1_000, 4_000, 17_000, 50_000, 200_000)
COMPARED = ("cluster_pm", "cluster_pm_dispersion", "w")


# --- helpers used inside the child processes ---------------------------------------------

def ess_summary(posterior, names, seconds_total, seconds_sampling) -> dict:
    import arviz as az
    import numpy as np

    ess = az.ess(posterior, var_names=list(names), method="bulk")
    values = np.concatenate([np.ravel(ess[name].values) for name in names])
    low = float(values.min())
    return {"min_ess_bulk": low, "ess_per_s_total": low / seconds_total,
            "ess_per_s_sampling": low / seconds_sampling}


def posterior_means(posterior) -> dict:
    import arviz as az
    import numpy as np

    mcse = az.mcse(posterior, var_names=list(COMPARED), method="mean")
    return {name: {"mean": np.ravel(posterior[name].mean(("chain", "draw")).values).tolist(),
                   "mcse": np.ravel(mcse[name].values).tolist()} for name in COMPARED}


def default_field():
    from data.cluster_field import simulate_cluster_field
    from data.clusters import resolve_center
    from workflows.cluster import ClusterInput, initial_guess, prepare_stars

    inputs = ClusterInput(model="pm2d")
    center, _ = resolve_center(inputs.cluster, inputs.center)
    stars, _ = prepare_stars(simulate_cluster_field("ngc6819", seed=42), inputs, center, 42,
                             lambda _message: None)
    return stars, initial_guess(stars, center)


def split_sampling(idata, seconds_sampling: float, chains_in_parallel: int) -> dict:
    stats = idata["sample_stats"]
    steps = float(stats["n_steps"].mean())
    if "perf_counter_diff" not in stats:  # nutpie keeps no per-draw timer
        return {"tuning+drawing (incl. compile)": seconds_sampling, "grad_evals_per_draw": steps}
    drawing = float(stats["perf_counter_diff"].sum()) / chains_in_parallel
    drawing = min(drawing, seconds_sampling)
    return {"tuning": seconds_sampling - drawing, "drawing": drawing,
            "grad_evals_per_draw": steps}


def job_starmix_workflow(args, started: float) -> dict:
    """W1, W2, W3 as a user runs them: the real workflow functions, figures included."""
    from workflows.cluster import ClusterInput, run_cluster
    from workflows.config import SamplingOptions, available_cores
    from workflows.outlier_line import run_outlier_line

    imported = time.perf_counter()
    out = Path(tempfile.mkdtemp(prefix="bench-"))
    sampling = SamplingOptions(draws=args.draws, tune=args.tune)  # sampler "auto"
    if args.model == "outlier-line":
        result = run_outlier_line(out, sampling=sampling, quiet=True)
    else:
        inputs = ClusterInput(model=args.model, sim_seed=args.sim_seed)
        result = run_cluster(out, inputs, sampling=sampling, quiet=True)
    finished = time.perf_counter()
    import xarray as xr

    idata = xr.open_datatree(out / "posterior.nc")
    timings = result.record["timings_s"]
    sampling_wall = float(idata["posterior"].attrs.get("sampling_time", timings["sample"]))
    cores = min(sampling.chains, available_cores())
    phases = split_sampling(idata, sampling_wall, cores)
    membership = float(idata.attrs.get("membership_draws_seconds", 0.0))
    before_sampling = sum(v for k, v in timings.items() if k in ("load data", "build model",
                                                                 "validate and cut"))
    phases["build"] = before_sampling + timings["sample"] - sampling_wall - membership
    phases["post"] = finished - imported - before_sampling - timings["sample"] + membership
    phases["import"] = imported - started
    total = finished - started
    names = [name for name in idata["posterior"].data_vars
             if name not in ("cluster_distance", "s_out", "field_cov")]
    return {"phases": phases, "total": total, "status": result.status,
            **ess_summary(idata["posterior"], names, total, sampling_wall),
            "grad_evals_per_draw": phases.pop("grad_evals_per_draw"),
            **({"means": posterior_means(idata["posterior"])}
               if args.model == "pm2d" and not getattr(args, "new_field", False) else {}),
            **({"sim_seed": args.sim_seed} if args.model != "outlier-line" else {})}


def job_pymc_sampler(args, started: float) -> dict:
    """W2 with starmix's pm2d model from the MAP start, sampling only: through starmix's
    default route (``sampler="auto"``, the same work as the NumPyro peer), or through
    ``pm.sample(nuts_sampler=...)`` (PyMC's own NUTS, nutpie and numpyro one by one)."""
    from models.cluster_pm2d import cluster_pm2d
    from workflows.config import SamplingOptions
    from workflows.sampling import (
        _sample_with_pymc,
        map_point,
        resolve_sampler,
        sample_posterior,
    )

    imported = time.perf_counter()
    from fields import pm_arrays

    stars, guess = default_field()
    values, cov = pm_arrays(stars)
    model = cluster_pm2d(values, cov, cluster_guess=[guess["pmra"], guess["pmdec"]])
    built = time.perf_counter()
    keep = [rv.name for rv in model.free_RVs]
    options = SamplingOptions(draws=args.draws, tune=args.tune, sampler=args.sampler)
    if args.sampler == "auto":
        idata = sample_posterior(model, options, var_names=keep, log_likelihood=False,
                                 start_at_map=True)
    else:
        options = resolve_sampler(options, model)
        idata = _sample_with_pymc(model, options, keep, map_point(model, options.seed))
        idata.attrs.update(sampler=options.sampler, tune=options.tune)
    sampled = time.perf_counter()
    total = sampled - started
    stats = idata["sample_stats"]
    steps = stats["n_steps"] if "n_steps" in stats else stats.get("tree_size")
    return {"phases": {"import": imported - started, "build": built - imported,
                       "tuning+drawing (incl. compile)": sampled - built, "post": 0.0},
            "total": total, **ess_summary(idata["posterior"], keep, total, sampled - built),
            "grad_evals_per_draw": float(steps.mean()) if steps is not None else None,
            "sampler": idata.attrs["sampler"], "tune": idata.attrs["tune"],
            "means": posterior_means(idata["posterior"])}


def job_numpyro_peer(args, started: float) -> dict:
    """W2 peer: the hand-written NumPyro model with NumPyro's NUTS, chains in parallel.

    It starts at starmix's MAP point (NumPyro's default start, uniform on (-2, 2) in the
    unconstrained space, left a chain in another mode: min ESS 6). The MAP is computed
    with PyMC and its time (with PyMC's import) is left out of the peer's total, which only
    flatters the peer.
    """
    import numpyro

    numpyro.set_host_device_count(4)
    import jax
    import numpy as np
    import xarray as xr
    from numpyro.infer import MCMC, NUTS, init_to_value
    from peers import PriorConstants, numpyro_pm2d

    imported = time.perf_counter()
    from fields import pm_arrays

    stars, guess = default_field()
    values, cov = pm_arrays(stars)
    map_started = time.perf_counter()
    start = init_to_value(values=starmix_map_point(values, cov, guess))
    not_counted = time.perf_counter() - map_started
    prior = PriorConstants.from_values(values, [guess["pmra"], guess["pmdec"]])
    model = numpyro_pm2d(values, cov, prior)
    mcmc = MCMC(NUTS(model, target_accept_prob=0.9, init_strategy=start),
                num_warmup=args.tune or 1000,
                num_samples=args.draws, num_chains=4, chain_method="parallel",
                progress_bar=False)
    built = time.perf_counter()
    key = jax.random.PRNGKey(42)
    # JAX dispatches asynchronously: without blocking, warmup() and run() return before
    # the chains have run, and the clock would stop early.
    mcmc.warmup(key, collect_warmup=False)
    jax.block_until_ready(mcmc.post_warmup_state)
    warmed = time.perf_counter()
    mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=("num_steps",))
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    drawn = time.perf_counter()
    posterior = xr.Dataset({name: (("chain", "draw", *[f"{name}_{i}" for i in
                                                         range(np.ndim(value) - 2)]),
                                   np.asarray(value))
                            for name, value in samples.items()})
    total = drawn - started - not_counted
    steps = np.asarray(mcmc.get_extra_fields()["num_steps"])
    return {"phases": {"import": imported - started, "build": built - imported - not_counted,
                       "tuning": warmed - built, "drawing": drawn - warmed, "post": 0.0},
            "total": total, "grad_evals_per_draw": float(steps.mean()),
            **ess_summary(posterior, list(samples), total, drawn - built),
            "means": posterior_means(posterior)}


def starmix_map_point(values, cov, guess) -> dict:
    """starmix's MAP point of pm2d (constrained values, named as in the NumPyro peer)."""
    from models.cluster_pm2d import cluster_pm2d
    from workflows.sampling import map_point

    model = cluster_pm2d(values, cov, cluster_guess=[guess["pmra"], guess["pmdec"]])
    return map_point(model, seed=42)


def job_reference_style(args, started: float) -> dict:
    """W2 peer: ``pm.Mixture`` of ``pm.MvNormal`` (the reference notebook's style)."""
    import pymc as pm
    from peers import PriorConstants, reference_style_pm2d

    imported = time.perf_counter()
    from fields import pm_arrays

    stars, guess = default_field()
    values, cov = pm_arrays(stars)
    model = reference_style_pm2d(values, cov, PriorConstants.from_values(
        values, [guess["pmra"], guess["pmdec"]]))
    built = time.perf_counter()
    idata = pm.sample(draws=args.draws, tune=args.tune or args.draws, chains=2, cores=2,
                      random_seed=42,
                      model=model, progressbar=False, target_accept=0.9)
    sampled = time.perf_counter()
    total = sampled - started
    names = [rv.name for rv in model.free_RVs]
    return {"phases": {"import": imported - started, "build": built - imported,
                       "tuning+drawing (incl. compile)": sampled - built, "post": 0.0},
            "total": total, **ess_summary(idata["posterior"], names, total, sampled - built),
            "means": posterior_means(idata["posterior"]), "chains": 2}


def job_gradient_scaling(args, started: float) -> dict:
    """W4: seconds per log-density-plus-gradient evaluation of pm2d against N stars."""
    import numpy as np
    from fields import pm_arrays, scaled_field

    from models.cluster_pm2d import cluster_pm2d

    rows = []
    for n_stars in args.sizes:
        values, cov = pm_arrays(scaled_field(n_stars))
        model = cluster_pm2d(values, cov, cluster_guess=[-2.9, -3.9])
        evaluate = model.logp_dlogp_function(ravel_inputs=True)
        evaluate.set_extra_values({})
        point = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
        evaluate(point)
        repeats = max(5, int(2e6 // n_stars))
        start = time.perf_counter()
        for _ in range(repeats):
            evaluate(point)
        seconds = (time.perf_counter() - start) / repeats
        rows.append({"n_stars": n_stars, "seconds_per_eval": seconds,
                     "ns_per_star": seconds / n_stars * 1e9})
    return {"rows": rows, "total": time.perf_counter() - started, "phases": {}}


def job_large_run(args, started: float) -> dict:
    """W4 at full length: pm2d on a 200,000-star field, 4 chains x 1000 draws, starmix's
    default sampler, sampling only (no per-star membership draws or pointwise
    log-likelihood: at 200k stars x 4000 draws those alone would be 6.4 GB)."""
    from fields import pm_arrays, scaled_field

    from models.cluster_pm2d import cluster_pm2d
    from workflows.config import SamplingOptions
    from workflows.sampling import sample_posterior

    imported = time.perf_counter()
    values, cov = pm_arrays(scaled_field(args.large_stars))
    model = cluster_pm2d(values, cov, cluster_guess=[-2.9, -3.9])
    built = time.perf_counter()
    keep = [rv.name for rv in model.free_RVs]
    idata = sample_posterior(model, SamplingOptions(draws=args.draws, tune=args.tune),
                             var_names=keep, log_likelihood=False, start_at_map=True)
    sampled = time.perf_counter()
    total = sampled - started
    return {"phases": {"import": imported - started, "build": built - imported,
                       "tuning+drawing (incl. compile)": sampled - built, "post": 0.0},
            "total": total, "n_stars": len(values), "sampler": idata.attrs["sampler"],
            "grad_evals_per_draw": float(idata["sample_stats"]["n_steps"].mean()),
            **ess_summary(idata["posterior"], keep, total, sampled - built)}


JOBS = {
    "W1-cold": (job_starmix_workflow, {"model": "outlier-line", "cold": True}),
    "W1-warm": (job_starmix_workflow, {"model": "outlier-line"}),
    "W2-starmix-cold": (job_starmix_workflow, {"model": "pm2d", "cold": True}),
    "W2-starmix": (job_starmix_workflow, {"model": "pm2d"}),
    "W2-starmix-new-field": (job_starmix_workflow, {"model": "pm2d", "new_field": True}),
    "W2-starmix-sampling": (job_pymc_sampler, {"sampler": "auto"}),
    "W2-numpyro-peer": (job_numpyro_peer, {}),
    "W2-pymc-default-nuts": (job_pymc_sampler, {"sampler": "pymc"}),
    "W2-pymc-via-nutpie": (job_pymc_sampler, {"sampler": "nutpie"}),
    "W2-pymc-via-numpyro": (job_pymc_sampler, {"sampler": "numpyro"}),
    "W2-reference-style": (job_reference_style, {"reference": True}),
    "W3-starmix": (job_starmix_workflow, {"model": "joint"}),
    "W4-gradient": (job_gradient_scaling, {}),
    "W4-200k-run": (job_large_run, {}),
}
# Not by default: W4-200k-run (`make bench-large`) and W2-starmix-cold (3.5 min on the
# 2.4 GHz host; W2-starmix-new-field is the case a researcher meets, a new field on warm
# caches; W1-cold reports a cold start).
DEFAULT_JOBS = [name for name in JOBS if name not in ("W4-200k-run", "W2-starmix-cold")]


# --- the parent: run each job in a child, collect, compare, print -------------------------

def run_child(name: str, args) -> dict:
    settings = JOBS[name][1]
    env = dict(os.environ, CI="true")
    if settings.get("cold"):  # empty PyTensor and Numba caches: everything compiles
        # base_compiledir, not compiledir: PyTensor keeps its Numba cache beside the latter
        env["PYTENSOR_FLAGS"] = f"base_compiledir={tempfile.mkdtemp(prefix='pytensor-cold-')}"
        env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cold-")
    draws, tune = (args.reference_draws, args.reference_draws) if settings.get("reference") \
        else (args.draws, args.tune)
    # A field no run has seen (caches warm for the model, not for these data): a new cut.
    seed = [] if not settings.get("new_field") else ["--sim-seed", str(time.time_ns() % 2**31)]
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, __file__, "--child", name, "--child-out", str(out),
               "--draws", str(draws), *(["--tune", str(tune)] if tune is not None else []),
               "--sizes", *map(str, args.sizes), "--large-stars", str(args.large_stars), *seed]
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    timeout = (args.reference_budget if settings.get("reference") else
               args.pymc_numpyro_budget if name == "W2-pymc-via-numpyro" else args.job_budget)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return {"job": name, "status": f"did not finish within {timeout} s",
                "wall": time.perf_counter() - start}
    wall = time.perf_counter() - start
    if process.returncode != 0:
        return {"job": name, "status": f"failed: {stderr.strip().splitlines()[-1:]}",
                "wall": wall}
    result = json.loads(out.read_text())
    out.unlink()
    return {"job": name, "wall": wall, **result}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(JOBS), default=DEFAULT_JOBS,
                        help="jobs to run (default: all but W4-200k-run and W2-starmix-cold)")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=None,
                        help="tuning steps (default: each sampler's own, 300 nutpie, else 1000)")
    parser.add_argument("--reference-draws", type=int, default=200,
                        help="draws and tuning steps of the reference-style peer (slow)")
    parser.add_argument("--reference-budget", type=int, default=150,
                        help="seconds after which the reference-style peer is stopped")
    parser.add_argument("--pymc-numpyro-budget", type=int, default=400,
                        help="seconds after which W2-pymc-via-numpyro is stopped (it runs "
                             "NumPyro's NUTS like W2-numpyro-peer: about 6 min on the faster "
                             "hosts, 13 on the slower; the default keeps `make bench` under "
                             "30 min)")
    parser.add_argument("--job-budget", type=int, default=900,
                        help="seconds after which any other job is stopped and reported")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(W4_SIZES))
    parser.add_argument("--large-stars", type=int, default=W4_SIZES[-1],
                        help="stars in the W4-200k-run field")
    parser.add_argument("--json", default="results/bench_speed.json")
    parser.add_argument("--sim-seed", type=int, default=42, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        started = time.perf_counter()
        job, settings = JOBS[args.child]
        for key, value in settings.items():
            setattr(args, key, value)
        result = job(args, started)
        result["peak_mib"] = _own_peak_mib()
        Path(args.child_out).write_text(json.dumps(result))
        return 0
    results = [run_child(name, args) for name in args.only]
    report = {"machine": machine(), "results": results, "agreement": agreement(results),
              "targets": targets(results)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print_table(report)
    return 0


def _own_peak_mib() -> float:
    """Largest resident set of this process and of its finished children (sampler workers)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def machine() -> dict:
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": platform.python_version()}


def agreement(results: list[dict]) -> list[dict]:
    """Every W2 peer's posterior means against starmix's, in units of combined MCSE."""
    import numpy as np

    reference = next((r for r in results if r["job"] == "W2-starmix" and "means" in r), None)
    rows = []
    for result in results:
        if reference is None or result is reference or "means" not in result:
            continue
        worst = 0.0
        for name in COMPARED:
            a, b = reference["means"][name], result["means"][name]
            distance = np.abs(np.subtract(a["mean"], b["mean"])) / np.hypot(a["mcse"], b["mcse"])
            worst = max(worst, float(distance.max()))
        rows.append({"job": result["job"], "max_mcse_distance": worst, "agrees": worst <= 3})
    return rows


def targets(results: list[dict]) -> list[str]:
    """The issue's bars, each with the measured ratio or time of this run."""
    by_job = {r["job"]: r for r in results if "total" in r}
    lines = []
    for starmix in ("W2-starmix", "W2-starmix-cold", "W2-starmix-sampling"):
        for peer, bar in (("W2-numpyro-peer", 3), ("W2-reference-style", 20)):
            if starmix in by_job and peer in by_job:
                ratio = by_job[starmix]["ess_per_s_total"] / by_job[peer]["ess_per_s_total"]
                lines.append(f"{starmix} / {peer}: {ratio:.2f}x in min-ESS per second of total "
                             f"wall (bar >= {bar}x: {'met' if ratio >= bar else 'NOT met'})")
    for job, bar in (("W1-warm", 8.0), ("W1-cold", None), ("W2-starmix-new-field", None),
                     ("W3-starmix", 300.0),
                     ("W4-200k-run", 600.0)):
        if job in by_job:
            total = by_job[job]["total"]
            verdict = "" if bar is None else (
                f" (bar <= {bar:.0f} s: {'met' if total <= bar else 'NOT met'})")
            lines.append(f"{job}: {total:.1f} s wall{verdict}")
    return lines


def print_table(report: dict) -> None:
    print(f"machine: {report['machine']}")
    header = (f"{'job':<22}{'total s':>9}{'import':>8}{'build':>8}{'tune':>8}{'draw':>8}"
              f"{'post':>8}{'min ESS':>9}{'ESS/s':>8}{'ESS/s smp':>10}{'grad/draw':>10}"
              f"{'peak MiB':>9}")
    print(header)
    for r in report["results"]:
        if "total" not in r:
            print(f"{r['job']:<22}{r['status']}")
            continue
        p = r["phases"]
        tune = p.get("tuning", p.get("tuning+drawing (incl. compile)", float("nan")))
        print(f"{r['job']:<22}{r['total']:9.1f}{p.get('import', float('nan')):8.1f}"
              f"{p.get('build', float('nan')):8.1f}{tune:8.1f}"
              f"{p.get('drawing', float('nan')):8.1f}{p.get('post', float('nan')):8.1f}"
              f"{r.get('min_ess_bulk', float('nan')):9.0f}"
              f"{r.get('ess_per_s_total', float('nan')):8.2f}"
              f"{r.get('ess_per_s_sampling', float('nan')):10.2f}"
              f"{r.get('grad_evals_per_draw') or float('nan'):10.1f}{r.get('peak_mib', 0):9.0f}")
        for row in r.get("rows", []):
            print(f"    N = {row['n_stars']:>7}: {row['seconds_per_eval'] * 1e3:8.3f} ms per "
                  f"log-density+gradient ({row['ns_per_star']:.0f} ns per star)")
    for row in report["agreement"]:
        print(f"agreement with starmix: {row['job']}: max |difference| = "
              f"{row['max_mcse_distance']:.2f} MCSE ({'ok' if row['agrees'] else 'DISAGREES'})")
    for line in report["targets"]:
        print(line)


if __name__ == "__main__":
    sys.exit(main())
