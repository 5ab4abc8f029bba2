"""Step 1 of ``starmix search``: candidate overdensities, patch by patch.

The region is split into HEALPix pixels (nested, ``order``; cdshealpix); each *patch* is
a pixel's stars plus every star within ``margin_arcmin`` of it, so that a cluster whose
centre lies in the pixel is whole in its patch (LSDB's default Gaia margin, 10 arcsec,
is far too small for a cluster). In each patch HDBSCAN runs in five dimensions as Hunt &
Reffert (2023) run it: tangent-plane offsets around the patch centre (arcmin), pmra,
pmdec and parallax, each scaled to unit robust width, ``min_cluster_size``. A label, as
described by its core (the stars HDBSCAN holds most strongly), becomes a candidate when it
is compact on the sky and in proper motion
(:data:`MAX_R50_ARCMIN`, :data:`MAX_R50_PC` at its parallax, :data:`MAX_PM_SD`) and its
patch holds it whole; of a cluster several patches see, the view of the patch whose pixel
holds its centre is kept, else the most central one (:func:`one_view`); candidates that
are pieces of one cluster are merged (:func:`merge`). Each patch is one task
(:func:`find_candidates` takes a ``map`` such as a Dask client's). Units: degrees, arcmin,
mas, mas/yr.
"""

import math

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

MAX_R50_ARCMIN = 20.0  # a candidate's median distance from its centre
# ... and the same in parsecs at its median parallax: open clusters' half-number radii are a
# few parsecs; 10 pc leaves room for loose ones, and turns away the wide, faint lumps of
# distant field stars that HDBSCAN labels in every patch
MAX_R50_PC = 10.0
MAX_PM_SD = 1.0  # mas/yr, its members' robust sd per proper-motion axis
MERGE_PM = 0.5  # mas/yr
MERGE_PARALLAX = 0.2  # mas
MERGE_PC = 5.0  # pieces of one cluster lie within this many parsecs of each other
CANDIDATE_COLUMNS = ("candidate", "ra", "dec", "pmra", "pmdec", "parallax", "n_stars",
                     "r50_arcmin", "pm_sd", "patch", "pieces")


def healpix_pixels(ra, dec, order: int) -> np.ndarray:
    """Nested HEALPix index of each (ra, dec) in degrees at ``order``."""
    import cdshealpix

    return np.asarray(cdshealpix.nested.lonlat_to_healpix(
        (np.asarray(ra, float) % 360) * u.deg, np.asarray(dec, float) * u.deg, order),
        dtype=np.int64)


def pixel_geometry(pixel: int, order: int) -> tuple[SkyCoord, float]:
    """(centre, radius in arcmin to its farthest vertex) of a nested HEALPix pixel."""
    import cdshealpix

    lon, lat = cdshealpix.nested.healpix_to_lonlat(np.array([pixel]), order)
    centre = SkyCoord(lon[0], lat[0])
    vlon, vlat = cdshealpix.nested.vertices(np.array([pixel]), order)
    radius = centre.separation(SkyCoord(vlon[0], vlat[0])).arcmin.max()
    return centre, float(radius)


def patches(stars: Table, order: int, margin_arcmin: float) -> list[dict]:
    """One patch per pixel holding stars: its pixel, its stars' rows (pixel and margin) and
    which of them lie in the pixel itself."""
    pixels = healpix_pixels(stars["ra"], stars["dec"], order)
    positions = SkyCoord(np.asarray(stars["ra"], float) * u.deg,
                         np.asarray(stars["dec"], float) * u.deg)
    found = []
    for pixel in np.unique(pixels):
        centre, radius = pixel_geometry(int(pixel), order)
        rows = np.flatnonzero(positions.separation(centre).arcmin <= radius + margin_arcmin)
        found.append({"pixel": int(pixel), "order": order, "rows": rows,
                      "centre": (float(centre.ra.deg), float(centre.dec.deg))})
    return found


