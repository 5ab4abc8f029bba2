"""Detection rates on real field stars: clusters injected into the Blanco 1 field, and the
same regions with nothing injected.

``make bench-detection`` (or ``python benchmarks/bench_detection.py [--quick] [--out
results/bench_detection.jsonl]``). Needs ``../shared/data/blanco1_gaiadr2_field.csv.gz``
and ``blanco1_members_cg18.csv``. Resumable: a case already in the ``--out`` file is not
run again (delete the file to start over).

The field is real (Gaia DR2, G <= 18, 2.5 deg around Blanco 1, RA through 0): Blanco 1's
listed members (CG18, and the stars ocelot labels as Blanco 1) are removed, and regions of
radius ``REGION_RADIUS`` arcmin are cut from it on two rings around Blanco 1's centre
(``region_centres``), away from the cluster. Each region gets a planned cluster:

* position: a seeded offset from the region's centre (within a third of its radius);
* distance: parallax 1.0 or 0.4 mas (two distances);
* proper motion: the median of the region's own stars within 0.2 mas of that parallax,
  plus a seeded offset of 1 mas/yr sd per axis, i.e. inside the field's own proper-motion
  core at that distance (the hard case, and the usual one);
* size and motion: Plummer radius 1.5 pc, internal dispersion 0.5 km/s (the survey
  simulator's values, ``starmix.data.survey_sources``);
* stars: ``richness`` members (0 for the empty regions) with G drawn from the region's own
  G distribution and each given the errors of a field star of nearly the same G (the real
  error law of this file, no correlations, as the file has none), observed with those
  errors.

Every method is told the planned cluster's values (as a user verifying a catalogued
cluster is), so the empty regions measure the false-positive rate of verification:

* starmix ``joint`` with its detection (4 chains x ``--draws``, Laplace alternatives):
  the verdict, and Δelpd / se against the field-only model and against the narrow field
  lump (``starmix.workflows.cluster.detection``), so that any threshold can be read off the table;
* HDBSCAN in five dimensions as Hunt & Reffert (2023) run it: tangent-plane positions,
  proper motions and parallax, each scaled to unit robust width, ``min_cluster_size=10``,
  ``eom`` and ``leaf``; P = membership strength of the label nearest the planned values;
* scikit-learn ``GaussianMixture`` in the joint model's five coordinates, K = 1..8 by BIC;
  P = the responsibility of the component nearest the planned values;
* ASteCA's fastMP (``fastmp``) as the UCC runs it, from the planned centre, motion and
  parallax (its own centre search and member count).

A peer *detects* when at least 10 stars have P > 0.5 and their P-weighted mean lies within
``NEAR_PM`` mas/yr and ``NEAR_PARALLAX`` mas of the planned values; starmix when its
verdict says "cluster found". Printed: completeness against richness and the
false-positive rate on the empty regions per method, starmix's against the threshold on
Δelpd / se (BANYAN Σ style), and recall, contamination, Brier score, AUC and time where a
cluster was injected, and each method's reliability gap pooled over a cell's regions.
"""

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

BLANCO1 = (0.853, -29.958)  # deg, CG20
REGION_RADIUS = 28.0  # arcmin
RINGS = ((1.2, 8), (1.95, 13))  # (offset from Blanco 1 in deg, regions on the ring)
RICHNESS = (0, 25, 50, 100, 200)
PARALLAXES = (1.0, 0.4)  # mas
PLUMMER_PC, DISPERSION_KMS = 1.5, 0.5
NEAR_PM, NEAR_PARALLAX = 0.5, 0.2  # a peer's "around the planned values"
THRESHOLDS = (2, 3, 4, 5, 6, 8)  # Δelpd / se


