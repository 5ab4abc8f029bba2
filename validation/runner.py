"""Run many fits in parallel worker processes, saving each result as soon as it is done.

Results go to one JSON file per experiment (written atomically after every replicate), so an
interrupted validation keeps everything finished and a rerun only does what is missing.
"""

import json
import logging
import multiprocessing
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from starmix.workflows.results import write_json


def quiet_worker() -> None:
    """Silence PyMC's per-fit chatter in the workers; the runner prints one line per fit."""
    import pymc  # noqa: F401  (PyMC sets its logger's level on import: import it first)

    logging.getLogger("pymc").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")


class FitTimedOut(Exception):
    """A fit ran past its time limit (raised by SIGALRM inside the worker)."""


def _alarm(_signal_number, _frame):
    raise FitTimedOut


def timed_task(seed: int, task: Callable, timeout_s: int, **task_kwargs) -> dict:
    """Run ``task`` with a wall-clock limit; a fit past it is recorded as timed out, not lost.

    Weakly identified prior draws can make NUTS run at its maximum tree depth for many
    minutes; the report counts these and says that excluding them may bias the ranks.
    """
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    start = time.perf_counter()
    try:
        result = task(seed, **task_kwargs)
    except FitTimedOut:
        result = {"seed": seed, "timed_out": True}
    except Exception as error:  # a failed fit is a result to report, not a crash
        result = {"seed": seed, "error": f"{type(error).__name__}: {error}"[:300]}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return {**result, "seconds": round(time.perf_counter() - start, 1)}


def load_done(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"results": []}


def run_all(path: Path, task: Callable, seeds: Iterable[int], jobs: int, label: str,
            header: dict, timeout_s: int, **task_kwargs) -> list[dict]:
    """Run ``task(seed, **task_kwargs)`` for every seed not already in ``path``, each
    limited to ``timeout_s`` seconds of wall time.

    ``task`` must be a module-level function (it runs in another process) returning a
    JSON-serialisable dict with a ``seed`` key.
    """
    saved = load_done(path)
    results = saved["results"]
    todo = sorted(set(seeds) - {result["seed"] for result in results})
    if not todo:
        return sorted(results, key=lambda result: result["seed"])
    print(f"[validate] {label}: {len(todo)} fits to run ({len(results)} already saved), "
          f"{jobs} worker(s)", file=sys.stderr, flush=True)
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    # Pool's context manager terminates the workers on any exception (Ctrl-C included),
    # so an interrupted validation leaves no orphaned fits running.
    with context.Pool(jobs, initializer=quiet_worker) as pool:
        finished = pool.imap_unordered(
            partial(timed_task, task=task, timeout_s=timeout_s, **task_kwargs), todo)
        for done, result in enumerate(finished, 1):
            results.append(result)
            write_json(path, {**header, "results": sorted(results, key=lambda r: r["seed"])})
            elapsed = time.perf_counter() - start
            late = (" (TIMED OUT)" if result.get("timed_out")
                    else f" (FAILED: {result['error']})" if "error" in result else "")
            print(f"[validate] {label}: {done}/{len(todo)} done{late} ({elapsed:.0f} s, "
                  f"~{elapsed / done * (len(todo) - done):.0f} s left)", file=sys.stderr,
                  flush=True)
    return sorted(results, key=lambda result: result["seed"])
