"""Result files, each written atomically: a temporary file in the same folder, then rename.

An interrupted or failed write never leaves a partial file under the final name, and a
signal that arrives during a write waits until the write is done and the caller has
recorded the file (:func:`starmix.workflows.runs.interrupt.deferred_signals`); it stops the run
before
the next write, or at the end of the step.

A full disk (``ENOSPC``, or a quota: ``EDQUOT``) is a :class:`DiskFullError` naming the file,
the space it needed and the space free; the half-written file is removed. The posterior is
checked against the free space before it is written, and written through memory when it is
small enough (:data:`IN_MEMORY_BYTES`), so that HDF5 never meets a full disk mid-file (h5py
crashes the process on the way out when it does).
"""

import errno
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xarray as xr
from astropy.table import Table

from starmix.data.files import atomic_path as plain_atomic_path
from starmix.workflows.runs.folder import shown_folder
from starmix.workflows.runs.interrupt import check_signals, deferred_signals

IN_MEMORY_BYTES = 512 * 2**20
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """No space left for a result file: the message names it and the space needed."""

    def __init__(self, path: Path, needed: int | None = None):
        folder = Path(path).parent
        free = _free_bytes(folder)
        need = f", {_mb(needed)} needed" if needed else ""
        have = f", {_mb(free)} free" if free is not None else ""
        shown = shown_folder(folder)  # --out, not its staging folder
        super().__init__(f"no space left on device writing {Path(path).name} for {shown}"
                         f"{need}{have}")
        self.errno = errno.ENOSPC


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MB" if n_bytes >= 2**17 else f"{n_bytes / 2**10:.0f} KB"


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def require_space(path: str | Path, needed: int) -> None:
    """:class:`DiskFullError` before writing ``path`` when its folder has less than
    ``needed`` bytes (plus 64 KB for the file system's own blocks) free."""
    free = _free_bytes(Path(path).parent)
    if free is not None and free < needed + 2**16:
        raise DiskFullError(Path(path), needed)


@contextmanager
def atomic_path(path: str | Path, needed: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds
    (:func:`starmix.data.files.atomic_path`), with signals held until the file is whole. A full
    disk is a :class:`DiskFullError` (``needed``: the file's expected size, for the
    message)."""
    check_signals()  # a signal that came during the previous write stops the run here
    # signals wait until the file is whole: the caller records it first
    try:
        with deferred_signals(raise_after=False), plain_atomic_path(path) as temporary:
            yield temporary
    except DiskFullError:
        raise
    except OSError as err:
        if err.errno in NO_SPACE:
            raise DiskFullError(Path(path), needed) from None
        raise


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


@contextmanager
def _local_write_lock() -> Iterator[None]:
    """xarray takes a Dask-distributed lock named after the target when a Dask client is
    active (as in a survey's worker), which an in-memory target cannot be: encode under
    Dask's synchronous scheduler, so xarray uses a local lock."""
    try:
        import dask
    except ImportError:
        yield
        return
    with dask.config.set(scheduler="synchronous"):
        yield


def _write_bytes(path: Path, data) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def posterior_bytes(idata: xr.DataTree) -> int:
    """The bytes of every array in ``idata`` (about the size of its netCDF file)."""
    return int(sum(node.dataset.nbytes for node in idata.subtree))


def write_posterior(path: str | Path, idata: xr.DataTree) -> Path:
    """Write the ArviZ DataTree as netCDF (read back with ``xarray.open_datatree``). Refused
    with :class:`DiskFullError` before anything is written when the folder has less free
    space than the arrays need; up to :data:`IN_MEMORY_BYTES` the file is made in memory
    and then written as plain bytes, so a disk that fills up meanwhile is an ordinary
    error, not a crash in HDF5."""
    needed = posterior_bytes(idata)
    require_space(path, needed)
    with atomic_path(path, needed) as temporary:
        if needed <= IN_MEMORY_BYTES:
            with _local_write_lock():
                encoded = idata.to_netcdf(engine="h5netcdf")
            require_space(path, len(encoded))
            _write_bytes(temporary, encoded)
        else:
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