def patch_labels(values: np.ndarray, centre, min_cluster_size: int = 10,
                 selection: str = "leaf") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HDBSCAN in one patch as Hunt & Reffert (2023) run it: (the five coordinates scaled to
    unit robust width, HDBSCAN's labels with -1 for noise, and the strength, 0-1, with which
    it holds each star in its label). ``values``: (N, 5) ra, dec (deg), pmra, pmdec,
    parallax; ``centre`` (ra, dec) of the patch's tangent plane."""
    from sklearn.cluster import HDBSCAN

    from starmix.models.cluster_joint import tangent_plane

    plane = tangent_plane(values[:, 0], values[:, 1], SkyCoord(centre[0] * u.deg,
                                                              centre[1] * u.deg))
    five = np.column_stack([plane, values[:, 2:]])
    middle = np.median(five, axis=0)
    scale = 1.4826 * np.median(np.abs(five - middle), axis=0)
    scale[scale <= 0] = 1.0
    scaled = (five - middle) / scale
    if len(values) < 2 * min_cluster_size:
        return scaled, np.full(len(values), -1), np.zeros(len(values))
    fitted = HDBSCAN(min_cluster_size=min_cluster_size, cluster_selection_method=selection,
                     copy=True).fit(scaled)
    return scaled, fitted.labels_, fitted.probabilities_


def core(labels: np.ndarray, strength: np.ndarray, label: int) -> np.ndarray:
    """The stars HDBSCAN holds in ``label`` at least as strongly as the label's median star:
    its core. A small distant cluster's label gathers field stars around it (a 100-member
    cluster at 2.5 kpc came as 158 stars whose median parallax, 0.26 mas against its 0.40,
    made it look 10.5 pc wide); the core is the cluster."""
    inside = labels == label
    return inside & (strength >= np.median(strength[inside]))


def describe(values: np.ndarray, inside: np.ndarray, pixel: int,
             extent: np.ndarray | None = None) -> dict:
    """A group's centre (star-mean direction of ``inside``), median pm and parallax and pm
    sd (mas/yr, the larger axis's robust sd) and ``core_r50_arcmin`` (their median distance
    from that centre), from the stars ``inside``; its star count and ``r50_arcmin`` from
    the stars of ``extent`` (default ``inside``: a core describes the cluster, the whole
    label gives its size)."""
    extent = inside if extent is None else extent
    within = np.flatnonzero(inside | extent)
    sky = SkyCoord(values[within, 0] * u.deg, values[within, 1] * u.deg)
    mean = sky[inside[within]].cartesian.xyz.value.mean(axis=1)
    at = SkyCoord(x=mean[0], y=mean[1], z=mean[2], representation_type="cartesian")
    at = SkyCoord(at.spherical.lon, at.spherical.lat)
    reach = sky.separation(at).arcmin
    pm_sd = float(np.max(1.4826 * np.median(np.abs(
        values[inside, 2:4] - np.median(values[inside, 2:4], axis=0)), axis=0)))
    return {"ra": float(at.ra.deg), "dec": float(at.dec.deg),
            "pmra": float(np.median(values[inside, 2])),
            "pmdec": float(np.median(values[inside, 3])),
            "parallax": float(np.median(values[inside, 4])),
            "n_stars": int(extent.sum()),
            "r50_arcmin": float(np.median(reach[extent[within]])),
            "core_r50_arcmin": float(np.median(reach[inside[within]])),
            "pm_sd": pm_sd, "patch": pixel}


def compact(candidate: dict) -> bool:
    """Whether a group is compact enough to be a cluster (:data:`MAX_R50_ARCMIN`,
    :data:`MAX_R50_PC` at its parallax, :data:`MAX_PM_SD`), judged on the stars that
    describe it (its core)."""
    parallax, r50 = candidate["parallax"], candidate["core_r50_arcmin"]
    r50_pc = math.radians(r50 / 60) * 1000 / parallax if parallax > 0 else math.inf
    return r50 <= MAX_R50_ARCMIN and r50_pc <= MAX_R50_PC and candidate["pm_sd"] <= MAX_PM_SD


def owned(candidate: dict, order: int) -> bool:
    """Whether the candidate's centre lies in its patch's own pixel."""
    return int(healpix_pixels([candidate["ra"]], [candidate["dec"]], order)[0]) == \
        candidate["patch"]


