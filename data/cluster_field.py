"""A simulated Gaia DR3 cone around a star cluster: the default data of the cluster workflows.

The real NGC 6819 field cannot be shipped, so :func:`simulate_cluster_field` makes a table
with the Gaia archive's column names (plus truth columns) from this generative model; every
number below is a field of :class:`FieldParameters`, and ``PRESETS["ngc6819"]`` holds the
defaults.

Cluster members (``is_member``)
    Sky: a Plummer profile, surface density ∝ (1 + R²/a²)⁻², truncated at the cone radius,
    with a = 6.3 arcmin (the projected half-number radius; Hunt & Reffert 2023) around
    (295.327°, +40.190°). Astrometry: true parallax 0.356 mas for all (depth is negligible);
    true proper motion (-2.916, -3.856) mas/yr (Cantat-Gaudin+2020) plus an isotropic
    internal dispersion of 0.1 mas/yr. G from p(G) ∝ 10^(0.25 G) on [12, 20]; BP-RP from a
    schematic old-cluster sequence (main sequence reddening with G below a turn-off at
    G = 15.5, red giants above G = 14.5) with 0.04 mag scatter.
Field stars
    Sky: uniform over the cone. Distance r from the exponentially decreasing space density
    prior p(r) ∝ r² exp(-r/L) (Bailer-Jones 2015), L = 1.35 kpc; true parallax 1/r. Proper
    motion: tangential velocity v = v_reflex + v_pec with v_reflex = (-20, -60) km/s and
    v_pec ~ N(0, [[35², 0.3·35·25], [0.3·35·25, 25²]]) km/s, so μ = v / (4.74 r): broad,
    heavy-tailed (nearby stars move fast), correlated between components and with parallax.
    G from p(G) ∝ 10^(0.35 G) on [10, 20]; BP-RP ~ N(1.0 + 0.08 (G - 15), 0.3).
Errors (both populations)
    parallax_error, pmra_error, pmdec_error: the Gaia DR3 sky-averaged model of pygaia
    (``release="dr3"``) at each star's G, times a per-star factor exp(N(0, 0.2²)) for the
    spread at fixed G. Correlations parallax_pmra_corr ~ N(-0.12, 0.07),
    parallax_pmdec_corr ~ N(0.0, 0.07), pmra_pmdec_corr ~ N(-0.10, 0.075) (the spread in a
    real EDR3 cone), redrawn until each 3x3 covariance is positive definite. Observed
    (parallax, pmra, pmdec) = truth + a draw from that full covariance. RUWE ~ 1 +
    ``|N(0, 0.08)|``, with 3% of stars given U(1.4, 3) (unresolved binaries). Sky positions
    are exact (milliarcsecond errors do not matter at arcminute scales).

Counts: by default 6,170 members and 10,830 field stars in a 20' cone, so about 17,000
stars within 20' and 3,300 within 5'. (About 5,100, not 13,700, lie beyond 15': a uniform
field over a 20' cone puts only 7/16 of itself there.)
"""

from dataclasses import asdict, dataclass, replace

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from starmix.data.footprint import footprint_meta
from starmix.data.input_checks import DataValidationError

KAPPA = 4.740470463533348  # km/s per (mas/yr * kpc)
SOURCE_ID_BASE = 2_000_000_000_000_000_000


@dataclass(frozen=True)
class FieldParameters:
    """All knobs of the simulated field (angles in deg/arcmin, mas, mas/yr, kpc, km/s)."""

    center_ra: float = 295.327
    center_dec: float = 40.190
    radius_arcmin: float = 20.0
    n_cluster: int = 6170
    n_field: int = 10830
    plummer_radius_arcmin: float = 6.3
    cluster_parallax: float = 0.356
    cluster_pmra: float = -2.916
    cluster_pmdec: float = -3.856
    cluster_pm_dispersion: float = 0.1
    cluster_g_range: tuple[float, float] = (12.0, 20.0)
    field_length_scale_kpc: float = 1.35
    field_reflex_kms: tuple[float, float] = (-20.0, -60.0)
    field_velocity_sd_kms: tuple[float, float] = (35.0, 25.0)
    field_velocity_corr: float = 0.3
    field_g_range: tuple[float, float] = (10.0, 20.0)
    error_scatter_dex: float = 0.2
    binary_fraction: float = 0.03


