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
        empty caches), starmix's sampling alone (model, MAP start, default sampler: the
        peers' share of the work), a hand-written NumPyro model (``benchmarks/peers.py``),
        starmix's model through PyMC's samplers one by one (``nuts_sampler=`` pymc, nutpie,
        and numpyro at 2 chains x (200 + 200), one per core, ``--pymc-numpyro-draws`` and
        ``--pymc-numpyro-chains``), whose posterior means must
        agree with starmix's within 3 MCSE; and the reference notebook's style
        (``pm.Mixture`` of ``pm.MvNormal``), whose log-density is checked equal to starmix's
        and whose run (about an hour) is estimated from its measured gradient time and
        PyMC's NUTS on starmix's model (:func:`estimate_reference_style`). Tuning: each
        sampler's default (``--tune`` to override): 300 for nutpie, 1000 for the others;
    W3  the joint model on the same field;
    W4  pm2d log-density-plus-gradient time against the number of stars; ``W4-200k-run``
        (not in the default set; ``make bench-large``, about 10 minutes) samples pm2d on a
        200,000-star field at full length.

An untimed warm-up (short runs of the same code) first fills PyTensor's and Numba's caches,
so that "warm" means warm on a fresh machine too. Its two groups of jobs (the pm2d jobs,
which share compiled functions, in one) run side by side, one per core: compiling is
single-threaded.
W1-warm is the second run on the caches W1-cold filled, so W1 needs no warm-up.

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
from functools import partial
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
    from starmix.data.cluster_field import simulate_cluster_field
    from starmix.data.clusters import resolve_center
    from starmix.workflows.cluster.fit import initial_guess
    from starmix.workflows.cluster.inputs import ClusterInput, prepare_stars

    inputs = ClusterInput(model="pm2d", cluster="NGC6819")
    center, _ = resolve_center(inputs.cluster, inputs.center)
    stars, _ = prepare_stars(simulate_cluster_field("ngc6819", seed=42), inputs, center, 42,
                             lambda _message: None)
    return stars, initial_guess(stars)


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
    from starmix.workflows.cluster.inputs import ClusterInput
    from starmix.workflows.cluster.run import run_cluster
    from starmix.workflows.line.run import run_outlier_line
    from starmix.workflows.runs.options import SamplingOptions, available_cores

    imported = time.perf_counter()
    out = Path(tempfile.mkdtemp(prefix="bench-"))
    sampling = SamplingOptions(draws=args.draws, tune=args.tune)  # sampler "auto"
    if args.model == "outlier-line":
        result = run_outlier_line(out, sampling=sampling, quiet=True)
    else:
        # one fit, as the peers make: the detection step's field-only fits are not timed here
        inputs = ClusterInput(model=args.model, sim_seed=args.sim_seed, detection=False)
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
    from starmix.models.cluster_pm2d import cluster_pm2d
    from starmix.workflows.inference.sampling import (
        _sample_with_pymc,
        map_point,
        resolve_sampler,
        sample_posterior,
    )
    from starmix.workflows.runs.options import SamplingOptions, available_cores

    imported = time.perf_counter()
    from fields import pm_arrays

    stars, guess = default_field()
    values, cov = pm_arrays(stars)
    model = cluster_pm2d(values, cov, cluster_guess=[guess["pmra"], guess["pmdec"]])
    built = time.perf_counter()
    keep = [rv.name for rv in model.free_RVs]
    options = SamplingOptions(draws=args.draws, tune=args.tune, sampler=args.sampler,
                              chains=args.chains)
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
            "draws": options.draws, "chains": options.chains,
            "cores": min(options.chains, available_cores()),
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
    from starmix.models.cluster_pm2d import cluster_pm2d
    from starmix.workflows.inference.sampling import map_point

    model = cluster_pm2d(values, cov, cluster_guess=[guess["pmra"], guess["pmdec"]])
    return map_point(model, seed=42)


