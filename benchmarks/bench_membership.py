"""Membership benchmark: starmix against the tools astronomers use, on the same stars.

``make bench-membership`` (or ``python benchmarks/bench_membership.py [--cases ...]``).

Methods, each given its own users' usual setup:

* starmix: ``pmplx`` (proper motion + parallax, no positions) and ``pm2d``, from the
  named cluster's published values, 4 chains x 1000 draws, detection on; ``joint`` (sky
  positions as well: ``starmix-joint``) where the field has positions;
* scikit-learn ``GaussianMixture`` (EM) in the same coordinates as pmplx (pmra, pmdec,
  parallax), K = 1..10 by BIC, the cluster the component whose mean is nearest the
  published values; P = its responsibility;
* scikit-learn ``HDBSCAN`` as Hunt & Reffert (2021, 2023) use it: (pmra, pmdec, parallax)
  each scaled to unit robust width, ``min_cluster_size=10``, ``eom`` and ``leaf``
  selection; the cluster is the label whose members' median lies nearest the published
  values; P = HDBSCAN's membership strength for that label (0 elsewhere);
* the same HDBSCAN in five dimensions, as Hunt & Reffert (2023) run it, where the field has
  positions (``hdbscan5d-eom``, ``hdbscan5d-leaf``): tangent-plane offsets around the
  centre of the field's cone (``bench_detection.five_d``; never raw RA) with pmra, pmdec and
  parallax, each scaled to unit robust width; the label is chosen as above, by its
  median's (pmra, pmdec, parallax);
* ASteCA's fastMP (``asteca``, the UCC's method: its own centre search from the published
  values, its member count, ``fastmp`` defaults) where the field has positions.

A starmix method may name options: ``starmix-pmplx+halo`` is pmplx with
``--cluster-halo`` (``+magnitude``: ``--magnitude-prior``).

Cases: simulated NGC 6819-like fields with truth (cluster richness 50, 200, 1000 and 6000
at two field densities, and a field with no cluster), and the real fields of
``../shared/data`` scored against the Cantat-Gaudin et al. (2018) members:

* ``m67``, ``ngc188``: Gaia DR3 fields without positions or ids, the members matched as
  :mod:`starmix.data.members` describes (the match rate is printed);
* ``ngc188-cone`` (the NGC 188 DR2 cone, its own parallax errors, DR2 proper-motion errors
  assigned from G: starmix with ``--assign-errors --error-model dr2``, the peers with the
  same errors) and ``blanco1`` (the Blanco 1 DR2 field, its own errors, RA through 0;
  Blanco 1's published values from ``cg20_cluster_parameters.tsv``): Gaia DR2 cones with
  sky positions, the members matched by DR2 ``source_id`` (:func:`match_by_source_id`).
  starmix and the HDBSCAN-5D peers take the cone's footprint from the whole file (before
  the G cut), recorded in the table's metadata.

A case whose files are absent is skipped with the reason printed. Real-field scores use
G < 18, where the published lists stop (every method is given only those stars, with
finite astrometry): recall is of members with PMemb >= 0.7, contamination counts stars at
P > 0.5 that are not in the list at all.

Printed per case and method: recall and contamination at P > 0.5 and P > 0.7, Brier
score, ROC AUC, the largest reliability-curve gap (simulated cases), the recovered mean
proper motion and parallax (P-weighted over P > 0.5), the verdict, and wall time. On the
cones, :func:`list_check` asks whether a disagreement with the list is the method's or the
list's: how many of the unlisted stars a method takes lie on the listed members'
colour-magnitude sequence (no method uses photometry), the Brier score without the stars
in dispute, and on Blanco 1 the Brier score against Hunt & Reffert's labels.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
NGC6819 = (-2.916, -3.856, 0.356)
REAL = {"m67": ("m67_gaiadr3_field.csv.gz", "m67_members_cg18.csv", "M67"),
        "ngc188": ("ngc188_gaiadr3_field.csv.gz", "ngc188_members_cg18.csv", "NGC188")}
# cones with sky positions: field, members, cluster name, catalogue naming it (None: the
# built-in list), the error model for the errors the file lacks (None: it has them all)
CONES = {"ngc188-cone": ("ngc188_gaiadr2_cone.csv.gz", "ngc188_members_cg18.csv", "NGC188",
                         None, "dr2"),
         "blanco1": ("blanco1_gaiadr2_field.csv.gz", "blanco1_members_cg18.csv", "Blanco_1",
                     "cg20_cluster_parameters.tsv", None)}
SIMULATED = {f"sim-{n}-{density}": (n, n_field) for n in (50, 200, 1000, 6000)
             for density, n_field in (("sparse", 10830), ("dense", 32490))}
SIMULATED["sim-empty"] = (0, 10830)


def coordinates(table) -> np.ndarray:
    return np.stack([np.asarray(table[name], float) for name in ("pmra", "pmdec", "parallax")],
                    axis=-1)


def gmm_membership(table, published, seed=0) -> tuple[np.ndarray, str]:
    from sklearn.mixture import GaussianMixture

    values = coordinates(table)
    best = None
    for k in range(1, 11):
        model = GaussianMixture(k, random_state=seed).fit(values)
        bic = model.bic(values)
        if best is None or bic < best[0]:
            best = (bic, k, model)
    _, k, model = best
    index = int(np.argmin(np.linalg.norm(model.means_ - np.asarray(published), axis=1)))
    return model.predict_proba(values)[:, index], f"K={k}"


def hdbscan_membership(table, published, selection: str,
                       values=None) -> tuple[np.ndarray, str]:
    """HDBSCAN on ``values`` (default: the table's (pmra, pmdec, parallax)); the last three
    columns of ``values`` must be (pmra, pmdec, parallax), which choose the label."""
    from sklearn.cluster import HDBSCAN

    values = coordinates(table) if values is None else np.asarray(values, float)
    centre = np.median(values, axis=0)
    scale = 1.4826 * np.median(np.abs(values - centre), axis=0)
    scaled = (values - centre) / scale
    result = HDBSCAN(min_cluster_size=10, cluster_selection_method=selection,
                     copy=True).fit(scaled)
    labels = result.labels_
    found = [label for label in set(labels) if label >= 0]
    if not found:
        return np.zeros(len(values)), "no clusters"
    target = (np.asarray(published) - centre[-3:]) / scale[-3:]
    medians = {label: np.median(scaled[labels == label, -3:], axis=0) for label in found}
    best = min(found, key=lambda label: np.linalg.norm(medians[label] - target))
    return np.where(labels == best, result.probabilities_, 0.0), f"{len(found)} clusters"


def hdbscan_5d_membership(table, published, selection: str) -> tuple[np.ndarray | None, str]:
    """HDBSCAN in five dimensions as Hunt & Reffert (2023) run it: tangent-plane offsets
    (arcmin) around the centre of the table's footprint (recorded in its metadata, else
    estimated from the stars: :func:`starmix.data.footprint.table_footprint`), then pmra,
    pmdec, parallax (``bench_detection.five_d``), each scaled to unit robust width."""
    if "ra" not in table.colnames or "dec" not in table.colnames:
        return None, "needs ra/dec"
    from bench_detection import five_d

    from starmix.data.footprint import table_footprint

    cone = table_footprint(table)
    p, note = hdbscan_membership(table, published, selection,
                                 five_d(table, {"ra": cone.ra, "dec": cone.dec}))
    return p, f"{note}, 5D"


def asteca_membership(table, published, center, seed=0) -> tuple[np.ndarray | None, str]:
    """ASteCA's fastMP as the UCC runs it (Perren et al. 2023): its centre search
    (``knn_5d``) from the published position, motion and parallax, its member count
    (``ripley``), then ``fastmp`` with its defaults. The cap on the member count is raised
    from 2,000 to 10,000 so that the 6,000-member case is not cut by it."""
    if center is None or "ra" not in table.colnames:
        return None, "needs ra/dec"
    import asteca

    def column(name):
        return np.asarray(table[name], float)

    field = asteca.Cluster(ra=column("ra"), dec=column("dec"), pmra=column("pmra"),
                           e_pmra=column("pmra_error"), pmde=column("pmdec"),
                           e_pmde=column("pmdec_error"), plx=column("parallax"),
                           e_plx=column("parallax_error"), mag=column("phot_g_mean_mag"),
                           e_mag=np.full(len(table), 0.01), N_clust_max=10_000, verbose=0)
    field.get_center(radec_c=center, pms_c=tuple(published[:2]), plx_c=published[2])
    field.get_nmembers()
    field.membership.fastmp(seed=seed)
    return np.asarray(field.probs, float), f"N_cluster={field.N_cluster}"


# starmix options named in a method: "starmix-pmplx+halo" is pmplx with --cluster-halo
STARMIX_OPTIONS = {"halo": "--cluster-halo", "magnitude": "--magnitude-prior"}


def starmix_membership(table_path, method, cluster, extra, seed=42, keep=None):
    """Run starmix as ``method`` ("starmix-MODEL[+OPTION...]") on the table; with ``keep``
    (a folder), its run folder is kept there as ``keep/<table>-<method>``."""
    from starmix.workflows.cli import main

    model, *options = method.split("-", 1)[1].split("+")
    extra = [*extra, *(STARMIX_OPTIONS[option] for option in options)]
    with tempfile.TemporaryDirectory() as folder:
        out = (Path(keep) / f"{Path(table_path).stem}-{method}" if keep
               else Path(folder) / "out")
        # every method sees the same stars: starmix's own quality cuts are off here
        arguments = ["run", "cluster", "--model", model, "--data", str(table_path),
                     "--cluster", cluster, "--out", str(out), "--no-figures",
                     "--ruwe-max", "1e9", "--g-max", "99", "--seed", str(seed), *extra]
        print("  starmix " + " ".join(arguments), flush=True)
        code = main(arguments)
        if not (out / "membership.ecsv").is_file():
            return None, f"exit {code}"
        membership = Table.read(out / "membership.ecsv")
        record = json.loads((out / "run_record.json").read_text())
    verdict = (record.get("detection") or {}).get("verdict", "-")
    return membership, f"exit {code}, {verdict}"


def aligned(membership: Table, table: Table) -> np.ndarray:
    """starmix's P per row of ``table`` (by source_id; a row it did not fit gets 0)."""
    where = {int(source): i for i, source in enumerate(np.asarray(table["source_id"]))}
    p = np.zeros(len(table))
    for source, value in zip(np.asarray(membership["source_id"]),
                             np.asarray(membership["p_cluster"], float), strict=True):
        p[where[int(source)]] = value
    return p


