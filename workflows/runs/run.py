"""Bookkeeping for one workflow run: progress lines, step timings, the results folder and
the run record.

A workflow runs inside ``with Run(...) as run:``. The results folder is checked when the
:class:`Run` is made (before any data are read) and locked and staged when the block is
entered (:mod:`starmix.workflows.runs.folder`). :meth:`Run.finish` writes ``run_record.json`` and
swaps
the run's files in; an interruption does the same with status ``interrupted``; any other
error leaves ``--out`` as it was.
"""

import platform
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from starmix.workflows.runs.files import write_json
from starmix.workflows.runs.folder import OutputFolder
from starmix.workflows.runs.interrupt import (
    RunInterrupted,
    acknowledge_signal,
    check_signals,
    deferred_signals,
    signal_pending,
)
from starmix.workflows.runs.record import RECORD_NAME, RunRecord

PACKAGES = ("starmix", "pymc", "pytensor", "arviz", "numpy", "scipy", "astropy", "xarray")
EXIT_OK, EXIT_ERROR, EXIT_NOT_CONVERGED, EXIT_NO_CLUSTER, EXIT_CHECKS_FAILED = 0, 1, 2, 3, 4
EXIT_CODES = {"passed": EXIT_OK, "failed": EXIT_NOT_CONVERGED, "no_cluster": EXIT_NO_CLUSTER,
              "checks_failed": EXIT_CHECKS_FAILED}
CHECK_MODES = ("on", "off", "strict")  # predictive checks: run, skip, run and gate on them


def final_status(gate_passed: bool, checks, check_mode: str, no_cluster: bool = False) -> str:
    """The run's status: ``no_cluster`` before a failed gate (``failed``), a failed gate
    before failed predictive checks (``checks_failed``, with ``--strict-checks`` only)."""
    if check_mode not in CHECK_MODES:
        raise ValueError(f"checks must be one of {CHECK_MODES}, got {check_mode!r}")
    if no_cluster:
        return "no_cluster"
    if not gate_passed:
        return "failed"
    if check_mode == "strict" and checks is not None and not checks.passed:
        return "checks_failed"
    return "passed"


@dataclass
class RunResult:
    """What a workflow returns: where its files are and whether its gate passed."""

    status: str
    out_dir: Path
    files: dict[str, Path]
    record: RunRecord = field(repr=False)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, EXIT_NOT_CONVERGED)


class Run:
    """Times named steps, prints progress to stderr, owns the results folder and writes
    ``run_record.json``. While the run is going, :attr:`out_dir` is its staging folder."""

    def __init__(self, workflow: str, out_dir: str | Path, settings: dict, quiet=False,
                 label: str | None = None):
        self.workflow = workflow
        self.label = label or workflow
        # checks the path (and that no input file lies inside it); writes nothing
        self.folder = OutputFolder(out_dir, inputs=_options_of(settings))
        self.out_dir = self.folder.final
        self.settings = settings
        self.quiet = quiet
        self.timings: dict[str, float] = {}
        self.files: dict[str, Path] = {}
        self.result: RunResult | None = None
        self._start = time.perf_counter()

    def __enter__(self) -> "Run":
        self.out_dir = self.folder.open()
        return self

    def __exit__(self, kind, error, _traceback) -> bool:
        if isinstance(error, RunInterrupted):
            if self.result is None:
                acknowledge_signal()
                self._record_interruption(error)
            error.kept = [str(path) for label, path in self.result.files.items()
                          if label != "run_record"]
            error.record = str(self.result.files["run_record"])
        elif self.result is None:
            self.folder.abandon()
            self.out_dir = self.folder.final
        return False

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[starmix {self.label}] {message}", file=sys.stderr, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        check_signals()
        self.say(f"{name} ...")
        start = time.perf_counter()
        try:
            yield
            check_signals()  # a signal whose exception C code swallowed stops the run here
        except RunInterrupted as stop:
            stop.step = stop.step or name
            raise
        self.timings[name] = round(time.perf_counter() - start, 3)
        self.say(f"{name} done ({self.timings[name]:.1f} s)")

    def keep(self, label: str, path: Path) -> Path:
        self.files[label] = Path(path)
        return Path(path)

    def _record_interruption(self, stop: RunInterrupted) -> None:
        """Write the record of an interrupted run (status ``interrupted``, the step and the
        complete files it wrote) and swap the folder in: ``--out`` then holds this run only.
        A second signal during this clean-up is ignored: the run is stopping anyway."""
        with suppress(RunInterrupted):
            self.finish("interrupted", interrupted={"signal": stop.signal_name,
                                                    "step": stop.step})

    def finish(self, status: str, **details) -> RunResult:
        """Write the run record (always, also for a failed gate) and swap the run's folder in
        for ``--out``; returns the result with the files' final paths. A signal that arrives
        while the record is written turns the status into ``interrupted`` (and is raised
        once the folder is in place)."""
        with deferred_signals():
            self.keep("run_record", self.out_dir / RECORD_NAME)
            final = {label: self.folder.final_path(path) for label, path in self.files.items()}
            record = self._write_record(status, details, final)
            pending = signal_pending()
            if pending is not None and status != "interrupted":
                status = "interrupted"
                record = self._write_record(status, {**details, "interrupted": {
                    "signal": signal.Signals(pending).name, "step": "write run record"}},
                                            final)
            self.folder.commit()
            self.out_dir = self.folder.final
            self.files = final
            self.result = RunResult(status, self.out_dir, dict(final), record)
        return self.result

    def _write_record(self, status: str, details: dict, final: dict) -> RunRecord:
        record = RunRecord(
            workflow=self.workflow, label=self.label, status=status, command=sys.argv,
            settings=self.settings, details=details, versions=versions(),
            timings_s={**self.timings, "total": round(time.perf_counter() - self._start, 3)},
            files={label: str(path) for label, path in final.items()})
        write_json(self.files["run_record"], record.to_dict())
        return record


def _options_of(settings: dict) -> list[tuple[str, object]]:
    """(option, value) pairs of the run's settings, nested dicts flattened."""
    pairs = []
    for key, value in settings.items():
        if isinstance(value, dict):
            pairs.extend(_options_of(value))
        else:
            pairs.append((key, value))
    return pairs


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