def region_centres() -> list[tuple[float, float]]:
    """(ra, dec) in degrees of every region: ``RINGS`` around Blanco 1, on the sphere."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    centre = SkyCoord(BLANCO1[0] * u.deg, BLANCO1[1] * u.deg)
    out = []
    for offset, count in RINGS:
        for j in range(count):
            point = centre.directional_offset_by(360.0 * j / count * u.deg, offset * u.deg)
            out.append((float(point.ra.deg), float(point.dec.deg)))
    return out


def finite_rows(table):
    """The rows with finite astrometry, errors and G (the count dropped is printed)."""
    finite = np.ones(len(table), bool)
    for name in ("parallax", "pmra", "pmdec", "parallax_error", "pmra_error", "pmdec_error",
                 "phot_g_mean_mag"):
        finite &= np.isfinite(np.asarray(table[name], float))
    if not finite.all():
        print(f"{int((~finite).sum())} of {len(table)} rows without finite astrometry dropped")
    return table[finite]


def load_field():
    """The Blanco 1 field without Blanco 1's listed or labelled members (zero correlations
    added: the file has none)."""
    from astropy.table import Table

    table = Table.read(SHARED / "blanco1_gaiadr2_field.csv.gz", format="ascii.csv")
    members = Table.read(SHARED / "blanco1_members_cg18.csv", format="ascii.csv")
    listed = set(np.asarray(members["Source"], np.int64).tolist())
    keep = np.array([int(s) not in listed for s in table["source_id"]])
    if "ocelot_label" in table.colnames:
        keep &= np.asarray(table["ocelot_label"]) != 0
    table = table[keep]
    for name in ("pmra_pmdec_corr", "parallax_pmra_corr", "parallax_pmdec_corr"):
        table[name] = 0.0
    return finite_rows(table)


EDR3_CONE = (345.673, 59.559)  # deg; the file's 20 arcmin cone
EDR3_REGION_RADIUS = 7.0  # arcmin: four regions that do not overlap, inside the cone


def edr3_centres() -> list[tuple[float, float]]:
    """Four regions 10 arcmin from the EDR3 cone's centre, one per quadrant."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    centre = SkyCoord(EDR3_CONE[0] * u.deg, EDR3_CONE[1] * u.deg)
    points = [centre.directional_offset_by((45 + 90 * j) * u.deg, 10 * u.arcmin)
              for j in range(4)]
    return [(float(p.ra.deg), float(p.dec.deg)) for p in points]


def load_edr3():
    """The dense Galactic-plane EDR3 cone (already cut to parallax 0-0.5 mas and errors
    below 0.5), every astrometric column and correlation, RUWE 1 (the file has none)."""
    from astropy.table import Table

    table = Table.read(SHARED / "edr3_field_ra345.67_dec59.56.csv", format="ascii.csv")
    if "ruwe" not in table.colnames:
        table["ruwe"] = 1.0
    return finite_rows(table)


# field name -> (loader, region centres, region radius in arcmin, planned parallaxes in mas)
FIELDS = {"blanco1": (load_field, region_centres, REGION_RADIUS, PARALLAXES),
          "edr3": (load_edr3, edr3_centres, EDR3_REGION_RADIUS, (0.3,))}


def separation_arcmin(table, centre) -> np.ndarray:
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    stars = SkyCoord(np.asarray(table["ra"], float) * u.deg,
                     np.asarray(table["dec"], float) * u.deg)
    return stars.separation(SkyCoord(centre[0] * u.deg, centre[1] * u.deg)).arcmin


def plan(region_table, centre, parallax: float, seed: int, radius_arcmin: float) -> dict:
    """The planned cluster of one region (see the module docstring)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(seed)
    plx = np.asarray(region_table["parallax"], float)
    near = np.abs(plx - parallax) < 0.2
    pm = np.array([np.median(np.asarray(region_table[c], float)[near])
                   for c in ("pmra", "pmdec")])
    pm = pm + rng.normal(0.0, 1.0, 2)
    angle, radius = rng.uniform(0, 360), radius_arcmin / 3 * math.sqrt(rng.uniform())
    where = SkyCoord(centre[0] * u.deg, centre[1] * u.deg).directional_offset_by(
        angle * u.deg, radius * u.arcmin)
    distance_pc = 1000.0 / parallax
    return {"ra": float(where.ra.deg), "dec": float(where.dec.deg),
            "pmra": float(pm[0]), "pmdec": float(pm[1]), "parallax": parallax,
            "plummer_arcmin": float(np.degrees(PLUMMER_PC / distance_pc) * 60),
            "pm_dispersion": DISPERSION_KMS / 4.74047 * parallax}


def inject(region_table, planned: dict, richness: int, seed: int, centre, radius_arcmin):
    """``region_table`` plus ``richness`` members of the planned cluster (column
    ``is_member``), each with the errors of a field star of nearly its G; members that fall
    outside the region's cone (``centre``, ``radius_arcmin``) are not kept."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table, vstack

    from starmix.models.observed import plummer_radii

    table = region_table.copy()
    table["is_member"] = False
    if richness == 0:
        return table
    rng = np.random.default_rng(seed + 1)
    g_field = np.asarray(table["phot_g_mean_mag"], float)
    order = np.argsort(g_field)
    donors = order[np.clip(np.searchsorted(g_field[order], rng.choice(g_field, richness))
                           + rng.integers(-2, 3, richness), 0, len(order) - 1)]
    radii = plummer_radii(rng, planned["plummer_arcmin"], 2 * radius_arcmin, richness)
    angles = rng.uniform(0, 360, richness)
    positions = SkyCoord(planned["ra"] * u.deg, planned["dec"] * u.deg).directional_offset_by(
        angles * u.deg, radii * u.arcmin)
    inside = (positions.separation(SkyCoord(centre[0] * u.deg, centre[1] * u.deg)).arcmin
              < radius_arcmin)  # the cone cuts the cluster as a real query would
    positions, donors, richness = positions[inside], donors[inside], int(inside.sum())
    members = Table()
    members["source_id"] = 9_000_000_000_000_000 + seed * 1000 + np.arange(richness)
    members["ra"] = positions.ra.wrap_at(180 * u.deg).deg
    members["dec"] = positions.dec.deg
    truth = {"parallax": np.full(richness, planned["parallax"]),
             "pmra": planned["pmra"] + rng.normal(0, planned["pm_dispersion"], richness),
             "pmdec": planned["pmdec"] + rng.normal(0, planned["pm_dispersion"], richness)}
    for name in ("parallax", "pmra", "pmdec"):
        error = np.asarray(table[f"{name}_error"], float)[donors]
        members[f"{name}_error"] = error
        members[name] = truth[name] + error * rng.standard_normal(richness)
    for name in table.colnames:
        if name not in members.colnames:
            column = table[name][donors]
            members[name] = column
    members["is_member"] = True
    members["ruwe"] = 1.0
    return vstack([table, members[table.colnames]], metadata_conflicts="silent")


