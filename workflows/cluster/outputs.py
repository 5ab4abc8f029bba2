"""Step 8 of the cluster workflow: what a run reports. The cluster's estimates (with the
members' parallax and Gaia's systematic floors), the membership table, the truth of a
simulated field, the joint model's phase-space table, and the figures.
"""


import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from starmix.data.clusters import HUNT_REFFERT_2023, normalise_name
from starmix.models import CLUSTER_MODELS
from starmix.models.field import HALO_PARAMETERS
from starmix.workflows.cluster import plots as cluster_plots
from starmix.workflows.cluster.inputs import ClusterInput
from starmix.workflows.cluster.kinematics import (
    DEFAULT_RADIAL_VELOCITY,
    GENERIC_RADIAL_VELOCITY,
    cluster_phase_space,
)
from starmix.workflows.inference.recovery import membership_quality, parameter_bias
from starmix.workflows.inference.summary import summary_table
from starmix.workflows.plots import common as plots
from starmix.workflows.plots.checks import predictive_figure
from starmix.workflows.plots.pgm import cluster_pgm
from starmix.workflows.runs.files import save_figure, write_json, write_posterior, write_table

PARALLAX_SYSTEMATIC = 0.0103  # mas, Gaia (E)DR3 angular-covariance floor (Maiz Apellaniz+2021)
# Systematic floors of a cluster mean from Gaia (E)DR3, which no number of members averages
# away: proper motion 0.026 mas/yr (Vasiliev & Baumgardt 2021, MNRAS 505, 5978; small-scale
# systematics), parallax 0.0103 mas (Maiz Apellaniz et al. 2021). Reported beside each
# statistical sd; the published-comparison figure uses both in quadrature.
SYSTEMATIC_FLOOR = {"pmra": 0.026, "pmdec": 0.026, "parallax": PARALLAX_SYSTEMATIC}


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def members_parallax(table: Table, probability, seed: int = 0, n_boot: int = 200):
    """Membership-weighted median parallax (weights P) and its sd: a seeded bootstrap over
    stars plus the 0.0103 mas systematic floor in quadrature. A median, not an
    inverse-variance mean, so neither field interlopers nor the brightest stars (whose DR3
    zero-point differs most) dominate."""
    parallax = np.asarray(table["parallax"], float)
    probability = np.asarray(probability, float)
    rng = np.random.default_rng(seed)
    boot = [weighted_median(parallax[pick], probability[pick])
            for pick in rng.integers(0, len(parallax), (n_boot, len(parallax)))]
    return weighted_median(parallax, probability), float(np.hypot(np.std(boot),
                                                                  PARALLAX_SYSTEMATIC))


def cluster_estimates(summary: Table, table: Table, probability_mean, seed: int = 0) -> dict:
    """(mean, sd) of the cluster's pmra, pmdec and parallax that the model fits; a model
    without parallax gets the members' weighted median parallax (``parallax_members``)."""
    rows = {row["parameter"]: (float(row["mean"]), float(row["sd"])) for row in summary}
    found = {}
    for name, keys in {"pmra": ("cluster_pm[pmra]", "cluster_pmra"),
                       "pmdec": ("cluster_pm[pmdec]",),
                       "parallax": ("cluster_parallax",)}.items():
        for key in keys:
            if key in rows:
                found[name] = rows[key]
    if "parallax" not in found and "parallax" in table.colnames:
        found["parallax_members"] = members_parallax(table, probability_mean, seed)
    return found


def membership_table(table: Table, membership) -> Table:
    keep = [name for name in ("source_id", "ra", "dec", "parallax", "parallax_error", "pmra",
                              "pmra_error", "pmdec", "pmdec_error", "pmra_pmdec_corr",
                              "phot_g_mean_mag", "bp_rp", "is_member") if name in table.colnames]
    out = Table(table[keep], copy=True)
    out.meta = {}
    for name, column in membership.columns().items():
        out[name] = column
    return out


