"""One survey-table row per cluster, read from the cluster's results folder.

``wall_time`` is the run's own (from its record), ``sampling_time`` its NUTS steps' (the
fit and the detection step's field-only fits); ``task_time`` the whole task's (the
cone's data too) and ``worker_peak_mib`` its worker's peak memory, both only for clusters
run by this invocation (NaN for those read back on resuming).

The row is built only from what the cluster's run wrote (``run_record.json`` and
``membership.ecsv``), so a survey that is resumed reads the rows of clusters done before
exactly as it builds new ones. Units: mas/yr, mas, pc, arcmin, seconds.

Agreement with the published values: for each of pmra, pmdec and parallax the difference
(recovered - published) in units of the combined error, ``z = d / hypot(recovered sd,
published sd)`` (the published sd is 0 when the catalogue gives none), and on real data
also the Gaia systematic floor the run records (0.026 mas/yr, 0.0103 mas: the
angular-covariance limit on a cluster's mean; simulated fields have no systematics). A cluster
``agrees`` when all three have ``|z| <= AGREEMENT_Z``. Distance (1/parallax against the
catalogue's distance) is reported but not judged: catalogue distances come from
isochrones, not from the parallax.
"""

import math
from pathlib import Path

import numpy as np
from astropy.table import Table

from starmix.data.survey_catalogue import SurveyTarget
from starmix.workflows.runs.record import RECORD_NAME, RunRecord

VERDICTS = {"passed": "cluster found", "no_cluster": "none found", "failed": "gate failed",
            "checks_failed": "checks failed"}
COMPLETE = frozenset(VERDICTS)  # a cluster whose folder has one of these is not redone
AGREEMENT_Z = 3.0
MEMBER_P = 0.7
QUANTITIES = ("pmra", "pmdec", "parallax")
UNITS = {"ra": "deg", "dec": "deg", "radius_arcmin": "arcmin", "pmra": "mas/yr",
         "pmdec": "mas/yr", "parallax": "mas", "distance": "pc", "wall_time": "s",
         "sampling_time": "s", "task_time": "s", "worker_peak_mib": "MiB"}


def folder_status(folder: Path) -> str | None:
    """The status in a cluster folder's run record, or None (no record, or unreadable)."""
    try:
        return RunRecord.read(Path(folder) / RECORD_NAME).status
    except (OSError, ValueError, KeyError, TypeError):
        return None


def row_from_folder(target: SurveyTarget, folder: Path) -> dict:
    """The table row of a cluster whose run finished (any status with a record)."""
    folder = Path(folder)
    record = RunRecord.read(folder / RECORD_NAME)
    row = base_row(target, VERDICTS.get(record.status, "error"), record.status)
    row["folder"] = str(folder)
    row["model"] = str(record.settings.get("ClusterInput", {}).get("model", ""))
    timings = record["timings_s"]
    row["wall_time"] = float(timings["total"])
    row["sampling_time"] = float(timings.get("sample", 0) + timings.get("detection", 0))
    row["n_stars"] = int(record["selection"]["n_stars"])
    estimates = record.get("cluster_estimates") or {}
    for name in QUANTITIES:
        value = estimates.get(name) or (estimates.get("parallax_members")
                                        if name == "parallax" else None)
        if value is not None:
            row[name], row[f"{name}_error"] = float(value[0]), float(value[1])
    if row["parallax"] > 0:
        row["distance"] = 1000.0 / row["parallax"]
        row["distance_error"] = 1000.0 * row["parallax_error"] / row["parallax"] ** 2
    per_parameter = record["convergence"]["per_parameter"].values()
    row["max_r_hat"] = max(p["r_hat"] for p in per_parameter)
    row["min_ess"] = min(min(p["ess_bulk"], p["ess_tail"]) for p in per_parameter)
    row["divergences"] = int(record["convergence"]["divergences"])
    membership = folder / "membership.ecsv"
    if membership.is_file():
        probability = np.asarray(Table.read(membership, format="ascii.ecsv")["p_cluster"])
        row["members_sum_p"] = float(probability.sum())
        row["members_p07"] = int((probability > MEMBER_P).sum())
    simulated = "recovery" in record  # the simulator has no Gaia systematics
    compare(row, target, None if simulated else record.get("systematic_floor"))
    return row


def error_row(target: SurveyTarget, message: str, wall_time: float = math.nan) -> dict:
    """The row of a cluster that ended in an error (or a bad catalogue row)."""
    row = base_row(target, "error", "error")
    row["message"] = "; ".join(text for text in (message, target.note) if text)
    row["wall_time"] = wall_time
    return row


def left_row(target: SurveyTarget) -> dict:
    """The row of a cluster the survey did not get to (it was interrupted)."""
    return base_row(target, "not run", "not run")


def base_row(target: SurveyTarget, verdict: str, status: str) -> dict:
    nan = math.nan
    row = {"name": target.name, "row": target.row, "verdict": verdict, "status": status,
           "ra": _float(target.ra), "dec": _float(target.dec),
           "radius_arcmin": _float(target.radius_arcmin), "radius_rule": target.radius_rule,
           "n_stars": -1, "members_sum_p": nan, "members_p07": -1,
           "max_r_hat": nan, "min_ess": nan, "divergences": -1, "wall_time": nan,
           "sampling_time": nan, "task_time": nan, "worker_peak_mib": nan,
           "agrees": False, "message": target.note, "folder": "", "model": ""}
    for name in (*QUANTITIES, "distance"):
        row[name] = row[f"{name}_error"] = nan
        row[f"published_{name}"] = nan
        row[f"diff_{name}"] = nan
    for name in QUANTITIES:
        row[f"z_{name}"] = nan
    for name in QUANTITIES:
        row[f"published_{name}"] = _float(getattr(target, name))
    row["published_distance"] = _float(target.distance_pc)
    return row


def compare(row: dict, target: SurveyTarget, floor: dict | None = None) -> None:
    """Fill the differences from the published values and the ``agrees`` flag. ``floor``:
    Gaia's systematic floor per quantity ({name: sd}), added in quadrature on real data."""
    for name in (*QUANTITIES, "distance"):
        row[f"diff_{name}"] = row[name] - row[f"published_{name}"]
    z = []
    for name in QUANTITIES:
        published_error = getattr(target, f"{name}_error") or 0.0
        combined = math.hypot(row[f"{name}_error"], published_error,
                              (floor or {}).get(name, 0.0))
        row[f"z_{name}"] = row[f"diff_{name}"] / combined if combined > 0 else math.nan
        z.append(row[f"z_{name}"])
    row["agrees"] = bool(np.all(np.abs(z) <= AGREEMENT_Z))  # False when any is NaN


def survey_table(rows: list[dict]) -> Table:
    """The survey table, one row per cluster in catalogue order, with units."""
    rows = sorted(rows, key=lambda row: row["row"])
    table = Table(rows=rows, names=list(rows[0])) if rows else Table()
    for name in table.colnames:
        stem = name.removeprefix("published_").removeprefix("diff_").removesuffix("_error")
        if stem in UNITS and not name.startswith("z_"):
            table[name].unit = UNITS[stem]
    table.meta["agreement"] = (f"agrees: |recovered - published| <= {AGREEMENT_Z:g} x the "
                               "combined error for pmra, pmdec and parallax")
    table.meta["members"] = f"members_sum_p: sum of P; members_p07: stars with P > {MEMBER_P}"
    return table


def _float(value) -> float:
    return math.nan if value is None else float(value)