def tangent(table, planned) -> np.ndarray:
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    from starmix.models.cluster_joint import tangent_plane

    return tangent_plane(np.asarray(table["ra"], float), np.asarray(table["dec"], float),
                         SkyCoord(planned["ra"] * u.deg, planned["dec"] * u.deg))


def five_d(table, planned) -> np.ndarray:
    return np.column_stack([tangent(table, planned)] + [
        np.asarray(table[c], float) for c in ("pmra", "pmdec", "parallax")])


def hdbscan_5d(table, planned, selection: str) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    values = five_d(table, planned)
    centre = np.median(values, axis=0)
    scale = 1.4826 * np.median(np.abs(values - centre), axis=0)
    scaled = (values - centre) / scale
    result = HDBSCAN(min_cluster_size=10, cluster_selection_method=selection,
                     copy=True).fit(scaled)
    labels = result.labels_
    found = [label for label in set(labels) if label >= 0]
    if not found:
        return np.zeros(len(values))
    target = np.array([planned["pmra"], planned["pmdec"], planned["parallax"]])
    medians = {label: np.median(values[labels == label, 2:], axis=0) for label in found}
    best = min(found, key=lambda label: np.linalg.norm(medians[label] - target))
    return np.where(labels == best, result.probabilities_, 0.0)


def gmm_5d(table, planned, seed: int) -> np.ndarray:
    from sklearn.mixture import GaussianMixture

    values = five_d(table, planned)
    best = None
    for k in range(1, 9):
        model = GaussianMixture(k, random_state=seed).fit(values)
        bic = model.bic(values)
        if best is None or bic < best[0]:
            best = (bic, model)
    model = best[1]
    target = np.array([planned["pmra"], planned["pmdec"], planned["parallax"]])
    index = int(np.argmin(np.linalg.norm(model.means_[:, 2:] - target, axis=1)))
    return model.predict_proba(values)[:, index]


def fastmp(table, planned, seed: int) -> np.ndarray:
    """ASteCA's fastMP as the UCC runs it, told the planned centre, motion and parallax
    (``bench_membership.asteca_membership``: its own centre search from them and its own
    member count)."""
    from bench_membership import asteca_membership

    p, _ = asteca_membership(table, (planned["pmra"], planned["pmdec"], planned["parallax"]),
                             (planned["ra"], planned["dec"]), seed=seed)
    return np.asarray(p, float)


def peer_detects(p, table, planned) -> bool:
    chosen = p > 0.5
    if chosen.sum() < 10:
        return False
    weights = p[chosen]
    mean = [np.average(np.asarray(table[c], float)[chosen], weights=weights)
            for c in ("pmra", "pmdec", "parallax")]
    return (math.hypot(mean[0] - planned["pmra"], mean[1] - planned["pmdec"]) < NEAR_PM
            and abs(mean[2] - planned["parallax"]) < NEAR_PARALLAX)


