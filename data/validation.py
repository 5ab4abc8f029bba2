"""Input checks that fail with an error naming the column and the number of bad rows.

Every check raises :class:`DataValidationError`, whose message is written for a person
("column 'y_err': 3 of 32 rows are not positive"), and whose ``column``, ``reason`` and
``n_bad`` attributes let callers count or drop bad rows instead.
"""

from collections.abc import Mapping, Sequence

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


def as_float_column(name: str, values) -> np.ndarray:
    """Return ``values`` as a 1-D float array; masked (blank) cells become NaN.

    Fails clearly on text or a wrong shape.
    """
    try:
        array = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan)
    except (TypeError, ValueError):
        not_numbers = [value for value in values if not _is_number(value)]
        example = f" (e.g. '{not_numbers[0]}')" if not_numbers else ""
        raise DataValidationError(name, f"are not numbers{example}", len(not_numbers),
                                  len(values)) from None
    if array.ndim != 1:
        raise DataValidationError(name, f"must form a 1-D column, got shape {array.shape}", 0, 0)
    return array


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