def match_by_source_id(table, members):
    """A :class:`starmix.data.members.MemberMatch` by Gaia DR2 source id: member j's row is
    the table row whose ``source_id`` is its ``Source`` (-1: not in the table)."""
    from starmix.data.members import MemberMatch

    where = {int(source): i for i, source in enumerate(np.asarray(table["source_id"],
                                                                  np.int64))}
    index = np.array([where.get(int(source), -1)
                      for source in np.asarray(members["Source"], np.int64)], dtype=int)
    return MemberMatch(index, np.asarray(members["PMemb"], float),
                       np.asarray(members["phot_g_mean_mag"], float))


def load_cone(name: str):
    """A cone of ``CONES``: (table for starmix, table for the peers, member match, starmix
    options, published values, published centre) or, when a file is absent, the reason.

    Every method gets the stars with finite positions and astrometry at G < 18; the cone's
    footprint is that of the whole file (before the cut), in the tables' metadata. The
    peers' table has the errors starmix assigns with the same options."""
    from starmix.data.footprint import estimated_footprint, footprint_meta
    from starmix.data.gaia import assign_errors, load_gaia
    from starmix.data.input_checks import read_table
    from starmix.workflows.cluster.identification import published_reference

    field_file, members_file, cluster, catalogue, error_model = CONES[name]
    for file in (field_file, members_file, catalogue):
        if file is not None and not (SHARED / file).is_file():
            return f"{SHARED / file} is absent"
    full = load_gaia(SHARED / field_file).data
    cone = estimated_footprint(full)
    finite = np.isfinite(coordinates(full)).all(axis=1)
    for column in ("ra", "dec"):
        finite &= np.isfinite(np.asarray(full[column], float))
    keep = finite & (np.asarray(full["phot_g_mean_mag"], float) < 18)
    table = Table(full[keep], meta=footprint_meta(cone.center, cone.radius_arcmin))
    members = read_table(SHARED / members_file, "member list")
    match = match_by_source_id(table, members)
    in_file = match_by_source_id(full, members)
    options = []  # besides --cluster
    if catalogue is not None:
        options += ["--catalogue", str(SHARED / catalogue)]
    if error_model is not None:
        options += ["--assign-errors", "--error-model", error_model]
    options += ["--drop-invalid"]
    peers = assign_errors(table, error_model) if error_model is not None else table
    ref = published_reference(cluster, None if catalogue is None else str(SHARED / catalogue))
    print(f"{name}: {len(table)} of {len(full)} stars (finite astrometry, G < 18); footprint "
          f"({cone.ra:.4f}, {cone.dec:.4f}), {cone.radius_arcmin:g} arcmin; CG18: "
          f"{len(members)} listed, {int((in_file.field_index >= 0).sum())} in the file, "
          f"{int((match.field_index >= 0).sum())} in these stars (match rate "
          f"{match.rate:.3f}, by source_id), "
          f"{int(match.labels(len(table), 0.7).sum())} of them with PMemb >= 0.7")
    return (table, peers, match, options, (ref.pmra, ref.pmdec, ref.parallax),
            (ref.ra, ref.dec))


