"""Samples for the density workflow: a table's columns with optional errors, and simulated
samples with known truth (a 1-D mixture with errors, two age columns, the "two galaxies").

A sample is N objects with d = 1 to 3 values each (any units; ages in Gyr) and, when
errors are given, a diagonal (N, d, d) error covariance from 1-sigma errors.
"""

from dataclasses import dataclass, field

import numpy as np

from starmix.data.input_checks import (
    DataValidationError,
    as_float_column,
    drop_rows,
    raise_first,
    read_table,
    require_columns,
    row_problems,
    source_name,
)

AGE_COLUMNS = ("Joyce_age", "Bensby_age")
AGE_OF_UNIVERSE = 13.8  # Gyr (Planck 2018: 13.79 ± 0.02)


@dataclass(frozen=True)
class DensityData:
    """(N, d) ``values`` named by ``columns``, with (N, d, d) ``error_cov`` or None.

    ``truth`` holds the generating mixture of simulated data (``w`` (K,), ``mean`` (K, d),
    ``cov`` (K, d, d)); ``dropped`` counts the rows ``--drop-invalid`` removed, by reason;
    ``errors`` says where the errors came from (column names or constants)."""

    values: np.ndarray
    columns: list[str]
    error_cov: np.ndarray | None = None
    source: str = "simulated"
    truth: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def dim(self) -> int:
        return self.values.shape[1]

    def error_sd(self) -> np.ndarray:
        """(N, d) 1-sigma errors (zeros without errors)."""
        if self.error_cov is None:
            return np.zeros_like(self.values)
        return np.sqrt(np.diagonal(self.error_cov, axis1=1, axis2=2))


def parse_errors(errors, columns: list[str]) -> list[str | float] | None:
    """``--errors``: one entry per column, each an error column's name or a constant
    1-sigma error (a number, same units as the values); None for no errors."""
    if errors is None:
        return None
    entries = [errors] if isinstance(errors, (str, float, int)) else list(errors)
    entries = [part.strip() if isinstance(part, str) else part for entry in entries
               for part in (entry.split(",") if isinstance(entry, str) else [entry])]
    if len(entries) != len(columns):
        raise ValueError(f"--errors needs one entry per column of --columns ({len(columns)}: "
                         f"{', '.join(columns)}), got {len(entries)}")
    parsed = []
    for entry in entries:
        try:
            number = float(entry)
        except (TypeError, ValueError):
            parsed.append(str(entry))
            continue
        if not np.isfinite(number) or number <= 0:
            raise ValueError(f"--errors: a constant error must be a positive number, got {entry}")
        parsed.append(number)
    return parsed