def job_reference_style(args, started: float) -> dict:
    """W2 peer in the reference notebook's style (``pm.Mixture`` of ``pm.MvNormal``):
    checked to be the same posterior, and timed per gradient.

    Its log-density equals starmix's pm2d at jittered points (same free variables, same
    transforms, checked here), so PyMC's NUTS on it takes the steps it takes on starmix's
    model (``W2-pymc-default-nuts``), each step costing more: a full 4 x (1000 + 1000) run
    would take about an hour on the 2.4 GHz host. The job measures what differs, compiling
    and one log-density-plus-gradient, beside starmix's model in PyMC's default backend in
    the same process; the parent scales ``W2-pymc-default-nuts`` by the gradient-time
    ratio (:func:`estimate_reference_style`).
    """
    import numpy as np
    from floor import seconds_per_call
    from peers import PriorConstants, reference_style_pm2d

    from starmix.models.cluster_pm2d import cluster_pm2d

    imported = time.perf_counter()
    from fields import pm_arrays

    stars, guess = default_field()
    values, cov = pm_arrays(stars)
    reference = reference_style_pm2d(values, cov, PriorConstants.from_values(
        values, [guess["pmra"], guess["pmdec"]]))
    own = cluster_pm2d(values, cov, cluster_guess=[guess["pmra"], guess["pmdec"]])
    built = time.perf_counter()
    rng = np.random.default_rng(42)
    start = np.concatenate([np.ravel(v) for v in own.initial_point().values()])
    points = [start + rng.uniform(-0.3, 0.3, start.shape) for _ in range(3)]
    evaluate = reference.logp_dlogp_function(ravel_inputs=True)
    evaluate.set_extra_values({})
    evaluate(points[0])  # Numba compiles at the first call
    compiled = time.perf_counter()
    own_evaluate = own.logp_dlogp_function(ravel_inputs=True)
    own_evaluate.set_extra_values({})
    own_values = [own_evaluate(x)[0] for x in points]
    differences = [evaluate(x)[0] - value for x, value in zip(points, own_values, strict=True)]
    return {"phases": {"import": imported - started, "build": built - imported,
                       "compile": compiled - built},
            "seconds_per_gradient": seconds_per_call(lambda: evaluate(points[0]), 10),
            "own_seconds_per_gradient": seconds_per_call(lambda: own_evaluate(points[0]), 300),
            "logp_difference_spread": float(np.ptp(differences)),
            "logp_scale": float(abs(own_values[0])),
            "status": "timed per gradient (the estimate needs W2-pymc-default-nuts)"}