def scores(p, truth, listed, table, bright) -> dict:
    from sklearn.metrics import roc_auc_score

    p = np.asarray(p, float)
    row = {}
    for threshold in (0.5, 0.7):
        chosen = (p > threshold) & bright
        row[f"recall@{threshold}"] = (float((chosen & truth).sum() / max(truth[bright].sum(), 1))
                                      if truth[bright].any() else float("nan"))
        row[f"contam@{threshold}"] = f"{int((chosen & ~listed).sum())}/{int(chosen.sum())}"
    row["brier"] = float(np.mean((p[bright] - listed[bright]) ** 2))
    both = listed[bright].any() and (~listed[bright]).any()
    row["auc"] = float(roc_auc_score(listed[bright], p[bright])) if both else float("nan")
    selected = p > 0.5
    if selected.any():
        weights = p[selected]
        row["mean (pmra, pmdec, plx)"] = tuple(
            round(float(np.average(coordinates(table)[selected, j], weights=weights)), 3)
            for j in range(3))
    return row


def reliability_gap(p, truth, bins=10) -> tuple[float, float]:
    """The largest |mean P - member fraction| over the bins of P holding at least 20
    stars, and the largest of the same gaps in units of its binomial sd,
    sqrt(P (1 - P) / n): with 20-50 stars in the middle bins, noise alone makes gaps of
    0.1, so the second number says whether a gap is more than chance."""
    p, truth = np.asarray(p, float), np.asarray(truth, bool)
    edges = np.linspace(0, 1, bins + 1)
    gaps, scaled = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (p >= lo) & (p < hi) if hi < 1 else (p >= lo)
        if inside.sum() >= 20:
            mean = p[inside].mean()
            gap = abs(mean - truth[inside].mean())
            gaps.append(gap)
            sd = np.sqrt(max(mean * (1 - mean), 1e-4) / inside.sum())
            scaled.append(gap / sd)
    if not gaps:
        return float("nan"), float("nan")
    return float(max(gaps)), float(max(scaled))


