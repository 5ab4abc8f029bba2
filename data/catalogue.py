"""Cluster catalogues from a user's file: published centres, motions and parallaxes by name.

Reads a VizieR TSV (``#`` comment lines, a header row, a units row and a dashes row, as
VizieR writes Cantat-Gaudin et al. 2020's table 1) or any CSV/ECSV/FITS table with the
same information. Columns are found by name: cluster name (``Cluster``, ``Name``), centre
(``RA_ICRS``/``ra``, ``DE_ICRS``/``dec``, degrees), mean proper motion (``pmRA*``/``pmRA``/
``pmra`` including cos dec, ``pmDE``/``pmdec``, mas/yr) and parallax (``plx``/
``parallax``, mas). Names match as in :mod:`starmix.data.clusters` (case, spaces and underscores
ignored: ``NGC_188`` is ``NGC 188``).
"""

import math
from pathlib import Path

import numpy as np
from astropy.table import Table

from starmix.data.clusters import ClusterReference, normalise_name
from starmix.data.input_checks import read_table

COLUMN_NAMES = {
    "name": ("Cluster", "Name", "name", "cluster"),
    "ra": ("RA_ICRS", "RAJ2000", "ra", "RA"),
    "dec": ("DE_ICRS", "DEJ2000", "dec", "DEC", "Dec"),
    "pmra": ("pmRA*", "pmRA", "pmra"),
    "pmdec": ("pmDE", "pmdec"),
    "parallax": ("plx", "Plx", "parallax"),
}


def read_vizier_tsv(path: Path) -> Table:
    """A VizieR TSV: comment lines, header, units row and dashes row, then data rows."""
    lines = [line.rstrip("\n") for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    if len(lines) < 3:
        raise ValueError(f"--catalogue {path}: not a VizieR TSV table (no header rows)")
    header = [name.strip() for name in lines[0].split("\t")]
    rows = [line.split("\t") for line in lines[1:]]
    rows = [row for row in rows if not set("".join(row).strip()) <= set("- ")]  # dashes
    if rows and not any(_is_number(cell) for cell in rows[0][1:]):
        rows = rows[1:]  # units row
    bad = [n for n, row in enumerate(rows) if len(row) != len(header)]
    if bad:
        raise ValueError(f"--catalogue {path}: {len(bad)} of {len(rows)} rows do not have "
                         f"the {len(header)} columns of the header")
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in header]
    table = Table()
    for name, values in zip(header, columns, strict=True):
        cells = [value.strip() for value in values]
        numbers = [_number(cell) for cell in cells]
        table[name] = numbers if all(n is not None for n in numbers) else cells
    return table


def _number(cell: str):
    try:
        return float(cell) if cell else math.nan
    except ValueError:
        return None


def _is_number(cell: str) -> bool:
    return _number(cell.strip()) is not None and cell.strip() != ""


def read_catalogue(path: str | Path) -> dict[str, ClusterReference]:
    """Every cluster of a catalogue file, by normalised name."""
    path = Path(path)
    if path.suffix.lower() not in (".tsv", ".tab"):
        table = read_table(path, "--catalogue")
    elif not path.is_file():
        raise FileNotFoundError(f"--catalogue: file not found: {path}")
    else:
        try:
            table = read_vizier_tsv(path)
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"--catalogue {path}: could not be read as a VizieR TSV table "
                             f"({err})") from None
    found = {}
    for key, candidates in COLUMN_NAMES.items():
        match = next((name for name in candidates if name in table.colnames), None)
        if match is None:
            raise ValueError(f"--catalogue {path}: no {key} column (looked for "
                             f"{list(candidates)}; the file has {table.colnames})")
        found[key] = match
    references = {}
    for row in table:
        values = [float(row[found[key]]) for key in ("ra", "dec", "pmra", "pmdec", "parallax")]
        if not np.all(np.isfinite(values)):
            continue
        name = str(row[found["name"]]).strip()
        references[normalise_name(name)] = ClusterReference(name, *values, source=str(path))
    if not references:
        raise ValueError(f"--catalogue {path}: none of its {len(table)} rows has a finite "
                         "centre, proper motion and parallax")
    return references
