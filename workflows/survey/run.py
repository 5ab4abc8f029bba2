"""``starmix survey``: Bayesian membership for every cluster of a catalogue, on Dask.

:func:`run_survey` reads the catalogue (:mod:`starmix.data.survey_catalogue`), skips the clusters
whose results are complete, and sends one Dask task per remaining cluster
(:func:`survey_cluster`: its cone from the Gaia source of :mod:`starmix.data.survey_sources`, then
the whole cluster workflow, :func:`starmix.workflows.cluster.run.run_cluster`, into
``OUT/clusters/NAME``). By default the tasks run on a ``distributed.LocalCluster`` of one
single-threaded worker process per core, each with an equal share of the memory
(``memory_limit="auto"``); ``scheduler="tcp://..."`` uses a running cluster instead (see
docs/survey.md for SLURM). Workers on one machine share PyTensor's and Numba's on-disk
compile caches.

* A cluster that fails (bad catalogue row, no data, an error in the fit, its worker died)
  gets an ``error`` row with the reason; the others go on. Dask does not retry a task
  whose worker died (``allowed-failures`` 0): a cluster that kills its worker, as one over
  the memory limit does, would kill the next one too.
* Resumable: a rerun into the same ``OUT`` skips every cluster whose folder holds a run
  record with a verdict (:data:`starmix.workflows.survey.rows.COMPLETE`) and redoes the rest.
  ``OUT`` holds one survey: a rerun with other settings is an error naming them.
* Ctrl-C (or SIGTERM, SIGHUP) cancels the tasks, stops the workers and writes the table of
  the clusters done so far (the others ``not run``) and a record marked ``interrupted``
  with the exit code, at whatever phase the signal comes (also during the final writes);
  each cluster folder is written aside and swapped in whole (:mod:`starmix.workflows.runs.folder`),
  so
  a complete cluster stays complete. Any other error after the record is first written
  marks it ``failed`` with the error.
* Every option is checked before anything is written (:class:`SurveyOptions`,
  :class:`Execution`); a catalogue without rows, and a damaged ``survey_record.json`` in
  ``OUT``, are errors naming the file.
* Outputs: ``OUT/survey.ecsv`` and ``OUT/survey.parquet`` (one row per cluster,
  :mod:`starmix.workflows.survey.rows`), ``OUT/survey_record.json``, ``OUT/figures/`` and one log
  per cluster in ``OUT/logs/``.

Exit codes: 0 every cluster has a verdict (found, none found, gate failed); 1 bad input;
5 some clusters ended in an error (their rows say why; a rerun redoes them); 130/143/129
interrupted by SIGINT/SIGTERM/SIGHUP.
"""

import json
import math
import os
import resource
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from starmix.data.survey_catalogue import (
    CONE_CEILING_ARCMIN,
    SurveyTarget,
    read_survey_catalogue,
)
from starmix.data.survey_sources import gaia_source
from starmix.models import CLUSTER_MODELS
from starmix.workflows.runs.files import write_json, write_table
from starmix.workflows.runs.folder import check_output_path, lock_file
from starmix.workflows.runs.interrupt import (
    RunInterrupted,
    acknowledge_signal,
    check_signals,
    deferred_signals,
)
from starmix.workflows.runs.options import GateThresholds, SamplingOptions
from starmix.workflows.survey.rows import (
    COMPLETE,
    error_row,
    folder_status,
    left_row,
    row_from_folder,
    survey_table,
)

EXIT_SURVEY_ERRORS = 5
EXIT_FAILED = 1  # the command's exit code when the survey stops on an error
SURVEY_RECORD = "survey_record.json"
CHECKS = ("on", "off", "strict")
MAX_FIELD_DENSITY = 100.0  # --sim-field-density, field stars per arcmin²
MIN_WORKER_MEMORY = 512 * 2**20  # --memory-limit, bytes