def colour(table) -> np.ndarray:
    """BP - RP (mag) from ``bp_rp`` or the two band magnitudes; NaN where absent."""
    if "bp_rp" in table.colnames:
        return np.asarray(table["bp_rp"], float)
    if {"phot_bp_mean_mag", "phot_rp_mean_mag"} <= set(table.colnames):
        return (np.asarray(table["phot_bp_mean_mag"], float)
                - np.asarray(table["phot_rp_mean_mag"], float))
    return np.full(len(table), np.nan)


def on_members_sequence(table, members, width=2.5) -> np.ndarray:
    """Whether each star's colour lies within ``width`` robust sd of the listed members'
    sequence at its G (running median and robust sd of BP - RP in 0.5-mag bins of G, from
    the members within 0.25 mag either side; bins with fewer than 8 members are left out:
    False). No method uses photometry, so this is an independent check of membership."""
    g, c = np.asarray(table["phot_g_mean_mag"], float), colour(table)
    members = members & np.isfinite(c) & np.isfinite(g)
    on = np.zeros(len(table), bool)
    if not members.any():
        return on
    for lo in np.arange(np.floor(g[members].min()), np.nanmax(g) + 0.5, 0.5):
        near = members & (g >= lo - 0.25) & (g < lo + 0.75)
        if near.sum() < 8:
            continue
        centre = np.median(c[near])
        sd = max(1.4826 * np.median(np.abs(c[near] - centre)), 0.02)
        inside = (g >= lo) & (g < lo + 0.5)
        on[inside] = np.abs(c[inside] - centre) < width * sd
    return on