def viewed(candidate: dict, order: int, margin_arcmin: float) -> dict | None:
    """The candidate as this patch's view of it, or None when its centre lies too near the
    patch's outer edge for the patch to hold it whole (farther from the pixel's centre
    than the pixel's radius plus half the margin). The view records whether the patch
    owns it (``owned``: its centre in the patch's own pixel) and ``from_centre_arcmin``,
    its distance from the pixel's centre: :func:`one_view` keeps one view per cluster."""
    pixel_centre, radius = pixel_geometry(candidate["patch"], order)
    here = SkyCoord(candidate["ra"] * u.deg, candidate["dec"] * u.deg)
    apart = float(here.separation(pixel_centre).arcmin)
    if apart > radius + margin_arcmin / 2:
        return None
    return candidate | {"owned": owned(candidate, order), "from_centre_arcmin": apart}


def same_cluster(a: dict, b: dict) -> bool:
    """Two descriptions of one cluster: on the sky closer than the larger of their r50 and
    5', within ``MERGE_PM`` in proper motion and ``MERGE_PARALLAX`` in parallax."""
    apart = SkyCoord(a["ra"] * u.deg, a["dec"] * u.deg).separation(
        SkyCoord(b["ra"] * u.deg, b["dec"] * u.deg)).arcmin
    return (apart < max(a["r50_arcmin"], b["r50_arcmin"], 5.0)
            and math.hypot(a["pmra"] - b["pmra"], a["pmdec"] - b["pmdec"]) < MERGE_PM
            and abs(a["parallax"] - b["parallax"]) < MERGE_PARALLAX)


def one_view(views: list[dict]) -> list[dict]:
    """The candidates among the patches' views: every owned view (its centre in its own
    patch's pixel, as a patch describes it from its own stars), and of a cluster that two
    or more patches see but none owns, the view nearest its patch's pixel centre. Near a
    pixel's corner the patches' centres for one cluster differ a little, and a cluster
    whose every view's centre falls in another patch's pixel would be owned by none (an
    18-member cluster on the corner of four pixels of the Blanco 1 field was lost so); a
    lump that only one patch labels, centred in another's pixel, stays out, as do views
    that repeat an owned one. Views from one patch are different labels (pieces of one
    cluster are merged later, :func:`merge`)."""
    owned_views = [v for v in views if v["owned"]]
    orphans = [v for v in views if not v["owned"] and not any(
        k["patch"] != v["patch"] and same_cluster(v, k) for k in owned_views)]
    groups: list[list[dict]] = []
    for view in sorted(orphans, key=lambda v: v["from_centre_arcmin"]):
        for group in groups:
            if view["patch"] not in {g["patch"] for g in group} and same_cluster(view,
                                                                                 group[0]):
                group.append(view)
                break
        else:
            groups.append([view])
    return owned_views + [group[0] for group in groups if len(group) >= 2]


def patch_candidates(values: np.ndarray, centre, pixel: int, order: int,
                     min_cluster_size: int = 10, selection: str = "leaf",
                     margin_arcmin: float = 30.0) -> list[dict]:
    """HDBSCAN's labels in one patch (:func:`patch_labels`) described by their cores
    (:func:`core`), kept where the core is compact (:func:`compact`) and the patch holds
    it whole (:func:`viewed`); ``n_stars`` counts the whole label and ``r50_arcmin`` is
    its median distance from the core's centre. ``values``: (N, 5) ra, dec (deg), pmra,
    pmdec, parallax."""
    _, labels, strength = patch_labels(values, centre, min_cluster_size, selection)
    found = []
    for label in sorted(set(labels) - {-1}):
        # the label's extent about the core's centre sizes the cone and the merge: the core
        # is the densest half of the cluster, its r50 too small for a cone that must hold
        # the cluster's outskirts
        candidate = describe(values, core(labels, strength, label), pixel,
                             extent=labels == label)
        view = viewed(candidate, order, margin_arcmin) if compact(candidate) else None
        if view is not None:
            found.append(view)
    return found


def arcmin_of_pc(pc: float, parallax: float) -> float:
    """The angle (arcmin) that ``pc`` parsecs subtend at parallax ``parallax`` (mas); 0 for a
    non-positive parallax."""
    return math.degrees(math.atan(pc * parallax / 1000)) * 60 if parallax > 0 else 0.0


