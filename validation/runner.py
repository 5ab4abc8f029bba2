"""Run many fits in parallel worker processes, saving each result as soon as it is done.

Results go to one JSON file per experiment (written atomically after every replicate), so an
interrupted validation keeps everything finished and a rerun only does what is missing.
"""

import json
import logging
import multiprocessing
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from workflows.results import write_json


def quiet_worker() -> None:
    """Silence PyMC's per-fit chatter in the workers; the runner prints one line per fit."""
    import pymc  # noqa: F401  (PyMC sets its logger's level on import: import it first)

    logging.getLogger("pymc").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")


def load_done(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"results": []}


def run_all(path: Path, task: Callable, seeds: Iterable[int], jobs: int, label: str,
            header: dict, **task_kwargs) -> list[dict]:
    """Run ``task(seed, **task_kwargs)`` for every seed not already in ``path``.

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
        finished = pool.imap_unordered(partial(task, **task_kwargs), todo)
        for done, result in enumerate(finished, 1):
            results.append(result)
            write_json(path, {**header, "results": sorted(results, key=lambda r: r["seed"])})
            elapsed = time.perf_counter() - start
            print(f"[validate] {label}: {done}/{len(todo)} done ({elapsed:.0f} s, "
                  f"~{elapsed / done * (len(todo) - done):.0f} s left)", file=sys.stderr,
                  flush=True)
    return sorted(results, key=lambda result: result["seed"])
