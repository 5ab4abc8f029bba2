"""A simulated patch of sky with clusters of known truth: the default data of ``starmix
search`` (``--gaia simulate``) and of its selection function.

A region is a cone (:class:`SkyCone`) or a box of longitude and latitude in ICRS or
galactic coordinates (:class:`SkyBox`, which may cross longitude 0 or hold a pole), read
from text by :func:`parse_region`; each knows its area, which points it holds and how far
they lie from its edges, all on the sphere.

The field is :func:`starmix.data.cluster_field.simulate_cluster_field` with no cluster,
uniform over the region (its NGC 6819-like kinematics and Gaia DR3 errors); each
cluster is the same simulator with no field: a Plummer profile of ``PLUMMER_PC`` parsecs
(or the sizes given) at its parallax, ``DISPERSION_KMS`` km/s of internal motion, its
members' G from the cluster luminosity function. Clusters are placed at seeded positions
inside the region (at least ``SEPARATION_ARCMIN`` apart and ``EDGE_ARCMIN`` from the edge),
with a proper motion drawn from the field's own stars near their parallax (inside the field's
proper-motion core: the usual, hard case). Units: degrees, arcmin, mas, mas/yr, pc.
"""

import functools
import math
from dataclasses import asdict, dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord, angular_separation
from astropy.table import Table, vstack

from starmix.data.cluster_field import KAPPA, SOURCE_ID_BASE, simulate_cluster_field
from starmix.data.footprint import footprint_meta

PLUMMER_PC = 1.5
DISPERSION_KMS = 0.5
SEPARATION_ARCMIN = 30.0  # between injected clusters
EDGE_ARCMIN = 20.0  # from the edge of the region
TRUTH_COLUMNS = ("name", "ra", "dec", "pmra", "pmdec", "parallax", "n_members",
                 "plummer_arcmin", "pm_dispersion", "plummer_pc")


FRAMES = {"icrs": ("RA", "Dec"), "galactic": ("l", "b")}
MAX_RADIUS_DEG = 15.0  # a region fits in a cone of at most this radius


def frame_lonlat(coord: SkyCoord, frame: str) -> tuple[np.ndarray, np.ndarray]:
    """(longitude, latitude) in degrees of ``coord`` in ``frame`` ("icrs" or "galactic")."""
    if frame == "galactic":
        at = coord.galactic
        return np.asarray(at.l.deg), np.asarray(at.b.deg)
    at = coord.icrs
    return np.asarray(at.ra.deg), np.asarray(at.dec.deg)


def frame_coord(lon, lat, frame: str) -> SkyCoord:
    """Points given in degrees in ``frame``, as ICRS."""
    if frame == "galactic":
        return SkyCoord(l=np.asarray(lon, float) * u.deg, b=np.asarray(lat, float) * u.deg,
                        frame="galactic").icrs
    return SkyCoord(np.asarray(lon, float) * u.deg, np.asarray(lat, float) * u.deg)


