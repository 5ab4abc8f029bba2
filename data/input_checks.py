"""Input checks that fail with an error naming the column and the number of bad rows.

Every check raises :class:`DataValidationError`, whose message is written for a person
("column 'y_err': 3 of 32 rows are not positive"), and whose ``column``, ``reason`` and
``n_bad`` attributes let callers count or drop bad rows instead.
"""

import codecs
import csv
import errno
import gzip
import os
import re
import stat
import warnings
import zlib
from collections import Counter
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
ASCII_FORMATS = ("ascii.csv", "ascii.ecsv", "ascii")
BYTE_ORDER_MARKS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                    (codecs.BOM_UTF16_BE, "utf-16"))


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


def check_regular_file(path: Path, what: str, kind: str = "a table file",
                       error: type[Exception] | None = None) -> None:
    """Fail unless ``path`` is a regular file (a symbolic link to one counts), without
    opening it: a FIFO or a device would block or never end. A missing file is a
    ``FileNotFoundError``; a directory, FIFO, device, socket or symbolic link loop is
    ``error`` (default :class:`DataFileError`), each a one-line message naming ``path``."""
    error = error or DataFileError
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise FileNotFoundError(f"{what} {path} is a symbolic link to a missing file "
                                    f"({os.readlink(path)})") from None
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise error(f"{what} {path} is a symbolic link loop") from None
        raise error(f"{what} {path} cannot be opened: {err.strerror or err}") from None
    if stat.S_ISDIR(mode):
        raise error(f"{what} {path} is a directory, not {kind}")
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            raise error(f"{what} {path} is {name}, not a regular file: give {kind}")
    if not stat.S_ISREG(mode):
        raise error(f"{what} {path} is not a regular file: give {kind}")