def load_density_table(path, columns: list[str], errors=None,
                       drop_invalid: bool = False) -> DensityData:
    """Read ``columns`` (1 to 3) of a table file (any format :func:`read_table` reads) and
    their errors (:func:`parse_errors`). Text, NaN or inf, and errors <= 0 are an error
    naming the column and the count of bad rows, or with ``drop_invalid`` are dropped and
    counted per reason in ``dropped``."""
    columns = list(columns)
    if not 1 <= len(columns) <= 3:
        raise ValueError(f"--columns takes 1 to 3 columns, got {len(columns)}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"--columns names a column twice: {', '.join(columns)}")
    error_entries = parse_errors(errors, columns)
    table = read_table(path, "data file")
    error_columns = [entry for entry in error_entries or [] if isinstance(entry, str)]
    require_columns(table.colnames, columns + error_columns)
    arrays, text = {}, {}
    for name in dict.fromkeys(columns + error_columns):
        arrays[name], text[name] = as_float_column(name, table[name], lenient=True)
    masks = row_problems(arrays, text, positive=error_columns)
    n_rows = len(table)
    if n_rows == 0:
        raise DataValidationError(columns[0], "has no rows: empty input", 0, 0)
    dropped = {}
    if drop_invalid:
        keep, dropped = drop_rows(masks, n_rows, ", ".join(arrays))
        arrays = {name: array[keep] for name, array in arrays.items()}
    else:
        raise_first(masks, n_rows)
    values = np.column_stack([arrays[name] for name in columns])
    error_cov, described = None, []
    if error_entries is not None:
        sd = np.column_stack([arrays[e] if isinstance(e, str) else np.full(len(values), e)
                              for e in error_entries])
        error_cov = np.einsum("ni,ij->nij", sd**2, np.eye(len(columns)))
        described = [e if isinstance(e, str) else f"constant {e:g}" for e in error_entries]
    return DensityData(values, columns, error_cov, source=source_name(path), dropped=dropped,
                       errors=described)


def log_values(data: DensityData) -> DensityData:
    """The natural logarithm of every value (for positive quantities such as ages), errors
    carried to first order (σ_ln = σ / x). A value <= 0 is an error naming its column."""
    for j, name in enumerate(data.columns):
        bad = data.values[:, j] <= 0
        if bad.any():
            raise DataValidationError(name, "are not positive: --log needs positive values",
                                      int(bad.sum()), len(data))
    error_cov = None
    if data.error_cov is not None:
        scale = 1 / data.values
        error_cov = data.error_cov * scale[:, :, None] * scale[:, None, :]
    truth = {}  # a simulated truth in linear units has no Gaussian-mixture form in logs
    return DensityData(np.log(data.values), [f"ln_{name}" for name in data.columns],
                       error_cov, data.source, truth, data.dropped, data.errors)


def count_outside(values: np.ndarray, lower: float | None, upper: float | None) -> dict:
    """How many values lie below ``lower`` and above ``upper`` (None: no bound)."""
    values = np.asarray(values, float)
    return {"below": int((values < lower).sum()) if lower is not None else 0,
            "above": int((values > upper).sum()) if upper is not None else 0}


def draw_mixture(rng, truth: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, (n, d) values) from the mixture ``truth`` (w, mean, cov)."""
    labels = rng.choice(len(truth["w"]), size=n, p=np.asarray(truth["w"]))
    means, covs = np.asarray(truth["mean"], float), np.asarray(truth["cov"], float)
    factors = np.linalg.cholesky(covs)[labels]
    noise = rng.standard_normal((n, means.shape[1]))
    return labels, means[labels] + np.einsum("nij,nj->ni", factors, noise)


SIMULATED_DENSITY = {"w": [0.6, 0.4], "mean": [[4.0], [10.0]], "cov": [[[2.25]], [[4.0]]]}


def simulate_density(n: int = 300, seed: int = 42, error_range=(0.5, 1.5),
                     truth: dict | None = None) -> DensityData:
    """The density workflow's built-in sample: ``n`` values from ``truth`` (default
    0.6 N(4, 1.5²) + 0.4 N(10, 2²), ages-like, Gyr), each with a 1-sigma error drawn
    uniformly from ``error_range`` and added to it."""
    truth = truth or SIMULATED_DENSITY
    rng = np.random.default_rng(seed)
    _, true = draw_mixture(rng, truth, n)
    sd = rng.uniform(*error_range, size=true.shape)
    values = true + sd * rng.standard_normal(true.shape)
    error_cov = np.einsum("ni,ij->nij", sd**2, np.eye(true.shape[1]))
    return DensityData(values, ["x"] if true.shape[1] == 1 else
                       [f"x{j + 1}" for j in range(true.shape[1])], error_cov,
                       source=f"built-in simulated sample (seed {seed})",
                       truth={key: np.asarray(value, float) for key, value in truth.items()},
                       errors=["simulated"] * true.shape[1])


# Two known, different age distributions, each a mixture in ln(age / Gyr) (the ages
# preset fits ln(age) by default): Joyce-like, mean age 9.8 Gyr; Bensby-like, 6.5 Gyr.
SIMULATED_AGES = {
    "Joyce_age": {"w": [0.4, 0.6], "mean": [[np.log(6.0)], [np.log(12.0)]],
                  "cov": [[[0.09]], [[0.0144]]]},
    "Bensby_age": {"w": [0.5, 0.5], "mean": [[np.log(3.5)], [np.log(9.0)]],
                   "cov": [[[0.1225]], [[0.04]]]},
}


def simulate_ages(n: int = 91, seed: int = 42):
    """An astropy Table shaped like ``stellar_ages.dat`` (columns ``Joyce_age``,
    ``Bensby_age``, Gyr, no errors), each column drawn from its own known mixture in
    ln(age) (``SIMULATED_AGES``, in ``table.meta["truth_ln_age"]``)."""
    from astropy.table import Table

    rng = np.random.default_rng(seed)
    table = Table({name: np.exp(draw_mixture(rng, truth, n)[1][:, 0])
                   for name, truth in SIMULATED_AGES.items()})
    table.meta["source"] = f"built-in simulated ages (seed {seed})"
    table.meta["truth_ln_age"] = SIMULATED_AGES
    return table


def two_galaxies(n: int = 3000, seed: int = 42) -> DensityData:
    """The 2-D lesson: ``n`` points from a spherical unit Gaussian at (5, 5) and ``n`` from
    an inclined disc, standard normals z times C = [[0, -0.7], [3.5, 0.7]] (x = z C, as in
    scikit-learn's mixture example: covariance CᵀC), no errors. Component order follows
    the model's guard (narrower first along x1: the sphere, then the disc)."""
    rng = np.random.default_rng(seed)
    c = np.array([[0.0, -0.7], [3.5, 0.7]])
    sphere = rng.standard_normal((n, 2)) + 5.0
    disc = rng.standard_normal((n, 2)) @ c
    truth = {"w": np.array([0.5, 0.5]), "mean": np.array([[5.0, 5.0], [0.0, 0.0]]),
             "cov": np.array([np.eye(2), c.T @ c])}
    return DensityData(np.concatenate([sphere, disc]), ["x", "y"], None,
                       source=f"two galaxies (seed {seed})", truth=truth)
