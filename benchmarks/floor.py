"""The floor of one pm2d log-density-plus-gradient evaluation, and where starmix's time goes.

Run: ``.venv/bin/python benchmarks/floor.py [--stars 17000]`` (``make bench`` runs it too).

The floor is measured, not guessed: a hand-fused Numba loop that makes one pass over the
stars and computes the same mixture log-likelihood and its gradient with respect to every
component parameter (means, covariances, log-weights; the chain rule through PyMC's
transforms is O(K) and left out, which only makes the floor lower). Per star and component
it needs about 45 flops, one exp and one log (``FLOPS_PER_STAR_COMPONENT``,
``TRANSCENDENTALS_PER_STAR_COMPONENT``), and it reads 40 bytes per star (five float64s).
The script checks that both compute the same log-likelihood, then prints nanoseconds per
star for the fused floor and for starmix's compiled log-density (its fused Op,
:mod:`starmix.models.fused`, plus the priors and transforms), and where starmix's time goes: its
Op's Numba kernel timed alone on the same inputs against the whole function the sampler
calls (the rest is priors, transforms, the chain rule and the call itself).

Two more views, each of which compiles for about 100 s on empty caches and so is not in
``make bench``: ``--plain-graph`` times the same model with the mixture written as a
PyTensor graph (what starmix did before the Op), and ``--op-profile N`` prints the top N
operations of PyTensor's per-operation profile (C backend) of starmix's function.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FLOPS_PER_STAR_COMPONENT = 45
TRANSCENDENTALS_PER_STAR_COMPONENT = 2
BYTES_PER_STAR = 5 * 8


@numba.njit(fastmath=True, cache=True)
def fused_logp_grad(values, error_cov, log_w, means, covs, grad_means, grad_covs, grad_log_w):
    """Mixture log-likelihood of N stars under K convolved 2D Gaussians, and its gradient.

    values (N, 2) and means (K, 2) mas/yr; error_cov (N, 3) and covs (K, 3) as
    (xx, xy, yy) in (mas/yr)². Gradients are written into the grad_* arrays.
    """
    n_stars, n_comp = values.shape[0], means.shape[0]
    log_2pi = math.log(2.0 * math.pi)
    grad_means[:] = 0.0
    grad_covs[:] = 0.0
    grad_log_w[:] = 0.0
    total = 0.0
    terms = np.empty(n_comp)
    cache = np.empty((n_comp, 5))  # inverse (xx, xy, yy) and S^-1 r (x, y)
    for i in range(n_stars):
        best = -np.inf
        for k in range(n_comp):
            sxx = covs[k, 0] + error_cov[i, 0]
            sxy = covs[k, 1] + error_cov[i, 1]
            syy = covs[k, 2] + error_cov[i, 2]
            det = sxx * syy - sxy * sxy
            ixx, ixy, iyy = syy / det, -sxy / det, sxx / det
            rx = values[i, 0] - means[k, 0]
            ry = values[i, 1] - means[k, 1]
            ax, ay = ixx * rx + ixy * ry, ixy * rx + iyy * ry
            terms[k] = log_w[k] - 0.5 * (rx * ax + ry * ay + math.log(det)) - log_2pi
            cache[k, 0], cache[k, 1], cache[k, 2] = ixx, ixy, iyy
            cache[k, 3], cache[k, 4] = ax, ay
            best = max(best, terms[k])
        norm = 0.0
        for k in range(n_comp):
            terms[k] = math.exp(terms[k] - best)
            norm += terms[k]
        total += best + math.log(norm)
        for k in range(n_comp):
            resp = terms[k] / norm
            ax, ay = cache[k, 3], cache[k, 4]
            grad_log_w[k] += resp
            grad_means[k, 0] += resp * ax
            grad_means[k, 1] += resp * ay
            grad_covs[k, 0] += 0.5 * resp * (ax * ax - cache[k, 0])
            grad_covs[k, 1] += resp * (ax * ay - cache[k, 1])
            grad_covs[k, 2] += 0.5 * resp * (ay * ay - cache[k, 2])
    return total


def seconds_per_call(function, repeats: int) -> float:
    function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def best_seconds_per_call(functions, repeats: int, rounds: int = 7) -> list[float]:
    """Seconds per call of each function: the best of ``rounds`` rounds of ``repeats`` calls,
    the functions taking turns within each round (so that a busy spell on a shared machine
    hits them alike and the best round of each is a quiet one)."""
    best = [float("inf")] * len(functions)
    for _ in range(rounds):
        for index, function in enumerate(functions):
            best[index] = min(best[index], seconds_per_call(function, repeats))
    return best


def main(argv=None) -> int:
    import pymc as pm
    from fields import pm_arrays, scaled_field

    from starmix.models.cluster_pm2d import cluster_pm2d

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stars", type=int, default=17_000)
    parser.add_argument("--plain-graph", action="store_true",
                        help="also time the model with the mixture as a plain PyTensor graph")
    parser.add_argument("--op-profile", type=int, default=0, metavar="N",
                        help="also print the top N ops of PyTensor's C-backend profile")
    args = parser.parse_args(argv)

    values, cov = pm_arrays(scaled_field(args.stars))
    model = cluster_pm2d(values, cov, cluster_guess=[-2.9, -3.9])
    point = model.initial_point()

    # The same parameters, and the inputs of starmix's fused Op, evaluated by PyTensor in one
    # function (Python linker: nothing to compile).
    from starmix.models.fused import LOGLIKE_WITH_GRADS, fused_likelihood_node

    stars = model["stars"]
    outs = model.replace_rvs_by_values([model[name] for name in (
        "w", "cluster_pm", "cluster_pm_dispersion", "field_mean", "field_cov")] + [
        pm.logp(stars, model.rvs_to_values[stars]).sum()])
    op_inputs = fused_likelihood_node(model.logp()).inputs
    evaluated = model.compile_fn(outs=[*outs, *op_inputs], inputs=model.value_vars,
                                 mode="FAST_COMPILE", on_unused_input="ignore")(point)
    weights, cluster_pm, dispersion, field_mean, field_cov, pytensor_loglike = evaluated[:6]
    kernel_inputs = [np.asfortranarray(x) for x in evaluated[6:8]] + [
        np.ascontiguousarray(x) for x in evaluated[8:]]  # data as the model stores them
    kernel = LOGLIKE_WITH_GRADS[kernel_inputs[0].shape[1]]  # the Op's Numba kernel
    means = np.vstack([cluster_pm[None], field_mean])
    covs = np.vstack([[[dispersion**2, 0.0, dispersion**2]],
                      np.stack([field_cov[:, 0, 0], field_cov[:, 0, 1], field_cov[:, 1, 1]],
                               -1)])
    error_cov = np.ascontiguousarray(np.stack([cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]], -1))
    grads = (np.empty_like(means), np.empty_like(covs), np.empty(len(weights)))
    fused = fused_logp_grad(values, error_cov, np.log(weights), means, covs, *grads)
    if not np.isclose(fused, pytensor_loglike, rtol=1e-10):
        raise SystemExit(f"fused log-likelihood {fused} != PyTensor's {pytensor_loglike}")

    repeats = max(20, int(1e6 // args.stars))
    evaluate = model.logp_dlogp_function(ravel_inputs=True)
    evaluate.set_extra_values({})
    flat = np.concatenate([np.ravel(v) for v in point.values()])
    floor_s, starmix_s, kernel_s = best_seconds_per_call(
        [lambda: fused_logp_grad(values, error_cov, np.log(weights), means, covs, *grads),
         lambda: evaluate(flat), lambda: kernel(*kernel_inputs)], repeats)

    n_comp = len(weights)
    per_star = {"fused floor": floor_s / args.stars * 1e9,
                "starmix (fused Op)": starmix_s / args.stars * 1e9}
    if args.plain_graph:
        graph_s = seconds_per_call(reference_graph_logp_dlogp(model, point), repeats)
        per_star["plain PyTensor graph"] = graph_s / args.stars * 1e9
    print(f"pm2d, N = {args.stars} stars, K = {n_comp} components "
          f"(log-likelihoods agree: {fused:.6f})")
    print(f"work per star: about {FLOPS_PER_STAR_COMPONENT * n_comp} flops, "
          f"{TRANSCENDENTALS_PER_STAR_COMPONENT * n_comp + 1} exp/log, {BYTES_PER_STAR} bytes read")
    for name, ns in per_star.items():
        gflops = FLOPS_PER_STAR_COMPONENT * n_comp / ns
        print(f"  {name:<24}{ns:8.1f} ns per star  ({gflops:5.2f} GFLOP/s, "
              f"{BYTES_PER_STAR / ns:5.2f} GB/s of input)")
    print(f"starmix runs at {floor_s / starmix_s:.0%} of the scalar fused loop's speed "
          f"(its vectorised kernel; above 100% is faster)")
    if args.plain_graph:
        print(f"the same model written as a PyTensor graph (no fused Op) is "
              f"{graph_s / starmix_s:.1f}x slower than starmix")
    print(f"where starmix's time goes: the fused Op's kernel alone takes "
          f"{kernel_s * 1e3:.3f} ms, {kernel_s / starmix_s:.1%} of the "
          f"{starmix_s * 1e3:.3f} ms log-density-plus-gradient (Numba backend); the rest, "
          f"{(starmix_s - kernel_s) * 1e3:.3f} ms, is priors, transforms, the chain rule and "
          f"the call")

    if args.op_profile:
        import pytensor

        print(f"\nPyTensor profile of starmix's logp+gradient (C backend, top {args.op_profile} "
              f"ops):")
        logp = model.logp()
        profile = model.profile([logp, *pytensor.grad(logp, model.value_vars)],
                                n=max(20, repeats // 4), point=point, backend="c")
        summarize_ops(profile, args.op_profile)
    return 0


def reference_graph_logp_dlogp(model, point):
    """logp and gradient of ``model`` with the mixture written as a PyTensor graph
    (:func:`starmix.models.likelihoods.mixture_logp` of the model's ``log_component``) instead of
    the fused Op: what starmix computed before the Op, compiled the same way."""
    import pytensor.tensor as pt

    from starmix.models.likelihoods import mixture_logp

    graph_total = mixture_logp(pt.log(model["w"]), model["log_component"]).sum()
    # every term but the last, the observed stars
    priors = pt.sum([term.sum() for term in model.logp(sum=False)[:-1]])
    logp = model.replace_rvs_by_values([priors + graph_total])[0]
    evaluate = model.compile_fn(outs=[logp, *pt.grad(logp, model.value_vars)],
                                inputs=model.value_vars, on_unused_input="ignore")
    return lambda: evaluate(point)


def summarize_ops(profile, rows: int) -> None:
    """Print the op classes that take the most time, as fractions of the function's time."""
    by_class = {}
    for node, seconds in profile.apply_time.items():
        name = type(node[1].op).__name__ if isinstance(node, tuple) else type(node.op).__name__
        scalar = getattr(getattr(node[1] if isinstance(node, tuple) else node, "op", None),
                         "scalar_op", None)
        if scalar is not None:
            name = f"{name}{{{type(scalar).__name__}}}"
        by_class[name] = by_class.get(name, 0.0) + seconds
    total = sum(by_class.values())
    for name, seconds in sorted(by_class.items(), key=lambda item: -item[1])[:rows]:
        print(f"  {seconds / total:6.1%}  {name}")


if __name__ == "__main__":
    sys.exit(main())
