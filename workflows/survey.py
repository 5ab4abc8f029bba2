"""``starmix survey``: Bayesian membership for every cluster of a catalogue, on Dask.

:func:`run_survey` reads the catalogue (:mod:`data.survey_catalogue`), skips the clusters
whose results are complete, and sends one Dask task per remaining cluster
(:func:`survey_cluster`: its cone from the Gaia source of :mod:`data.survey_sources`, then
the whole cluster workflow, :func:`workflows.cluster.run_cluster`, into
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
  record with a verdict (:data:`workflows.survey_rows.COMPLETE`) and redoes the rest.
  ``OUT`` holds one survey: a rerun with other settings is an error naming them.
* Ctrl-C (or SIGTERM) cancels the tasks, stops the workers and writes the table of the
  clusters done so far (the others ``not run``); each cluster folder is written aside and
  swapped in whole (:mod:`workflows.outdir`), so a complete cluster stays complete.
* Outputs: ``OUT/survey.ecsv`` and ``OUT/survey.parquet`` (one row per cluster,
  :mod:`workflows.survey_rows`), ``OUT/survey_record.json``, ``OUT/figures/`` and one log
  per cluster in ``OUT/logs/``.

Exit codes: 0 every cluster has a verdict (found, none found, gate failed); 1 bad input;
5 some clusters ended in an error (their rows say why; a rerun redoes them); 130/143
interrupted.
"""

import json
import math
import os
import resource
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from starmix.data.survey_catalogue import SurveyTarget, read_survey_catalogue
from starmix.data.survey_sources import gaia_source
from starmix.models import CLUSTER_MODELS
from starmix.workflows.config import GateThresholds, SamplingOptions
from starmix.workflows.interrupt import RunInterrupted, acknowledge_signal
from starmix.workflows.outdir import check_output_path, lock_file
from starmix.workflows.results import write_json, write_table
from starmix.workflows.survey_rows import (
    COMPLETE,
    error_row,
    folder_status,
    left_row,
    row_from_folder,
    survey_table,
)

EXIT_SURVEY_ERRORS = 5
SURVEY_RECORD = "survey_record.json"


@dataclass(frozen=True)
class SurveyOptions:
    """What each cluster's run does. ``gaia``: ``simulate``, a folder of per-cluster Gaia
    files or a HATS catalogue; ``model``: pmplx by default, the cheapest model that fits
    the cluster's parallax (pm2d reports the members' weighted median parallax, which
    field stars of small P pull towards the field's); ``limit``: the first N catalogue
    rows; ``sim_seed`` and ``sim_field_density`` (field stars per arcmin²) shape the
    simulated fields; ``assign_errors`` and ``drop_invalid`` are ``starmix run cluster``'s
    options for real files (Gaia DR3 errors from G for files without errors; drop and
    count invalid rows)."""

    gaia: str = "simulate"
    model: str = "pmplx"
    limit: int | None = None
    figures: bool = True
    checks: str = "on"
    sim_seed: int = 42
    sim_field_density: float = 2.0
    assign_errors: bool = False
    drop_invalid: bool = False

    def __post_init__(self):
        if self.model not in CLUSTER_MODELS:
            raise ValueError(f"--model must be one of {sorted(CLUSTER_MODELS)}, "
                             f"got {self.model!r}")


@dataclass(frozen=True)
class Execution:
    """Where the tasks run: ``scheduler`` (an address such as ``tcp://host:8786``) or a
    local cluster of ``workers`` processes (default: one per core) of one thread each,
    ``memory_limit`` each (``auto``: the machine's memory shared equally)."""

    scheduler: str | None = None
    workers: int | None = None
    memory_limit: str = "auto"

    def __post_init__(self):
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if self.scheduler is not None and self.workers is not None:
            raise ValueError("--workers is for the local cluster; with --scheduler the "
                             "cluster at that address has its own workers")


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
    from starmix.workflows.cluster import ClusterInput, run_cluster

    start = time.perf_counter()
    try:
        with output_to(log) as stream:
            data, provenance = source.field(target)
            if hasattr(data, "meta"):
                data.meta["source"] = provenance["source"]
            cone = (target.ra, target.dec, target.radius_arcmin)
            inputs = ClusterInput(
                model=options.model, data=data, cluster=target.name,
                assign_errors=options.assign_errors, drop_invalid=options.drop_invalid,
                reference=target.reference(), center=(target.ra, target.dec),
                footprint=cone if options.model == "joint" and hasattr(data, "meta") else None)
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
    while a survey runs in it (a second one into the same folder is an error)."""

    def __init__(self, out: str | Path):
        self.path = check_output_path(out, SURVEY_RECORD)
        self.given = out
        self._lock = None

    def cluster(self, target: SurveyTarget) -> Path:
        return self.path / "clusters" / target.key

    def log(self, target: SurveyTarget) -> Path:
        return self.path / "logs" / f"{target.key}.log"

    def __enter__(self):
        (self.path / "logs").mkdir(parents=True, exist_ok=True)
        (self.path / "clusters").mkdir(exist_ok=True)
        self._lock = lock_file(self.path / ".survey.lock", self.given)
        return self

    def __exit__(self, *_):
        self._lock.close()
        return False

    def check_settings(self, settings: dict) -> None:
        """A rerun must ask for what the folder's survey did (else its rows would mix)."""
        path = self.path / SURVEY_RECORD
        if not path.is_file():
            return
        before = json.loads(path.read_text()).get("settings", {})
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
               say=None) -> SurveyResult:
    """Run (or resume) a survey; see the module docstring. ``client``: a
    ``distributed.Client`` to use instead of making one; ``on_result(row, client)`` is
    called after each cluster (progress hooks, tests)."""
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
    with folder:
        # the record first: a survey killed outright (no chance to write its table) is
        # still known as this survey's folder, and its rerun resumes it
        write_json(folder.path / SURVEY_RECORD, {"status": "running", "command": sys.argv,
                                                 "settings": settings,
                                                 "gaia_source": source.describe()})
        rows, todo = {}, []
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
        try:
            if todo:
                _run_tasks(todo, source, folder, options, sampling, gate, execution, client,
                           rows, on_result, say)
        except RunInterrupted as stop:
            acknowledge_signal()  # the clean-up's own writes go ahead (each is atomic)
            say(f"{stop}: the workers are stopped; {len(rows)} clusters have rows, "
                f"{len(targets) - len(rows)} are left for a rerun")
            rows.update({t.row: left_row(t) for t in targets if t.row not in rows})
            result = _write_outputs(folder, targets, rows, settings, "interrupted", started,
                                    source, say)
            stop.record = str(folder.path / SURVEY_RECORD)
            stop.kept = list(result.record["files"].values())
            raise
        result = _write_outputs(folder, targets, rows, settings, "complete", started, source,
                                say)
    return result


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
            futures = {client.submit(survey_cluster, target, source,
                                     str(folder.cluster(target)), options, sampling, gate,
                                     str(folder.log(target)), key=f"survey-{target.key}-{attempt}",
                                     pure=False): target for target in todo}
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


def make_client(execution: Execution, say):
    """A client of the scheduler at ``execution.scheduler``, or of a new local cluster of
    single-threaded worker processes."""
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


def _write_outputs(folder, targets, rows, settings, status, started, source, say):
    from starmix.workflows.survey_plots import draw_survey_figures

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