PRESETS = {"ngc6819": FieldParameters()}
# luminosity functions p(G) ∝ 10^(slope G): a cluster's is flatter than the field's
CLUSTER_LF_SLOPE, FIELD_LF_SLOPE = 0.25, 0.35


def simulate_cluster_field(preset: str = "ngc6819", seed: int = 0, **overrides) -> Table:
    """Simulate a cluster field; ``overrides`` replace fields of the preset's parameters.

    Returns an astropy Table with archive column names and units, truth columns
    (``is_member``, ``true_parallax``, ``true_pmra``, ``true_pmdec``), shuffled rows, and
    ``meta`` recording that it is simulated, the seed and every parameter.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
    params = replace(PRESETS[preset], **overrides)
    if params.n_cluster < 0 or params.n_field < 0 or params.n_cluster + params.n_field == 0:
        raise DataValidationError("n_cluster/n_field", "must be >= 0 with some stars", 0, 0)
    rng = np.random.default_rng(seed)
    cluster = _cluster_stars(rng, params)
    field = _field_stars(rng, params)
    stars = {key: np.concatenate([cluster[key], field[key]]) for key in cluster}
    n_stars = len(stars["g"])
    order = rng.permutation(n_stars)
    stars = {key: value[order] for key, value in stars.items()}
    errors = _astrometric_errors(rng, stars["g"], params)
    observed = _observe(rng, stars, errors)
    ruwe = 1 + np.abs(rng.normal(0, 0.08, n_stars))
    binaries = rng.random(n_stars) < params.binary_fraction
    ruwe[binaries] = rng.uniform(1.4, 3.0, binaries.sum())

    center = SkyCoord(params.center_ra * u.deg, params.center_dec * u.deg)
    positions = center.directional_offset_by(stars["position_angle"] * u.deg,
                                             stars["radius"] * u.arcmin)
    table = Table()
    table["source_id"] = SOURCE_ID_BASE + rng.permutation(n_stars * 10)[:n_stars]
    table["ra"] = positions.ra.to(u.deg)
    table["dec"] = positions.dec.to(u.deg)
    mas, mas_yr = u.mas, u.mas / u.yr
    table["parallax"] = observed[:, 0] * mas
    table["parallax_error"] = errors["parallax_error"] * mas
    table["pmra"] = observed[:, 1] * mas_yr
    table["pmra_error"] = errors["pmra_error"] * mas_yr
    table["pmdec"] = observed[:, 2] * mas_yr
    table["pmdec_error"] = errors["pmdec_error"] * mas_yr
    for name in CORRELATION_COLUMNS.values():
        table[name] = errors[name]
    table["phot_g_mean_mag"] = stars["g"] * u.mag
    table["bp_rp"] = stars["bp_rp"] * u.mag
    table["ruwe"] = ruwe
    table["is_member"] = stars["is_member"]
    table["true_parallax"] = stars["parallax"] * mas
    table["true_pmra"] = stars["pmra"] * mas_yr
    table["true_pmdec"] = stars["pmdec"] * mas_yr
    table.meta.update({"SIMULATD": True, "PRESET": preset, "SEED": seed,
                       "TRUEPLX": params.cluster_parallax, "TRUEPMRA": params.cluster_pmra,
                       "TRUEPMDE": params.cluster_pmdec,
                       "COMMENT": ["starmix simulated Gaia DR3-like field; see "
                                   "data/cluster_field.py"]})
    table.meta.update(footprint_meta(center, params.radius_arcmin))
    table.meta.update({f"HIERARCH {key}": _fits_value(v) for key, v in asdict(params).items()})
    return table


def write_cluster_field(table: Table, path) -> None:
    """Write the table as FITS (``.fits.gz`` is compressed), readable by ``load_gaia``."""
    from starmix.data.files import atomic_path

    with atomic_path(path) as temporary:
        table.write(temporary, format="fits", overwrite=True)


def plummer_radii(rng, n: int, scale: float, r_max: float) -> np.ndarray:
    """Projected radii of a Plummer profile with scale ``scale``, truncated at ``r_max``."""
    f_max = 1 / (1 + (scale / r_max) ** 2)
    q = rng.random(n) * f_max
    return scale * np.sqrt(q / (1 - q))


def exponential_magnitudes(rng, n: int, slope: float, g_range) -> np.ndarray:
    """G drawn from p(G) ∝ 10^(slope G) on ``g_range`` (inverse CDF)."""
    k = slope * np.log(10)
    lo, hi = np.exp(k * g_range[0]), np.exp(k * g_range[1])
    return np.log(lo + rng.random(n) * (hi - lo)) / k


def magnitude_density(g, slope: float, g_range) -> np.ndarray:
    """p(G) ∝ 10^(slope G) on ``g_range``, normalised (1/mag); zero outside it."""
    g = np.asarray(g, float)
    k = slope * np.log(10)
    inside = (g >= g_range[0]) & (g <= g_range[1])
    norm = np.exp(k * g_range[1]) - np.exp(k * g_range[0])
    return np.where(inside, k * np.exp(k * np.clip(g, *g_range)) / norm, 0.0)


def parallax_membership(table: Table, params: FieldParameters | None = None) -> np.ndarray:
    """Each star's probability of being a member given only its parallax and G, at the
    simulator's true parameters (``params``, default the NGC 6819 preset): the best any
    parallax-only model can do on these stars.

    Prior odds n_c p_c(G) : n_f p_f(G) from the two luminosity functions; likelihoods
    N(ϖ | ϖ_c, e²) for members, and for field stars N(ϖ | 1/r, e²) averaged over
    r ~ Gamma(3, L) (trapezoid rule on a 4,000-point grid in true parallax, 1e-3 to 8 mas).
    """
    params = params or PRESETS["ngc6819"]
    g = np.asarray(table["phot_g_mean_mag"], float)
    observed = np.asarray(table["parallax"], float)
    error = np.asarray(table["parallax_error"], float)
    cluster_prior = params.n_cluster * magnitude_density(g, CLUSTER_LF_SLOPE,
                                                         params.cluster_g_range)
    field_prior = params.n_field * magnitude_density(g, FIELD_LF_SLOPE, params.field_g_range)
    length = params.field_length_scale_kpc
    grid = np.linspace(1e-3, 8.0, 4000)  # true parallax, mas; r = 1/x ~ Gamma(3, L)
    true_density = grid**-4 * np.exp(-1 / (grid * length)) / (2 * length**3)
    kernel = np.exp(-0.5 * ((observed[:, None] - grid[None, :]) / error[:, None]) ** 2)
    field_like = np.trapezoid(true_density * kernel, grid, axis=1) / (np.sqrt(2 * np.pi) * error)
    cluster_like = (np.exp(-0.5 * ((observed - params.cluster_parallax) / error) ** 2)
                    / (np.sqrt(2 * np.pi) * error))
    cluster = cluster_prior * cluster_like
    return cluster / (cluster + field_prior * field_like)


def _cluster_stars(rng, p: FieldParameters) -> dict:
    n = p.n_cluster
    g = exponential_magnitudes(rng, n, CLUSTER_LF_SLOPE, p.cluster_g_range)
    main_sequence = 0.85 + 0.12 * np.clip(g - 15.5, 0, None)
    giants = g < 14.5
    bp_rp = np.where(giants, 1.35 + 0.05 * (14.5 - g), main_sequence) + rng.normal(0, 0.04, n)
    return {
        "radius": plummer_radii(rng, n, p.plummer_radius_arcmin, p.radius_arcmin),
        "position_angle": rng.uniform(0, 360, n),
        "parallax": np.full(n, p.cluster_parallax),
        "pmra": p.cluster_pmra + rng.normal(0, p.cluster_pm_dispersion, n),
        "pmdec": p.cluster_pmdec + rng.normal(0, p.cluster_pm_dispersion, n),
        "g": g,
        "bp_rp": bp_rp,
        "is_member": np.ones(n, dtype=bool),
    }


def _field_stars(rng, p: FieldParameters) -> dict:
    n = p.n_field
    distance = rng.gamma(3.0, p.field_length_scale_kpc, n)  # p(r) ∝ r² exp(-r/L)
    sd_a, sd_d = p.field_velocity_sd_kms
    cov = [[sd_a**2, p.field_velocity_corr * sd_a * sd_d],
           [p.field_velocity_corr * sd_a * sd_d, sd_d**2]]
    velocity = np.asarray(p.field_reflex_kms) + rng.multivariate_normal([0, 0], cov, n)
    pm = velocity / (KAPPA * distance[:, None])
    g = exponential_magnitudes(rng, n, FIELD_LF_SLOPE, p.field_g_range)
    return {
        "radius": p.radius_arcmin * np.sqrt(rng.random(n)),
        "position_angle": rng.uniform(0, 360, n),
        "parallax": 1 / distance,
        "pmra": pm[:, 0],
        "pmdec": pm[:, 1],
        "g": g,
        "bp_rp": np.clip(rng.normal(1.0 + 0.08 * (g - 15), 0.3), -0.2, 4.0),
        "is_member": np.zeros(n, dtype=bool),
    }


def _astrometric_errors(rng, g: np.ndarray, p: FieldParameters) -> dict:
    from pygaia.errors.astrometric import parallax_uncertainty, proper_motion_uncertainty

    n = len(g)
    scatter = np.exp(rng.normal(0, p.error_scatter_dex, n))
    pmra_error, pmdec_error = proper_motion_uncertainty(g, release="dr3")
    errors = {
        "parallax_error": parallax_uncertainty(g, release="dr3") / 1000 * scatter,
        "pmra_error": pmra_error / 1000 * scatter,
        "pmdec_error": pmdec_error / 1000 * scatter,
    }
    correlations = np.empty((n, 3))
    pending = np.ones(n, dtype=bool)
    while pending.any():
        draw = rng.normal([-0.12, 0.0, -0.10], [0.07, 0.07, 0.075], (pending.sum(), 3))
        correlations[pending] = np.clip(draw, -0.95, 0.95)
        pending = ~_positive_definite(correlations)
    for k, name in enumerate(CORRELATION_COLUMNS.values()):
        errors[name] = correlations[:, k]
    return errors


CORRELATION_COLUMNS = {(0, 1): "parallax_pmra_corr", (0, 2): "parallax_pmdec_corr",
                       (1, 2): "pmra_pmdec_corr"}


def correlation_matrices(correlations: np.ndarray) -> np.ndarray:
    """(n, 3, 3) correlation matrices from (n, 3) columns in ``CORRELATION_COLUMNS`` order."""
    matrices = np.tile(np.eye(3), (len(correlations), 1, 1))
    for k, (i, j) in enumerate(CORRELATION_COLUMNS):
        matrices[:, i, j] = matrices[:, j, i] = correlations[:, k]
    return matrices


def astrometric_covariance(errors) -> np.ndarray:
    """Per-star 3x3 covariance of (parallax, pmra, pmdec) from archive error/corr columns
    (a table or a dict of arrays); units mas² and (mas/yr)²."""
    s = np.stack([np.asarray(errors[name], float)
                  for name in ("parallax_error", "pmra_error", "pmdec_error")], axis=-1)
    corr = np.stack([np.asarray(errors[name], float) for name in CORRELATION_COLUMNS.values()],
                    axis=-1)
    return correlation_matrices(corr) * s[:, :, None] * s[:, None, :]


def _positive_definite(correlations: np.ndarray) -> np.ndarray:
    return np.linalg.eigvalsh(correlation_matrices(correlations))[:, 0] > 1e-6


def _observe(rng, stars: dict, errors: dict) -> np.ndarray:
    truth = np.stack([stars["parallax"], stars["pmra"], stars["pmdec"]], axis=-1)
    chol = np.linalg.cholesky(astrometric_covariance(errors))
    return truth + np.einsum("nij,nj->ni", chol, rng.standard_normal(truth.shape))


def _fits_value(value):
    return ",".join(map(str, value)) if isinstance(value, tuple) else value