def list_check(probabilities: dict, table, truth, listed) -> dict:
    """Is a method's disagreement with the published list the method's or the list's? Per
    method: of the unlisted stars it takes (P > 0.5), how many lie on the listed members'
    colour-magnitude sequence (:func:`on_members_sequence`), against the share of field stars
    (unlisted, P < 0.1 for every method) at the same G (within 0.25 mag) and of the listed
    members; the member share of its picks, (on - field) / (members - field); and the Brier
    score without the *disputed* stars (unlisted, taken by some method, on the sequence),
    for every method alike. Where the table has Hunt & Reffert's labels (``ocelot_label``,
    0 = the cluster), the Brier score against them too."""
    g = np.asarray(table["phot_g_mean_mag"], float)
    on = on_members_sequence(table, truth)
    known = np.isfinite(colour(table))
    p_all = np.stack(list(probabilities.values()))
    field = ~listed & known & (p_all.max(axis=0) < 0.1)
    disputed = ~listed & on & (p_all > 0.5).any(axis=0)
    share_members = on[truth & known].mean()
    checks = {}
    for method, p in probabilities.items():
        picks = (p > 0.5) & ~listed & known
        row = {"brier_undisputed": float(np.mean((p[~disputed] - listed[~disputed]) ** 2))}
        if picks.any():
            field_share = np.mean([on[field & (np.abs(g - gi) < 0.25)].mean()
                                   for gi in g[picks] if (field & (np.abs(g - gi) < 0.25)).any()])
            on_share = on[picks].mean()
            row["unlisted_on_sequence"] = (f"{int(on[picks].sum())}/{int(picks.sum())} "
                                           f"(field {field_share:.2f}, members "
                                           f"{share_members:.2f})")
            row["unlisted_member_share"] = float((on_share - field_share)
                                                 / (share_members - field_share))
        if "ocelot_label" in table.colnames:
            labels = np.asarray(table["ocelot_label"]) == 0
            row["brier_hr_labels"] = float(np.mean((p - labels) ** 2))
        checks[method] = row
    # is the best undisputed Brier score better than each other method's by more than its
    # noise? The paired per-star difference of squared errors, its mean and standard error
    errors = {m: (p[~disputed] - listed[~disputed]) ** 2 for m, p in probabilities.items()}
    best = min(errors, key=lambda m: errors[m].mean())
    for method, error in errors.items():
        if method != best:
            diff = error - errors[best]
            checks[method]["brier_undisputed_minus_best"] = (
                f"{diff.mean():.2e} +- {diff.std(ddof=1) / np.sqrt(len(diff)):.2e} "
                f"(best: {best})")
    print(f"  list check: {int(disputed.sum())} disputed stars (unlisted, P > 0.5 in some "
          f"method, on the members' sequence) left out of brier_undisputed")
    return checks