def job_gradient_scaling(args, started: float) -> dict:
    """W4: seconds per log-density-plus-gradient evaluation of pm2d against N stars."""
    import numpy as np
    from fields import pm_arrays, scaled_field
    from floor import seconds_per_call

    from starmix.models.cluster_pm2d import cluster_pm2d

    rows = []
    for n_stars in args.sizes:
        values, cov = pm_arrays(scaled_field(n_stars))
        model = cluster_pm2d(values, cov, cluster_guess=[-2.9, -3.9])
        evaluate = model.logp_dlogp_function(ravel_inputs=True)
        evaluate.set_extra_values({})
        point = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
        seconds = seconds_per_call(partial(evaluate, point), max(5, int(2e6 // n_stars)))
        rows.append({"n_stars": n_stars, "seconds_per_eval": seconds,
                     "ns_per_star": seconds / n_stars * 1e9})
    return {"rows": rows, "total": time.perf_counter() - started, "phases": {}}


def job_large_run(args, started: float) -> dict:
    """W4 at full length: pm2d on a 200,000-star field, 4 chains x 1000 draws, starmix's
    default sampler, sampling only (no per-star membership draws or pointwise
    log-likelihood: at 200k stars x 4000 draws those alone would be 6.4 GB)."""
    from fields import pm_arrays, scaled_field

    from starmix.models.cluster_pm2d import cluster_pm2d
    from starmix.workflows.inference.sampling import sample_posterior
    from starmix.workflows.runs.options import SamplingOptions

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


def job_warm_up(args, started: float) -> dict:
    """Untimed: the warm jobs' own code with short chains (20 + 20 steps, W4 at 1,000
    stars), to fill PyTensor's and Numba's on-disk caches first. On a fresh machine the
    first run of each compiles for minutes, which would otherwise be timed as a warm run."""
    seconds = {}
    for name in args.warm:
        job, settings = JOBS[name]
        short = {**vars(args), **settings, "draws": 20, "tune": 20, "sizes": [1_000]}
        began = time.perf_counter()
        job(argparse.Namespace(**short), began)
        seconds[name] = round(time.perf_counter() - began, 1)
    return {"total": time.perf_counter() - started, "phases": {}, "seconds": seconds,
            "status": "untimed (not compared)"}


JOBS = {
    "warm-up": (job_warm_up, {}),
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
    "W2-reference-style": (job_reference_style, {}),
    "W3-starmix": (job_starmix_workflow, {"model": "joint"}),
    "W4-gradient": (job_gradient_scaling, {}),
    "W4-200k-run": (job_large_run, {}),
}
# Not by default: W4-200k-run (`make bench-large`) and W2-starmix-cold (3.5 min on the
# 2.4 GHz host; W2-starmix-new-field is the case a researcher meets, a new field on warm
# caches; W1-cold reports a cold start).
DEFAULT_JOBS = [name for name in JOBS
                if name not in ("warm-up", "W4-200k-run", "W2-starmix-cold")]
# Jobs whose compiled functions PyTensor and Numba keep on disk: the warm-up runs them first,
# in two groups run side by side (one child process each). The pm2d jobs share compiled
# functions and stay in one group, so no function is compiled twice at once; the other
# group is about as long (W3 and the reference style, about 160 s and 130 s on a new
# 2.4 GHz machine, against about 240 s for the pm2d group).
# (W2-starmix-new-field compiles what W2-starmix does; nutpie's route through pm.sample and
# JAX's jit keep nothing between processes.)
WARM_UP_GROUPS = (("W2-starmix", "W2-starmix-sampling", "W2-pymc-default-nuts", "W4-gradient",
                   "W4-200k-run"),
                  ("W3-starmix", "W2-reference-style", "W1-warm"))
# A warm job that runs on the caches its cold twin filled in the same bench (no warm-up).
WARM_AFTER_COLD = {"W1-warm": "W1-cold"}


# --- the parent: run each job in a child, collect, compare, print -------------------------

def run_child(name: str, args, caches: dict[str, dict]) -> dict:
    """Run job ``name`` in a child process and return its result. ``caches`` maps a cold
    job to the cache environment it filled (for its warm twin, :data:`WARM_AFTER_COLD`)."""
    return finish_child(*start_child(name, args, caches), args)


def start_child(name: str, args, caches: dict[str, dict], warm: tuple[str, ...] = ()):
    settings = JOBS[name][1]
    env = dict(os.environ, CI="true")
    if settings.get("cold"):  # empty PyTensor and Numba caches: everything compiles
        # base_compiledir, not compiledir: PyTensor keeps its Numba cache beside the latter
        caches[name] = {
            "PYTENSOR_FLAGS": f"base_compiledir={tempfile.mkdtemp(prefix='pytensor-cold-')}",
            "NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="numba-cold-")}
        env.update(caches[name])
    elif WARM_AFTER_COLD.get(name) in caches:
        env.update(caches[WARM_AFTER_COLD[name]])
    draws, tune, chains = ((args.pymc_numpyro_draws, args.pymc_numpyro_draws,
                            args.pymc_numpyro_chains)
                           if name == "W2-pymc-via-numpyro"
                           else (args.draws, args.tune, args.chains))
    # A field no run has seen (caches warm for the model, not for these data): a new cut.
    seed = [] if not settings.get("new_field") else ["--sim-seed", str(time.time_ns() % 2**31)]
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, __file__, "--child", name, "--child-out", str(out),
               "--draws", str(draws), *(["--tune", str(tune)] if tune is not None else []),
               "--chains", str(chains),
               "--sizes", *map(str, args.sizes), "--large-stars", str(args.large_stars), *seed,
               *(["--warm", *warm] if warm else [])]
    print(f"[bench] {name} {' '.join(warm)}...", file=sys.stderr, flush=True)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    return name, process, out, time.perf_counter()


def finish_child(name: str, process: subprocess.Popen, out: Path, start: float, args) -> dict:
    timeout = args.pymc_numpyro_budget if name == "W2-pymc-via-numpyro" else args.job_budget
    try:
        _, stderr = process.communicate(timeout=max(1.0, start + timeout - time.perf_counter()))
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


def warm_up(jobs: list[str], args, caches: dict[str, dict]) -> dict | None:
    """The untimed warm-up: each group's jobs among ``jobs`` in one child, groups side by
    side (compiling is single-threaded, so two groups on two cores take about the longer
    one's time; more, as they share the machine). Returns one result row, or None if no job
    needs warming."""
    groups = [group for group in warm_groups(jobs) if group]
    if not groups:
        return None
    started = time.perf_counter()
    children = [start_child("warm-up", args, caches, warm=group) for group in groups]
    rows = [finish_child(*child, args) for child in children]
    wall = time.perf_counter() - started
    failed = [row["status"] for row in rows if "total" not in row]
    if failed:  # no "total": the table prints the status (later "warm" rows may be cold)
        return {"job": "warm-up", "wall": wall, "status": "; ".join(failed)}
    return {"job": "warm-up", "wall": wall, "total": wall, "phases": {},
            "seconds": {job: s for row in rows for job, s in row["seconds"].items()},
            "peak_mib": max(row["peak_mib"] for row in rows), "status": "untimed (not compared)"}


def warm_groups(jobs: list[str]) -> list[tuple[str, ...]]:
    """The jobs among ``jobs`` that the warm-up runs, by group; a warm job whose cold twin
    runs before it in ``jobs`` is left out (the twin fills its caches)."""
    def needs_warming(name):
        twin = WARM_AFTER_COLD.get(name)
        return not (twin in jobs and jobs.index(twin) < jobs.index(name))

    return [tuple(name for name in group if name in jobs and needs_warming(name))
            for group in WARM_UP_GROUPS]


def estimate_reference_style(results: list[dict]) -> None:
    """Complete the reference-style row from its measured gradient time.

    Its log-density is starmix's (checked by the job), so PyMC's NUTS on it would take the
    steps it took on starmix's model (W2-pymc-default-nuts, same run). The estimate keeps
    that run's ESS and gradients per draw, and counts only gradient time: gradients per
    draw x (tuning + draws) x chains x the reference model's seconds per gradient, over the
    chains run in parallel, plus the reference's own import, build and compile. Tuning
    steps, which take more gradients than draws, are counted as draws: the estimate is
    low, which only flatters the peer.
    """
    by_job = {r["job"]: r for r in results}
    reference, nuts = by_job.get("W2-reference-style"), by_job.get("W2-pymc-default-nuts")
    if reference is None or "seconds_per_gradient" not in reference or nuts is None \
            or "total" not in nuts:
        return
    gradients = nuts["grad_evals_per_draw"] * (nuts["tune"] + nuts["draws"]) * nuts["chains"]
    sampling = gradients * reference["seconds_per_gradient"] / min(nuts["chains"],
                                                                   nuts["cores"])
    phases = reference["phases"]
    total = phases["import"] + phases["build"] + phases["compile"] + sampling
    phases["tuning+drawing (incl. compile)"] = sampling
    reference.update(
        total=total, status="estimated", gradients=gradients,
        gradient_slowdown=reference["seconds_per_gradient"]
        / reference["own_seconds_per_gradient"],
        min_ess_bulk=nuts["min_ess_bulk"], grad_evals_per_draw=nuts["grad_evals_per_draw"],
        ess_per_s_total=nuts["min_ess_bulk"] / total,
        ess_per_s_sampling=nuts["min_ess_bulk"] / sampling)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(set(JOBS) - {"warm-up"}),
                        default=DEFAULT_JOBS,
                        help="jobs to run (default: all but W4-200k-run and W2-starmix-cold)")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=None,
                        help="tuning steps (default: each sampler's own, 300 nutpie, else 1000)")
    parser.add_argument("--pymc-numpyro-draws", type=int, default=200,
                        help="tuning steps and draws per chain of W2-pymc-via-numpyro (it runs "
                             "NumPyro's NUTS like W2-numpyro-peer, which takes 7.5-8.5 min at "
                             "full length on the 2.4 GHz host; 2 chains x (200 + 200) take "
                             "about 3 min there)")
    parser.add_argument("--pymc-numpyro-chains", type=int, default=2,
                        help="chains of W2-pymc-via-numpyro (default 2, one per core)")
    parser.add_argument("--pymc-numpyro-budget", type=int, default=600,
                        help="seconds after which W2-pymc-via-numpyro is stopped")
    parser.add_argument("--job-budget", type=int, default=900,
                        help="seconds after which any other job is stopped and reported")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(W4_SIZES))
    parser.add_argument("--large-stars", type=int, default=W4_SIZES[-1],
                        help="stars in the W4-200k-run field")
    parser.add_argument("--json", default="results/bench_speed.json")
    parser.add_argument("--sim-seed", type=int, default=42, help=argparse.SUPPRESS)
    parser.add_argument("--chains", type=int, default=4, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--warm", nargs="*", default=[], help=argparse.SUPPRESS)
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
    caches: dict[str, dict] = {}
    warmed = warm_up(args.only, args, caches)
    results = ([warmed] if warmed else []) + [run_child(name, args, caches)
                                              for name in args.only]
    estimate_reference_style(results)
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
    for result in results:
        if "logp_difference_spread" in result:  # same log-density up to a constant
            spread = result["logp_difference_spread"]
            rows.append({"job": result["job"], "logp_difference_spread": spread,
                         "agrees": spread <= 1e-9 * result["logp_scale"]})
    return rows


def targets(results: list[dict]) -> list[str]:
    """The issue's bars, each with the measured ratio or time of this run."""
    by_job = {r["job"]: r for r in results if "total" in r}
    lines = []
    for starmix in ("W2-starmix", "W2-starmix-cold", "W2-starmix-sampling"):
        for peer, bar in (("W2-numpyro-peer", 3), ("W2-reference-style", 20)):
            if starmix in by_job and peer in by_job:
                ratio = by_job[starmix]["ess_per_s_total"] / by_job[peer]["ess_per_s_total"]
                how = " (estimated)" if by_job[peer].get("status") == "estimated" else ""
                lines.append(f"{starmix} / {peer}: {ratio:.2f}x in min-ESS per second of total "
                             f"wall{how} (bar >= {bar}x: {'met' if ratio >= bar else 'NOT met'})")
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
        build = p.get("build", float("nan")) + p.get("compile", 0.0)
        name = f"~{r['job']}" if r.get("status") == "estimated" else r["job"]
        print(f"{name:<22}{r['total']:9.1f}{p.get('import', float('nan')):8.1f}"
              f"{build:8.1f}{tune:8.1f}"
              f"{p.get('drawing', float('nan')):8.1f}{p.get('post', float('nan')):8.1f}"
              f"{r.get('min_ess_bulk', float('nan')):9.0f}"
              f"{r.get('ess_per_s_total', float('nan')):8.2f}"
              f"{r.get('ess_per_s_sampling', float('nan')):10.2f}"
              f"{r.get('grad_evals_per_draw') or float('nan'):10.1f}{r.get('peak_mib', 0):9.0f}")
        for row in r.get("rows", []):
            print(f"    N = {row['n_stars']:>7}: {row['seconds_per_eval'] * 1e3:8.3f} ms per "
                  f"log-density+gradient ({row['ns_per_star']:.0f} ns per star)")
    for row in report["agreement"]:
        verdict = "ok" if row["agrees"] else "DISAGREES"
        if "max_mcse_distance" in row:
            print(f"agreement with starmix: {row['job']}: max |difference of posterior means| "
                  f"= {row['max_mcse_distance']:.2f} MCSE ({verdict})")
        else:
            print(f"agreement with starmix: {row['job']}: log-density minus starmix's varies "
                  f"by {row['logp_difference_spread']:.1e} over 3 points ({verdict})")
    for r in report["results"]:
        if r.get("status") == "estimated":
            print(f"~{r['job']}: estimated; its log-density plus gradient takes "
                  f"{r['seconds_per_gradient'] * 1e3:.1f} ms ({r['gradient_slowdown']:.0f}x "
                  f"starmix's model in PyMC's default backend); PyMC's NUTS would need "
                  f"W2-pymc-default-nuts's {r['gradients']:.0f} gradients")
    for line in report["targets"]:
        print(line)


if __name__ == "__main__":
    sys.exit(main())
