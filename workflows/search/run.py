"""``starmix search``: find clusters nobody named, and verify each with the joint model.

:func:`run_search` makes a run in four steps, each written to ``OUT`` as it ends:

1. **stars** (``stars.parquet``): the region's stars, from ``--gaia simulate`` (a
   simulated sky with injected clusters of known truth, ``truth.ecsv``;
   :mod:`starmix.data.sky`), a Gaia table (cut to the region, on the sphere) or a HATS
   catalogue (an LSDB cone search of the cone holding the region, cut to it);
2. **candidates** (``candidates.ecsv``): HDBSCAN overdensities in five dimensions, one
   task per HEALPix patch with margins (:mod:`starmix.workflows.search.candidates`), each
   given a cone (``radius_arcmin``: three times its half-number radius or 10 pc at its
   parallax, whichever is larger, kept within 10-150' and inside the region);
3. **verification** (``verify/``): every candidate's cone through the cluster workflow
   with the joint model and its detection step, as a survey of the candidates
   (:func:`starmix.workflows.survey.run.run_survey`: one Dask task each, resumable,
   fault-isolated, interruptible);
4. **clusters** (``clusters.ecsv``, ``clusters.parquet``, ``members.parquet``,
   ``sky.png``): the candidates found, duplicates (the same members) merged, cross-matched
   with ``--catalogue`` ("known (NAME)" or "new"); on a simulated sky also the injected
   clusters each recovers (``truth.ecsv`` gets ``found_as``).

``search_record.json`` holds the settings, the counts and, on a simulated sky, the
completeness by richness and the false detections. A rerun into the same ``OUT`` with the
same settings reuses the stars and the candidates and resumes the verification. Exit
codes: 0 at least one cluster found, 3 none found (the results are kept), 1 bad input.
Units: degrees, arcmin, mas, mas/yr.
"""

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from starmix.data.sky import SkyRegion, inject_clusters, parse_region, simulate_sky
from starmix.workflows.runs.files import write_json, write_table
from starmix.workflows.runs.options import GateThresholds, SamplingOptions
from starmix.workflows.search.candidates import arcmin_of_pc, find_candidates
from starmix.workflows.survey.run import Execution, SurveyOptions, run_survey

SEARCH_RECORD = "search_record.json"
# everything a search writes into its folder (the record lists them): a rerun refuses a
# folder holding anything else, or any of these as a symbolic link it did not make
SEARCH_FILES = (SEARCH_RECORD, "stars.parquet", "truth.ecsv", "candidates.ecsv",
                "clusters.ecsv", "clusters.parquet", "members.parquet", "sky.png", "verify")
EXIT_NONE_FOUND = 3
MATCH_ARCMIN, MATCH_PM, MATCH_PARALLAX = 10.0, 1.0, 0.3  # catalogue and truth matching
SHARED_MEMBERS = 0.5  # found clusters sharing this share of members are one
DEFAULT_RICHNESS = (25, 50, 100, 200, 400, 1000)
CONE_PC = 10.0  # a verification cone reaches this many parsecs from the candidate's centre
CONE_ARCMIN = (10.0, 150.0)


