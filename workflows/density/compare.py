"""Are two samples drawn from the same distribution? (The ages preset: Joyce against Bensby.)

* **Posterior of the differences**: the intrinsic mean and standard deviation of each
  sample's fitted density, per posterior draw
  (:func:`starmix.workflows.density.fit.mixture_moments`);
  the two fits are independent, so draws paired at random are draws of the difference.
* **Predictive two-sample check**: under "same distribution" both samples come from one
  density, fitted to the pooled values (K by PSIS-LOO, its own gate). For each of its
  posterior draws, two replicate samples of the observed sizes are drawn (each value with
  its object's error); the p-value is the share of replicates whose two-sample statistic
  (Kolmogorov-Smirnov D; ``|difference of means|``) is at least the observed one. A small
  p-value says one density does not explain both samples.
* **Paired view**: when the two columns are two estimates for the same objects (as the
  ages are: one star per row), the two-sample comparisons treat them as independent, which
  they are not; the per-row differences are reported beside them.
"""

import numpy as np
from astropy.table import Table
from scipy.stats import ks_2samp

from starmix.data.density import DensityData
from starmix.workflows.density.fit import draw_from, fit_density, interval, mixture_moments
from starmix.workflows.runs.files import save_figure, write_posterior, write_table


def difference_posterior(a, b, max_draws: int, seed: int) -> dict:
    """Draws of mean_a - mean_b and sd_a - sd_b (original units), paired at random."""
    rng = np.random.default_rng(seed)
    ma, mb = mixture_moments(a, max_draws), mixture_moments(b, max_draws)
    n = min(len(ma["mean"]), len(mb["mean"]))
    ia, ib = rng.permutation(len(ma["mean"]))[:n], rng.permutation(len(mb["mean"]))[:n]
    out = {}
    for key in ("mean", "sd"):
        diff = ma[key][ia] - mb[key][ib]
        out[f"difference_in_{key}"] = {**interval(diff),
                                       "p_greater_than_0": round(float((diff > 0).mean()), 4)}
        out[f"{key}_draws"] = diff
    return out


def pooled(samples: list[DensityData]) -> DensityData:
    errors = [s.error_cov if s.error_cov is not None else np.zeros((len(s), 1, 1))
              for s in samples]
    return DensityData(np.concatenate([s.values for s in samples]), ["pooled"],
                       np.concatenate(errors), source="pooled samples")


def statistics(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([ks_2samp(a, b).statistic, abs(a.mean() - b.mean())])


STATISTICS = ("ks_d", "abs_difference_of_means")


def two_sample_check(fit, samples: list[DensityData], originals: list[np.ndarray],
                     n_draws: int, seed: int) -> dict:
    """The predictive two-sample check under the pooled fit (see the module docstring):
    ``samples`` as fitted (logs with ``--log``), ``originals`` their values in the data's
    units, on which the statistics are computed."""
    rng = np.random.default_rng(seed)
    draws = fit.draws(n_draws)
    sizes = [len(s) for s in samples]
    errors = np.concatenate([s.error_sd()[:, 0] for s in samples])
    true = draw_from(rng, draws, sum(sizes), fit.truncation)[..., 0]  # (S, n_a + n_b)
    replicated = true + errors[None] * rng.standard_normal(true.shape)
    if fit.log:
        replicated = np.exp(replicated)
    observed = statistics(*originals)
    reps = np.array([statistics(row[:sizes[0]], row[sizes[0]:]) for row in replicated])
    p = (reps >= observed[None]).mean(0)
    return {"draws": len(reps), "observed": dict(zip(STATISTICS, np.round(observed, 4).tolist(),
                                                     strict=True)),
            "p_value": dict(zip(STATISTICS, np.round(p, 4).tolist(), strict=True)),
            "replicated_p95": dict(zip(STATISTICS, np.round(np.percentile(reps, 95, axis=0),
                                                            4).tolist(), strict=True)),
            "replicates": reps}


def paired(originals: list[np.ndarray]) -> dict | None:
    a, b = originals
    if len(a) != len(b):
        return None
    diff = a - b
    return {"note": "the two columns hold two estimates per row (object): the two-sample "
                    "comparisons above treat them as independent samples",
            "mean_difference": round(float(diff.mean()), 4),
            "sd_difference": round(float(diff.std(ddof=1)), 4),
            "se_mean_difference": round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 4),
            "fraction_first_larger": round(float((diff > 0).mean()), 4),
            "correlation": round(float(np.corrcoef(a, b)[0, 1]), 4)}


def compare_samples(run, results, inputs, sampling, gate, figures: bool) -> dict:
    """The comparison step of the ages preset; writes ``comparison.ecsv``,
    ``posterior_pooled.nc`` and ``figures/comparison.png``; returns its record."""
    from starmix.workflows.density import plots as density_plots
    from starmix.workflows.plots import common as plots

    first, second = results
    names = [first.name, second.name]
    samples = [first.fit.data, second.fit.data]  # as fitted: logs with --log
    originals = [np.exp(s.values[:, 0]) if first.fit.log else s.values[:, 0] for s in samples]
    with run.step("compare: posterior of the differences"):
        differences = difference_posterior(first.fit, second.fit, inputs.comparison_draws,
                                           sampling.seed)
    with run.step("compare: pooled fit"):
        fit = fit_density(pooled(samples), sampling, inputs.components, inputs.max_components,
                          first.fit.truncation, first.fit.log,
                          say=lambda m: run.say(f"pooled: {m}"), gate=gate)
        run.keep("posterior_pooled", write_posterior(run.out_dir / "posterior_pooled.nc",
                                                     fit.idata))
    with run.step("compare: predictive two-sample check"):
        check = two_sample_check(fit, samples, originals, inputs.comparison_draws,
                                 sampling.seed)
    record = {
        "samples": names,
        **{key: value for key, value in differences.items() if not key.endswith("_draws")},
        "two_sample_check": {k: v for k, v in check.items() if k != "replicates"},
        "pooled_fit": {"k_selection": fit.k_choice.record(),
                       "convergence": fit.gate.as_record()},
        "pooled_passed": fit.gate.passed,
        "paired": paired(originals),
    }
    rows = [(f"difference_in_{key}", names[0], names[1], *(record[f"difference_in_{key}"][q]
                                                           for q in ("mean", "sd", "p16",
                                                                     "p84")))
            for key in ("mean", "sd")]
    table = Table(rows=rows, names=("statistic", "first", "second", "mean", "sd", "p16", "p84"))
    table.meta["description"] = ("posterior of first - second (original units) for the "
                                 "intrinsic densities' mean and standard deviation")
    table.meta["two_sample_check"] = record["two_sample_check"]
    run.keep("comparison", write_table(run.out_dir / "comparison.ecsv", table))
    def median_band(key):
        entry = record[f"difference_in_{key}"]
        return f"{entry['p50']:+.2f} [{entry['p16']:+.2f}, {entry['p84']:+.2f}]"

    text = (f"{names[0]} - {names[1]} (median [16%, 84%]): mean {median_band('mean')}, sd "
            f"{median_band('sd')};"
            f" predictive two-sample check p = {check['p_value']['ks_d']:.3f} (K-S), "
            f"{check['p_value']['abs_difference_of_means']:.3f} (means)")
    run.say(text)
    record["text"] = text
    if figures:
        figure = density_plots.comparison_figure(names, differences, check)
        run.keep("figure_comparison", save_figure(run.out_dir / "figures" / "comparison.png",
                                                  figure))
        plots.close(figure)
    return record
