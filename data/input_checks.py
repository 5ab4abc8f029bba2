"""Input checks that fail with an error naming the column and the number of bad rows.

Every check raises :class:`DataValidationError`, whose message is written for a person
("column 'y_err': 3 of 32 rows are not positive"), and whose ``column``, ``reason`` and
``n_bad`` attributes let callers count or drop bad rows instead.
"""

import gzip
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


class DataValidationError(ValueError):
    """Bad input data: names the column, the reason and how many rows are bad."""

    def __init__(self, column: str, reason: str, n_bad: int, n_total: int):
        self.column = column
        self.reason = reason
        self.n_bad = n_bad
        self.n_total = n_total
        rows = f"{n_bad} of {n_total} rows " if n_total else ""
        super().__init__(f"column {column!r}: {rows}{reason}")


class DataFileError(ValueError):
    """A file that cannot be read as a table: the message names the file and why."""


TABLE_FORMATS = ("CSV (.csv, .csv.gz), ECSV, FITS (.fits, .fits.gz, .fit), VOTable (.vot, "
                 ".xml) or whitespace-separated text with a '#' header line (.dat, .txt)")


def is_table(source) -> bool:
    """Whether ``source`` is a table object (astropy ``Table``, pyia ``GaiaData`` or pandas
    ``DataFrame``) rather than a file path."""
    return hasattr(source, "colnames") or _is_dataframe(source)


def _is_dataframe(source) -> bool:
    return type(source).__module__.startswith("pandas") and hasattr(source, "columns")


def source_name(source) -> str:
    """How a data source is named in messages and run records: the file path, or a
    description of a table given in Python."""
    if source is None:
        return "built-in simulated data"
    if is_table(source):
        origin = getattr(source, "meta", {}).get("source")
        return f"{origin if isinstance(origin, str) else 'table given in Python'} " \
               f"({len(source)} rows)"
    return str(source)


def read_table(path, what: str = "data file"):
    """Read a table file into an astropy ``Table``; the format follows the suffix. A table
    object (:func:`is_table`) is copied into a new astropy ``Table``, so the caller's stays
    untouched.

    Any failure (missing file, truncated gzip, random bytes, a format astropy cannot
    guess) is a :class:`DataFileError` (or ``FileNotFoundError``) naming the file."""
    from astropy.table import Table

    if _is_dataframe(path):
        return Table.from_pandas(path)
    if is_table(path):
        return Table(getattr(path, "data", path), copy=True)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith((".csv", ".csv.gz")):
        reader = {"format": "ascii.csv"}
    elif suffixes.endswith((".fits", ".fits.gz", ".fit", ".fit.gz", ".fz")):
        reader = {"format": "fits", "unit_parse_strict": "silent"}
    elif suffixes.endswith(".ecsv") or suffixes.endswith(".ecsv.gz"):
        reader = {"format": "ascii.ecsv"}
    elif suffixes.endswith((".vot", ".xml", ".votable")):
        reader = {"format": "votable"}
    elif suffixes.endswith((".dat", ".txt", ".dat.gz", ".txt.gz")):
        reader = {"format": "ascii"}
    else:
        reader = {}
    try:
        table = Table.read(path, **reader)
    except (OSError, EOFError, ValueError, TypeError, IndexError, KeyError,
            UnicodeDecodeError, gzip.BadGzipFile, zlib.error) as err:
        kind = reader.get("format", "a table (format guessed from the contents)")
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise DataFileError(f"{what} {path}: cannot be read as {kind}: {reason}. starmix "
                            f"reads {TABLE_FORMATS}") from None
    except Exception as err:  # astropy raises its own classes for some corrupt files
        raise DataFileError(f"{what} {path}: cannot be read as a table "
                            f"({type(err).__name__}: {str(err)[:200]})") from None
    if len(table.colnames) == 0:
        raise DataFileError(f"{what} {path}: the file holds no columns")
    return table


def require_columns(available: Sequence[str], required: Sequence[str]) -> None:
    """Fail on the first required column that is absent from ``available``."""
    missing = [name for name in required if name not in available]
    if missing:
        raise DataValidationError(
            missing[0],
            f"is missing (the table has: {', '.join(available) or 'no columns'})",
            n_bad=0,
            n_total=0,
        )


NOT_NUMBERS = "are not numbers"


