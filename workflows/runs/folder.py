"""One run per results folder: checked before any work, locked, written aside, swapped in.

A run never writes into ``--out`` directly. :class:`OutputFolder`:

1. checks the path before the data are loaded (an existing file, a path under a file, an
   unwritable place, a folder of someone else's files, a ``run_record.json`` that is not a
   starmix record, a file the previous run's record does not list, or an input file
   inside the folder is an error that names it); a symbolic link ``--out`` is followed,
   so the run is written into its target;
2. takes an exclusive lock, ``.NAME.lock`` beside the folder (``fcntl.flock``: the kernel
   drops it when the process ends, so a killed run never leaves it stuck), so a second run
   into the same folder fails at once and names the first one's process id. The lock is
   opened without following links and must be a regular file of the user's, so a link
   planted there cannot make the run write over someone's file;
3. removes what a killed run left behind (``.NAME.staging-*`` and ``.NAME.old-*`` beside
   the folder, ``.*.partial-*`` files inside it);
4. lets the run write into a fresh ``.NAME.staging-PID`` folder beside ``--out``;
5. at the end (passed, failed, no cluster or interrupted: every case with a run record)
   swaps the staging folder in for the old one, so that every file in ``--out`` belongs to
   the run its ``run_record.json`` describes. Of the old folder only the files its record
   lists are deleted: a file someone put there during the run is kept, in a folder
   ``NAME.kept-PID`` beside it, and named on stderr. A run that stops with an error
   (:meth:`abandon`) leaves ``--out`` as it was and removes what it created.
"""

import contextlib
import errno
import fcntl
import os
import re
import shutil
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

from starmix.workflows.runs.interrupt import deferred_signals
from starmix.workflows.runs.record import RECORD_NAME, RunRecord, RunRecordError


class OutputFolderError(ValueError):
    """``--out`` cannot be used: the message names the path and the reason."""


def _first_existing(path: Path) -> Path:
    return next(folder for folder in (path, *path.parents) if folder.exists())


def check_output_path(out: str | Path, record_name: str = RECORD_NAME,
                      inputs: Iterable[tuple[str, object]] = ()) -> Path:
    """The absolute results folder, or :class:`OutputFolderError` naming the problem.

    A symbolic link is followed (the run is written into its target). A folder that holds
    files must hold ``record_name`` (a survey's: ``survey_record.json``); a run folder's
    record must be a starmix run record, and every file in the folder must be one it
    lists, so that replacing the folder loses nothing of the user's. ``inputs``: (option,
    value) pairs; an existing file among them inside the folder is refused. Writes
    nothing."""
    if str(out).strip() == "":
        raise OutputFolderError("--out is empty: give a results folder")
    path = Path(os.path.abspath(Path(out).expanduser()))
    if path.is_symlink():
        try:
            path = path.resolve(strict=False)
        except (OSError, RuntimeError) as err:  # a link loop
            raise OutputFolderError(f"--out {out}: the symbolic link cannot be followed "
                                    f"({err})") from None
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
    _check_inputs_outside(out, path, inputs)
    if path.is_dir():
        foreign = [item.name for item in path.iterdir()]
        if foreign and not (path / record_name).is_file():
            raise OutputFolderError(
                f"--out {out}: the folder holds {len(foreign)} entries ({_shown(foreign)}) but "
                f"no {record_name}, so it is not a starmix results folder and would be "
                "replaced; give a new or empty folder")
        if foreign and record_name == RECORD_NAME:
            unlisted = unlisted_files(path, previous_run_files(path, out))
            if unlisted:
                raise OutputFolderError(
                    f"--out {out}: the folder holds {len(unlisted)} file(s) that its "
                    f"{RECORD_NAME} does not list ({_shown(unlisted)}); a new run replaces "
                    "the folder, so move them out or choose another --out")
    return path


def shown_folder(folder: Path) -> Path:
    """``--out`` for its staging folder ``.NAME.staging-PID`` (what messages name), else
    ``folder`` itself."""
    staged = re.fullmatch(r"\.(.+)\.staging-\d+", Path(folder).name)
    return Path(folder).parent / staged.group(1) if staged else Path(folder)


def _shown(names: list[str]) -> str:
    return ", ".join(sorted(names)[:5]) + (" ..." if len(names) > 5 else "")


def _check_inputs_outside(out, path: Path, inputs: Iterable[tuple[str, object]]) -> None:
    for option, value in inputs:
        if not isinstance(value, (str, Path)) or str(value).strip() == "":
            continue
        try:
            given = Path(value).expanduser()
            if not given.exists():
                continue
            resolved = given.resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        if resolved == path or resolved.is_relative_to(path):
            raise OutputFolderError(
                f"--{option.replace('_', '-')} {value} lies inside --out {out}, which this run "
                "replaces; move the file out of the results folder or choose another --out")


