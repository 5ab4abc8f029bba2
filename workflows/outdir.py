"""One run per results folder: checked before any work, locked, written aside, swapped in.

A run never writes into ``--out`` directly. :class:`OutputFolder`:

1. checks the path before the data are loaded (an existing file, a path under a file, an
   unwritable place, or a folder of someone else's files is an error that names it);
2. takes an exclusive lock, ``.NAME.lock`` beside the folder (``fcntl.flock``: the kernel
   drops it when the process ends, so a killed run never leaves it stuck), so a second run
   into the same folder fails at once and names the first one's process id;
3. removes what a killed run left behind (``.NAME.staging-*`` and ``.NAME.old-*`` beside
   the folder, ``.*.partial-*`` files inside it);
4. lets the run write into a fresh ``.NAME.staging-PID`` folder beside ``--out``;
5. at the end (passed, failed, no cluster or interrupted: every case with a run record)
   swaps the staging folder in for the old one, so that every file in ``--out`` belongs to
   the run its ``run_record.json`` describes. A run that stops with an error
   (:meth:`abandon`) leaves ``--out`` as it was and removes what it created.
"""

import errno
import fcntl
import os
import shutil
from pathlib import Path

from starmix.workflows.interrupt import deferred_signals

RECORD_NAME = "run_record.json"


class OutputFolderError(ValueError):
    """``--out`` cannot be used: the message names the path and the reason."""


def _first_existing(path: Path) -> Path:
    return next(folder for folder in (path, *path.parents) if folder.exists())


def check_output_path(out: str | Path, record_name: str = RECORD_NAME) -> Path:
    """The absolute results folder, or :class:`OutputFolderError` naming the problem; a
    folder that holds files must hold ``record_name`` (a survey's: ``survey_record.json``).
    Writes nothing."""
    path = Path(os.path.abspath(Path(out).expanduser()))
    if str(out).strip() == "":
        raise OutputFolderError("--out is empty: give a results folder")
    if path == path.parent:
        raise OutputFolderError(f"--out {out}: the file-system root cannot be a results folder")
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"--out {out}: {path} is a file, not a folder")
    existing = _first_existing(path.parent)
    if not existing.is_dir():
        raise OutputFolderError(f"--out {out}: {existing} is a file, so no folder can be "
                                "made under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputFolderError(f"--out {out}: {existing} is not writable")
    if path.is_dir():
        foreign = [item.name for item in path.iterdir()]
        if foreign and not (path / record_name).is_file():
            shown = ", ".join(sorted(foreign)[:5]) + (" ..." if len(foreign) > 5 else "")
            raise OutputFolderError(
                f"--out {out}: the folder holds {len(foreign)} entries ({shown}) but no "
                f"{record_name}, so it is not a starmix results folder and would be replaced; "
                "give a new or empty folder")
    return path


class OutputFolder:
    """The results folder of one run (see the module docstring for the life cycle)."""

    def __init__(self, out: str | Path):
        self.final = check_output_path(out)
        self.given = Path(out)
        self.staging: Path | None = None
        self._lock_file = None
        self._created: list[Path] = []

    # -- opening -----------------------------------------------------------------------
    def open(self) -> Path:
        """Lock, clean up after killed runs and create the staging folder; returns it."""
        parent = self.final.parent
        missing = [folder for folder in (parent, *parent.parents) if not folder.exists()]
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputFolderError(f"--out {self.given}: cannot create {parent}: "
                                    f"{err.strerror}") from None
        self._created = missing  # deepest first
        self._lock()
        self._remove_leftovers()
        self.staging = parent / f".{self.final.name}.staging-{os.getpid()}"
        try:
            self.staging.mkdir()
        except OSError as err:
            self.release()
            raise OutputFolderError(f"--out {self.given}: cannot create a folder in {parent}: "
                                    f"{err.strerror}") from None
        return self.staging

    @property
    def lock_path(self) -> Path:
        return self.final.parent / f".{self.final.name}.lock"

    def _lock(self) -> None:
        try:
            self._lock_file = lock_file(self.lock_path, self.given)
        except OutputFolderError:
            self._remove_created()
            raise

    def _remove_leftovers(self) -> None:
        """What runs killed with SIGKILL left: staging and old folders, partial files."""
        name = self.final.name
        for pattern in (f".{name}.staging-*", f".{name}.old-*"):
            for leftover in self.final.parent.glob(pattern):
                shutil.rmtree(leftover, ignore_errors=True)
        if self.final.is_dir():
            for leftover in self.final.rglob(".*.partial-*"):
                leftover.unlink(missing_ok=True)

    # -- closing -----------------------------------------------------------------------
    def final_path(self, path: Path) -> Path:
        """Where a file written into the staging folder will be once the run is committed."""
        path = Path(path)
        if self.staging is not None and path.is_relative_to(self.staging):
            return self.final / path.relative_to(self.staging)
        return path

    def commit(self) -> None:
        """Swap the staging folder in for ``--out`` (signals wait until it is done)."""
        with deferred_signals():
            old = None
            if self.final.exists():
                old = self.final.parent / f".{self.final.name}.old-{os.getpid()}"
                os.replace(self.final, old)
            os.replace(self.staging, self.final)
            self.staging = None
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            self.release()

    def abandon(self) -> None:
        """Remove the staging folder and any folder this run created; ``--out`` untouched."""
        with deferred_signals(raise_after=False):
            if self.staging is not None:
                shutil.rmtree(self.staging, ignore_errors=True)
                self.staging = None
            self.release()
            self._remove_created()

    def release(self) -> None:
        if self._lock_file is not None:
            try:
                self.lock_path.unlink(missing_ok=True)
            finally:
                self._lock_file.close()  # closing drops the flock
                self._lock_file = None

    def _remove_created(self) -> None:
        for folder in self._created:
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []


def lock_file(path: Path, given) -> object:
    """Exclusive, non-blocking ``flock`` on ``path`` (created if needed, retried if another
    run removed the file between our open and our lock); returns the open handle, which
    holds the lock until it is closed. ``given``: the ``--out`` named in errors."""
    for _ in range(10):
        try:
            handle = open(path, "a+")  # noqa: SIM115 (held for the run)
        except OSError as err:
            raise OutputFolderError(f"--out {given}: cannot create the lock file "
                                    f"{path}: {err.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise OutputFolderError(
                f"--out {given}: another starmix run (process {holder}) is writing "
                "into this folder; wait for it to finish or choose another --out") from None
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return handle
        handle.close()
    raise OutputFolderError(f"--out {given}: could not lock {path}")