@dataclass(frozen=True)
class SearchOptions:
    """What ``starmix search`` does. ``region``: "cone RA DEC RADIUS", "cone galactic L B
    RADIUS", "box RA1 RA2 DEC1 DEC2" or "box galactic L1 L2 B1 B2" (degrees); ``gaia``:
    ``simulate``, a Gaia table file or a HATS catalogue folder; ``catalogue``: a cluster
    catalogue to name the known ones (any table with name, ra, dec and, optionally, pm and
    parallax: CG20's VizieR TSV works); ``order`` and ``margin_arcmin``: the HEALPix
    patches; ``min_cluster_size`` and ``selection``: HDBSCAN's; the simulated sky's
    ``sim_seed``, ``sim_field_density`` (field stars per arcmin²) and ``sim_richness``
    (members of each injected cluster over G = 12-20); ``inject_richness``: clusters
    injected into a real table's stars instead (the same simulator, members within the
    field's G range, seeded by ``sim_seed``; :func:`starmix.data.sky.inject_clusters`);
    either way the injected clusters' parallaxes (mas) and Plummer radii (pc) cycle
    through ``sim_parallaxes`` and ``sim_sizes_pc``."""

    region: str = "cone 280.0 -10.0 1.5"
    gaia: str = "simulate"
    catalogue: str | None = None
    order: int = 6
    margin_arcmin: float = 30.0
    min_cluster_size: int = 10
    selection: str = "leaf"
    sim_seed: int = 42
    sim_field_density: float = 0.5
    sim_richness: tuple[int, ...] = DEFAULT_RICHNESS
    inject_richness: tuple[int, ...] = ()
    sim_parallaxes: tuple[float, ...] = (1.0, 0.4)
    sim_sizes_pc: tuple[float, ...] = (1.5,)

    def __post_init__(self):
        parse_region(self.region)
        if not 3 <= self.order <= 10:
            raise ValueError(f"--order must be 3 to 10 (HEALPix pixels of 7 to 0.06 deg), "
                             f"got {self.order}")
        if not 5 <= self.margin_arcmin <= 120:
            raise ValueError(f"--margin must be 5 to 120 arcmin, got {self.margin_arcmin:g}")
        if self.min_cluster_size < 5:
            raise ValueError(f"--min-cluster-size must be at least 5, got "
                             f"{self.min_cluster_size}")
        if self.selection not in ("leaf", "eom"):
            raise ValueError(f"--selection must be leaf or eom, got {self.selection!r}")
        if not 0 < self.sim_field_density <= 20:
            raise ValueError("--sim-field-density must be above 0 and at most 20 stars per "
                             f"arcmin², got {self.sim_field_density:g}")
        if any(n < 1 for n in self.sim_richness):
            raise ValueError(f"--sim-richness: each cluster needs at least 1 member, got "
                             f"{list(self.sim_richness)}")
        if any(n < 1 for n in self.inject_richness):
            raise ValueError(f"--inject-richness: each cluster needs at least 1 member, got "
                             f"{list(self.inject_richness)}")
        if not self.sim_parallaxes or not all(0.05 <= p <= 10 for p in self.sim_parallaxes):
            raise ValueError(f"--sim-parallax: each must be 0.05 to 10 mas, got "
                             f"{list(self.sim_parallaxes)}")
        if not self.sim_sizes_pc or not all(0.2 <= r <= 20 for r in self.sim_sizes_pc):
            raise ValueError(f"--sim-size: each Plummer radius must be 0.2 to 20 pc, got "
                             f"{list(self.sim_sizes_pc)}")
        if self.inject_richness and self.gaia == "simulate":
            raise ValueError("--inject-richness puts clusters into a real table's stars "
                             "(--gaia FILE or a HATS folder); on a simulated sky give "
                             "--sim-richness")
        if self.gaia != "simulate" and not Path(self.gaia).exists():
            raise FileNotFoundError(f"--gaia {self.gaia}: no such file or folder (give "
                                    "'simulate', a Gaia table or a HATS catalogue)")
        if self.catalogue is not None and not Path(self.catalogue).is_file():
            raise FileNotFoundError(f"--catalogue {self.catalogue}: file not found")


@dataclass
class SearchResult:
    out_dir: Path
    clusters: Table
    record: dict
    exit_code: int
    truth: Table | None = field(default=None)