RELIABILITY_BINS = 10


def quality(p, truth) -> dict:
    """Brier score, AUC, recall and contamination at P > 0.5 and 0.7, and the reliability
    counts (``bins``: per tenth of P, the stars, their summed P and their members), which
    :func:`reliability` pools over the regions of a cell."""
    from sklearn.metrics import roc_auc_score

    p, truth = np.asarray(p, float), np.asarray(truth, bool)
    index = np.minimum((p * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
    bins = [[int((index == b).sum()), float(p[index == b].sum()),
             int(truth[index == b].sum())] for b in range(RELIABILITY_BINS)]
    row = {"brier": float(np.mean((p - truth) ** 2)), "bins": bins}
    if truth.any():
        row["auc"] = float(roc_auc_score(truth, p)) if (~truth).any() else float("nan")
        for threshold in (0.5, 0.7):
            chosen = p > threshold
            row[f"recall@{threshold}"] = float((chosen & truth).sum() / truth.sum())
            row[f"contam@{threshold}"] = float((chosen & ~truth).sum() / max(chosen.sum(), 1))
    return row


def run_starmix(table, planned, centre, radius_arcmin, draws: int, seed: int) -> dict:
    from starmix.data.clusters import ClusterReference
    from starmix.workflows.cluster.inputs import ClusterInput
    from starmix.workflows.cluster.run import run_cluster
    from starmix.workflows.runs.options import GateThresholds, SamplingOptions

    reference = ClusterReference("INJECTED", planned["ra"], planned["dec"], planned["pmra"],
                                 planned["pmdec"], planned["parallax"], "planned injection")
    inputs = ClusterInput(model="joint", data=table, cluster="INJECTED", reference=reference,
                          center=(planned["ra"], planned["dec"]),
                          footprint=(centre[0], centre[1], radius_arcmin))
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        try:
            result = run_cluster(Path(folder) / "run", inputs,
                                 SamplingOptions(draws=draws, seed=seed), GateThresholds(),
                                 figures=False, checks="off", quiet=True)
        except (SystemExit, ValueError) as err:
            return {"error": f"{type(err).__name__}: {err}",
                    "seconds": time.perf_counter() - began}
        out = Path(result.out_dir)
        record = json.loads((out / "run_record.json").read_text())
        from astropy.table import Table

        membership = Table.read(out / "membership.ecsv")
    where = {int(s): i for i, s in enumerate(np.asarray(table["source_id"]))}
    p = np.zeros(len(table))
    for source, value in zip(np.asarray(membership["source_id"]),
                             np.asarray(membership["p_cluster"], float), strict=True):
        p[where[int(source)]] = value
    detection = record.get("detection") or {}
    comparisons = detection.get("comparisons", {})
    fitted = np.zeros(len(table), bool)  # the stars the run fitted (its quality cuts)
    fitted[[where[int(s)] for s in np.asarray(membership["source_id"])]] = True
    row = {"verdict": detection.get("verdict"), "status": record.get("status"),
           "seconds": time.perf_counter() - began, "p": p, "fitted": fitted}
    for name, value in comparisons.items():
        key = "lump" if name.startswith("narrow") else "field"
        row[f"z_{key}"] = (value["delta_elpd"] / value["se"] if value["se"] > 0
                           else float("inf"))
        row[f"delta_{key}"] = value["delta_elpd"]
    return row


def cases(quick: bool):
    """Every (field, planned parallax, richness, region): all regions empty, the first
    five (all four in the EDR3 cone) with each richness injected."""
    for field, (_, centres, radius, parallaxes) in FIELDS.items():
        centres = centres()
        for parallax in parallaxes[:1] if quick else parallaxes:
            for n in (0, 50, 200) if quick else RICHNESS:
                regions = centres if n == 0 else centres[:5]
                for j, centre in enumerate(regions):
                    if quick and j >= (4 if n == 0 else 2):
                        break
                    yield {"case": f"{field}-plx{parallax}-n{n}-r{j}", "field": field,
                           "region": j, "centre": centre, "radius": radius,
                           "parallax": parallax, "richness": n,
                           "seed": 1000 * j + n + int(10 * parallax)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small subset (CI-sized)")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--out", default=str(ROOT / "results" / "bench_detection.jsonl"))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if not (SHARED / "blanco1_gaiadr2_field.csv.gz").is_file():
        print(f"needs {SHARED / 'blanco1_gaiadr2_field.csv.gz'}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.is_file():
        for line in out.read_text().splitlines():
            row = json.loads(line)
            done[row["case"]] = row
    if not args.report_only:
        todo = [case for case in cases(args.quick) if case["case"] not in done]
        print(f"{len(todo)} case(s) to run, {len(done)} done", flush=True)
        fields = {}
        for number, case in enumerate(todo, 1):
            if case["field"] not in fields:
                fields[case["field"]] = FIELDS[case["field"]][0]()
            field = fields[case["field"]]
            radius = case["radius"]
            region = field[separation_arcmin(field, case["centre"]) < radius]
            planned = plan(region, case["centre"], case["parallax"], case["seed"], radius)
            table = inject(region, planned, case["richness"], case["seed"], case["centre"],
                           radius)
            truth = np.asarray(table["is_member"], bool)
            row = {**case, "planned": planned, "stars": len(table),
                   "injected": int(truth.sum())}
            starmix = run_starmix(table, planned, case["centre"], radius, args.draws,
                                  case["seed"])
            p = starmix.pop("p", None)
            fitted = starmix.pop("fitted", None)
            row["starmix"] = {**starmix, **({} if p is None else quality(p, truth))}
            if fitted is not None:
                row["fitted_stars"] = int(fitted.sum())
                row["starmix"]["fitted"] = quality(p[fitted], truth[fitted])
            peers = {"hdbscan-eom": (hdbscan_5d, "eom"), "hdbscan-leaf": (hdbscan_5d, "leaf"),
                     "gmm": (gmm_5d, case["seed"]), "fastmp": (fastmp, case["seed"])}
            for name, (method, option) in peers.items():
                began = time.perf_counter()
                p = method(table, planned, option)
                row[name] = {"detected": bool(peer_detects(p, table, planned)),
                             "seconds": time.perf_counter() - began, **quality(p, truth)}
                if fitted is not None:
                    row[name]["fitted"] = quality(p[fitted], truth[fitted])
            done[row["case"]] = row
            with out.open("a") as stream:
                stream.write(json.dumps(row, default=float) + "\n")
            print(f"[{number}/{len(todo)}] {row['case']}: {len(table)} stars, starmix "
                  f"{starmix.get('verdict') or starmix.get('error')} (z field "
                  f"{starmix.get('z_field', float('nan')):.1f}, z lump "
                  f"{starmix.get('z_lump', float('nan')):.1f}, {starmix['seconds']:.0f} s); "
                  f"hdbscan-eom {row['hdbscan-eom']['detected']}, gmm {row['gmm']['detected']}, "
                  f"fastmp {row['fastmp']['detected']}",
                  flush=True)
    report(list(done.values()))
    return 0


def _found(row, method) -> bool:
    result = row.get(method, {})
    if method == "starmix":
        return result.get("verdict") == "cluster found"
    return bool(result.get("detected"))


def report(rows: list[dict]) -> None:
    methods = [m for m in ("starmix", "hdbscan-eom", "hdbscan-leaf", "gmm", "fastmp")
               if any(m in row for row in rows)]
    print("\ncompleteness (injected) and false-positive rate (empty regions), verification "
          "of planned values")
    richness = sorted({row["richness"] for row in rows})
    header = "method        " + " ".join(f"{'n=' + str(n):>10}" for n in richness)
    for field, parallax in sorted({(row.get("field", "blanco1"), row["parallax"])
                                   for row in rows}):
        print(f"\n{field} field, parallax {parallax} mas   (n=0: false-positive rate)")
        print(header)
        for method in methods:
            cells = []
            for n in richness:
                group = [r for r in rows if r["richness"] == n and r["parallax"] == parallax
                         and r.get("field", "blanco1") == field]
                hits = sum(_found(r, method) for r in group)
                cells.append(f"{hits}/{len(group)}" if group else "-")
            print(f"{method:<14}" + " ".join(f"{c:>10}" for c in cells))
    print("\nstarmix joint against the threshold on Δelpd / se (found = z above it and "
          "Δelpd > 10 nats)")
    for key, label in (("z_field", "vs field only (the old rule)"),
                       ("z_lump", "vs field only and the narrow field lump (the new rule)")):
        print(f"\n  {label}")
        print("  threshold " + " ".join(f"{'n=' + str(n):>9}" for n in richness))
        for threshold in THRESHOLDS:
            cells = []
            for n in richness:
                group = [r for r in rows if r["richness"] == n and "error" not in r["starmix"]]
                if key == "z_lump":
                    hit = [min(r["starmix"].get("z_field", -1), r["starmix"].get("z_lump", np.inf))
                           > threshold and min(r["starmix"].get("delta_field", 0),
                                               r["starmix"].get("delta_lump", np.inf)) > 10
                           for r in group]
                else:
                    hit = [r["starmix"].get("z_field", -1) > threshold
                           and r["starmix"].get("delta_field", 0) > 10 for r in group]
                cells.append(f"{sum(hit)}/{len(group)}" if group else "-")
            print(f"  {threshold:>9} " + " ".join(f"{c:>9}" for c in cells))
    print("\nwhere a cluster was injected (means over cases): recall@0.5, contamination@0.5, "
          "Brier, AUC, seconds")
    for n in [n for n in richness if n > 0]:
        for method in methods:
            group = [r[method] for r in rows
                     if r["richness"] == n and "brier" in r.get(method, {})]
            if not group:
                continue
            mean = {k: float(np.nanmean([g.get(k, np.nan) for g in group]))
                    for k in ("recall@0.5", "contam@0.5", "brier", "auc", "seconds")}
            fitted = [g["fitted"] for g in group if "fitted" in g]
            on_fitted = (f"  (on starmix's fitted stars: recall "
                         f"{np.nanmean([f.get('recall@0.5', np.nan) for f in fitted]):.2f}, "
                         f"Brier {np.mean([f['brier'] for f in fitted]):.5f})" if fitted else "")
            print(f"  n={n:<4} {method:<13} {mean['recall@0.5']:.2f}  {mean['contam@0.5']:.2f}  "
                  f"{mean['brier']:.5f}  {mean['auc']:.3f}  {mean['seconds']:.1f}{on_fitted}")
    print("\nreliability gap where a cluster was injected, pooled over a cell's regions: the "
          "largest |mean P - member fraction| over tenths of P holding at least 20 stars, and "
          "the same in binomial sd; on the stars starmix fits (its quality cuts: G <= 20, "
          "RUWE < 1.4), every method alike, where the case recorded them (in brackets: on "
          "every star, the cut ones at P = 0 for starmix; in braces: starmix over the "
          "regions where its verdict said found)")
    cells = sorted({(r.get("field", "blanco1"), r["parallax"], r["richness"]) for r in rows
                    if r["richness"] > 0})
    for field, parallax, n in cells:
        group = [r for r in rows if (r.get("field", "blanco1"), r["parallax"], r["richness"])
                 == (field, parallax, n)]
        cells_out = []
        for method in methods:
            scored = [r for r in group if "bins" in r.get(method, {})]
            if not scored:
                continue
            (gap, in_sd), (every, every_sd) = (pooled_gap(scored, method),
                                               pooled_gap(scored, method, every=True))
            cells_out.append(f"{method} {gap:.3f} ({in_sd:.1f} sd) [{every:.3f}, "
                             f"{every_sd:.1f} sd]")
            found = [r for r in scored if _found(r, method)]
            if method == "starmix" and found:  # the probabilities given as a cluster's
                gap, in_sd = pooled_gap(found, method)
                cells_out[-1] += (f" {{where found, {len(found)} of {len(group)}: "
                                  f"{gap:.3f}, {in_sd:.1f} sd}}")
        print(f"  {field} plx {parallax} n={n}: " + "; ".join(cells_out))


def pooled_gap(rows, method: str, every: bool = False) -> tuple[float, float]:
    """:func:`reliability` of ``method`` pooled over ``rows``: on the stars starmix fitted
    where the row recorded them, on every star with ``every``."""
    bins = [r[method]["bins"] if every else r[method].get("fitted", r[method])["bins"]
            for r in rows]
    return reliability(np.sum(np.asarray(bins, float), axis=0))


def reliability(counts, minimum: int = 20) -> tuple[float, float]:
    """The largest |mean P - member fraction| over the bins (rows of (stars, summed P,
    members)) holding at least ``minimum`` stars, and the largest of the same gaps in units
    of the binomial sd sqrt(P (1 - P) / n); NaN where no bin is full enough."""
    gaps, scaled = [], []
    for n, p_sum, members in np.asarray(counts, float):
        if n >= minimum:
            mean = p_sum / n
            gap = abs(mean - members / n)
            gaps.append(gap)
            scaled.append(gap / np.sqrt(max(mean * (1 - mean), 1e-4) / n))
    if not gaps:
        return float("nan"), float("nan")
    return float(max(gaps)), float(max(scaled))


if __name__ == "__main__":
    sys.exit(main())