@dataclass(frozen=True)
class SurveyOptions:
    """What each cluster's run does. ``gaia``: ``simulate``, a folder of per-cluster Gaia
    files, one Gaia table holding them all, or a HATS catalogue; ``model``: ``auto`` (the
    default) fits each cluster with the joint model when its stars have sky positions
    (``ra``, ``dec``), which sees small
    clusters that motion and parallax alone miss (docs/real-fields.md), else with pmplx,
    the cheapest model that fits the cluster's parallax (pm2d reports the members'
    weighted median parallax, which field stars of small P pull towards the field's);
    ``limit``: the first N catalogue rows; ``sim_seed`` and ``sim_field_density`` (field
    stars per arcmin²) shape the simulated fields; ``assign_errors`` and ``drop_invalid``
    are ``starmix run cluster``'s options for real files (Gaia DR3 errors from G for files
    without errors; drop and count invalid rows)."""

    gaia: str = "simulate"
    model: str = "auto"
    limit: int | None = None
    figures: bool = True
    checks: str = "on"
    sim_seed: int = 42
    sim_field_density: float = 2.0
    assign_errors: bool = False
    drop_invalid: bool = False

    def __post_init__(self):
        if self.model != "auto" and self.model not in CLUSTER_MODELS:
            raise ValueError(f"--model must be 'auto' or one of {sorted(CLUSTER_MODELS)}, "
                             f"got {self.model!r}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be at least 1, got {self.limit}")
        if self.checks not in CHECKS:
            raise ValueError(f"checks must be one of {list(CHECKS)} (--no-checks: off, "
                             f"--strict-checks: strict), got {self.checks!r}")
        if not 0 <= self.sim_seed < 2**32:
            raise ValueError("--sim-seed must be a whole number from 0 to 2**32 - 1, got "
                             f"{self.sim_seed}")
        if not 0 < self.sim_field_density <= MAX_FIELD_DENSITY:
            raise ValueError(
                f"--sim-field-density must be above 0 and at most {MAX_FIELD_DENSITY:g} field "
                f"stars per arcmin² (a {CONE_CEILING_ARCMIN:g}' cone would then hold "
                f"{MAX_FIELD_DENSITY * math.pi * CONE_CEILING_ARCMIN**2:,.0f}), got "
                f"{self.sim_field_density:g}")


@dataclass(frozen=True)
class Execution:
    """Where the tasks run: ``scheduler`` (an address such as ``tcp://host:8786``) or a
    local cluster of ``workers`` processes (default: one per core) of one thread each,
    ``memory_limit`` each (``auto``: the machine's memory shared equally)."""

    scheduler: str | None = None
    workers: int | None = None
    memory_limit: str = "auto"

    def __post_init__(self):
        if self.scheduler is not None and self.workers is not None:
            raise ValueError("--workers is for the local cluster; with --scheduler the "
                             "cluster at that address has its own workers")
        if self.scheduler is not None and self.memory_limit != "auto":
            raise ValueError("--memory-limit is for the local cluster; with --scheduler the "
                             "cluster at that address sets its workers' memory")
        if self.scheduler is not None:
            _check_scheduler_address(self.scheduler)
        cpus = len(os.sched_getaffinity(0))
        if self.workers is not None and not 1 <= self.workers <= cpus:
            raise ValueError(
                f"--workers must be from 1 to {cpus} (the CPUs available to this process: "
                "each worker is one single-threaded process fitting one cluster at a time; "
                f"use --scheduler for more), got {self.workers}")
        if self.memory_limit != "auto":
            _check_memory_limit(self.memory_limit)


def _check_scheduler_address(address: str) -> None:
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    example = "give an address such as tcp://host:8786"
    try:
        protocol, location = parse_address(str(address).strip())
        if protocol not in backends:
            raise ValueError(f"unknown protocol {protocol!r}; known: {sorted(backends)}")
        if protocol != "inproc":
            host, port = parse_host_port(location)
            if not host or not 0 < port < 65536:
                raise ValueError("no host, or a port outside 1-65535")
    except (ValueError, TypeError) as err:
        raise ValueError(f"--scheduler {address!r} is not a Dask scheduler address ({err}); "
                         f"{example}") from None


