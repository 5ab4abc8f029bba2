"""Bookkeeping for one workflow run: progress lines, step timings and the run record."""

import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from workflows.interrupt import RunInterrupted
from workflows.results import write_json

PACKAGES = ("starmix", "pymc", "pytensor", "arviz", "numpy", "scipy", "astropy", "xarray")
EXIT_OK, EXIT_ERROR, EXIT_NOT_CONVERGED, EXIT_NO_CLUSTER = 0, 1, 2, 3
EXIT_CODES = {"passed": EXIT_OK, "failed": EXIT_NOT_CONVERGED, "no_cluster": EXIT_NO_CLUSTER}


@dataclass
class RunResult:
    """What a workflow returns: where its files are and whether its gate passed."""

    status: str
    out_dir: Path
    files: dict[str, Path]
    record: dict = field(repr=False)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, EXIT_NOT_CONVERGED)


class Run:
    """Times named steps, prints progress to stderr and writes ``run_record.json``."""

    def __init__(self, workflow: str, out_dir: str | Path, settings: dict, quiet=False):
        self.workflow = workflow
        self.out_dir = Path(out_dir)
        self.settings = settings
        self.quiet = quiet
        self.timings: dict[str, float] = {}
        self.files: dict[str, Path] = {}
        self._start = time.perf_counter()

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[starmix {self.workflow}] {message}", file=sys.stderr, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.say(f"{name} ...")
        start = time.perf_counter()
        try:
            yield
        except RunInterrupted as stop:
            self._record_interruption(stop, name)
            raise
        self.timings[name] = round(time.perf_counter() - start, 3)
        self.say(f"{name} done ({self.timings[name]:.1f} s)")

    def keep(self, label: str, path: Path) -> Path:
        self.files[label] = Path(path)
        return Path(path)

    def _record_interruption(self, stop: RunInterrupted, step: str) -> None:
        """Note where the run stopped; mark the folder only if this run already wrote to it.

        Files from an earlier run in the same folder stay consistent with their own record
        unless this run replaced some of them; then ``run_record.json`` says "interrupted"
        and lists the files this run wrote.
        """
        stop.step = step
        stop.kept = [str(path) for path in self.files.values()]
        if self.files:
            self.finish("interrupted", interrupted={"signal": stop.signal_name, "step": step})

    def finish(self, status: str, **details) -> RunResult:
        """Write the run record (always, also for a failed gate) and return the result."""
        record = {
            "workflow": self.workflow,
            "status": status,
            "command": sys.argv,
            "settings": self.settings,
            "timings_s": {**self.timings, "total": round(time.perf_counter() - self._start, 3)},
            "versions": versions(),
            **details,
        }
        self.keep("run_record", self.out_dir / "run_record.json")
        record["files"] = {label: str(path) for label, path in self.files.items()}
        write_json(self.files["run_record"], record)
        return RunResult(status, self.out_dir, dict(self.files), record)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