def region_stars(options: SearchOptions, region: SkyRegion) -> tuple[Table, Table | None]:
    """Step 1: (stars inside the region, injected truth or None). A real table's stars
    carry ``field_density`` (stars per arcmin² before any injection) in their meta."""
    if options.gaia == "simulate":
        return simulate_sky(region, options.sim_richness, options.sim_parallaxes,
                            field_density=options.sim_field_density, seed=options.sim_seed,
                            sizes_pc=options.sim_sizes_pc)
    path = Path(options.gaia)
    if path.is_dir():  # a HATS catalogue
        import lsdb

        # the cone holding the region (the region itself for a cone), cut to it below
        search = lsdb.ConeSearch(region.ra, region.dec, region.radius * 3600)
        frame = lsdb.open_catalog(str(path), search_filter=search).compute(progress_bar=False)
        frame = frame.drop(columns=[c for c in frame.columns if c.startswith("_healpix")])
        table = Table.from_pandas(frame.reset_index(drop=True))
    else:
        from starmix.data.gaia import load_gaia

        table = load_gaia(path).data
    for column in ("ra", "dec", "pmra", "pmdec", "parallax"):
        if column not in table.colnames:
            raise ValueError(f"--gaia {options.gaia}: column {column!r} is missing (a search "
                             "needs positions, proper motions and parallaxes)")
    values = np.column_stack([np.asarray(table[c], float) for c in
                              ("ra", "dec", "pmra", "pmdec", "parallax")])
    finite = np.isfinite(values).all(axis=1)
    positions = SkyCoord(values[finite, 0] * u.deg, values[finite, 1] * u.deg)
    inside = np.zeros(len(table), bool)
    inside[np.flatnonzero(finite)] = region.contains(positions)
    outside = int((finite & ~inside).sum())
    table = table[inside]
    # counted and recorded, never dropped silently
    counts = {"not_finite": int((~finite).sum()), "outside_region": outside,
              "field_density": len(table) / (region.area * 3600)}
    truth = None
    if options.inject_richness:
        table, truth = inject_clusters(table, region, options.inject_richness,
                                       options.sim_parallaxes, seed=options.sim_seed,
                                       sizes_pc=options.sim_sizes_pc)
    table.meta.update(counts)
    return table, truth


def candidate_cones(candidates: Table, region: SkyRegion) -> Table:
    """Each candidate's cone for verification: the larger of 3 x r50 and ``CONE_PC`` parsecs
    at its parallax (a cone smaller than the cluster shows no concentration on the sky, and
    the joint model's detection then rightly says "none"), kept within ``CONE_ARCMIN`` and
    inside the region (at least 5')."""
    cones = candidates.copy()
    at = SkyCoord(np.asarray(cones["ra"], float) * u.deg, np.asarray(cones["dec"], float) * u.deg)
    to_edge = region.edge_distance_arcmin(at)
    physical = np.array([arcmin_of_pc(CONE_PC, float(p)) for p in cones["parallax"]])
    radius = np.clip(np.maximum(3 * np.asarray(cones["r50_arcmin"], float), physical),
                     *CONE_ARCMIN)
    cones["radius_arcmin"] = np.maximum(np.minimum(radius, to_edge), 5.0)
    cones.rename_column("candidate", "name")
    return cones


def found_clusters(verified: Table) -> list[dict]:
    """The verified candidates whose detection step found a cluster, with Δelpd / se,
    whether the run passed its convergence gate (a failed gate is kept and flagged: the
    verdict stands, the numbers are less sure) and their members from their run folders."""
    from starmix.workflows.runs.record import RECORD_NAME, RunRecord

    found = []
    for row in verified:
        folder = Path(str(row["folder"])) if row["folder"] else None
        if folder is None or not (folder / RECORD_NAME).is_file():
            continue  # an error row
        record = RunRecord.read(folder / RECORD_NAME)
        detection = record.get("detection") or {}
        if detection.get("verdict") != "cluster found":
            continue
        comparisons = detection.get("comparisons", {})
        binding = min(comparisons.values(), key=lambda c: c["delta_elpd"] / max(c["se"], 1e-9),
                      default={"delta_elpd": math.nan, "se": math.nan})
        membership = Table.read(folder / "membership.ecsv", format="ascii.ecsv")
        centre, plummer = fitted_centre(folder, float(row["ra"]), float(row["dec"]))
        found.append({"row": row, "folder": folder, "delta_elpd": float(binding["delta_elpd"]),
                      "centre": centre, "plummer_arcmin": plummer,
                      "delta_elpd_se": float(binding["se"]), "membership": membership,
                      "systematic": record.get("systematic_floor") or {},
                      "gate": "passed" if record.status != "failed" else "failed"})
    return found


