"""Simulation-based calibration (Talts et al. 2018), for any model with an SBC case.

One replicate: draw every parameter from the model's own prior, simulate a data set from
the model with those parameters, fit it with the workflow's NUTS settings, and record the
rank of each true parameter among ``N_RANK_DRAWS`` thinned posterior draws. If the model,
its implementation and the sampler are right, every rank is uniform on 0..N_RANK_DRAWS;
:func:`uniformity` tests that with a chi-square over ``N_BINS`` equal bins.

For the cluster models the simulated stars carry their true labels, and each replicate
also keeps every star's membership probability (the posterior mean of the
responsibility, as the workflow computes it). Over data drawn from the prior predictive,
Bayes' theorem makes that probability exactly calibrated: among stars given P, a
fraction P are members. That is the membership check with a guarantee; on fields drawn
at one fixed truth (the coverage experiment) it holds only as the data grow.
"""

from collections.abc import Callable
from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm
from scipy.stats import chisquare

from starmix.workflows.inference.membership import mixture_draws
from starmix.workflows.inference.sampling import sample_posterior
from starmix.workflows.runs.options import SamplingOptions

N_RANK_DRAWS = 99  # ranks 0..99: 100 values, 10 per bin
N_BINS = 10


@dataclass(frozen=True)
class SBCCase:
    """How to calibrate one model.

    ``covariates(rng)`` draws the design (positions, errors: things the model conditions
    on); ``build(data)`` builds the model from a data dict; ``simulate(params, data, rng)``
    returns the data dict with simulated observations; ``parameters`` are the free
    variables to rank; ``fit_transform`` (the deliberately wrong models) alters the data
    the fit sees. ``summaries`` maps a dict of parameter arrays (any leading sample axes)
    to named scalar functions of them, ranked like parameters: label-invariant summaries
    of components whose labels the model cannot pin down; ``summary_inputs`` are the
    variables it reads.
    """

    name: str
    description: str
    covariates: Callable[[np.random.Generator], dict]
    build: Callable[[dict], pm.Model]
    simulate: Callable[[dict, dict, np.random.Generator], dict]
    parameters: tuple[str, ...]
    fit_transform: Callable[[dict], dict] | None = None
    summaries: Callable[[dict], dict] | None = None
    summary_inputs: tuple[str, ...] = ()