def _check_memory_limit(value: str) -> None:
    from dask.utils import format_bytes, parse_bytes
    from distributed.system import MEMORY_LIMIT

    try:
        size = parse_bytes(str(value).strip()) if str(value).strip() else None
    except (ValueError, TypeError):
        size = None
    if size is None or size < MIN_WORKER_MEMORY:
        raise ValueError(
            f"--memory-limit must be 'auto' or a size per worker of at least "
            f"{MIN_WORKER_MEMORY // 2**20} MiB such as 4GiB or 600MB (a worker holds about "
            f"0.4 GiB once PyMC and the models are loaded), got {value!r}")
    if size > MEMORY_LIMIT:
        raise ValueError(f"--memory-limit {value} per worker is more than this machine's "
                         f"memory ({format_bytes(MEMORY_LIMIT)})")


@dataclass
class SurveyResult:
    out_dir: Path
    table: object
    record: dict
    exit_code: int


def survey_cluster(target: SurveyTarget, source, folder: str, options: SurveyOptions,
                   sampling: SamplingOptions, gate: GateThresholds, log: str) -> dict:
    """One Dask task: the cluster's cone, the cluster workflow into ``folder``, its row
    (plus ``task_time``, s, and the worker process's peak memory so far,
    ``worker_peak_mib``). Never raises: an error becomes the cluster's error row. The
    run's progress and report go to ``log``."""
    from starmix.workflows.cluster.inputs import ClusterInput
    from starmix.workflows.cluster.run import run_cluster

    start = time.perf_counter()
    try:
        with output_to(log) as stream:
            data, provenance = source.field(target)
            if hasattr(data, "meta"):
                data.meta["source"] = provenance["source"]
            cone = (target.ra, target.dec, target.radius_arcmin)
            model = model_for(data, options.model)
            inputs = ClusterInput(
                model=model, data=data, cluster=target.name,
                assign_errors=options.assign_errors, drop_invalid=options.drop_invalid,
                reference=target.reference(), center=(target.ra, target.dec),
                footprint=cone if model == "joint" and hasattr(data, "meta") else None)
            result = run_cluster(folder, inputs, sampling, gate, figures=options.figures,
                                 checks=options.checks)
            print(json.dumps({"cone": provenance}, default=str), file=stream, flush=True)
        row = row_from_folder(target, result.out_dir)
        row["task_time"] = round(time.perf_counter() - start, 3)
        row["worker_peak_mib"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        return row
    except Exception as err:  # noqa: BLE001 - any failure of one cluster is its error row
        return error_row(target, f"{type(err).__name__}: {err}",
                         round(time.perf_counter() - start, 3))


def model_for(data, model: str = "auto") -> str:
    """The cluster model a survey fits to ``data`` (a table or a file path): ``model``
    itself, or with ``auto`` the joint model when the stars have sky positions (``ra`` and
    ``dec`` columns, or a file whose table has them), else pmplx."""
    if model != "auto":
        return model
    names = getattr(data, "colnames", None)
    if names is None:  # a file (the folder source): read here, and again by the run
        from starmix.data.gaia import load_gaia

        names = load_gaia(data).data.colnames
    return "joint" if {"ra", "dec"} <= set(names) else "pmplx"


@contextmanager
def output_to(path: str | Path) -> Iterator:
    """Send everything written to stdout and stderr (Python's, PyMC's logging handlers,
    C libraries') into the file ``path`` inside the block: a worker's log per cluster."""
    with open(path, "w") as stream:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(stream.fileno(), 1)
        os.dup2(stream.fileno(), 2)
        try:
            yield stream
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for number, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, number)
                os.close(copy)