def as_float_column(name: str, values, lenient: bool = False):
    """Return ``values`` as a 1-D float array; masked (blank) cells become NaN.

    Fails clearly on text or a wrong shape. With ``lenient``, returns (array, mask of the
    cells that are text, not numbers) with those cells NaN, so that they can be dropped
    and counted as "are not numbers" rather than as "not finite".
    """
    try:
        array = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan)
        text = np.zeros(len(array), dtype=bool) if np.ndim(array) else None
    except (TypeError, ValueError):
        text = np.array([not _is_number(value) for value in values], dtype=bool)
        if not lenient:
            example = f" (e.g. '{np.asarray(values)[text][0]}')" if text.any() else ""
            raise DataValidationError(name, f"{NOT_NUMBERS}{example}", int(text.sum()),
                                      len(values)) from None
        array = np.array([np.nan if bad or value is np.ma.masked else float(value)
                          for value, bad in zip(values, text, strict=True)], dtype=float)
    if array.ndim != 1:
        raise DataValidationError(name, f"must form a 1-D column, got shape {array.shape}", 0, 0)
    return (array, text) if lenient else array


def _is_number(value) -> bool:
    if value is np.ma.masked:
        return True  # a blank cell: becomes NaN and is reported as not finite
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def bad_row_masks(
    columns: Mapping[str, np.ndarray],
    positive: Sequence[str] = (),
    correlations: Sequence[str] = (),
) -> dict[tuple[str, str], np.ndarray]:
    """Boolean masks of bad rows, keyed by (column, reason); only non-empty masks are kept.

    Checks every column for non-finite values, the ``positive`` columns for values <= 0
    and the ``correlations`` columns for |value| > 1.
    """
    masks = {}
    for name, values in columns.items():
        finite = np.isfinite(values)
        masks[(name, "are not finite (NaN or inf)")] = ~finite
        if name in positive:
            masks[(name, "are not positive")] = finite & (values <= 0)
        if name in correlations:
            masks[(name, "have |correlation| > 1")] = finite & (np.abs(values) > 1)
    return {key: mask for key, mask in masks.items() if mask.any()}


def row_problems(
    columns: Mapping[str, np.ndarray],
    text: Mapping[str, np.ndarray] | None = None,
    positive: Sequence[str] = (),
    correlations: Sequence[str] = (),
) -> dict[tuple[str, str], np.ndarray]:
    """Bad-row masks by (column, reason): the cells that are text (``text``: column ->
    mask, from :func:`as_float_column` with ``lenient``) under "are not numbers", then
    :func:`bad_row_masks` of the numbers, a text cell counted once (as text only)."""
    masks = {(name, NOT_NUMBERS): mask for name, mask in (text or {}).items() if mask.any()}
    for (name, reason), mask in bad_row_masks(columns, positive, correlations).items():
        if (name, NOT_NUMBERS) in masks:
            mask = mask & ~masks[(name, NOT_NUMBERS)]
        if mask.any():
            masks[(name, reason)] = mask
    return masks


def drop_rows(masks: Mapping[tuple[str, str], np.ndarray], n_rows: int,
              columns: str) -> tuple[np.ndarray, dict[str, int]]:
    """(rows to keep, {"column: reason": rows dropped, ..., "total": union}) for
    ``--drop-invalid``; a row bad for two reasons counts under both. Nothing left is a
    :class:`DataValidationError` naming ``columns``."""
    bad = np.zeros(n_rows, dtype=bool)
    dropped = {}
    for (name, reason), mask in masks.items():
        dropped[f"{name}: {reason}"] = int(mask.sum())
        bad |= mask
    if n_rows and bad.all():
        raise DataValidationError(columns, "are invalid: nothing left to fit", int(bad.sum()),
                                  n_rows)
    if bad.any():
        dropped["total"] = int(bad.sum())
    return ~bad, dropped


def duplicate_mask(values: np.ndarray) -> np.ndarray:
    """True for every repeat of a value already seen earlier in ``values``."""
    _, first = np.unique(values, return_index=True)
    mask = np.ones(len(values), dtype=bool)
    mask[first] = False
    return mask


def raise_first(masks: Mapping[tuple[str, str], np.ndarray], n_rows: int) -> None:
    """Raise :class:`DataValidationError` for the first non-empty bad-row mask."""
    for (name, reason), mask in masks.items():
        if mask.any():
            raise DataValidationError(name, reason, int(mask.sum()), n_rows)


def validate_columns(
    columns: Mapping[str, np.ndarray],
    positive: Sequence[str] = (),
    correlations: Sequence[str] = (),
) -> None:
    """Raise for empty or mismatched columns, then for the first kind of bad row found."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        first, *rest = lengths.items()
        other = next(item for item in rest if item[1] != first[1])
        raise DataValidationError(
            other[0], f"do not match column {first[0]!r} ({first[1]} rows)", other[1], other[1]
        )
    n_rows = next(iter(lengths.values()), 0)
    if n_rows == 0:
        raise DataValidationError(next(iter(lengths), "<none>"), "has no rows: empty input", 0, 0)
    raise_first(bad_row_masks(columns, positive, correlations), n_rows)
