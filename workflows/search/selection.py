"""``starmix selection-function``: how complete a search is, from injection and recovery.

Every search with injected clusters (on a simulated sky, ``starmix search --gaia
simulate`` or ``make bench-search``; or into a real field's stars, ``--inject-richness``)
is an injection-and-recovery run: its ``truth.ecsv`` says which injected
clusters it found (``found_as``), and the clusters it found that match nothing injected are
false detections. :func:`selection_function` pools any number of such search folders:

* a table of completeness per field density (stars per arcmin²), parallax (mas; the
  distance), Plummer radius (pc; the size) and planned richness (members over
  G = 12-20), with the median number of
  members in the data (inside the region and the field's G range), the counts and a 68%
  binomial (Wilson) interval;
* a smooth function in the spirit of Hunt et al. (2026): a logistic in log10 of the
  members in the data, of the field density, of the parallax and of the size, P(found) =
  1 / (1 + exp(-(b0 + b1 log10 n + b2 log10 density + b3 log10 parallax + b4 log10
  size))), each term only where the searches hold more than one value of it, fitted by
  maximum
  likelihood with a weak N(0, 5²) prior on each coefficient (so that a grid every
  cluster of which is found still gives finite numbers), its coefficients' standard
  errors from the curvature, and the members at which it reaches 50% and 90% at each
  density (and parallax and size) (None where that lies outside the injected range: no
  extrapolation);
* the false-positive rate: false detections per square degree searched, with its 95%
  Poisson upper limit (regions searched with nothing injected, ``--sim-richness`` empty,
  count here as much as any; on a real field, clusters the catalogue names are real, not
  false).

Written as ``selection_function.ecsv`` and ``selection_function.json`` beside each other.
"""

import json
import math
from pathlib import Path

import numpy as np
from astropy.table import Table
from scipy import optimize, stats

from starmix.data.sky import PLUMMER_PC
from starmix.workflows.runs.files import write_json, write_table

PRIOR_SD = 5.0


def injections(folders) -> tuple[Table, dict]:
    """(one row per injected cluster: its search, planned richness ``n_members`` (over
    G = 12-20), members in the data ``n_in_data`` (those inside the region and, on a real
    field, its G range; ``n_members`` for searches that did not record it), parallax, field
    density and whether it was found; totals: area searched in deg² and false
    detections)."""
    names = ("search", "n_members", "n_in_data", "parallax", "plummer_pc", "field_density",
             "found")
    rows, area, false = [], 0.0, 0
    for folder in map(Path, folders):
        record_path, truth_path = folder / "search_record.json", folder / "truth.ecsv"
        if not record_path.is_file():
            raise FileNotFoundError(f"{folder}: no search_record.json (not a search folder)")
        record = json.loads(record_path.read_text())
        if record.get("status") not in ("complete", "none_found"):
            raise ValueError(f"{folder}: the search is {record.get('status')!r}, not finished")
        if "truth" not in record or not truth_path.is_file():
            raise ValueError(f"{folder}: not a search with injected clusters (no truth.ecsv): "
                             "its completeness cannot be measured")
        # measured on a real field, the setting on a simulated sky (and in older records)
        density = record.get("stars", {}).get("field_density")
        density = float(record["settings"]["sim_field_density"] if density is None
                        else density)
        truth = Table.read(truth_path, format="ascii.ecsv")
        in_data = "n_injected" if "n_injected" in truth.colnames else "n_members"
        for row in truth:
            size = float(row["plummer_pc"]) if "plummer_pc" in truth.colnames else PLUMMER_PC
            rows.append((str(folder), int(row["n_members"]), int(row[in_data]),
                         float(row["parallax"]), size, density,
                         bool(str(row["found_as"]).strip() not in ("", "--"))))
        area += float(record["region"]["area_deg2"])
        false += len(record["truth"]["false_detections"])
    table = Table(rows=rows, names=names) if rows else Table(
        names=names, dtype=(str, int, int, float, float, float, bool))
    return table, {"area_deg2": area, "false_detections": false, "searches": len(folders)}


