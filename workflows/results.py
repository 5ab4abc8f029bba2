"""Result files, each written atomically: a temporary file in the same folder, then rename.

An interrupted or failed write never leaves a partial file under the final name, and a
signal that arrives during a write waits until the write is done and the caller has
recorded the file (:func:`workflows.interrupt.deferred_signals`); it stops the run before
the next write, or at the end of the step.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xarray as xr
from astropy.table import Table

from starmix.data.files import atomic_path as plain_atomic_path
from starmix.workflows.interrupt import check_signals, deferred_signals


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds
    (:func:`data.files.atomic_path`), with signals held until the file is whole."""
    check_signals()  # a signal that came during the previous write stops the run here
    # signals wait until the file is whole: the caller records it first
    with deferred_signals(raise_after=False), plain_atomic_path(path) as temporary:
        yield temporary


def write_json(path: str | Path, payload: dict) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def write_table(path: str | Path, table: Table) -> Path:
    """Write an astropy table; the format follows the suffix (.ecsv keeps units)."""
    with atomic_path(path) as temporary:
        table.write(temporary, overwrite=True)
    return Path(path)


def write_posterior(path: str | Path, idata: xr.DataTree) -> Path:
    """Write the ArviZ DataTree as netCDF (read back with ``xarray.open_datatree``)."""
    with atomic_path(path) as temporary:
        idata.to_netcdf(temporary, engine="h5netcdf")
    return Path(path)


def save_figure(path: str | Path, figure) -> Path:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, bbox_inches="tight")
    return Path(path)


def _json_default(value):
    if hasattr(value, "tolist"):  # NumPy arrays and scalars (``item`` fails on arrays)
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
