"""The clusters of a survey: one :class:`SurveyTarget` per row of a catalogue table.

A catalogue is any table with a name, ra and dec (degrees), read as
:mod:`starmix.data.catalogue` reads one (a VizieR TSV such as Cantat-Gaudin et al.
2020's table 1, or CSV/ECSV/FITS/Parquet), with optional columns found by name:

=================  ==============================================  ===========
what               column names tried                              unit
=================  ==============================================  ===========
cone radius        ``radius``, ``radius_arcmin``, ``r_arcmin``     arcmin
mean pm, parallax  as :data:`starmix.data.catalogue.COLUMN_NAMES`  mas/yr, mas
their errors       ``e_pmRA*``/``pmra_error``, ``e_pmDE``/...      mas/yr, mas
distance           ``DistPc``, ``distance_pc``, ``distance``       pc
member count       ``nbstars07``, ``n_members``, ``N``             stars
=================  ==============================================  ===========

A catalogue without a radius (CG20 has none) gets its cone from the distance by
:func:`cone_radius`: ``CONE_PHYSICAL_PC`` parsecs at the cluster's distance (from the
distance column, else 1/parallax), kept between ``CONE_FLOOR_ARCMIN`` and
``CONE_CEILING_ARCMIN``; without either, ``CONE_DEFAULT_ARCMIN``. The rule used is kept
on each target (``radius_rule``).

A negative RA in [-180, 0) (CG20 gives NGC 7789 at -0.666) is wrapped, with a ``note``.
A row with a bad value (a centre out of range or missing, a non-positive radius or
distance, an empty name or one without a letter or digit) is not dropped: its target
carries ``problem``, and the survey gives it an error row. A catalogue without rows is an
error.
"""

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from starmix.data.catalogue import COLUMN_NAMES, read_vizier_tsv
from starmix.data.clusters import ClusterReference
from starmix.data.input_checks import read_table

CONE_PHYSICAL_PC = 10.0
CONE_FLOOR_ARCMIN, CONE_CEILING_ARCMIN = 10.0, 30.0
CONE_DEFAULT_ARCMIN = 20.0
MAX_KEY_LENGTH = 200  # a results folder's name (file systems allow 255 bytes)
OPTIONAL_COLUMNS = {
    "radius": ("radius", "radius_arcmin", "r_arcmin"),
    "pmra_error": ("e_pmRA*", "e_pmRA", "pmra_error"),
    "pmdec_error": ("e_pmDE", "pmdec_error"),
    "parallax_error": ("e_plx", "e_Plx", "parallax_error"),
    "distance": ("DistPc", "distance_pc", "distance"),
    "n_members": ("nbstars07", "n_members", "N"),
}


@dataclass(frozen=True)
class SurveyTarget:
    """One cluster to survey: degrees, arcmin, mas/yr (pmra includes cos dec), mas and pc;
    None where the catalogue has no value. ``key`` names its results folder."""

    row: int
    name: str
    key: str
    ra: float | None
    dec: float | None
    radius_arcmin: float | None
    radius_rule: str
    pmra: float | None = None
    pmdec: float | None = None
    parallax: float | None = None
    pmra_error: float | None = None
    pmdec_error: float | None = None
    parallax_error: float | None = None
    distance_pc: float | None = None
    n_members: float | None = None
    source: str = ""
    problem: str | None = None
    note: str = ""

    def reference(self) -> ClusterReference | None:
        """The published values that start the fit, when the catalogue has them all."""
        values = (self.ra, self.dec, self.pmra, self.pmdec, self.parallax)
        if self.problem or any(value is None for value in values):
            return None
        return ClusterReference(self.name, *values, source=self.source)

    def record(self) -> dict:
        return asdict(self)


def cone_radius(distance_pc: float | None, parallax: float | None) -> tuple[float, str]:
    """The cone radius in arcmin for a catalogue without one, and the rule that gave it."""
    rule = (f"{CONE_PHYSICAL_PC:g} pc at the cluster's distance, kept within "
            f"{CONE_FLOOR_ARCMIN:g}-{CONE_CEILING_ARCMIN:g} arcmin")
    if distance_pc is None and parallax is not None and parallax > 0:
        distance_pc, rule = 1000.0 / parallax, rule + " (distance = 1/parallax)"
    if distance_pc is None:
        return CONE_DEFAULT_ARCMIN, f"default {CONE_DEFAULT_ARCMIN:g} arcmin (no distance)"
    radius = math.degrees(math.atan(CONE_PHYSICAL_PC / distance_pc)) * 60
    return min(max(radius, CONE_FLOOR_ARCMIN), CONE_CEILING_ARCMIN), rule