def fitted_centre(folder: Path, ra: float, dec: float) -> tuple[tuple[float, float], float]:
    """The joint model's posterior-mean centre (its ``cluster_offset`` on the tangent plane
    of the cone's centre ``ra``, ``dec``, back on the sphere) and Plummer radius (arcmin)
    from the run's ``summary.ecsv``; the cone's centre and NaN where they are absent."""
    summary = Table.read(folder / "summary.ecsv", format="ascii.ecsv")
    means = dict(zip(summary["parameter"], np.asarray(summary["mean"], float), strict=True))
    xi, eta = means.get("cluster_offset[xi]"), means.get("cluster_offset[eta]")
    if xi is None or eta is None:
        return (ra, dec), math.nan
    frame = SkyCoord(ra * u.deg, dec * u.deg).skyoffset_frame()
    at = SkyCoord(lon=xi * u.arcmin, lat=eta * u.arcmin, frame=frame).icrs
    return (float(at.ra.deg), float(at.dec.deg)), float(means.get("plummer_radius", math.nan))


def merge_found(found: list[dict]) -> list[dict]:
    """Found clusters whose members (P > 0.5) overlap by ``SHARED_MEMBERS`` of the smaller
    set are one: the one with the larger Δelpd / se is kept."""
    kept = []
    for cluster in sorted(found, key=lambda c: -c["delta_elpd"] / max(c["delta_elpd_se"], 1e-9)):
        ids = set(np.asarray(cluster["membership"]["source_id"])[
            np.asarray(cluster["membership"]["p_cluster"]) > 0.5].tolist())
        duplicate = False
        for other in kept:
            shared = len(ids & other["ids"]) / max(min(len(ids), len(other["ids"])), 1)
            if shared >= SHARED_MEMBERS:
                other.setdefault("duplicates", []).append(str(cluster["row"]["name"]))
                duplicate = True
                break
        if not duplicate:
            kept.append({**cluster, "ids": ids})
    return kept


MATCHED = ("ra", "dec", "pmra", "pmdec", "parallax")


def match_values(row) -> dict:
    """The values :func:`nearest_match` compares, as floats, from a table row or mapping."""
    return {name: float(row[name]) for name in MATCHED}


def nearest_match(row, targets, key=lambda t: t) -> int | None:
    """Index of the first target within ``MATCH_ARCMIN`` (or the cluster's cone radius /
    2, whichever is larger) whose proper motion and parallax, where given, lie within
    ``MATCH_PM`` and ``MATCH_PARALLAX``; None if none does."""
    here = SkyCoord(float(row["ra"]) * u.deg, float(row["dec"]) * u.deg)
    reach = max(MATCH_ARCMIN, float(row.get("radius_arcmin", 0) or 0) / 2)
    best, best_sep = None, math.inf
    for i, target in enumerate(targets):
        t = key(target)
        if t["ra"] is None or t["dec"] is None:
            continue
        sep = here.separation(SkyCoord(t["ra"] * u.deg, t["dec"] * u.deg)).arcmin
        if sep > reach or sep >= best_sep:
            continue
        if t.get("pmra") is not None and t.get("pmdec") is not None and math.hypot(
                t["pmra"] - float(row["pmra"]), t["pmdec"] - float(row["pmdec"])) > MATCH_PM:
            continue
        if t.get("parallax") is not None and abs(t["parallax"] - float(row["parallax"])) \
                > MATCH_PARALLAX:
            continue
        best, best_sep = i, sep
    return best


