"""A simulated patch of sky with clusters of known truth: the default data of ``starmix
search`` (``--gaia simulate``) and of its selection function.

The field is :func:`starmix.data.cluster_field.simulate_cluster_field` with no cluster,
uniform over a cone of the sky (its NGC 6819-like kinematics and Gaia DR3 errors); each
cluster is the same simulator with no field: a Plummer profile of ``PLUMMER_PC`` parsecs
at its parallax, ``DISPERSION_KMS`` km/s of internal motion, its members' G from the
cluster luminosity function. Clusters are placed at seeded positions inside the cone (at
least ``SEPARATION_ARCMIN`` apart and ``EDGE_ARCMIN`` from the edge), with a proper
motion drawn from the field's own stars near their parallax (inside the field's
proper-motion core: the usual, hard case). Units: degrees, arcmin, mas, mas/yr, pc.
"""

import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack

from starmix.data.cluster_field import KAPPA, SOURCE_ID_BASE, simulate_cluster_field
from starmix.data.footprint import footprint_meta

PLUMMER_PC = 1.5
DISPERSION_KMS = 0.5
SEPARATION_ARCMIN = 30.0  # between injected clusters
EDGE_ARCMIN = 20.0  # from the edge of the region
TRUTH_COLUMNS = ("name", "ra", "dec", "pmra", "pmdec", "parallax", "n_members",
                 "plummer_arcmin", "pm_dispersion")


FRAMES = {"icrs": ("RA", "Dec"), "galactic": ("l", "b")}


@dataclass(frozen=True)
class SkyRegion:
    """A cone of the sky: centre (``ra``, ``dec``, ICRS) and ``radius`` in degrees.
    ``frame`` is the frame it was given in ("icrs" or "galactic"), for its description."""

    ra: float
    dec: float
    radius: float
    frame: str = "icrs"

    def __post_init__(self):
        if not (math.isfinite(self.ra) and math.isfinite(self.dec) and -90 <= self.dec <= 90):
            raise ValueError(f"region: RA and Dec in degrees, Dec within [-90, 90], got "
                             f"{self.ra:g} {self.dec:g}")
        if not (math.isfinite(self.radius) and 0 < self.radius <= 15):
            raise ValueError(f"region: the radius must be above 0 and at most 15 deg, got "
                             f"{self.radius:g}")
        if self.frame not in FRAMES:
            raise ValueError(f"region: the frame must be one of {sorted(FRAMES)}, got "
                             f"{self.frame!r}")

    @property
    def center(self) -> SkyCoord:
        return SkyCoord(self.ra * u.deg, self.dec * u.deg)

    @property
    def area(self) -> float:
        """Square degrees."""
        return 2 * math.pi * (1 - math.cos(math.radians(self.radius))) * (180 / math.pi) ** 2

    def describe(self) -> str:
        """The cone in the frame it was given in, e.g. "cone (l, b) = (123.1, -2.5), 2 deg"."""
        if self.frame == "galactic":
            at = self.center.galactic
            lon, lat = float(at.l.deg), float(at.b.deg)
        else:
            lon, lat = self.ra, self.dec
        names = ", ".join(FRAMES[self.frame])
        lon, lat = round(lon, 6) % 360 + 0.0, round(lat, 6) + 0.0  # no 360 or -0
        return f"cone ({names}) = ({lon:.6g}, {lat:.6g}), {self.radius:g} deg"

    @classmethod
    def parse(cls, text: str) -> "SkyRegion":
        """``"cone RA DEC RADIUS"``, ``"RA DEC RADIUS"`` or ``"cone galactic L B RADIUS"``
        (``"galactic L B RADIUS"``), all in degrees; a galactic centre is stored in ICRS."""
        words = text.replace(",", " ").split()
        if words and words[0].lower() == "cone":
            words = words[1:]
        frame = "icrs"
        if words and words[0].lower() in ("galactic", "icrs"):
            frame, words = words[0].lower(), words[1:]
        try:
            lon, lat, radius = (float(word) for word in words)
        except ValueError:
            raise ValueError(f"REGION must be 'cone RA DEC RADIUS' or 'cone galactic L B "
                             f"RADIUS' in degrees, got {text!r}") from None
        if frame == "galactic":
            if not (math.isfinite(lon) and math.isfinite(lat) and -90 <= lat <= 90):
                raise ValueError(f"region: l and b in degrees, b within [-90, 90], got "
                                 f"{lon:g} {lat:g}")
            at = SkyCoord(l=lon * u.deg, b=lat * u.deg, frame="galactic").icrs
            lon, lat = float(at.ra.deg), float(at.dec.deg)
        return cls(lon, lat, radius, frame)