def draw_prior(model: pm.Model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One draw of every free variable (and deterministic) from the model's prior.

    ``pm.draw`` ignores transforms, so variables with an ``ordered`` transform are sorted:
    for i.i.d. priors that is exactly the ordered prior the model's density defines.
    """
    free = model.free_RVs
    values = pm.draw(free, random_seed=rng)
    point = {}
    for rv, value in zip(free, values, strict=True):
        ordered = type(model.rvs_to_transforms.get(rv)).__name__ == "Ordered"
        point[rv.name] = np.sort(value, axis=-1) if ordered else np.asarray(value)
    derived = [var for var in model.deterministics if var.name != "log_component"]
    if derived:
        evaluate = model.compile_fn(outs=derived, inputs=free, on_unused_input="ignore")
        point.update({var.name: np.asarray(value) for var, value in
                      zip(derived, evaluate(point), strict=True)})
    return point


def scalar_labels(name: str, value: np.ndarray, model: pm.Model) -> list[tuple[str, tuple]]:
    """(label, index) for every element of a parameter, labelled with its coordinates."""
    value = np.asarray(value)
    if value.ndim == 0:
        return [(name, ())]
    dims = model.named_vars_to_dims.get(name)
    labels = []
    for index in np.ndindex(value.shape):
        if dims:
            parts = [str(model.coords[dim][i]) for dim, i in zip(dims, index, strict=True)]
        else:
            parts = [str(i) for i in index]
        labels.append((f"{name}[{', '.join(parts)}]", index))
    return labels


def ranks_of_truth(truth: dict, posterior, model: pm.Model, names) -> dict[str, int]:
    """Rank of each true value among ``N_RANK_DRAWS`` evenly thinned posterior draws."""
    ranks = {}
    for name in names:
        stacked = posterior[name].values.reshape(-1, *np.shape(truth[name]))
        step = len(stacked) // N_RANK_DRAWS
        if step < 1:
            raise ValueError(f"need at least {N_RANK_DRAWS} posterior draws, got {len(stacked)}")
        thinned = stacked[step - 1::step][:N_RANK_DRAWS]
        for label, index in scalar_labels(name, truth[name], model):
            column = thinned[(slice(None), *index)]
            ranks[label] = int(np.sum(column < truth[name][index]))
    return ranks


def ranks_of_summaries(truth: dict, posterior, summaries: Callable, inputs) -> dict[str, int]:
    """Rank of each true summary among the summaries of ``N_RANK_DRAWS`` evenly thinned
    posterior draws (:class:`SBCCase` ``summaries``)."""
    draws = {name: posterior[name].values.reshape(-1, *np.shape(truth[name])) for name in inputs}
    step = len(next(iter(draws.values()))) // N_RANK_DRAWS
    if step < 1:
        raise ValueError(f"need at least {N_RANK_DRAWS} posterior draws")
    thinned = {name: value[step - 1::step][:N_RANK_DRAWS] for name, value in draws.items()}
    true_values = summaries({name: np.asarray(truth[name]) for name in inputs})
    return {label: int(np.sum(np.asarray(values) < true_values[label]))
            for label, values in summaries(thinned).items()}


def run_replicate(case: SBCCase, seed: int, sampling: SamplingOptions) -> dict:
    """One SBC replicate: prior draw -> simulated data -> fit -> ranks (and divergences)."""
    rng = np.random.default_rng(seed)
    covariates = case.covariates(rng)
    truth = draw_prior(case.build(covariates), rng)
    data = case.simulate(truth, covariates, rng)
    fit_data = case.fit_transform(data) if case.fit_transform else data
    model = case.build(fit_data)
    labelled = "is_cluster" in data
    kept = list(dict.fromkeys([*case.parameters, *case.summary_inputs,
                               *([rv.name for rv in model.free_RVs] if labelled else [])]))
    idata = sample_posterior(model, SamplingOptions(**{**sampling.__dict__, "seed": seed}),
                             var_names=kept, log_likelihood=False, start_at_map=True)
    posterior = idata["posterior"].to_dataset()
    divergences = int(idata["sample_stats"]["diverging"].sum())
    # (on a selection: ArviZ's rhat given var_names drops the other variables from a
    # Dataset it is handed)
    r_hat = float(max(np.nanmax(value.values) for value in
                      az.rhat(posterior[list(case.parameters)]).data_vars.values()))
    ranks = ranks_of_truth(truth, posterior, model, case.parameters)
    if case.summaries is not None:
        ranks.update(ranks_of_summaries(truth, posterior, case.summaries, case.summary_inputs))
    result = {"seed": seed, "divergences": divergences, "max_r_hat": r_hat, "ranks": ranks}
    if labelled:  # data drawn from the prior predictive: the posterior mean P is calibrated
        probability = mixture_draws(model, posterior, "cluster", threads=1).mean
        result.update(p_cluster=np.round(probability, 5).tolist(),
                      is_member=np.asarray(data["is_cluster"], int).tolist())
    return result


@dataclass(frozen=True)
class Uniformity:
    """Chi-square test of one parameter's ranks against the uniform distribution."""

    label: str
    counts: list[int]
    chi2: float
    p_value: float


def uniformity(label: str, ranks) -> Uniformity:
    """Counts of ranks in ``N_BINS`` equal bins of 0..N_RANK_DRAWS and the chi-square p."""
    bins = np.asarray(ranks) * N_BINS // (N_RANK_DRAWS + 1)
    counts = np.bincount(bins, minlength=N_BINS)
    result = chisquare(counts)
    return Uniformity(label, counts.tolist(), float(result.statistic), float(result.pvalue))


def finished(results: list[dict]) -> list[dict]:
    """The fits that ran to the end (not timed out, no sampler error)."""
    return [result for result in results if not result.get("timed_out") and
            "error" not in result]


def calibration_tests(replicates: list[dict]) -> list[Uniformity]:
    """Uniformity of every parameter's ranks over the replicates that finished."""
    replicates = finished(replicates)
    labels = replicates[0]["ranks"].keys()
    return [uniformity(label, [rep["ranks"][label] for rep in replicates]) for label in labels]


def passes(tests: list[Uniformity], alpha: float) -> bool:
    """Family-wise test over a model's parameters (Bonferroni): every p > alpha / n."""
    return all(test.p_value > alpha / len(tests) for test in tests)


# 400 draws, thinned 4; PyMC's NUTS as in the recorded validation run (fields are small).
SBC_SAMPLING = SamplingOptions(draws=200, tune=300, chains=2, cores=1, sampler="pymc")
SBC_TIMEOUT_S = 90  # a typical replicate takes 3-15 s