class SurveyFolder:
    """``OUT``: one survey's settings, cluster folders, logs, table and figures. Locked
    while a survey runs in it (a second one into the same folder is an error).
    ``recorded``: this survey has written its record (so an interruption or an error from
    then on is written into it)."""

    def __init__(self, out: str | Path):
        self.path = check_output_path(out, SURVEY_RECORD)
        self.given = out
        self.record = self.path / SURVEY_RECORD
        self.recorded = False
        self._lock = None

    def cluster(self, target: SurveyTarget) -> Path:
        return self.path / "clusters" / target.key

    def log(self, target: SurveyTarget) -> Path:
        return self.path / "logs" / f"{target.key}.log"

    def open(self, record: dict) -> None:
        """Lock the folder, write the survey's first record, then make its subfolders: a
        survey killed outright (no chance to write its table) is still known as this
        survey's folder, and its rerun resumes it. Signals wait until the record is
        written (see :func:`run_survey`)."""
        with deferred_signals():
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = lock_file(self.path / ".survey.lock", self.given)
            write_json(self.record, record)
            self.recorded = True
        (self.path / "logs").mkdir(exist_ok=True)
        (self.path / "clusters").mkdir(exist_ok=True)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def previous_record(self) -> dict | None:
        """The record of the survey this folder holds, or None (a new folder); a damaged
        record is an error naming it."""
        if not self.record.is_file():
            return None
        damaged = (f"--out {self.given}: the survey record {self.record} is damaged: it is "
                   "{}; remove it or choose another --out")
        try:
            record = json.loads(self.record.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(damaged.format("not valid JSON (not UTF-8 text)")) from None
        except json.JSONDecodeError as err:
            raise ValueError(damaged.format(
                f"not valid JSON (line {err.lineno} col {err.colno})")) from None
        if not isinstance(record, dict) or not isinstance(record.get("settings", {}), dict):
            raise ValueError(damaged.format("valid JSON but not a survey record (an object "
                                            "with the survey's settings)"))
        return record

    def check_settings(self, settings: dict) -> None:
        """A rerun must ask for what the folder's survey did (else its rows would mix)."""
        previous = self.previous_record()
        if previous is None:
            return
        before = previous.get("settings", {})
        changed = sorted(key for key in settings if before.get(key) != settings[key])
        if changed:
            shown = "; ".join(f"{key}: {before.get(key)!r} then, {settings[key]!r} now"
                              for key in changed)
            raise ValueError(f"--out {self.path} holds a survey with other settings ({shown}); "
                             "give another --out to start a new survey")


def run_survey(catalogue: str | Path, out: str | Path,
               options: SurveyOptions = SurveyOptions(),
               sampling: SamplingOptions = SamplingOptions(),
               gate: GateThresholds = GateThresholds(),
               execution: Execution = Execution(), client=None, on_result=None,
               say=None, finished: list | None = None) -> SurveyResult:
    """Run (or resume) a survey; see the module docstring. ``client``: a
    ``distributed.Client`` to use instead of making one; ``on_result(row, client)`` is
    called after each cluster (progress hooks, tests); ``finished``: a list that gets the
    result as soon as every output is written (``starmix survey`` marks the record
    interrupted, :func:`mark_interrupted`, when a signal comes after that).

    Interrupted (:class:`RunInterrupted`) at any point after the record is first written,
    the survey writes the table of the clusters done (the others ``not run``), its figures
    and a record marked ``interrupted`` with the signal's exit code, and sets the
    exception's ``record`` and ``kept``; any other error marks the record ``failed``."""
    say = say or _stderr
    targets = read_survey_catalogue(catalogue, options.limit)
    source = gaia_source(options.gaia, options.sim_seed, options.sim_field_density)
    if sampling.cores is None:
        sampling = replace(sampling, cores=1)  # one single-threaded worker per task
    settings = {"catalogue": str(Path(catalogue).resolve()), **asdict(options),
                "sampling": asdict(sampling), "gate": asdict(gate)}
    settings.pop("limit")  # a longer --limit extends the same survey
    folder = SurveyFolder(out)
    folder.check_settings(settings)
    started = time.perf_counter()
    rows: dict = {}
    workers = []  # set once tasks were sent
    result = None
    try:
        try:
            folder.open({"status": "running", "command": sys.argv, "settings": settings,
                         "gaia_source": source.describe()})
            todo = []
            for target in targets:
                if target.problem:  # a bad catalogue row needs no worker
                    rows[target.row] = error_row(
                        target, f"catalogue row {target.row}: {target.problem}", 0.0)
                    continue
                if folder_status(folder.cluster(target)) in COMPLETE:
                    try:
                        rows[target.row] = row_from_folder(target, folder.cluster(target))
                        continue
                    except (OSError, ValueError, KeyError, TypeError):
                        pass  # an unreadable folder is redone
                todo.append(target)
            bad = sum(target.problem is not None for target in targets)
            say(f"survey of {len(targets)} clusters from {catalogue}; {source.describe()}; "
                f"{len(rows) - bad} complete from before, {bad} bad catalogue row(s), "
                f"{len(todo)} to run")
            if todo:
                workers.append(True)
                _run_tasks(todo, source, folder, options, sampling, gate, execution, client,
                           rows, on_result, say)
            result = _write_outputs(folder, targets, rows, settings, "complete", started,
                                    source, say)
            check_signals()  # a signal held back during the last write stops the run here
        except RunInterrupted as stop:
            if folder.recorded:
                _record_interruption(stop, folder, targets, rows, settings, started, source,
                                     say, bool(workers))
            raise
        except Exception as err:
            if folder.recorded:
                _record_failure(folder, settings, source, started, err)
            raise
    finally:
        with deferred_signals(raise_after=False):  # a signal now is the caller's to see
            folder.close()
            if finished is not None and result is not None:
                finished.append(result)
    return result


def _record_interruption(stop, folder, targets, rows, settings, started, source, say,
                         had_workers) -> None:
    """Write the table of the clusters done (the others ``not run``), the figures and the
    record marked ``interrupted`` with the exit code ``stop`` gives; set its ``record``
    and ``kept``. Signals are held back meanwhile (a second Ctrl-C does not cut the
    record short)."""
    acknowledge_signal()  # the clean-up's own writes go ahead (each is atomic)
    with deferred_signals(raise_after=False):
        done = sum(t.row in rows for t in targets)
        say(f"{stop}: {'the workers are stopped; ' if had_workers else ''}{done} of "
            f"{len(targets)} clusters have rows, {len(targets) - done} are left for a rerun; "
            f"writing the table and the record {folder.record}")
        for target in targets:  # a cluster whose folder was completed before its task's
            if target.row in rows or target.problem:  # result came back counts as done
                continue
            if folder_status(folder.cluster(target)) in COMPLETE:
                with suppress(OSError, ValueError, KeyError, TypeError):
                    rows[target.row] = row_from_folder(target, folder.cluster(target))
        rows.update({t.row: left_row(t) for t in targets if t.row not in rows})
        try:
            result = _write_outputs(folder, targets, rows, settings, "interrupted", started,
                                    source, say, exit_code=stop.exit_code)
            stop.kept = list(result.record["files"].values())
        except Exception as err:  # noqa: BLE001 - the record must still say interrupted
            _write_record(folder, {"status": "interrupted", "command": sys.argv,
                                   "settings": settings, "gaia_source": source.describe(),
                                   "exit_code": stop.exit_code,
                                   "error": f"the table could not be written: "
                                            f"{type(err).__name__}: {err}",
                                   "wall_time_s": round(time.perf_counter() - started, 1),
                                   "files": {}})
        stop.record = str(folder.record)


def _record_failure(folder, settings, source, started, err) -> None:
    """Mark the record ``failed`` with the error (the command exits 1 with its message)."""
    with deferred_signals(raise_after=False):
        _write_record(folder, {"status": "failed", "command": sys.argv, "settings": settings,
                               "gaia_source": source.describe(), "exit_code": EXIT_FAILED,
                               "error": f"{type(err).__name__}: {err}",
                               "wall_time_s": round(time.perf_counter() - started, 1),
                               "files": {}})


def _write_record(folder, record: dict) -> None:
    with suppress(OSError):  # a full disk: the error that stopped the survey is reported
        write_json(folder.record, record)


def mark_interrupted(result: SurveyResult, stop: RunInterrupted) -> None:
    """A signal came after the survey wrote its outputs: its record becomes
    ``interrupted`` with the signal's exit code (the table and figures are complete)."""
    acknowledge_signal()
    with deferred_signals(raise_after=False):
        record = {**result.record, "status": "interrupted", "exit_code": stop.exit_code}
        write_json(result.out_dir / SURVEY_RECORD, record)
        result.record = record
        stop.record = str(result.out_dir / SURVEY_RECORD)
        stop.kept = list(record["files"].values())


def expected_cost(target: SurveyTarget) -> int:
    """The scheduling priority of a cluster's task: its cone's area in arcmin² (the stars
    to fit, and so the time, grow with it); 0 when the cone's radius is unknown."""
    radius = target.radius_arcmin
    return int(round(radius**2)) if radius and math.isfinite(radius) else 0


def _run_tasks(todo, source, folder, options, sampling, gate, execution, client, rows,
               on_result, say):
    from dask import config as dask_config
    from distributed import as_completed

    own = client is None
    with dask_config.set({"distributed.scheduler.allowed-failures": 0}):
        if own:
            client = make_client(execution, say)
        attempt = uuid.uuid4().hex[:8]  # a rerun's tasks are new tasks, not the old ones
        try:
            # largest cones first (their stars, so their time, grow with the area): the
            # long tasks do not end up last, with one worker busy and the others idle
            futures = {client.submit(survey_cluster, target, source,
                                     str(folder.cluster(target)), options, sampling, gate,
                                     str(folder.log(target)), key=f"survey-{target.key}-{attempt}",
                                     pure=False, priority=expected_cost(target)): target
                       for target in todo}
            progress = Progress(len(todo), say)
            for future in as_completed(futures):
                target = futures[future]
                try:
                    row = future.result()
                except Exception as err:  # noqa: BLE001 - a dead worker, a lost task
                    row = error_row(target, _task_error(err))
                rows[target.row] = row
                progress.update(row)
                if on_result is not None:
                    on_result(row, client)
            progress.finish()
        finally:
            if own:
                close_client(client)


# The local cluster's workers, against distributed's defaults (one cluster's sampling time,
# 4 repeats in one worker, 2026-12-07: 12.3-15.9 s with the defaults, 11.3-13.1 s without
# the profiler, 11.4-13.9 s without the malloc setting; 11.4-11.8 s in a plain process):
# * no statistical profiler: it samples the task thread's stack every 10 ms, holding the GIL
#   the sampler's Python side needs, for a dashboard nobody opens;
# * no MALLOC_TRIM_THRESHOLD_: it fixes glibc's mmap threshold, so every (K, N) temporary of
#   a log-density evaluation is mapped and unmapped anew (page faults on each gradient).
# The thread-count variables stay at 1 (each worker is one thread). A cluster given with
# --scheduler keeps its own settings.
WORKER_CONFIG = {"distributed.worker.profile.enabled": False,
                 "distributed.nanny.pre-spawn-environ": {
                     "OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}}


def make_client(execution: Execution, say):
    """A client of the scheduler at ``execution.scheduler``, or of a new local cluster of
    single-threaded worker processes."""
    import dask
    from distributed import Client, LocalCluster

    if execution.scheduler is not None:
        say(f"connecting to the Dask scheduler at {execution.scheduler}")
        try:
            return Client(execution.scheduler, timeout="30s")
        except (OSError, TimeoutError) as err:
            raise ConnectionError(f"--scheduler {execution.scheduler}: no Dask scheduler "
                                  f"answered ({err})") from None
    workers = execution.workers or len(os.sched_getaffinity(0))
    say(f"starting a local Dask cluster: {workers} worker process(es) of 1 thread, memory "
        f"limit {execution.memory_limit} each")
    with dask.config.set(WORKER_CONFIG):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               memory_limit=execution.memory_limit, dashboard_address=":0")
    return Client(cluster)


def close_client(client) -> None:
    """Close the client and its local cluster. The nanny's warning that a worker took
    over 4 s to exit (Numba's and LLVM's finalisers) and was killed is not shown: the
    worker's clusters are complete or recorded by then."""
    import logging

    cluster = client.cluster
    client.close()
    if cluster is not None:
        nanny = logging.getLogger("distributed.nanny")
        level = nanny.level
        nanny.setLevel(logging.ERROR)
        try:
            cluster.close()
        finally:
            nanny.setLevel(level)


def _task_error(err: BaseException) -> str:
    if type(err).__name__ == "KilledWorker":
        return ("the worker running this cluster died (over its memory limit, or killed); "
                "a rerun redoes it")
    return f"{type(err).__name__}: {err}"


def _write_outputs(folder, targets, rows, settings, status, started, source, say,
                   exit_code=None):
    from starmix.workflows.survey.plots import draw_survey_figures

    table = survey_table([rows[t.row] for t in targets if t.row in rows])
    files = {"table_ecsv": write_table(folder.path / "survey.ecsv", table)}
    parquet = table.copy(copy_data=False)
    parquet.meta = {}  # Parquet keeps units; the notes are in the record
    files["table_parquet"] = write_table(folder.path / "survey.parquet", parquet)
    if len(table):
        files.update(draw_survey_figures(table, folder.path / "figures"))
    counts = {verdict: int((table["verdict"] == verdict).sum())
              for verdict in sorted(set(table["verdict"]))} if len(table) else {}
    found = table[table["verdict"] == "cluster found"] if len(table) else table
    agreement = {"found": len(found), "agree": int(found["agrees"].sum()) if len(found) else 0,
                 "criterion": table.meta.get("agreement")}
    agreement["fraction"] = (agreement["agree"] / agreement["found"] if agreement["found"]
                             else math.nan)
    if exit_code is None:
        exit_code = EXIT_SURVEY_ERRORS if counts.get("error") else 0
    record = {"status": status, "command": sys.argv, "settings": settings,
              "gaia_source": source.describe(), "clusters": len(targets),
              "verdicts": counts, "agreement": agreement, "exit_code": exit_code,
              "wall_time_s": round(time.perf_counter() - started, 1),
              "files": {label: str(path) for label, path in files.items()}}
    write_json(folder.path / SURVEY_RECORD, record)
    say(f"verdicts: {', '.join(f'{n} {v}' for v, n in counts.items()) or 'none'}; "
        f"{agreement['agree']} of {agreement['found']} found clusters agree with the "
        "published values")
    return SurveyResult(folder.path, table, record, exit_code)


class Progress:
    """Done, failed and left, with a time estimate: one line per cluster (a bar that
    redraws itself on a terminal)."""

    def __init__(self, total: int, say):
        self.total, self.say = total, say
        self.done = self.failed = 0
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, row: dict) -> None:
        self.done += 1
        self.failed += row["verdict"] == "error"
        elapsed = time.perf_counter() - self.start
        left = self.total - self.done
        eta = elapsed / self.done * left
        width = 30
        bar = "#" * round(width * self.done / self.total)
        line = (f"[{bar:<{width}}] {self.done - self.failed} done, {self.failed} failed, "
                f"{left} left; {_minutes(elapsed)} elapsed, about {_minutes(eta)} to go "
                f"({row['name']}: {row['verdict']})")
        if self.tty:
            print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)
        else:
            self.say(line)

    def finish(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _stderr(message: str) -> None:
    print(f"[starmix survey] {message}", file=sys.stderr, flush=True)