def wilson(k: int, n: int, z: float = 1.0) -> tuple[float, float]:
    """Wilson score interval of k successes in n (z = 1: 68%)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def fit_logistic(table: Table) -> dict:
    """The logistic's coefficients (intercept; slopes on log10 of the members in the data,
    of the field density and of the parallax), their standard errors, and the
    log-likelihood; density and parallax enter only when the table holds more than one
    value of each."""
    found = np.asarray(table["found"], float)
    n = np.log10(np.maximum(np.asarray(table["n_in_data"], float), 1.0))
    columns, names = [np.ones_like(n), n], ["intercept", "log10_members"]
    for column, name in (("field_density", "log10_field_density"),
                         ("parallax", "log10_parallax"), ("plummer_pc", "log10_size_pc")):
        values = np.log10(np.asarray(table[column], float))
        if np.unique(values).size > 1:
            columns.append(values)
            names.append(name)
    design = np.column_stack(columns)

    def negative(beta):
        eta = design @ beta
        return -(np.sum(found * eta - np.logaddexp(0, eta))
                 - 0.5 * np.sum(beta**2) / PRIOR_SD**2)

    fit = optimize.minimize(negative, np.zeros(design.shape[1]), method="BFGS")
    p = 1 / (1 + np.exp(-(design @ fit.x)))
    curvature = design.T @ (design * (p * (1 - p))[:, None]) + np.eye(len(fit.x)) / PRIOR_SD**2
    errors = np.sqrt(np.diag(np.linalg.inv(curvature)))
    return {"coefficients": dict(zip(names, map(float, fit.x), strict=True)),
            "standard_errors": dict(zip(names, map(float, errors), strict=True)),
            "log_likelihood": float(-fit.fun), "n_clusters": int(len(found))}


def richness_at(logistic: dict, probability: float, density: float,
                parallax: float = 1.0, size_pc: float = 1.0) -> float:
    """Members in the data at which the logistic reaches ``probability`` at ``density``
    (and ``parallax``, mas, and Plummer radius ``size_pc``, where it has those terms); NaN
    when it does not rise with richness."""
    b = logistic["coefficients"]
    slope = b.get("log10_members", 0.0)
    if slope <= 0:
        return math.nan
    offset = (b["intercept"] + b.get("log10_field_density", 0.0) * math.log10(density)
              + b.get("log10_parallax", 0.0) * math.log10(parallax)
              + b.get("log10_size_pc", 0.0) * math.log10(size_pc))
    return float(10 ** ((math.log(probability / (1 - probability)) - offset) / slope))


def selection_function(folders, out) -> dict:
    """Pool the search folders, write ``out``/selection_function.ecsv and .json, and return
    the JSON's contents."""
    table, totals = injections(folders)
    if len(table) == 0:
        raise ValueError("the searches injected no clusters: nothing to measure completeness "
                         "with (their false detections alone give no selection function)")
    cells = []
    for density in sorted(set(table["field_density"])):
        for parallax in sorted(set(table["parallax"])):
            for size in sorted(set(table["plummer_pc"])):
                for richness in sorted(set(table["n_members"])):
                    pick = ((table["field_density"] == density)
                            & (table["parallax"] == parallax) & (table["plummer_pc"] == size)
                            & (table["n_members"] == richness))
                    k, n = int(table["found"][pick].sum()), int(pick.sum())
                    if n:
                        low, high = wilson(k, n)
                        cells.append((density, parallax, size, richness,
                                      float(np.median(table["n_in_data"][pick])), n, k,
                                      k / n, low, high))
    binned = Table(rows=cells, names=("field_density", "parallax", "plummer_pc", "n_members",
                                      "median_n_in_data", "injected", "found",
                                      "completeness", "completeness_lo68",
                                      "completeness_hi68"))
    binned["field_density"].unit = "1 / arcmin2"
    binned["parallax"].unit = "mas"
    binned["plummer_pc"].unit = "pc"
    logistic = fit_logistic(table)
    terms = logistic["coefficients"]
    densities = sorted(set(float(d) for d in table["field_density"]))
    parallaxes = (sorted(set(float(p) for p in table["parallax"]))
                  if "log10_parallax" in terms else [None])
    sizes = (sorted(set(float(r) for r in table["plummer_pc"]))
             if "log10_size_pc" in terms else [None])
    low, high = int(min(table["n_in_data"])), int(max(table["n_in_data"]))

    def within(value: float) -> float | None:  # no extrapolation past the injected range
        return value if low <= value <= high else None

    def at(probability: float) -> dict:
        return {f"{d:g}" + ("" if p is None else f" at {p:g} mas")
                + ("" if r is None else f", {r:g} pc"):
                within(richness_at(logistic, probability, d, p or 1.0, r or 1.0))
                for d in densities for p in parallaxes for r in sizes}

    false, area = totals["false_detections"], totals["area_deg2"]
    result = {
        "searches": [str(f) for f in folders], "injected": len(table),
        "found": int(table["found"].sum()), "logistic": logistic,
        "injected_members_range": [low, high],
        "members_at_50_percent": at(0.5), "members_at_90_percent": at(0.9),
        "false_positive_rate": {
            "false_detections": false, "area_deg2": area,
            "per_deg2": false / area if area else math.nan,
            "per_deg2_upper_95": float(stats.chi2.ppf(0.95, 2 * (false + 1)) / 2 / area)
            if area else math.nan},
        "model": "P(found) = 1 / (1 + exp(-(intercept + log10_members * log10(n) + "
                 "log10_field_density * log10(density) + log10_parallax * "
                 "log10(parallax) + log10_size_pc * log10(size))))  (n: members in the "
                 "data; density: field stars per arcmin²; parallax in mas; size: Plummer "
                 "radius in pc; a term is left out where the searches hold one value of "
                 "it)",
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "selection_function.ecsv", binned)
    write_json(out / "selection_function.json", result)
    return result
