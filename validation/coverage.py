"""Coverage and membership calibration on many simulated NGC 6819 fields.

Each field is a fresh draw of the simulator (``starmix.data.cluster_field``, its own seed) with
``N_CLUSTER`` members and ``N_FIELD`` field stars in the 20' cone, fitted through the
workflow's own steps (validation, cuts, initial guess, MAP start, NUTS) with the pm2d model
(K = 2) for the mean proper motion and the parallax model for the mean parallax, the
latter twice: with one weight for all stars, and with ``--magnitude-prior``. Unlike
SBC, the data here come from the realistic simulator, not from the model: the field is
non-Gaussian, so this also tests robustness to that misfit.

For the parallax fits each star also gets the simulator's own membership probability at
the true parameters (:func:`starmix.data.cluster_field.parallax_membership`): calibrated by
construction, it is the reference the fitted probabilities are compared with. (At one
fixed truth the fitted posterior-mean P is not exactly calibrated: the field's 900 stars
leave the weights uncertain, and binning by a noisy P makes its low bins look
over-confident. Exact calibration is checked on prior-predictive data, in SBC.)
"""

from dataclasses import replace

import numpy as np

from starmix.data.cluster_field import PRESETS, parallax_membership, simulate_cluster_field
from starmix.data.clusters import resolve_center
from starmix.workflows.cluster.fit import build_cluster_model, fit, initial_guess
from starmix.workflows.cluster.inputs import ClusterInput, prepare_stars
from starmix.workflows.runs.options import SamplingOptions

N_CLUSTER, N_FIELD = 300, 600
ORACLE_PARAMETERS = replace(PRESETS["ngc6819"], n_cluster=N_CLUSTER, n_field=N_FIELD)
COVERAGE_SAMPLING = SamplingOptions(draws=400, tune=400, chains=2, cores=1, sampler="pymc")
COVERAGE_TIMEOUT_S = 600  # a typical field takes 60-100 s for its three fits
QUANTILES = (2.5, 16, 50, 84, 97.5)
PARAMETERS = {"pm2d": {"cluster_pm[pmra]": "TRUEPMRA", "cluster_pm[pmdec]": "TRUEPMDE"},
              "parallax": {"cluster_parallax": "TRUEPLX"},
              "parallax_magnitude": {"cluster_parallax": "TRUEPLX"}}
# fits that are a model with options: the parallax model with --magnitude-prior, whose
# per-star weights answer the simulator's member fraction falling with magnitude
FITS = {"parallax_magnitude": ("parallax", {"magnitude_prior": True})}


def _silent(_message: str) -> None:
    pass


def fit_field(table, model_name: str, sampling: SamplingOptions, **options):
    """Fit one simulated field with one cluster model, as ``starmix run cluster
    --cluster NGC6819`` does; ``options``: more :class:`ClusterInput` fields."""
    inputs = ClusterInput(model=model_name, cluster="NGC6819", **options)
    center, _ = resolve_center(inputs.cluster, inputs.center)
    stars, _ = prepare_stars(table, inputs, center, sampling.seed, _silent)
    model, check_start = build_cluster_model(stars, inputs, initial_guess(stars), center,
                                             n_field=2)
    idata, probability = fit(model, sampling, None, check_start)
    return stars, idata, probability


def parameter_values(posterior, label: str) -> np.ndarray:
    name, _, coordinate = label.partition("[")
    values = posterior[name]
    if coordinate:
        values = values.sel(astrometry=coordinate.rstrip("]"))
    return values.values.ravel()


def coverage_task(seed: int, sampling: dict) -> dict:
    """Worker entry point: simulate field ``seed``, fit pm2d and parallax, keep what the
    coverage and calibration summaries need (quantiles, truth, per-star P and membership,
    and for the parallax fits the simulator's own P)."""
    table = simulate_cluster_field("ngc6819", seed=seed, n_cluster=N_CLUSTER, n_field=N_FIELD)
    result = {"seed": seed}
    for label, parameters in PARAMETERS.items():
        model_name, options = FITS.get(label, (label, {}))
        stars, idata, probability = fit_field(table, model_name,
                                              SamplingOptions(**{**sampling, "seed": seed}),
                                              **options)
        posterior = idata["posterior"]
        result[label] = {
            **({"p_oracle": np.round(parallax_membership(stars, ORACLE_PARAMETERS), 5).tolist()}
               if model_name == "parallax" else {}),
            "parameters": {
                label: {"truth": float(table.meta[key]),
                        "quantiles": np.percentile(parameter_values(posterior, label),
                                                   QUANTILES).tolist()}
                for label, key in parameters.items()},
            "divergences": int(idata["sample_stats"]["diverging"].sum()),
            "p_cluster": np.round(probability.mean, 5).tolist(),
            "is_member": np.asarray(stars["is_member"], bool).astype(int).tolist(),
        }
    return result