def run_case(name: str, methods: list[str], folder: Path, keep=None) -> list[dict]:
    from starmix.data.cluster_field import simulate_cluster_field, write_cluster_field
    from starmix.data.gaia import assign_dr3_errors, load_gaia
    from starmix.data.members import load_member_list, match_members

    if name in REAL:
        field_file, members_file, cluster = REAL[name]
        if not (SHARED / field_file).is_file():
            print(f"{name}: skipped, {SHARED / field_file} is absent")
            return []
        table = assign_dr3_errors(load_gaia(SHARED / field_file).data)
        finite = np.isfinite(coordinates(table)).all(axis=1)
        bright = np.asarray(table["phot_g_mean_mag"]) < 18
        table = table[finite & bright]  # every method sees the stars the lists could hold
        table["source_id"] = np.arange(len(table)) + 1
        match = match_members(table, load_member_list(SHARED / members_file))
        truth, listed = match.labels(len(table), 0.7), match.labels(len(table), 0.0)
        bright = np.asarray(table["phot_g_mean_mag"]) < 18
        from starmix.data.clusters import cluster_reference

        ref = cluster_reference(cluster)
        published = (ref.pmra, ref.pmdec, ref.parallax)
        radec = None  # the real field tables have no positions
        path = folder / f"{name}.ecsv"
        Table(table, meta={}).write(path, overwrite=True)
        print(f"{name}: {len(table)} stars, CG18 match rate {match.rate:.3f} "
              f"({int(listed.sum())} listed, {int(truth.sum())} with PMemb >= 0.7)")
        extra = []  # errors were assigned above (pygaia's DR3 model), as --assign-errors does
    elif name in CONES:
        loaded = load_cone(name)
        if isinstance(loaded, str):
            print(f"{name}: skipped, {loaded}")
            return []
        written, table, match, extra, published, radec = loaded
        cluster = CONES[name][2]
        truth, listed = match.labels(len(table), 0.7), match.labels(len(table), 0.0)
        bright = np.ones(len(table), bool)  # the cut to G < 18 is made
        path = folder / f"{name}.ecsv"
        written.write(path, overwrite=True)
    else:
        n_cluster, n_field = SIMULATED[name]
        table = simulate_cluster_field("ngc6819", seed=11, n_cluster=n_cluster, n_field=n_field)
        path = folder / f"{name}.fits"
        write_cluster_field(table, path)
        truth = listed = np.asarray(table["is_member"], bool)
        bright = np.ones(len(table), bool)
        published, cluster, extra = NGC6819, "NGC6819", []
        from starmix.data.clusters import cluster_reference

        ngc6819 = cluster_reference("NGC6819").center
        radec = (float(ngc6819.ra.deg), float(ngc6819.dec.deg))
        print(f"{name}: {len(table)} stars, {n_cluster} members")
    rows, probabilities = [], {}
    for method in methods:
        began = time.perf_counter()
        if method.startswith("starmix-"):
            membership, note = starmix_membership(path, method, cluster, extra, keep=keep)
            p = None if membership is None else aligned(membership, table)
        elif method == "gmm":
            p, note = gmm_membership(table, published)
        elif method == "asteca":
            p, note = asteca_membership(table, published, radec)
        elif method.startswith("hdbscan-"):
            p, note = hdbscan_membership(table, published, method.split("-", 1)[1])
        elif method.startswith("hdbscan5d-"):
            p, note = hdbscan_5d_membership(table, published, method.split("-", 1)[1])
        else:
            raise ValueError(method)
        seconds = time.perf_counter() - began
        row = {"case": name, "method": method, "note": note, "seconds": round(seconds, 1)}
        if p is not None:
            probabilities[method] = np.asarray(p, float)
            row.update(scores(p, truth, listed, table, bright))
            if name in SIMULATED:
                row["reliability_gap"], row["gap_in_sd"] = reliability_gap(p, truth)
        rows.append(row)
        print("  " + json.dumps(row, default=str), flush=True)
    if name in CONES and probabilities:
        checks = list_check(probabilities, table, truth, listed)
        for row in rows:
            row.update(checks.get(row["method"], {}))
            print("  " + json.dumps({"method": row["method"], **checks.get(row["method"], {})}))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=[*SIMULATED, *REAL, *CONES],
                        help="cases to run (default: all)")
    parser.add_argument("--methods", nargs="+",
                        default=["starmix-pmplx", "starmix-pm2d", "gmm", "hdbscan-eom",
                                 "hdbscan-leaf", "asteca"])
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--keep", help="keep starmix's run folders in this folder")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for case in args.cases:
            rows.extend(run_case(case, args.methods, Path(folder), keep=args.keep))
    columns = ["case", "method", "recall@0.5", "contam@0.5", "recall@0.7", "contam@0.7",
               "brier", "auc", "reliability_gap", "gap_in_sd", "mean (pmra, pmdec, plx)", "note",
               "seconds", "unlisted_on_sequence", "unlisted_member_share", "brier_undisputed",
               "brier_hr_labels"]
    print("\n| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            cells.append(f"{value:.4g}" if isinstance(value, float) else str(value))
        print("| " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