def truth_of(table: Table) -> dict:
    meta = table.meta
    if not meta.get("SIMULATD"):
        return {}
    return {"cluster_pm[pmra]": meta["TRUEPMRA"], "cluster_pm[pmdec]": meta["TRUEPMDE"],
            "cluster_pmra": meta["TRUEPMRA"], "cluster_parallax": meta["TRUEPLX"]}


def phase_space(idata, plane_center, inputs: ClusterInput, seed: int) -> Table:
    """Joint model only: the cluster centre, distance and motion per draw, in Cartesian.
    ``plane_center``: the centre of the model's tangent plane (the footprint's)."""
    posterior = idata["posterior"]
    offset = posterior["cluster_offset"].values.reshape(-1, 2)
    frame = plane_center.skyoffset_frame()
    centres = SkyCoord(lon=offset[:, 0] / 60, lat=offset[:, 1] / 60, unit="deg",
                       frame=frame).icrs
    pm_draws = posterior["cluster_pm"].values.reshape(-1, 2)
    name = normalise_name(inputs.cluster) if inputs.cluster else None
    rv_mean, rv_sd = inputs.radial_velocity or DEFAULT_RADIAL_VELOCITY.get(
        name, GENERIC_RADIAL_VELOCITY)
    return cluster_phase_space(centres.ra.deg, centres.dec.deg,
                               posterior["cluster_parallax"].values.ravel(), pm_draws[:, 0],
                               pm_draws[:, 1], rv_mean, rv_sd, seed)


def draw_cluster_figures(run, inputs, table, idata, membership, estimates, truth,
                         reference=None, check_arrays=None):
    spec = CLUSTER_MODELS[inputs.model]
    p = membership.mean
    figures = {"pgm": cluster_pgm(spec, inputs.parallax_field == "gaussian")}
    corner_vars = [name for name in (*spec.parameters, *HALO_PARAMETERS)
                   if name not in ("cluster_offset", "plummer_radius")
                   and name in idata["posterior"]]
    corner_truths = dict(truth)
    if truth and "is_member" in table.colnames:  # the simulated share of members fitted
        corner_truths["w[cluster]"] = float(np.mean(np.asarray(table["is_member"], bool)))
    figures["corner"] = plots.corner_plot(idata, corner_vars, coords={"component": "cluster"},
                                          truths=corner_truths,
                                          title=f"{inputs.model} model: cluster parameters")
    if {"pmra", "pmdec"} <= set(table.colnames):
        centre = (estimates.get("pmra", (np.median(table["pmra"]),))[0],
                  estimates.get("pmdec", (np.median(table["pmdec"]),))[0])
        figures["vpd"] = cluster_plots.vector_point_diagram(table, p, centre)
    if {"ra", "dec"} <= set(table.colnames):
        figures["sky"] = cluster_plots.sky_map(table, p)
    if "parallax" in table.colnames:
        figures["parallax"] = cluster_plots.parallax_histogram(
            table, p, estimates.get("parallax", (None,))[0])
    if {"bp_rp", "phot_g_mean_mag"} <= set(table.colnames):
        figures["cmd"] = cluster_plots.colour_magnitude(table, p)
    name = normalise_name(inputs.cluster) if inputs.cluster else None
    references = [ref for ref in (reference, HUNT_REFFERT_2023.get(name)) if ref is not None]
    if references:
        # statistical and systematic errors combined (the members' parallax has its floor)
        shown = {"parallax" if k == "parallax_members" else k:
                 (mean, sd if k == "parallax_members" else float(np.hypot(sd,
                                                                          SYSTEMATIC_FLOOR[k])))
                 for k, (mean, sd) in estimates.items()}
        figures["published"] = cluster_plots.published_comparison(shown, references)
    if check_arrays is not None:
        figures["checks"] = predictive_figure(
            check_arrays, f"{inputs.model} model: predictive checks of the observed stars")
    for label, figure in figures.items():
        name = f"{inputs.model}_{label}.png"
        run.keep(f"figure_{label}", save_figure(run.out_dir / "figures" / name, figure))
        plots.close(figure)


