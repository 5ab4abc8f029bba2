"""Run many fits as Dask tasks, saving each result as soon as it is done.

Each fit is one task on a ``distributed`` cluster: a local one of ``workers``
single-threaded processes (the default), or the scheduler at ``--scheduler``. Results go to
one JSON file per experiment (written atomically after every replicate), so an interrupted
validation keeps everything finished and a rerun only does what is missing.

A fit past its time limit (weakly identified prior draws can keep NUTS at its maximum tree
depth for many minutes) is recorded as timed out: the runner learns when each task started
from the event its worker logs (:data:`START_TOPIC`), and restarts a worker whose task ran
too long, which stops that fit; Dask reschedules whatever else that worker held.
"""

import json
import logging
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path

from starmix.workflows.runs.files import write_json

START_TOPIC = "starmix-validation-start"
POLL_S = 2.0


def quiet_worker() -> None:
    """Silence PyMC's per-fit chatter in the workers; the runner prints one line per fit."""
    import pymc  # noqa: F401  (PyMC sets its logger's level on import: import it first)

    logging.getLogger("pymc").setLevel(logging.CRITICAL)  # its convergence notes log at ERROR
    warnings.simplefilter("ignore")


def fit_task(seed: int, task: Callable, **task_kwargs) -> dict:
    """One Dask task: log its start (for the time limit), run ``task``; a failed fit is a
    result to report (``error``), not a crash."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(START_TOPIC, {"seed": seed, "worker": worker.address,
                                   "started": time.time()})
    quiet_worker()
    start = time.perf_counter()
    try:
        result = task(seed, **task_kwargs)
    except Exception as error:  # noqa: BLE001 - recorded, the other fits go on
        result = {"seed": seed, "error": f"{type(error).__name__}: {error}"[:300]}
    return {**result, "seconds": round(time.perf_counter() - start, 1)}


def make_client(workers: int = 2, scheduler: str | None = None):
    """A client of ``scheduler``, or of a new local cluster of ``workers`` single-threaded
    processes: the survey's (:func:`starmix.workflows.survey.run.make_client`)."""
    from starmix.workflows.survey.run import Execution
    from starmix.workflows.survey.run import make_client as survey_client

    execution = Execution(scheduler=scheduler, workers=None if scheduler else workers)
    return survey_client(execution, lambda message: print(f"[validate] {message}",
                                                          file=sys.stderr, flush=True))


def load_done(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"results": []}


def run_all(path: Path, task: Callable, seeds: Iterable[int], client, label: str,
            header: dict, timeout_s: int, **task_kwargs) -> list[dict]:
    """Run ``task(seed, **task_kwargs)`` for every seed not already in ``path``, one Dask
    task each on ``client``, each limited to ``timeout_s`` seconds of wall time.

    ``task`` must be a module-level function (it runs in another process) returning a
    JSON-serialisable dict with a ``seed`` key.
    """
    from distributed import wait

    saved = load_done(path)
    results = saved["results"]
    todo = sorted(set(seeds) - {result["seed"] for result in results})
    if not todo:
        return sorted(results, key=lambda result: result["seed"])
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    print(f"[validate] {label}: {len(todo)} fits to run ({len(results)} already saved), "
          f"{workers} Dask worker(s)", file=sys.stderr, flush=True)
    started: dict[int, dict] = {}
    client.subscribe_topic(START_TOPIC, lambda event: started.setdefault(
        event[1]["seed"], event[1]))
    attempt = uuid.uuid4().hex[:8]
    futures = {client.submit(fit_task, seed, task, **task_kwargs, pure=False,
                             key=f"validate-{label.replace(' ', '-')}-{seed}-{attempt}"): seed
               for seed in todo}
    pending, done_count, start = set(futures), 0, time.perf_counter()
    try:
        while pending:
            with suppress(TimeoutError):  # distributed's wait raises when none is done
                wait(pending, timeout=POLL_S, return_when="FIRST_COMPLETED")
            finished = {future for future in pending if future.done()}
            pending -= finished
            new = [_result(future, futures[future]) for future in finished]
            for future in list(pending):
                began = started.get(futures[future])
                if began is not None and time.time() - began["started"] > timeout_s:
                    pending.discard(future)
                    future.cancel()
                    client.restart_workers([began["worker"]])  # stops the runaway fit
                    new.append({"seed": futures[future], "timed_out": True,
                                "seconds": round(time.time() - began["started"], 1)})
            for result in new:
                done_count += 1
                results.append(result)
                write_json(path, {**header,
                                  "results": sorted(results, key=lambda r: r["seed"])})
                elapsed = time.perf_counter() - start
                late = (" (TIMED OUT)" if result.get("timed_out")
                        else f" (FAILED: {result['error']})" if "error" in result else "")
                print(f"[validate] {label}: {done_count}/{len(todo)} done{late} "
                      f"({elapsed:.0f} s, ~{elapsed / done_count * (len(todo) - done_count):.0f}"
                      " s left)", file=sys.stderr, flush=True)
    finally:
        client.unsubscribe_topic(START_TOPIC)
        client.cancel(list(pending))
    return sorted(results, key=lambda result: result["seed"])


def _result(future, seed: int) -> dict:
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - a worker that died, a lost task
        return {"seed": seed, "error": f"{type(error).__name__}: {error}"[:300]}