def folder_key(name: str) -> str:
    """A file-system-safe folder name for a cluster (``NGC 188`` -> ``NGC_188``); never one
    that starts with ``-`` (read as an option by shell tools) or ``.``."""
    key = re.sub(r"[^A-Za-z0-9.+-]+", "_", name.strip()).strip("_.-")
    return key or "unnamed"


def _name(cell) -> str:
    """A name cell as text: empty when the cell is empty (masked, or NaN in a numeric
    column), never astropy's ``--`` for a masked value."""
    if cell is None or np.ma.is_masked(cell):
        return ""
    if isinstance(cell, float | np.floating) and not math.isfinite(cell):
        return ""
    if isinstance(cell, bytes | np.bytes_):
        cell = cell.decode("utf-8", "replace")
    return str(cell).strip()


def read_survey_catalogue(path: str | Path, limit: int | None = None) -> list[SurveyTarget]:
    """The catalogue's rows as survey targets, in file order (the first ``limit`` rows)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CATALOGUE: file not found: {path}")
    if path.suffix.lower() in (".tsv", ".tab"):
        try:
            table = read_vizier_tsv(path)
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"CATALOGUE {path}: could not be read as a VizieR TSV table "
                             f"({err})") from None
    else:
        table = read_table(path, "CATALOGUE")
    columns = {key: next((n for n in names if n in table.colnames), None)
               for key, names in {**COLUMN_NAMES, **OPTIONAL_COLUMNS}.items()}
    missing = [key for key in ("name", "ra", "dec") if columns[key] is None]
    if missing:
        raise ValueError(f"CATALOGUE {path}: no {', '.join(missing)} column (looked for "
                         f"{[list(COLUMN_NAMES[k]) for k in missing]}; the file has "
                         f"{table.colnames})")
    if len(table) == 0:
        raise ValueError(f"CATALOGUE {path}: no rows (the file has the columns "
                         f"{table.colnames} but no clusters)")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    rows = table if limit is None else table[:limit]
    targets, seen = [], {}
    for number, row in enumerate(rows):
        values = {key: _value(row[column]) if column else None
                  for key, column in columns.items() if key != "name"}
        name = _name(row[columns["name"]])
        targets.append(_target(number, name, values, str(path), seen, columns["name"]))
    return targets


def _target(number: int, name: str, values: dict, source: str, seen: dict,
            name_column: str = "name") -> SurveyTarget:
    problems, notes = [], []
    ra, dec = values["ra"], values["dec"]
    if ra is not None and -180 <= ra < 0:  # the -180..180 convention
        notes.append(f"ra {ra:g} read as {ra % 360:g} degrees")
        ra = ra % 360
    if ra is None or not 0 <= ra < 360:
        problems.append(f"ra {_show(ra)} is not in [0, 360) degrees")
    if dec is None or not -90 <= dec <= 90:
        problems.append(f"dec {_show(dec)} is not in [-90, 90] degrees")
    for key, unit in (("radius", "arcmin"), ("distance", "pc")):
        if values[key] is not None and not values[key] > 0:
            problems.append(f"{key} {_show(values[key])} {unit} is not positive")
    key = folder_key(name)
    if not name:
        problems.append(f"the name (column {name_column!r}) is empty")
    elif not any(character.isalnum() for character in name):
        problems.append(f"the name {name!r} (column {name_column!r}) has no letter or digit "
                        "to name its results folder")
    elif len(key) > MAX_KEY_LENGTH:
        problems.append(f"the name (column {name_column!r}) is {len(name)} characters long; "
                        f"a results folder name takes at most {MAX_KEY_LENGTH}")
    elif key.upper() in seen:
        problems.append(f"the same folder name as row {seen[key.upper()]} ({key})")
    else:
        seen[key.upper()] = number
    if values["radius"] is not None and values["radius"] > 0:
        radius, rule = values["radius"], "from the catalogue's radius column"
    else:
        radius, rule = cone_radius(values["distance"] if (values["distance"] or 0) > 0
                                   else None, values["parallax"])
    return SurveyTarget(
        row=number, name=name or f"row {number}", key=key, ra=ra, dec=dec,
        radius_arcmin=round(radius, 3), radius_rule=rule,
        pmra=values["pmra"], pmdec=values["pmdec"], parallax=values["parallax"],
        pmra_error=values["pmra_error"], pmdec_error=values["pmdec_error"],
        parallax_error=values["parallax_error"], distance_pc=values["distance"],
        n_members=values["n_members"], source=source,
        problem="; ".join(problems) or None, note="; ".join(notes))


def _value(cell) -> float | None:
    """A finite float, or None (empty, masked, NaN or text)."""
    try:
        value = float(cell)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _show(value) -> str:
    return "missing or not a number" if value is None else f"{value:g}"
