"""Published member lists (Cantat-Gaudin et al. 2018 style) and their match to a field table.

The M67 and NGC 188 field tables carry no source ids, and their astrometry is Gaia DR3
while the CG18 lists are Gaia DR2, so rows cannot be joined on a key. A member is matched
to the field star nearest to it in (G, pmra, pmdec, parallax), each difference scaled by a
tolerance (``MATCH_TOLERANCE``: 0.05 mag, 0.5 mas/yr, 0.5 mas; DR2 and DR3 differ by
about that much at G = 18), among stars within the tolerance in every coordinate; each
field star is matched at most once (nearest member first). The match rate is reported,
never assumed.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree

from starmix.data.input_checks import DataValidationError, read_table, require_columns

MEMBER_COLUMNS = ("phot_g_mean_mag", "pmra", "pmdec", "parallax", "PMemb")
MATCH_TOLERANCE = {"phot_g_mean_mag": 0.05, "pmra": 0.5, "pmdec": 0.5, "parallax": 0.5}


@dataclass(frozen=True)
class MemberMatch:
    """``field_index[j]`` is the field row of member j, or -1 if none matched."""

    field_index: np.ndarray
    member_probability: np.ndarray
    magnitude: np.ndarray

    @property
    def rate(self) -> float:
        return float(np.mean(self.field_index >= 0))

    def labels(self, n_field: int, min_probability: float = 0.7) -> np.ndarray:
        """Boolean per field row: matched to a member with PMemb >= ``min_probability``."""
        labels = np.zeros(n_field, dtype=bool)
        keep = (self.field_index >= 0) & (self.member_probability >= min_probability)
        labels[self.field_index[keep]] = True
        return labels


def load_member_list(path: str | Path) -> Table:
    """Read a CG18-style member list (CSV with ``MEMBER_COLUMNS``)."""
    table = read_table(path, "member list")
    require_columns(table.colnames, MEMBER_COLUMNS)
    return table


def match_members(field: Table, members: Table) -> MemberMatch:
    """Match each member to one field row (see the module docstring)."""
    names = list(MATCH_TOLERANCE)
    scale = np.array([MATCH_TOLERANCE[name] for name in names])

    def scaled(table):
        values = np.stack([np.asarray(table[name], float) for name in names], axis=-1)
        return values / scale

    field_values, member_values = scaled(field), scaled(members)
    finite = np.isfinite(field_values).all(axis=1)
    if not finite.any():
        raise DataValidationError(", ".join(names), "have no finite rows to match",
                                  len(field), len(field))
    rows = np.flatnonzero(finite)
    tree = cKDTree(field_values[finite])
    distance, nearest = tree.query(np.nan_to_num(member_values, nan=1e9), k=8,
                                   distance_upper_bound=2.0)
    index = np.full(len(members), -1)
    taken = set()
    for j in np.argsort(distance[:, 0]):
        for dist, candidate in zip(distance[j], nearest[j], strict=True):
            if not np.isfinite(dist):
                break
            row = rows[candidate]
            close = np.all(np.abs(field_values[row] - member_values[j]) <= 1.0)
            if close and row not in taken:
                index[j] = row
                taken.add(row)
                break
    return MemberMatch(index, np.asarray(members["PMemb"], float),
                       np.asarray(members["phot_g_mean_mag"], float))