def cluster_table(kept: list[dict], catalogue: str | None, simulated: bool = False) -> Table:
    """The clusters found, one row each (units in the column metadata). Each mean has its
    statistical error (``*_error``, the posterior sd) and its systematic one
    (``*_systematic``: Gaia (E)DR3's floor on a cluster mean that no number of members
    averages away, 0.026 mas/yr and 0.0103 mas, as the run records it; 0 on a
    ``simulated`` sky, whose simulator has none)."""
    targets = []
    if catalogue is not None:
        from starmix.data.survey_catalogue import read_survey_catalogue

        targets = [t for t in read_survey_catalogue(catalogue) if t.problem is None]
    rows = []
    for number, cluster in enumerate(kept, 1):
        row = cluster["row"]
        values = {"ra": cluster["centre"][0], "dec": cluster["centre"][1],
                  "pmra": float(row["pmra"]), "pmdec": float(row["pmdec"]),
                  "parallax": float(row["parallax"]),
                  "radius_arcmin": float(row["radius_arcmin"]),
                  "plummer_arcmin": cluster["plummer_arcmin"]}
        match = nearest_match(values, targets, key=lambda t: {
            "ra": t.ra, "dec": t.dec, "pmra": t.pmra, "pmdec": t.pmdec,
            "parallax": t.parallax})
        status = f"known ({targets[match].name})" if match is not None else (
            "new" if targets else "not cross-matched")
        rows.append({"cluster": f"SMX-{number:03d}", "candidate": str(row["name"]),
                     **values,
                     "pmra_error": float(row["pmra_error"]),
                     "pmdec_error": float(row["pmdec_error"]),
                     "parallax_error": float(row["parallax_error"]),
                     **{f"{name}_systematic": 0.0 if simulated else float(
                         cluster["systematic"].get(name, math.nan))
                        for name in ("pmra", "pmdec", "parallax")},
                     "members_sum_p": float(row["members_sum_p"]),
                     "delta_elpd": cluster["delta_elpd"],
                     "delta_elpd_se": cluster["delta_elpd_se"],
                     "catalogue": status, "gate": cluster["gate"],
                     "duplicates": ",".join(cluster.get("duplicates", [])),
                     "folder": str(cluster["folder"])})
    names = ["cluster", "candidate", "ra", "dec", "pmra", "pmdec", "parallax",
             "radius_arcmin", "plummer_arcmin", "pmra_error", "pmdec_error", "parallax_error",
             "pmra_systematic", "pmdec_systematic", "parallax_systematic", "members_sum_p",
             "delta_elpd", "delta_elpd_se", "catalogue", "gate", "duplicates", "folder"]
    table = Table(rows=[[r[n] for n in names] for r in rows], names=names) if rows else Table(
        names=names, dtype=[str, str, *[float] * 16, str, str, str, str])
    for name, unit in (("ra", u.deg), ("dec", u.deg), ("pmra", u.mas / u.yr),
                       ("pmdec", u.mas / u.yr), ("parallax", u.mas), ("radius_arcmin", u.arcmin),
                       ("plummer_arcmin", u.arcmin),
                       ("pmra_error", u.mas / u.yr), ("pmdec_error", u.mas / u.yr),
                       ("parallax_error", u.mas), ("pmra_systematic", u.mas / u.yr),
                       ("pmdec_systematic", u.mas / u.yr), ("parallax_systematic", u.mas)):
        table[name].unit = unit
    return table


def member_table(kept: list[dict], clusters: Table) -> Table:
    """Every found cluster's stars with P > 0.5: source_id, the cluster, P and its spread."""
    parts = []
    for cluster, name in zip(kept, clusters["cluster"], strict=True):
        membership = cluster["membership"]
        keep = np.asarray(membership["p_cluster"]) > 0.5
        part = Table({"source_id": np.asarray(membership["source_id"])[keep],
                      "cluster": np.full(int(keep.sum()), str(name)),
                      "p_cluster": np.asarray(membership["p_cluster"])[keep]})
        for extra in ("p_cluster_sd", "p_cluster_lo", "p_cluster_hi"):
            if extra in membership.colnames:
                part[extra] = np.asarray(membership[extra])[keep]
        parts.append(part)
    if not parts:
        return Table(names=["source_id", "cluster", "p_cluster"], dtype=[np.int64, str, float])
    from astropy.table import vstack

    return vstack(parts)