def summarise(run, inputs: ClusterInput, stars, fitted, seed: int) -> tuple[Table, dict]:
    """Step 8a: the posterior summary of every free parameter (and the derived distance and
    halo dispersion), the cluster's estimates (with the members' parallax, ``seed`` for its
    bootstrap), the run record's details, and against a simulated field's truth the
    recovery scores (``recovery.json``, ``reliability.ecsv``). Returns (summary, details)."""
    idata, table = fitted.idata, stars.table
    summary = summary_table(idata, [rv.name for rv in fitted.model.free_RVs] + [
        name for name in ("cluster_distance", "cluster_halo_dispersion")
        if name in idata["posterior"]])
    details = {**stars.record(),
               "map_log_posteriors": idata.attrs.get("map_log_posteriors"),
               "restarted_chains": idata.attrs.get("restarted_chains", []),
               "field_components": fitted.n_field,
               "cluster_estimates": cluster_estimates(summary, table, fitted.probability.mean,
                                                      seed),
               "systematic_floor": SYSTEMATIC_FLOOR,
               "detection": None if fitted.detection is None else fitted.detection.record(),
               "cluster_parameters": [
                   name for name in (*CLUSTER_MODELS[inputs.model].parameters, *HALO_PARAMETERS)
                   if name in idata["posterior"]]}
    truth = truth_of(table)
    if truth:
        quality, reliability = membership_quality(fitted.probability.mean, table["is_member"])
        details["recovery"] = {"parameters": parameter_bias(summary, truth),
                               "membership": quality}
        run.keep("reliability", write_table(run.out_dir / "reliability.ecsv", reliability))
        run.keep("recovery", write_json(run.out_dir / "recovery.json", details["recovery"]))
    return summary, details


def save_results(run, inputs: ClusterInput, stars, fitted, summary: Table, details: dict,
                 membership, seed: int):
    """Step 8b: ``posterior.nc`` (without the log-likelihood group with
    ``--log-likelihood none``), ``summary.ecsv``, the LOO table over K
    (``field_components_loo.ecsv``), the joint model's ``kinematics.ecsv`` (``seed``: its
    radial-velocity draws) and ``membership.ecsv`` (each star's probability with its
    spread over draws); records in ``details`` which draws the saved log-likelihood holds."""
    idata = fitted.idata
    details["log_likelihood"] = {
        "mode": inputs.log_likelihood, "saved": inputs.log_likelihood != "none",
        "draws_per_chain": int(idata["log_likelihood"].sizes["draw"]),
        "of_draws_per_chain": int(idata["posterior"].sizes["draw"]),
        "note": "membership means use every draw; percentiles, PSIS-LOO and the "
                "saved log_likelihood group use these draws"}
    if inputs.log_likelihood == "none":
        idata = idata.drop_nodes("log_likelihood")
    run.keep("posterior", write_posterior(run.out_dir / "posterior.nc", idata))
    run.keep("summary", write_table(run.out_dir / "summary.ecsv", summary))
    if fitted.comparison is not None:
        run.keep("field_components", write_table(run.out_dir / "field_components_loo.ecsv",
                                                 fitted.comparison))
    if inputs.model == "joint":
        kinematics = phase_space(idata, stars.footprint.center, inputs, seed)
        run.keep("kinematics", write_table(run.out_dir / "kinematics.ecsv", kinematics))
        details["kinematics"] = {row["quantity"]: [row["mean"], row["sd"], row["unit"]]
                                 for row in kinematics}
    run.keep("membership", write_table(run.out_dir / "membership.ecsv",
                                       membership_table(stars.table, membership)))