def merge(candidates: list[dict]) -> list[dict]:
    """Candidates that are one cluster, linked piece to piece: within ``MERGE_PM`` of each
    other in proper motion and ``MERGE_PARALLAX`` in parallax, and on the sky closer than
    the larger of their r50, 5' and ``MERGE_PC`` parsecs at their parallax (HDBSCAN's leaf
    selection cuts a nearby cluster, Blanco 1 at 240 pc for one, into pieces tens of arcmin
    apart). The merged
    candidate is centred on its pieces' star-weighted mean direction, holds their stars, and
    its r50 is the largest of theirs or of their distances from the new centre."""
    def pieces_of_one(a: dict, b: dict) -> bool:
        apart = SkyCoord(a["ra"] * u.deg, a["dec"] * u.deg).separation(
            SkyCoord(b["ra"] * u.deg, b["dec"] * u.deg)).arcmin
        reach = max(a["r50_arcmin"], b["r50_arcmin"], 5.0,
                    arcmin_of_pc(MERGE_PC, max(a["parallax"], b["parallax"])))
        return (apart < reach
                and math.hypot(a["pmra"] - b["pmra"], a["pmdec"] - b["pmdec"]) < MERGE_PM
                and abs(a["parallax"] - b["parallax"]) < MERGE_PARALLAX)

    # single linkage: a piece joins every group holding a piece of its cluster (and those
    # groups become one), so the result does not hang on which piece came first
    groups: list[list[dict]] = []
    for candidate in sorted(candidates, key=lambda c: -c["n_stars"]):
        joined = [g for g in groups if any(pieces_of_one(candidate, other) for other in g)]
        for group in joined:
            groups.remove(group)
        groups.append([piece for group in joined for piece in group] + [candidate])
        groups[-1].sort(key=lambda c: -c["n_stars"])
    return [group[0] if len(group) == 1 else _merged(group) for group in groups]


def _merged(group: list[dict]) -> dict:
    weights = np.array([c["n_stars"] for c in group], float)
    sky = SkyCoord([c["ra"] for c in group] * u.deg, [c["dec"] for c in group] * u.deg)
    mean = (sky.cartesian.xyz.value * weights).sum(axis=1)
    at = SkyCoord(x=mean[0], y=mean[1], z=mean[2], representation_type="cartesian")
    at = SkyCoord(at.spherical.lon, at.spherical.lat)
    merged = dict(group[0])
    merged.update(
        ra=float(at.ra.deg), dec=float(at.dec.deg), n_stars=int(weights.sum()),
        r50_arcmin=float(max(max(c["r50_arcmin"] for c in group),
                             sky.separation(at).arcmin.max())),
        **{name: float(np.average([c[name] for c in group], weights=weights))
           for name in ("pmra", "pmdec", "parallax", "pm_sd")},
        pieces=len(group))
    if all("members" in c for c in group):  # the stars of each piece, where kept
        merged["members"] = set().union(*(c["members"] for c in group))
    return merged


def find_candidates(stars: Table, order: int = 6, margin_arcmin: float = 30.0,
                    min_cluster_size: int = 10, selection: str = "leaf",
                    map_=map) -> Table:
    """Candidates of the whole table (``CANDIDATE_COLUMNS``), richest first; ``map_``
    runs the patches (the builtin ``map``, or a Dask client's ``map`` and ``gather``)."""
    values = np.column_stack([np.asarray(stars[name], float) for name in
                              ("ra", "dec", "pmra", "pmdec", "parallax")])
    jobs = patches(stars, order, margin_arcmin)
    results = map_(lambda job: patch_candidates(values[job["rows"]], job["centre"],
                                                job["pixel"], order, min_cluster_size,
                                                selection, margin_arcmin), jobs)
    merged = merge(one_view([c for found in results for c in found]))
    rows = [[f"C{i + 1:03d}", *(({"pieces": 1} | c)[name] for name in CANDIDATE_COLUMNS[1:])]
            for i, c in enumerate(merged)]
    table = Table(rows=rows, names=CANDIDATE_COLUMNS) if rows else Table(
        names=CANDIDATE_COLUMNS,
        dtype=[str, float, float, float, float, float, int, float, float, int, int])
    table.meta["patches"] = len(jobs)
    return table
