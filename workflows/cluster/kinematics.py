"""The cluster's 3D position and velocity from posterior draws (astropy, draw by draw).

Gaia gives few radial velocities, so the radial velocity is drawn from a prior
N(rv_mean, rv_sd) (km/s) independently for each posterior draw.
"""

import astropy.units as u
import numpy as np
from astropy.coordinates import Galactocentric, SkyCoord
from astropy.table import Table

# Milliman et al. (2014, AJ 148, 38): NGC 6819 mean radial velocity +2.45 +- 1.02 km/s.
DEFAULT_RADIAL_VELOCITY = {"NGC6819": (2.45, 1.0)}
GENERIC_RADIAL_VELOCITY = (0.0, 30.0)


def cluster_phase_space(ra, dec, parallax, pmra, pmdec, rv_mean: float, rv_sd: float,
                        seed: int) -> Table:
    """Per-draw ICRS and Galactocentric Cartesian position and velocity, summarised.

    Inputs are 1-D arrays over draws: degrees, mas, mas/yr. Returns a table with, per
    quantity, the posterior mean, sd and 16/50/84 percentiles (pc or kpc, km/s).
    """
    rng = np.random.default_rng(seed)
    rv = rng.normal(rv_mean, rv_sd, len(parallax))
    coords = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, distance=(1 / parallax) * u.kpc,
                      pm_ra_cosdec=pmra * u.mas / u.yr, pm_dec=pmdec * u.mas / u.yr,
                      radial_velocity=rv * u.km / u.s)
    icrs_pos = coords.cartesian.xyz.to(u.pc)
    icrs_vel = coords.velocity.d_xyz.to(u.km / u.s)
    galcen = coords.transform_to(Galactocentric())
    gal_pos = galcen.cartesian.xyz.to(u.kpc)
    gal_vel = galcen.velocity.d_xyz.to(u.km / u.s)
    quantities = {"distance": coords.distance.to(u.pc), "radial_velocity_prior": rv * u.km / u.s}
    for frame, position, velocity in (("icrs", icrs_pos, icrs_vel), ("galcen", gal_pos, gal_vel)):
        for axis, p_value, v_value in zip("xyz", position, velocity, strict=True):
            quantities[f"{frame}_{axis}"] = p_value
            quantities[f"{frame}_v{axis}"] = v_value
    rows = []
    for name, values in quantities.items():
        p16, p50, p84 = np.percentile(values.value, [16, 50, 84])
        rows.append((name, values.mean().value, values.std().value, p16, p50, p84,
                     values.unit.to_string()))
    return Table(rows=rows, names=("quantity", "mean", "sd", "p16", "p50", "p84", "unit"))
