"""The density's baselines, each run as its own users run it:

* ``kde_scott``, ``kde_silverman``: :class:`scipy.stats.gaussian_kde` with its two rules;
* ``kde_cv``: ``gaussian_kde`` with the bandwidth factor that maximises the 5-fold
  cross-validated log-likelihood over a grid of factors;
* ``em_bic``: scikit-learn's :class:`~sklearn.mixture.GaussianMixture` (EM), K from 1 to
  ``max_components`` by BIC;
* ``vb_dp``: scikit-learn's :class:`~sklearn.mixture.BayesianGaussianMixture` with a
  Dirichlet-process weight prior (variational, up to ``max_components`` components);
* ``xdgmm``: astroML's :class:`~astroML.density_estimation.XDGMM`, the reference EM
  implementation of extreme deconvolution (uses the errors), with the K of the PyMC fit.

None but ``xdgmm`` knows the errors: their densities are of the measured values, wider
than the intrinsic density by the errors. Each baseline returns its log-density at given
points, its settings, and (1-D) the standard deviation of its density.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np

CV_FACTORS = np.geomspace(0.05, 2.0, 30)
CV_FOLDS = 5
CV_MAX_POINTS = 3000  # cross-validation on a random subset of larger samples


@dataclass
class Baseline:
    """A fitted baseline density: ``log_density(points)`` for (G, d) points in model units."""

    name: str
    label: str
    settings: dict
    log_density: object = field(repr=False)
    sample: object = field(repr=False, default=None)  # sample(n, rng) -> (n, d)
    components: dict | None = None  # w, mean, cov for mixtures (model order)


def kde(values: np.ndarray, factor, name: str, label: str) -> Baseline:
    from scipy.stats import gaussian_kde

    estimate = gaussian_kde(values.T, bw_method=factor)
    settings = {"bandwidth_factor": float(estimate.factor),
                "bandwidth": np.sqrt(np.diag(estimate.covariance)).round(6).tolist()}
    return Baseline(name, label, settings, lambda points: estimate.logpdf(points.T),
                    lambda n, rng: estimate.resample(n, seed=rng).T)


def cv_factor(values: np.ndarray, seed: int) -> float:
    """The ``gaussian_kde`` bandwidth factor with the best 5-fold cross-validated
    log-likelihood (``CV_FACTORS``, relative to each training set's covariance)."""
    from scipy.stats import gaussian_kde

    rng = np.random.default_rng(seed)
    if len(values) > CV_MAX_POINTS:
        values = values[rng.choice(len(values), CV_MAX_POINTS, replace=False)]
    folds = rng.permutation(len(values)) % CV_FOLDS
    scores = np.zeros(len(CV_FACTORS))
    for fold in range(CV_FOLDS):
        train, test = values[folds != fold], values[folds == fold]
        for j, factor in enumerate(CV_FACTORS):
            scores[j] += gaussian_kde(train.T, bw_method=factor).logpdf(test.T).sum()
    return float(CV_FACTORS[int(np.argmax(scores))])


def ordered(w, mean, cov) -> dict:
    """Mixture components sorted by width along the first coordinate (the PyMC model's
    label-switching guard), so component k means the same thing in every fit."""
    order = np.argsort(cov[:, 0, 0])
    return {"w": np.asarray(w)[order], "mean": np.asarray(mean)[order],
            "cov": np.asarray(cov)[order]}


def mixture_baseline(name, label, settings, components, sampler=None) -> Baseline:
    from starmix.workflows.density.fit import mixture_log_density

    def log_density(points):
        return mixture_log_density(points, components["w"][None], components["mean"][None],
                                   components["cov"][None])[0]

    return Baseline(name, label, settings, log_density, sampler, components)


def em_bic(values, max_components: int, seed: int) -> Baseline:
    from sklearn.mixture import GaussianMixture

    fits = [GaussianMixture(k, n_init=5, random_state=seed).fit(values)
            for k in range(1, min(max_components, len(values) - 1) + 1)]
    bics = [fit.bic(values) for fit in fits]
    best = fits[int(np.argmin(bics))]
    components = ordered(best.weights_, best.means_, best.covariances_)
    return mixture_baseline("em_bic", f"EM (scikit-learn), K = {best.n_components} by BIC",
                            {"K": int(best.n_components),
                             "bic": [round(float(b), 3) for b in bics]}, components,
                            lambda n, rng: best.sample(n)[0])


def vb_dp(values, max_components: int, seed: int) -> Baseline:
    from sklearn.mixture import BayesianGaussianMixture

    fit = BayesianGaussianMixture(
        n_components=min(max_components, len(values) - 1),
        weight_concentration_prior_type="dirichlet_process", max_iter=2000, n_init=3,
        random_state=seed).fit(values)
    used = fit.weights_ > 0.01
    components = ordered(fit.weights_, fit.means_, fit.covariances_)
    return mixture_baseline("vb_dp", f"variational DP (scikit-learn), {used.sum()} "
                            "components > 1%", {"components_over_1pct": int(used.sum()),
                                                "converged": bool(fit.converged_)},
                            components)


def xdgmm(values, error_cov, n_components: int, seed: int) -> Baseline:
    """astroML's XDGMM with the PyMC fit's K (zero errors when none are given)."""
    from astroML.density_estimation import XDGMM

    errors = np.zeros((len(values), values.shape[1], values.shape[1])) if error_cov is None \
        else error_cov
    fit = XDGMM(n_components, max_iter=1000, tol=1e-7, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.fit(values, errors)
    components = ordered(fit.alpha, fit.mu, fit.V)
    return mixture_baseline("xdgmm", f"extreme deconvolution (astroML XDGMM), K = "
                            f"{n_components}", {"K": n_components}, components,
                            lambda n, rng: fit.sample(n, random_state=rng))


def fit_baselines(values: np.ndarray, error_cov, max_components: int, n_components: int,
                  seed: int) -> dict[str, Baseline]:
    """Every baseline on the (N, d) values in model units (logs with ``--log``)."""
    factor = cv_factor(values, seed)
    baselines = [
        kde(values, "scott", "kde_scott", "KDE, Scott's rule"),
        kde(values, "silverman", "kde_silverman", "KDE, Silverman's rule"),
        kde(values, factor, "kde_cv", f"KDE, 5-fold CV (factor {factor:.3g})"),
        em_bic(values, max_components, seed),
        vb_dp(values, max_components, seed),
        xdgmm(values, error_cov, n_components, seed),
    ]
    return {baseline.name: baseline for baseline in baselines}


def grid_density(baseline: Baseline, grid: np.ndarray, log: bool) -> np.ndarray:
    """A 1-D baseline's density at ``grid`` in original units (÷ x when fitted in logs)."""
    points = np.log(grid) if log else grid
    return np.exp(baseline.log_density(points[:, None])) / (grid if log else 1.0)


def density_sd(grid: np.ndarray, density: np.ndarray) -> float:
    """Standard deviation of a 1-D density given on a uniform grid."""
    p = density / density.sum()
    mean = (p * grid).sum()
    return float(np.sqrt((p * (grid - mean) ** 2).sum()))


def l1_distance(grid: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``∫ |a - b| dx`` on a uniform 1-D grid (0: identical, 2: disjoint)."""
    return float(np.abs(a - b).sum() * (grid[1] - grid[0]))