def recoveries(truth: Table, found, members_of=None, injected_of=None,
               known_of=lambda i: False) -> dict:
    """Which injected cluster each found one recovers; the single rule for starmix's
    clusters and for the peer's in ``make bench-search``.

    ``found``: rows with ra, dec, pmra, pmdec, parallax (and optionally radius_arcmin);
    ``members_of``: per found row, its members' source_ids (or None: position only);
    ``injected_of``: source_id -> injected cluster name for every injected star in the
    data; ``known_of(i)``: whether found row i is a real cluster a catalogue names.

    A found cluster recovers an injected one when it is its positional match
    (:func:`nearest_match` from the injected cluster) or, with members, when injected
    stars make at least half of its members and it holds at least half of that injected
    cluster's stars in the data (two injected clusters with nearly one motion a few
    parsecs apart may be fitted as one: both are recovered, and the found cluster is
    listed as ``blended``). Found clusters that recover none and are not known are false.
    Returns {"found_as": per injected, the index of the found row or None, "false": found
    indices, "known": found indices, "blended": found indices}."""
    rows = [match_values(r) for r in found]
    found_as = [nearest_match(match_values(injected), rows) for injected in truth]
    recovered = {i: set() for i in range(len(rows))}
    for k, index in enumerate(found_as):
        if index is not None:
            recovered[index].add(k)
    if members_of is not None and injected_of:
        names = [str(n) for n in truth["name"]]
        in_data = {name: 0 for name in names}
        for name in injected_of.values():
            if name in in_data:
                in_data[name] += 1
        for i, members in enumerate(members_of):
            members = list(members or ())
            hits: dict[str, int] = {}
            for source_id in members:
                name = injected_of.get(int(source_id))
                if name is not None:
                    hits[name] = hits.get(name, 0) + 1
            if not members or sum(hits.values()) < 0.5 * len(members):
                continue
            for name, count in hits.items():
                k = names.index(name) if name in names else None
                if k is not None and count >= 0.5 * in_data[name]:
                    recovered[i].add(k)
                    if found_as[k] is None:
                        found_as[k] = i
    false = [i for i in range(len(rows)) if not recovered[i] and not known_of(i)]
    known = [i for i in range(len(rows)) if not recovered[i] and known_of(i)]
    return {"found_as": found_as, "false": false, "known": known,
            "blended": [i for i in range(len(rows)) if len(recovered[i]) > 1]}


def injected_stars(stars: Table) -> dict[int, str]:
    """source_id -> injected cluster name for the injected stars of a search's stars."""
    if "cluster" not in stars.colnames:
        return {}
    names = np.asarray(stars["cluster"]).astype(str)
    pick = names != ""
    return dict(zip(np.asarray(stars["source_id"])[pick].tolist(), names[pick].tolist(),
                    strict=True))


def score_truth(truth: Table, clusters: Table, members: Table | None = None,
                stars: Table | None = None) -> dict:
    """With injected clusters: which injected cluster each found one is (``found_as`` in
    ``truth``, by :func:`recoveries`, with the found clusters' members where given),
    completeness by richness, the false detections, the found clusters the catalogue
    names (``known_found``: real clusters of a real field, not false) and those that
    recover two or more injected clusters (``blended``)."""
    members_of = None
    if members is not None and len(members):
        owner = np.asarray(members["cluster"]).astype(str)
        ids = np.asarray(members["source_id"])
        members_of = [ids[owner == str(name)].tolist() for name in clusters["cluster"]]
    result = recoveries(truth, clusters, members_of,
                        injected_stars(stars) if stars is not None else None,
                        lambda i: str(clusters["catalogue"][i]).startswith("known"))
    truth["found_as"] = ["" if i is None else str(clusters["cluster"][i])
                         for i in result["found_as"]]
    by_richness = {}
    for n in sorted(set(int(v) for v in truth["n_members"])):
        group = truth[np.asarray(truth["n_members"]) == n]
        by_richness[str(n)] = f"{int((np.asarray(group['found_as']) != '').sum())}/{len(group)}"
    name = lambda i: str(clusters["cluster"][i])  # noqa: E731
    return {"completeness_by_richness": by_richness, "injected": len(truth),
            "recovered": int((np.asarray(truth["found_as"]) != "").sum()),
            "false_detections": [name(i) for i in result["false"]],
            "known_found": [f"{name(i)} {clusters['catalogue'][i]}" for i in result["known"]],
            "blended": [name(i) for i in result["blended"]]}