def plan_clusters(region: SkyRegion, richness, parallaxes, field: Table, seed: int) -> Table:
    """The clusters to inject: one per entry of ``richness`` (members over the simulator's
    G = 12-20), parallax cycling through ``parallaxes`` (mas), seeded positions inside the
    cone at least ``SEPARATION_ARCMIN`` apart and ``EDGE_ARCMIN`` from its edge, and proper
    motions of field stars within 0.1 mas of that parallax plus 0.5 mas/yr sd per axis."""
    rng = np.random.default_rng(seed)
    radius_arcmin = region.radius * 60
    if radius_arcmin <= EDGE_ARCMIN:
        raise ValueError(f"region: a radius of {region.radius:g} deg leaves no room for a "
                         f"cluster {EDGE_ARCMIN:g}' from the edge")
    placed = []
    rows = []
    plx_field = np.asarray(field["parallax"], float)
    pm_field = np.column_stack([np.asarray(field["pmra"], float),
                                np.asarray(field["pmdec"], float)])
    for i, n in enumerate(richness):
        for _ in range(10_000):
            r = (radius_arcmin - EDGE_ARCMIN) * math.sqrt(rng.random())
            angle = rng.uniform(0, 360)
            spot = region.center.directional_offset_by(angle * u.deg, r * u.arcmin)
            if all(spot.separation(other).arcmin > SEPARATION_ARCMIN for other in placed):
                break
        else:
            raise ValueError(f"region: no room for {len(richness)} clusters "
                             f"{SEPARATION_ARCMIN:g}' apart in {region.radius:g} deg")
        placed.append(spot)
        parallax = float(parallaxes[i % len(parallaxes)])
        near = np.abs(plx_field - parallax) < 0.1
        core = np.median(pm_field[near], axis=0) if near.sum() >= 20 else np.median(pm_field,
                                                                                    axis=0)
        pm = core + rng.normal(0, 0.5, 2)
        distance_pc = 1000 / parallax
        rows.append((f"SIM-{i + 1:03d}", float(spot.ra.deg), float(spot.dec.deg), float(pm[0]),
                     float(pm[1]), parallax, int(n),
                     math.degrees(PLUMMER_PC / distance_pc) * 60,
                     min(max(DISPERSION_KMS / (KAPPA * distance_pc / 1000), 0.03), 0.45)))
    return Table(rows=rows, names=TRUTH_COLUMNS) if rows else Table(
        names=TRUTH_COLUMNS, dtype=[str, float, float, float, float, float, int, float, float])


def simulate_sky(region: SkyRegion, richness=(), parallaxes=(1.0, 0.4),
                 field_density: float = 1.0, seed: int = 42) -> tuple[Table, Table]:
    """(stars, truth): the stars of ``region`` (Gaia archive columns, ``cluster`` naming
    each member's cluster, "" for field stars, and ``is_member``), and the injected
    clusters (``TRUTH_COLUMNS``). ``field_density``: field stars per arcmin² (G = 10-20).
    """
    rng = np.random.default_rng(seed)
    n_field = int(rng.poisson(field_density * region.area * 3600))
    field = simulate_cluster_field("ngc6819", seed=int(rng.integers(2**31)), n_cluster=0,
                                   n_field=max(n_field, 1), center_ra=region.ra,
                                   center_dec=region.dec, radius_arcmin=region.radius * 60)
    field["cluster"] = np.full(len(field), "", dtype="U12")
    truth = plan_clusters(region, list(richness), list(parallaxes), field,
                          int(rng.integers(2**31)))
    parts = [field]
    for row in truth:
        stars = simulate_cluster_field(
            "ngc6819", seed=int(rng.integers(2**31)), n_cluster=int(row["n_members"]),
            n_field=0, center_ra=float(row["ra"]), center_dec=float(row["dec"]),
            radius_arcmin=10 * float(row["plummer_arcmin"]),
            plummer_radius_arcmin=float(row["plummer_arcmin"]),
            cluster_parallax=float(row["parallax"]), cluster_pmra=float(row["pmra"]),
            cluster_pmdec=float(row["pmdec"]),
            cluster_pm_dispersion=float(row["pm_dispersion"]))
        stars["cluster"] = np.full(len(stars), row["name"], dtype="U12")
        parts.append(stars)
    for part in parts:
        part.meta.clear()
    stars = vstack(parts, metadata_conflicts="silent")
    inside = SkyCoord(stars["ra"], stars["dec"]).separation(region.center).deg <= region.radius
    stars = stars[inside]
    stars = stars[rng.permutation(len(stars))]
    stars["source_id"] = SOURCE_ID_BASE + np.arange(len(stars), dtype=np.int64)
    stars["is_member"] = stars["cluster"] != ""
    stars.meta.update({"SIMULATD": True, "SEED": seed,
                       "COMMENT": ["starmix simulated sky with injected clusters; see "
                                   "data/sky.py"]})
    stars.meta.update(footprint_meta(region.center, region.radius * 60))
    return stars, truth