def previous_run_files(folder: Path, out=None) -> set[Path]:
    """The files (paths inside ``folder``) that the starmix run record in ``folder`` lists;
    :class:`OutputFolderError` if the record is not a starmix run record. The record's
    paths are absolute; a moved folder's are read relative to the record's own entry."""
    record_file = folder / RECORD_NAME
    given = out if out is not None else folder
    try:
        record = RunRecord.read(record_file)
        return set(record.files_beside(record_file).values())
    except OSError as err:
        reason = f"{record_file} cannot be read ({err.strerror or err})"
    except RunRecordError as err:
        reason = str(err)
    raise OutputFolderError(f"--out {given}: {reason}; the folder would be replaced, so move "
                            "it or choose another --out")


def unlisted_files(folder: Path, listed: set[Path]) -> list[str]:
    """Files under ``folder`` (symbolic links included, not followed) that are not in
    ``listed`` and are not a killed write's ``.*.partial-*`` leftovers; relative names."""
    found = []
    for root, dirs, names in os.walk(folder):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            item = Path(root) / name
            if item not in listed and not (name.startswith(".") and ".partial-" in name):
                found.append(str(item.relative_to(folder)))
    return found


class OutputFolder:
    """The results folder of one run (see the module docstring for the life cycle)."""

    def __init__(self, out: str | Path, inputs: Iterable[tuple[str, object]] = ()):
        self.final = check_output_path(out, inputs=inputs)
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
        """Swap the staging folder in for ``--out`` (signals wait until it is done). Of the
        old folder only the files its record lists are deleted (see the module
        docstring)."""
        with deferred_signals():
            old = None
            if self.final.exists():
                try:
                    listed = previous_run_files(self.final, self.given)
                except OutputFolderError:
                    listed = set()  # the record was damaged during the run: delete nothing
                old = self.final.parent / f".{self.final.name}.old-{os.getpid()}"
                os.replace(self.final, old)
            os.replace(self.staging, self.final)
            self.staging = None
            if old is not None:
                self._remove_old(old, {old / path.relative_to(self.final) for path in listed})
            self.release()

    def _remove_old(self, old: Path, listed: set[Path]) -> None:
        """Delete the previous run's listed files; keep anything else, visibly."""
        for path in listed:
            if path.is_file() or path.is_symlink():
                path.unlink(missing_ok=True)
        for partial in old.rglob(".*.partial-*"):
            partial.unlink(missing_ok=True)
        for root, _dirs, _names in sorted(os.walk(old), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                os.rmdir(root)
        if old.exists():
            kept = self.final.parent / f"{self.final.name}.kept-{os.getpid()}"
            os.replace(old, kept)
            print(f"starmix: files that appeared in {self.final} during the run were not "
                  f"written by it and are kept in {kept}", file=sys.stderr)

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
    holds the lock until it is closed. ``given``: the ``--out`` named in errors.

    The file is opened without following a symbolic link (``O_NOFOLLOW``) and must be a
    regular file of the user's with one link: otherwise someone who can write beside the
    folder could make the run write its process id over another file."""
    for _ in range(10):
        handle = _open_lock(path, given)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read(64).strip() or "unknown"
            handle.close()
            raise OutputFolderError(
                f"--out {given}: another starmix run (process {holder}) is writing "
                "into this folder; wait for it to finish or choose another --out") from None
        try:
            same = os.fstat(handle.fileno()).st_ino == os.lstat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")
                handle.flush()
            except OSError as err:
                handle.close()
                path.unlink(missing_ok=True)
                raise OutputFolderError(f"--out {given}: cannot write the lock file {path}: "
                                        f"{err.strerror}") from None
            return handle
        handle.close()
    raise OutputFolderError(f"--out {given}: could not lock {path}")


def _open_lock(path: Path, given):
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        descriptor = os.open(path, flags, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OutputFolderError(
                f"--out {given}: the lock file {path} is a symbolic link; starmix does not "
                "follow it (it could point at someone's file): remove it and run again"
            ) from None
        raise OutputFolderError(f"--out {given}: cannot create the lock file "
                                f"{path}: {err.strerror}") from None
    info = os.fstat(descriptor)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file"
    elif info.st_uid != os.geteuid():
        problem = f"belongs to another user (uid {info.st_uid})"
    elif info.st_nlink != 1:
        problem = f"has {info.st_nlink} hard links (it could be someone's file)"
    if problem:
        os.close(descriptor)
        raise OutputFolderError(f"--out {given}: the lock file {path} {problem}; starmix "
                                "does not write into it: remove it and run again")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "r+")