def _angle(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"region: {what} must be a number of degrees, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"region: {what} must be finite, got {text!r}")
    return value


@dataclass(frozen=True)
class SkyCone:
    """A cone of the sky: centre (``ra``, ``dec``, ICRS) and ``radius`` in degrees.
    ``frame`` is the frame it was given in ("icrs" or "galactic"), for its description."""

    ra: float
    dec: float
    radius: float
    frame: str = "icrs"
    shape = "cone"

    def __post_init__(self):
        if not (math.isfinite(self.ra) and math.isfinite(self.dec) and -90 <= self.dec <= 90):
            raise ValueError(f"region: RA and Dec in degrees, Dec within [-90, 90], got "
                             f"{self.ra:g} {self.dec:g}")
        if not (math.isfinite(self.radius) and 0 < self.radius <= MAX_RADIUS_DEG):
            raise ValueError(f"region: the radius must be above 0 and at most "
                             f"{MAX_RADIUS_DEG:g} deg, got {self.radius:g}")
        if self.frame not in FRAMES:
            raise ValueError(f"region: the frame must be one of {sorted(FRAMES)}, got "
                             f"{self.frame!r}")

    @property
    def center(self) -> SkyCoord:
        return SkyCoord(self.ra * u.deg, self.dec * u.deg)

    @property
    def area(self) -> float:
        """Square degrees."""
        return cap_area(self.radius)

    def contains(self, coord: SkyCoord) -> np.ndarray:
        """Whether each point lies in the cone (on its edge counts)."""
        return np.asarray(coord.separation(self.center).deg <= self.radius)

    def edge_distance_arcmin(self, coord: SkyCoord) -> np.ndarray:
        """Each point's distance to the cone's edge (arcmin), negative outside it."""
        return self.radius * 60 - np.asarray(coord.separation(self.center).arcmin)

    def outline(self, n: int = 361) -> list[SkyCoord]:
        """The edge as closed polylines (ICRS): one circle."""
        angles = np.linspace(0, 360, n) * u.deg
        return [self.center.directional_offset_by(angles, self.radius * u.deg)]

    def describe(self) -> str:
        """The cone in the frame it was given in, e.g. "cone (l, b) = (123.1, -2.5), 2 deg"."""
        lon, lat = (float(v) for v in frame_lonlat(self.center, self.frame))
        names = ", ".join(FRAMES[self.frame])
        lon, lat = round(lon, 6) % 360 + 0.0, round(lat, 6) + 0.0  # no 360 or -0
        return f"cone ({names}) = ({lon:.6g}, {lat:.6g}), {self.radius:g} deg"

    def to_record(self) -> dict:
        return {"shape": self.shape, **asdict(self), "area_deg2": self.area}


@dataclass(frozen=True)
class SkyBox:
    """A box of longitude and latitude in ``frame`` ("icrs": RA, Dec; "galactic": l, b),
    degrees: longitudes from ``lon_min`` eastward through ``width`` (so a box may cross
    longitude 0; a width of 360 is a ring, or a polar cap when a latitude edge is a pole),
    latitudes ``lat_min`` to ``lat_max``. It must fit in a cone of ``MAX_RADIUS_DEG``; that
    cone (``center``, ``radius``) is what a HATS catalogue is read with and the simulated
    sky drawn over, before the box's own edges cut it."""

    lon_min: float
    width: float
    lat_min: float
    lat_max: float
    frame: str = "icrs"
    shape = "box"

    def __post_init__(self):
        if self.frame not in FRAMES:
            raise ValueError(f"region: the frame must be one of {sorted(FRAMES)}, got "
                             f"{self.frame!r}")
        lon, lat = FRAMES[self.frame]
        if not (0 <= self.lon_min < 360 and 0 < self.width <= 360):
            raise ValueError(f"region: the box's {lon} range must be above 0 and at most 360 "
                             f"deg wide, got {self.width:g} from {self.lon_min:g}")
        if not -90 <= self.lat_min < self.lat_max <= 90:
            raise ValueError(f"region: the box's {lat} must rise within [-90, 90], got "
                             f"{self.lat_min:g} to {self.lat_max:g}")
        if self.radius > MAX_RADIUS_DEG:
            raise ValueError(f"region: the box must fit in a cone of {MAX_RADIUS_DEG:g} deg "
                             f"radius, and this one needs {self.radius:.1f}")

    @property
    def full_ring(self) -> bool:
        return self.width >= 360

    @functools.cached_property
    def _cone(self) -> tuple[SkyCoord, float]:
        """The cone holding the box: centre (the box's area-weighted mean direction) and the
        farthest edge point's distance from it plus 1e-3 deg."""
        lon = self.lon_min + (np.arange(200) + 0.5) / 200 * self.width
        sin_lat = np.linspace(math.sin(math.radians(self.lat_min)),
                              math.sin(math.radians(self.lat_max)), 201)
        lat = np.degrees(np.arcsin((sin_lat[:-1] + sin_lat[1:]) / 2))  # equal-area cells
        grid = frame_coord(*np.meshgrid(lon, lat), self.frame).cartesian.xyz.value
        mean = grid.reshape(3, -1).mean(axis=1)
        centre = SkyCoord(x=mean[0], y=mean[1], z=mean[2],
                          representation_type="cartesian").spherical
        centre = SkyCoord(centre.lon, centre.lat)
        lines = self.outline(2001)
        edge = SkyCoord(np.concatenate([c.ra.deg for c in lines]) * u.deg,
                        np.concatenate([c.dec.deg for c in lines]) * u.deg)
        return centre, float(edge.separation(centre).deg.max()) + 1e-3

    @property
    def center(self) -> SkyCoord:
        return self._cone[0]

    @property
    def ra(self) -> float:
        return float(self.center.ra.deg)

    @property
    def dec(self) -> float:
        return float(self.center.dec.deg)

    @property
    def radius(self) -> float:
        """Degrees: the radius of the cone holding the box."""
        return self._cone[1]

    @property
    def area(self) -> float:
        """Square degrees."""
        return (math.radians(self.width) * (math.sin(math.radians(self.lat_max))
                                            - math.sin(math.radians(self.lat_min)))
                * (180 / math.pi) ** 2)

    def contains(self, coord: SkyCoord) -> np.ndarray:
        """Whether each point lies in the box (on its edges counts)."""
        lon, lat = frame_lonlat(coord, self.frame)
        return ((lon - self.lon_min) % 360 <= self.width) & (lat >= self.lat_min) & (
            lat <= self.lat_max)

    def edge_distance_arcmin(self, coord: SkyCoord) -> np.ndarray:
        """Each point's great-circle distance to the box's nearest edge (arcmin), negative
        outside it. Latitude edges are small circles (the nearest point lies on the same
        meridian, within the longitude range, else at a corner); longitude edges are
        meridian arcs (the foot of the perpendicular great circle, else a corner)."""
        lon, lat = (np.radians(np.asarray(v, float)) for v in frame_lonlat(coord, self.frame))
        lon0, lat0, lat1 = (math.radians(v) for v in (self.lon_min, self.lat_min,
                                                      self.lat_max))
        width = math.radians(self.width)
        within = np.mod(lon - lon0, 2 * np.pi) <= width
        corners = [(lon0 + dl, la) for dl in ((0.0,) if self.full_ring else (0.0, width))
                   for la in (lat0, lat1)]
        nearest_corner = np.min([angular_separation(lon, lat, cl, cb)
                                 for cl, cb in corners], axis=0)
        distances = []
        for edge in (lat0, lat1):
            if self.full_ring and abs(edge) == math.pi / 2:
                continue  # a ring's pole lies inside it, not on an edge
            distances.append(np.where(within, np.abs(lat - edge), nearest_corner))
        if not self.full_ring:
            for edge_lon in (lon0, lon0 + width):
                d = lon - edge_lon
                foot = np.arctan2(np.sin(lat), np.cos(lat) * np.cos(d))
                on_arc = (foot >= lat0) & (foot <= lat1)
                distances.append(np.where(on_arc, np.arcsin(np.minimum(
                    np.abs(np.cos(lat) * np.sin(d)), 1.0)), nearest_corner))
        nearest = np.degrees(np.min(distances, axis=0)) * 60
        return np.where(self.contains(coord), nearest, -nearest)

    def outline(self, n: int = 181) -> list[SkyCoord]:
        """The edges as polylines (ICRS), ``n`` points per edge: one closed loop, or for a
        ring its two latitude circles (a pole is a point, not drawn)."""
        along = np.linspace(0, 1, n)
        lon = self.lon_min + along * self.width
        if self.full_ring:
            return [frame_coord(lon, np.full(n, lat), self.frame)
                    for lat in (self.lat_min, self.lat_max) if abs(lat) < 90]
        lat = self.lat_min + along * (self.lat_max - self.lat_min)
        lon1 = self.lon_min + self.width
        loop_lon = np.concatenate([lon, np.full(n, lon1), lon[::-1], np.full(n, self.lon_min)])
        loop_lat = np.concatenate([np.full(n, self.lat_min), lat, np.full(n, self.lat_max),
                                   lat[::-1]])
        return [frame_coord(loop_lon, loop_lat, self.frame)]

    def describe(self) -> str:
        """E.g. "box RA 350 to 10, Dec -5 to 5 deg"."""
        lon, lat = FRAMES[self.frame]
        end = (self.lon_min + self.width) % 360 if not self.full_ring else self.lon_min + 360
        return (f"box {lon} {self.lon_min:g} to {end:g}, {lat} {self.lat_min:g} to "
                f"{self.lat_max:g} deg")

    def to_record(self) -> dict:
        return {"shape": self.shape, **asdict(self), "center_ra": self.ra,
                "center_dec": self.dec, "radius": self.radius, "area_deg2": self.area}


SkyRegion = SkyCone | SkyBox
REGION_FORMS = ("'cone RA DEC RADIUS', 'cone galactic L B RADIUS', 'box RA1 RA2 DEC1 DEC2' or "
                "'box galactic L1 L2 B1 B2' (degrees)")


def cap_area(radius: float) -> float:
    """Square degrees of a cone of ``radius`` degrees."""
    return 2 * math.pi * (1 - math.cos(math.radians(radius))) * (180 / math.pi) ** 2


def parse_region(text: str) -> SkyRegion:
    """A region from its text: ``"cone RA DEC RADIUS"`` (or ``"RA DEC RADIUS"``),
    ``"cone galactic L B RADIUS"``, ``"box RA1 RA2 DEC1 DEC2"`` or ``"box galactic L1 L2
    B1 B2"``, all in degrees. A cone given in galactic coordinates is stored in ICRS; a
    box stays in its frame (its edges are lines of that frame). A box's longitudes run
    eastward from the first to the second (``box 350 10 ...`` crosses 0; ``box 0 360 ...``
    is a ring)."""
    words = text.replace(",", " ").split()
    shape = "cone"
    if words and words[0].lower() in ("cone", "box"):
        shape, words = words[0].lower(), words[1:]
    frame = "icrs"
    if words and words[0].lower() in FRAMES:
        frame, words = words[0].lower(), words[1:]
    if len(words) != (3 if shape == "cone" else 4):
        raise ValueError(f"REGION must be {REGION_FORMS}, got {text!r}")
    lon_name, lat_name = FRAMES[frame]
    if shape == "box":
        lon1, lon2 = (_angle(w, lon_name) for w in words[:2])
        lat1, lat2 = (_angle(w, lat_name) for w in words[2:])
        width = lon2 - lon1 if lon2 > lon1 else lon2 - lon1 + 360
        if not 0 < width <= 360:
            raise ValueError(f"region: the box's {lon_name} range {lon1:g} to {lon2:g} must "
                             "be above 0 and at most 360 deg wide")
        return SkyBox(lon1 % 360, width, min(lat1, lat2), max(lat1, lat2), frame)
    lon, lat, radius = (_angle(w, what) for w, what in zip(words, (lon_name, lat_name,
                                                                   "the radius"),
                                                           strict=True))
    if frame == "galactic":
        if not -90 <= lat <= 90:
            raise ValueError(f"region: l and b in degrees, b within [-90, 90], got "
                             f"{lon:g} {lat:g}")
        at = frame_coord(lon, lat, frame)
        lon, lat = float(at.ra.deg), float(at.dec.deg)
    return SkyCone(lon, lat, radius, frame)


def plan_clusters(region: SkyRegion, richness, parallaxes, field: Table, seed: int,
                  sizes_pc=(PLUMMER_PC,)) -> Table:
    """The clusters to inject: one per entry of ``richness`` (members over the simulator's
    G = 12-20), parallax cycling through ``parallaxes`` (mas) and Plummer radius through
    ``sizes_pc`` (pc; each parallax meets each size when their counts are coprime, e.g.
    two parallaxes and three sizes), seeded positions inside the
    region at least ``SEPARATION_ARCMIN`` apart and ``EDGE_ARCMIN`` from its edges (drawn
    uniformly in the cone that holds it, those outside turned away), and proper motions of
    field stars within 0.1 mas of that parallax plus 0.5 mas/yr sd per axis."""
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
            inside = float(region.edge_distance_arcmin(spot)) >= EDGE_ARCMIN - 1e-6
            if inside and all(spot.separation(other).arcmin > SEPARATION_ARCMIN
                              for other in placed):
                break
        else:
            raise ValueError(f"region: no room for {len(richness)} clusters "
                             f"{SEPARATION_ARCMIN:g}' apart and {EDGE_ARCMIN:g}' from the "
                             f"edges in the {region.describe()}")
        placed.append(spot)
        parallax = float(parallaxes[i % len(parallaxes)])
        size_pc = float(sizes_pc[i % len(sizes_pc)])
        near = np.abs(plx_field - parallax) < 0.1
        core = np.median(pm_field[near], axis=0) if near.sum() >= 20 else np.median(pm_field,
                                                                                    axis=0)
        pm = core + rng.normal(0, 0.5, 2)
        distance_pc = 1000 / parallax
        rows.append((f"SIM-{i + 1:03d}", float(spot.ra.deg), float(spot.dec.deg), float(pm[0]),
                     float(pm[1]), parallax, int(n),
                     math.degrees(size_pc / distance_pc) * 60,
                     min(max(DISPERSION_KMS / (KAPPA * distance_pc / 1000), 0.03), 0.45),
                     size_pc))
    return Table(rows=rows, names=TRUTH_COLUMNS) if rows else Table(
        names=TRUTH_COLUMNS,
        dtype=[str, float, float, float, float, float, int, float, float, float])


def cluster_members(row, seed: int) -> Table:
    """The members of one planned cluster (a row of :func:`plan_clusters`), simulated with
    no field: Plummer profile out to ten Plummer radii, internal motion, the cluster
    luminosity function over G = 12-20 (Gaia archive columns and the true astrometry)."""
    return simulate_cluster_field(
        "ngc6819", seed=seed, n_cluster=int(row["n_members"]), n_field=0,
        center_ra=float(row["ra"]), center_dec=float(row["dec"]),
        radius_arcmin=10 * float(row["plummer_arcmin"]),
        plummer_radius_arcmin=float(row["plummer_arcmin"]),
        cluster_parallax=float(row["parallax"]), cluster_pmra=float(row["pmra"]),
        cluster_pmdec=float(row["pmdec"]), cluster_pm_dispersion=float(row["pm_dispersion"]))


def simulate_sky(region: SkyRegion, richness=(), parallaxes=(1.0, 0.4),
                 field_density: float = 1.0, seed: int = 42,
                 sizes_pc=(PLUMMER_PC,)) -> tuple[Table, Table]:
    """(stars, truth): the stars of ``region`` (Gaia archive columns, ``cluster`` naming
    each member's cluster, "" for field stars, and ``is_member``), and the injected
    clusters (``TRUTH_COLUMNS``). ``field_density``: field stars per arcmin² (G = 10-20),
    drawn over the cone that holds the region and cut to it.
    """
    rng = np.random.default_rng(seed)
    n_field = int(rng.poisson(field_density * cap_area(region.radius) * 3600))
    field = simulate_cluster_field("ngc6819", seed=int(rng.integers(2**31)), n_cluster=0,
                                   n_field=max(n_field, 1), center_ra=region.ra,
                                   center_dec=region.dec, radius_arcmin=region.radius * 60)
    field["cluster"] = np.full(len(field), "", dtype="U12")
    truth = plan_clusters(region, list(richness), list(parallaxes), field,
                          int(rng.integers(2**31)), list(sizes_pc))
    parts = [field]
    for row in truth:
        stars = cluster_members(row, int(rng.integers(2**31)))
        stars["cluster"] = np.full(len(stars), row["name"], dtype="U12")
        parts.append(stars)
    for part in parts:
        part.meta.clear()
    stars = vstack(parts, metadata_conflicts="silent")
    stars = stars[region.contains(SkyCoord(stars["ra"], stars["dec"]))]
    stars = stars[rng.permutation(len(stars))]
    names = np.asarray(stars["cluster"])
    truth["n_injected"] = [int(np.sum(names == name)) for name in truth["name"]]
    stars["source_id"] = SOURCE_ID_BASE + np.arange(len(stars), dtype=np.int64)
    stars["is_member"] = stars["cluster"] != ""
    stars.meta.update({"SIMULATD": True, "SEED": seed,
                       "COMMENT": ["starmix simulated sky with injected clusters; see "
                                   "data/sky.py"]})
    stars.meta.update(footprint_meta(region.center, region.radius * 60))
    return stars, truth


# the columns an injected member takes from its own simulation or recomputes; every other
# column comes from its donor (a field star of nearly its G: errors, correlations,
# photometry, RUWE), except derived ones that would be wrong for it (masked)
DERIVED_COLUMNS = ("l", "b", "pm", "parallax_over_error", "r_est", "r_lo", "r_hi", "r_len",
                   "result_flag", "ocelot_label", "cluster", "is_member")
INJECTED_ID_BASE = 8_000_000_000_000_000_000  # above every Gaia source_id


def inject_clusters(field: Table, region: SkyRegion, richness=(), parallaxes=(1.0, 0.4),
                    seed: int = 42, sizes_pc=(PLUMMER_PC,)) -> tuple[Table, Table]:
    """(stars, truth): real field stars of ``region`` with clusters injected into them.

    The clusters are planned as on a simulated sky (:func:`plan_clusters`: positions,
    proper motions inside this field's own core near their parallax); each member's
    position, G and true astrometry (Plummer profile, internal motion) come from the
    simulator, and its errors, correlations, colour and RUWE from a *donor*, one of the
    five field stars nearest its G, with the donor's errors added to the true parallax and
    proper motion. Members outside the region or the field's G range are not injected
    (``n_injected`` beside ``n_members`` in ``truth``); columns derived from a real star's
    astrometry (``DERIVED_COLUMNS``, e.g. l, b, distance estimates, labels) are
    recomputed (l, b) or masked for injected stars. Members get source_ids from
    ``INJECTED_ID_BASE``; ``cluster`` names each member's cluster ("" for field stars).
    """
    rng = np.random.default_rng(seed)
    stars = field.copy(copy_data=True)
    for name in ("cluster", "is_member"):
        if name in stars.colnames:
            stars.remove_column(name)
    stars["cluster"] = np.full(len(stars), "", dtype="U12")
    truth = plan_clusters(region, list(richness), list(parallaxes), field,
                          int(rng.integers(2**31)), list(sizes_pc))
    truth["n_injected"] = np.zeros(len(truth), int)
    if not len(truth):
        stars["is_member"] = np.zeros(len(stars), bool)
        return stars, truth
    g_field = np.asarray(field["phot_g_mean_mag"], float)
    usable = np.flatnonzero(np.isfinite(g_field))
    by_g = usable[np.argsort(g_field[usable])]
    sorted_g = g_field[by_g]
    parts, next_id = [stars], INJECTED_ID_BASE
    wrap = 180 if float(np.nanmin(np.asarray(field["ra"], float))) < 0 else 360
    for i, row in enumerate(truth):
        members = cluster_members(row, int(rng.integers(2**31)))
        g = np.asarray(members["phot_g_mean_mag"], float)
        at = SkyCoord(members["ra"], members["dec"])
        keep = region.contains(at) & (g >= sorted_g[0]) & (g <= sorted_g[-1])
        members, g, at = members[keep], g[keep], at[keep]
        n = len(members)
        nearest = np.clip(np.searchsorted(sorted_g, g) + rng.integers(-2, 3, n), 0,
                          len(by_g) - 1)
        injected = stars[by_g[nearest]]
        injected["source_id"] = next_id + np.arange(n, dtype=np.int64)
        next_id += n
        injected["ra"] = at.ra.wrap_at(wrap * u.deg).deg
        injected["dec"] = at.dec.deg
        injected["phot_g_mean_mag"] = g
        for name in ("parallax", "pmra", "pmdec"):
            error = np.asarray(injected[f"{name}_error"], float)
            injected[name] = (np.asarray(members[f"true_{name}"], float)
                              + error * rng.standard_normal(n))
        if "l" in injected.colnames and "b" in injected.colnames:
            injected["l"], injected["b"] = at.galactic.l.deg, at.galactic.b.deg
        injected["cluster"] = row["name"]
        for name in DERIVED_COLUMNS:
            if name in injected.colnames and name not in ("l", "b", "cluster"):
                injected[name] = np.ma.masked_all(n, dtype=injected[name].dtype)
        truth["n_injected"][i] = n
        parts.append(injected)
    for part in parts:
        part.meta.clear()
    out = vstack(parts, metadata_conflicts="silent")
    out.meta = dict(field.meta)
    out["is_member"] = out["cluster"] != ""
    if np.unique(np.asarray(out["source_id"])).size != len(out):
        raise ValueError("injection: the field's source_ids reach the injected range "
                         f"({INJECTED_ID_BASE}); the field is not a Gaia table")
    out.meta.update({"INJECTED": True, "INJSEED": seed})
    return out, truth