def table_reader(path: Path, what: str = "data file") -> dict:
    """Table.read arguments for ``path``, chosen by its suffix (``.gz`` looked through).
    A name without a format suffix is a :class:`DataFileError`; an unknown suffix leaves
    the format for astropy to guess."""
    suffixes = [suffix.lower() for suffix in path.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if not suffix:
        raise DataFileError(f"{what} {path} has no suffix: starmix reads {TABLE_FORMATS}; "
                            "rename it with the suffix of its format (e.g. stars.csv)")
    for known, reader in (((".csv",), {"format": "ascii.csv"}),
                          ((".fits", ".fit", ".fz"),
                           {"format": "fits", "unit_parse_strict": "silent"}),
                          ((".ecsv",), {"format": "ascii.ecsv"}),
                          ((".vot", ".xml", ".votable"), {"format": "votable"}),
                          ((".dat", ".txt"), {"format": "ascii"})):
        if suffix in known:
            return dict(reader)
    return {}


def read_table(path, what: str = "data file"):
    """Read a table file into an astropy ``Table``; the format follows the suffix. A table
    object (:func:`is_table`) is copied into a new astropy ``Table``, so the caller's stays
    untouched.

    Text files may start with a byte-order mark (UTF-8 or UTF-16) and end lines with CRLF.
    Any failure (missing file, a directory, FIFO or device, no suffix, truncated gzip,
    random bytes, a format astropy cannot guess, a column name that appears twice) is a
    :class:`DataFileError` (or ``FileNotFoundError``) with a one-line message naming the
    file."""
    from astropy.table import Table

    if _is_dataframe(path):
        return Table.from_pandas(path)
    if is_table(path):
        return Table(getattr(path, "data", path), copy=True)
    path = Path(path)
    check_regular_file(path, what)
    reader = table_reader(path, what)
    encoding = None
    if reader.get("format", "ascii") in ASCII_FORMATS:
        head = _first_bytes(path)
        encoding = next((name for mark, name in BYTE_ORDER_MARKS if head.startswith(mark)),
                        None)
        if encoding:
            reader["encoding"] = encoding
    try:
        table = Table.read(path, **reader)
    except Exception as err:  # astropy raises many classes for corrupt files
        if reader.get("format") == "fits":
            _raise_duplicates(_fits_names(path), path, what)
        kind = reader.get("format", "a table (format guessed from the contents)")
        raise DataFileError(f"{what} {path}: cannot be read as {kind}: {_first_line(err)}. "
                            f"starmix reads {TABLE_FORMATS}") from None
    if table.colnames and table.colnames[0].startswith("\ufeff"):
        first = table.colnames[0]
        if first.lstrip("\ufeff") not in table.colnames:
            table.rename_column(first, first.lstrip("\ufeff"))
    if len(table.colnames) == 0:
        raise DataFileError(f"{what} {path}: the file holds no columns")
    if any(_renamed_duplicate(name, table.colnames) for name in table.colnames):
        if reader.get("format") == "votable":
            _raise_duplicates(_votable_names(path), path, what)
        elif reader.get("format", "ascii") in ASCII_FORMATS:
            _raise_duplicates(_header_names(path, table.colnames, encoding), path, what)
    return table


def _first_line(err: Exception) -> str:
    """The first non-blank line of an exception's message (at most 200 characters)."""
    lines = [line.strip(" *") for line in str(err).splitlines() if line.strip(" *")]
    return lines[0][:200].rstrip(".") if lines else type(err).__name__


def _first_bytes(path: Path, size: int = 4) -> bytes:
    """The first ``size`` bytes of a file, decompressed when it is gzipped."""
    try:
        with path.open("rb") as handle:
            head = handle.read(size)
        if head.startswith(b"\x1f\x8b"):
            with gzip.open(path, "rb") as handle:
                head = handle.read(size)
    except (OSError, EOFError, zlib.error):
        return b""
    return head


def _renamed_duplicate(name: str, names: Sequence[str]) -> bool:
    """Whether ``name`` looks like astropy's rename of a repeated name (``pmra_1``)."""
    match = re.fullmatch(r"(.+)_\d+", name)
    return match is not None and match.group(1) in names


def _raise_duplicates(names: Sequence[str] | None, path: Path, what: str) -> None:
    """Raise a :class:`DataFileError` for the first name that appears more than once."""
    counts = Counter(names or ())
    for name in names or ():
        if counts[name] > 1:
            raise DataFileError(f"{what} {path}: column {name!r} appears {counts[name]} times; "
                                "every column needs its own name")


def _deduplicated(names: Sequence[str]) -> list[str]:
    """astropy's renaming of repeated names: the second ``pmra`` becomes ``pmra_1``."""
    new, seen = [], set()
    for name in names:
        base, number = name, 1
        while name in seen:
            name, number = f"{base}_{number}", number + 1
        new.append(name)
        seen.add(name)
    return new


def _header_names(path: Path, colnames: Sequence[str], encoding: str | None,
                  max_lines: int = 100_000) -> list[str] | None:
    """The column names as written in a text file's header line (the first line that is
    not blank or a '#' comment, or the comment line just before it), such that astropy's
    renaming of repeats gives ``colnames``; None when no line matches."""
    candidates, last_comment = [], None
    try:
        with path.open("rb") as handle:
            opener = gzip.open if handle.read(2) == b"\x1f\x8b" else open
        with opener(path, "rt", encoding=encoding or "utf-8", errors="replace") as handle:
            for number, line in enumerate(handle):
                text = line.strip().lstrip("\ufeff")
                if number > max_lines:
                    break
                if not text:
                    continue
                if text.startswith("#"):
                    last_comment = text.lstrip("#")
                    continue
                candidates = [text] + ([last_comment] if last_comment else [])
                break
    except (OSError, EOFError, zlib.error, UnicodeError):
        return None
    for text in candidates:
        for delimiter in (",", "\t", "|", " "):
            names = next(csv.reader([text], delimiter=delimiter, skipinitialspace=True), [])
            names = [name.strip() for name in names if delimiter != " " or name.strip()]
            if _deduplicated(names) == list(colnames):
                return names
    return None


def _quietly(read):
    """``read()``, or None when it fails (a file astropy cannot open: the read error
    stands), with astropy's warnings silenced."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read()
    except Exception:  # noqa: BLE001
        return None


def _fits_names(path: Path) -> list[str] | None:
    """The TTYPE names of the first table extension of a FITS file (None if unreadable)."""
    from astropy.io import fits

    def read():
        with fits.open(path) as hdus:
            for hdu in hdus:
                if isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
                    header = hdu.header
                    return [str(header.get(f"TTYPE{i}", "")).strip()
                            for i in range(1, int(header.get("TFIELDS", 0)) + 1)]
        return None
    return _quietly(read)


def _votable_names(path: Path) -> list[str] | None:
    """The FIELD names of the first table of a VOTable (None if unreadable)."""
    from astropy.io.votable import parse

    return _quietly(lambda: [field.name for field in parse(str(path)).get_first_table().fields])


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
    and the ``correlations`` columns for ``|value| > 1``.
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