def sky_map(stars: Table, candidates: Table, clusters: Table, region: SkyRegion, path: Path,
            truth: Table | None = None) -> None:
    """The region on its tangent plane (its edges drawn): stars, candidates (grey circles),
    clusters found (red, labelled) and, on a simulated sky, the injected clusters (blue
    crosses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from starmix.models.cluster_joint import tangent_plane
    from starmix.workflows.runs.files import atomic_path

    def plane(table):
        if len(table) == 0:
            return np.empty((0, 2))
        return tangent_plane(np.asarray(table["ra"], float), np.asarray(table["dec"], float),
                             region.center) / 60  # degrees

    fig, ax = plt.subplots(figsize=(7, 7))
    for i, line in enumerate(region.outline()):
        edge = plane(Table({"ra": line.ra.deg, "dec": line.dec.deg}))
        ax.plot(edge[:, 0], edge[:, 1], c="0.4", lw=0.8, label=None if i else "region")
    xy = plane(stars)
    ax.scatter(xy[:, 0], xy[:, 1], s=0.2, c="0.7", rasterized=True, label="stars")
    c = plane(candidates)
    ax.scatter(c[:, 0], c[:, 1], s=60, facecolors="none", edgecolors="0.3",
               label=f"candidates ({len(candidates)})")
    if truth is not None and len(truth):
        t = plane(truth)
        ax.scatter(t[:, 0], t[:, 1], marker="x", s=80, c="tab:blue",
                   label=f"injected ({len(truth)})")
    f = plane(clusters)
    ax.scatter(f[:, 0], f[:, 1], s=140, facecolors="none", edgecolors="tab:red", lw=2,
               label=f"found ({len(clusters)})")
    for (x, y), name, status in zip(f, clusters["cluster"] if len(clusters) else [],
                                    clusters["catalogue"] if len(clusters) else [],
                                    strict=True):
        ax.annotate(f"{name} {status}", (x, y), xytext=(4, 4), textcoords="offset points",
                    fontsize=7, color="tab:red")
    ax.set_xlabel("ξ (deg, tangent plane)")
    ax.set_ylabel("η (deg)")
    ax.set_title(f"starmix search: {region.describe()}")
    ax.set_aspect("equal")
    ax.invert_xaxis()
    ax.legend(loc="lower left", fontsize=8)
    with atomic_path(path) as scratch:
        fig.savefig(scratch, format="png", dpi=120)
    plt.close(fig)


def check_search_folder(out: Path) -> None:
    """A folder with files must be an earlier search's: its record present, nothing in it
    but what a search writes, and none of that a symbolic link (an error names the rest)."""
    if not (out / SEARCH_RECORD).is_file() or (out / SEARCH_RECORD).is_symlink():
        raise ValueError(f"--out {out}: the folder holds files but no {SEARCH_RECORD}; give "
                         "an empty or new folder (one search per folder)")
    foreign = sorted(entry.name for entry in out.iterdir()
                     if entry.name not in SEARCH_FILES or entry.is_symlink())
    if foreign:
        raise ValueError(f"--out {out}: {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'}"
                         f" that no search wrote ({', '.join(foreign)}): give a new folder")


def changed_settings(earlier: dict, settings: dict) -> list[str]:
    """The settings that differ from an earlier search's record; an option newer than that
    search, at its default, changes nothing."""
    now = json.loads(json.dumps(settings))
    defaults = json.loads(json.dumps(asdict(SearchOptions())))
    return sorted(k for k in now if earlier.get(k, defaults.get(k)) != now[k])


def run_search(out: str | Path, options: SearchOptions = SearchOptions(),
               sampling: SamplingOptions = SamplingOptions(),
               gate: GateThresholds = GateThresholds(), execution: Execution | None = None,
               client=None, say=None) -> SearchResult:
    """Run (or resume) a search into ``out``; see the module docstring."""
    say = say or (lambda message: print(message, file=sys.stderr, flush=True))
    execution = execution or Execution()
    region = parse_region(options.region)
    out = Path(out).resolve()
    settings = {**asdict(options), "sim_richness": list(options.sim_richness),
                "sampling": asdict(sampling), "gate": asdict(gate)}
    record_path = out / SEARCH_RECORD
    before = {}
    if out.exists() and any(out.iterdir()):
        check_search_folder(out)
        before = json.loads(record_path.read_text())
        changed = changed_settings(before.get("settings", {}), settings)
        if changed:
            raise ValueError(f"--out {out} holds a search with other settings "
                             f"({', '.join(changed)}): give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # seconds spent by earlier invocations that finished (an interrupted one is not counted)
    earlier = float(before.get("total_wall_time_s", before.get("wall_time_s", 0.0)))
    record = {"status": "running", "command": sys.argv, "settings": settings,
              "region": region.to_record(),
              "files": list(SEARCH_FILES), "total_wall_time_s": earlier}
    write_json(record_path, record)

    stars_path, truth_path = out / "stars.parquet", out / "truth.ecsv"
    if stars_path.is_file():
        stars = Table.read(stars_path)
        truth = Table.read(truth_path, format="ascii.ecsv") if truth_path.is_file() else None
        say(f"search: {len(stars)} stars from before ({stars_path})")
    else:
        stars, truth = region_stars(options, region)
        write_table(stars_path, stars)
        if truth is not None:
            write_table(truth_path, truth)
        origin = (f"simulated, {len(truth)} clusters injected" if options.gaia == "simulate"
                  else f"{options.gaia}, {len(truth)} clusters injected into its stars"
                  if truth is not None else options.gaia)
        say(f"search: {len(stars)} stars in {region.area:.1f} deg² ({origin}; left out: "
            f"{stars.meta.get('not_finite', 0)} without finite astrometry, "
            f"{stars.meta.get('outside_region', 0)} outside the region)")
    record["stars"] = {"n": len(stars), "file": stars_path.name,
                       "left_out_not_finite": int(stars.meta.get("not_finite", 0)),
                       "left_out_outside_region": int(stars.meta.get("outside_region", 0)),
                       # field stars per arcmin² (the selection function's density)
                       "field_density": options.sim_field_density if options.gaia == "simulate"
                       else float(stars.meta.get("field_density", math.nan))}

    candidates_path = out / "candidates.ecsv"
    began = time.perf_counter()
    if candidates_path.is_file():
        cones = Table.read(candidates_path, format="ascii.ecsv")
        candidate_seconds = before.get("candidates", {}).get("seconds")  # the first timing
    else:
        mapper = map if client is None else (lambda f, jobs: client.gather(client.map(f, jobs)))
        candidates = find_candidates(stars, options.order, options.margin_arcmin,
                                     options.min_cluster_size, options.selection, map_=mapper)
        cones = candidate_cones(candidates, region)
        write_table(candidates_path, cones)
        candidate_seconds = round(time.perf_counter() - began, 2)
        say(f"search: {len(cones)} candidates from {candidates.meta['patches']} HEALPix "
            f"patches (order {options.order}, margin {options.margin_arcmin:g}') in "
            f"{candidate_seconds:.1f} s")
    record["candidates"] = {"n": len(cones), "file": candidates_path.name,
                            "seconds": candidate_seconds}

    if len(cones):
        survey = run_survey(candidates_path, out / "verify",
                            SurveyOptions(gaia=str(stars_path), model="joint", figures=False,
                                          checks="off"),
                            sampling, gate, execution, client=client, say=say)
        kept = merge_found(found_clusters(survey.table))
    else:
        kept = []
    clusters = cluster_table(kept, options.catalogue, simulated=options.gaia == "simulate")
    members = member_table(kept, clusters)
    write_table(out / "clusters.ecsv", clusters)
    write_table(out / "clusters.parquet", clusters)
    write_table(out / "members.parquet", members)
    if truth is not None:
        record["truth"] = score_truth(truth, clusters, members, stars)
        write_table(truth_path, truth)
    sky_map(stars, cones, clusters, region, out / "sky.png", truth)
    exit_code = 0 if len(clusters) else EXIT_NONE_FOUND
    record.update(status="complete" if len(clusters) else "none_found",
                  clusters={"found": len(clusters), "file": "clusters.ecsv",
                            "members_file": "members.parquet"},
                  wall_time_s=round(time.perf_counter() - started, 2), exit_code=exit_code,
                  total_wall_time_s=round(earlier + time.perf_counter() - started, 2))
    write_json(record_path, record)
    say(f"search: {len(clusters)} cluster(s) found among {len(cones)} candidates "
        f"({record['wall_time_s']:.0f} s); results in {out}")
    if truth is not None:
        say(f"search: injected clusters recovered by richness "
            f"{record['truth']['completeness_by_richness']}; false detections "
            f"{record['truth']['false_detections'] or 'none'}")
    return SearchResult(out, clusters, record, exit_code, truth)
