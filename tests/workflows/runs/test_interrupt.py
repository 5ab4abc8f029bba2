"""Interrupted runs: a real ``starmix`` process stopped by SIGTERM or Ctrl-C in each phase.

Sampling is interrupted from outside, on a timer. Every other phase is hit from inside the
process by a probe (``PROBE`` below) that wraps a function the phase calls and sends the
process a real signal from within it, in one of two ways:

- ``plain``: the signal arrives while the phase runs, as a user's Ctrl-C would;
- ``swallowed``: the probe catches the resulting exception itself, as C code calling back
  into Python does (LLVM during a first compile, HDF5 during a write: "Exception ignored").

Either way the run must stop with 130 (SIGINT) or 143 (SIGTERM), and leave ``--out`` with a
run record marked ``interrupted`` that names the phase, every file it lists complete, and no
file it does not list (nor any partial or staging file beside it).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from starmix.workflows.cli import main
from starmix.workflows.runs.files import atomic_path, write_json
from starmix.workflows.runs.interrupt import RunInterrupted
from tests.conftest import SHORT_ARGS

pytestmark = pytest.mark.smoke

QUICK = ["run", "outlier-line", "--draws", "60", "--tune", "60", "--chains", "1",
         "--sampler", "nutpie", "--ess-bulk-min", "1", "--ess-tail-min", "1",
         "--r-hat-max", "10"]
LONG_RUN = ["run", "outlier-line", "--draws", "100000", "--chains", "2", "--no-figures"]

PROBE = r"""
import importlib, os, signal, sys, time
target, mode, name, *argv = sys.argv[1:]
module_name, path = target.split(":")
owner = importlib.import_module(module_name)
*parents, attribute = path.split(".")
for parent in parents:
    owner = getattr(owner, parent)
original = getattr(owner, attribute)
fired = []

def probe(*args, **kwargs):
    if not fired:
        fired.append(True)
        if mode == "swallowed":
            try:
                os.kill(os.getpid(), getattr(signal, name))
                time.sleep(0.2)
            except BaseException as error:  # what a C callback does with an exception
                print(f"probe: swallowed {error!r}", file=sys.stderr)
        else:
            os.kill(os.getpid(), getattr(signal, name))
    return original(*args, **kwargs)

setattr(owner, attribute, probe)
from starmix.workflows.cli import main
sys.exit(main(argv))
"""


def run_probed(tmp_path, target, mode, signal_name, out, extra=()):
    return subprocess.run(
        [sys.executable, "-c", PROBE, target, mode, signal_name, *QUICK, *extra,
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "CI": "true"})


def assert_folder_is_one_interrupted_run(out, step, signal_name):
    record = json.loads((out / "run_record.json").read_text())
    assert record["status"] == "interrupted", record["status"]
    assert record["interrupted"] == {"signal": signal_name, "step": step}
    listed = {os.path.abspath(path) for path in record["files"].values()}
    present = {os.path.abspath(path) for path in out.rglob("*") if path.is_file()}
    assert present == listed, (present ^ listed)
    for path in listed:
        assert os.path.getsize(path) > 0, path
    leftovers = [p for p in out.parent.rglob(".*") if ".partial-" in p.name
                 or ".staging-" in p.name or ".old-" in p.name]
    assert not leftovers, leftovers
    return record


# (function the phase calls, phase name in the record, files complete before the signal)
PHASES = [
    ("starmix.workflows.line.run:simulate_outlier_line", "load data", set()),
    ("starmix.workflows.line.run:outlier_line", "build model", set()),
    ("starmix.workflows.inference.nutpie_sampler:compile_for_nutpie", "sample", set()),
    ("starmix.workflows.line.run:membership_from_posterior", "membership", set()),
    ("starmix.workflows.inference.checks:predictive_checks", "predictive checks", set()),
    ("xarray:DataTree.to_netcdf", "save results", {"posterior"}),
    ("astropy.io.ascii.ui:write", "save results", {"posterior", "summary"}),
    ("starmix.workflows.line.plots:line_fit_figure", "figures",
     {"posterior", "summary", "membership"}),
    ("matplotlib.figure:Figure.savefig", "figures",
     {"posterior", "summary", "membership", "figure_line_fit"}),
    ("starmix.workflows.runs.run:versions", "write run record",
     {"posterior", "summary", "membership", "figure_line_fit", "figure_corner",
      "figure_membership", "figure_pgm", "figure_checks"}),
]
# inside a file write the signal waits, so there is no exception for a callback to swallow
DEFERRED = {"xarray:DataTree.to_netcdf", "astropy.io.ascii.ui:write",
            "matplotlib.figure:Figure.savefig", "starmix.workflows.runs.run:versions"}


@pytest.mark.parametrize(("target", "step", "complete"), PHASES,
                         ids=[f"{step}-{target.split(':')[1]}" for target, step, _ in PHASES])
@pytest.mark.parametrize("mode", ["plain", "swallowed"])
def test_signal_in_every_phase_stops_the_run(tmp_path, target, step, complete, mode):
    signal_name = "SIGINT" if mode == "plain" else "SIGTERM"
    out = tmp_path / "line"
    finished = run_probed(tmp_path, target, mode, signal_name, out)
    assert finished.returncode == 128 + getattr(signal, signal_name), finished.stderr
    assert f"interrupted by {signal_name}" in finished.stderr
    assert "Traceback" not in finished.stderr
    if mode == "swallowed" and target not in DEFERRED:
        assert "probe: swallowed" in finished.stderr  # the exception was really lost
    record = assert_folder_is_one_interrupted_run(out, step, signal_name)
    # a write under way when the signal came finishes first, so it is complete, not lost
    assert set(record["files"]) - {"run_record"} == complete


def start_and_wait_for_sampling(out, stderr_path, timeout=120.0):
    """Start a long run in its own process group; return once NUTS is running."""
    stderr = stderr_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "starmix.workflows.cli", *LONG_RUN, "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
        env={**os.environ, "CI": "true"},
    )
    deadline = time.monotonic() + timeout
    while "NUTS:" not in stderr_path.read_text():
        assert process.poll() is None, stderr_path.read_text()
        assert time.monotonic() < deadline, "sampling never started"
        time.sleep(0.2)
    time.sleep(2.0)  # well inside tuning: 100,000 draws take minutes
    return process


@pytest.mark.parametrize(("signal_number", "to_group", "exit_code"), [
    (signal.SIGTERM, False, 143),
    (signal.SIGINT, True, 130),  # Ctrl-C reaches the whole process group, workers too
])
def test_signal_during_sampling_stops_cleanly(tmp_path, signal_number, to_group, exit_code):
    out = tmp_path / "line"
    stderr_path = tmp_path / "stderr.txt"
    process = start_and_wait_for_sampling(out, stderr_path)
    if to_group:
        os.killpg(process.pid, signal_number)
    else:
        process.send_signal(signal_number)
    assert process.wait(timeout=60) == exit_code
    message = stderr_path.read_text()
    name = signal.Signals(signal_number).name
    assert f"interrupted by {name} during 'sample'" in message
    assert "wrote no result files before it stopped" in message
    assert_folder_is_one_interrupted_run(out, "sample", name)

    # the same folder works again afterwards, and holds only the new run
    assert main(["run", "outlier-line", *SHORT_ARGS, "--no-figures", "--out", str(out)]) == 0
    record = json.loads((out / "run_record.json").read_text())
    assert record["status"] == "passed"
    assert "interrupted" not in record


def test_interrupted_write_keeps_the_old_file_whole(tmp_path):
    target = write_json(tmp_path / "record.json", {"run": 1})
    with pytest.raises(RunInterrupted), atomic_path(target) as temporary:
        temporary.write_text('{"run": 2, "half')
        raise RunInterrupted(signal.SIGTERM)
    assert [path.name for path in tmp_path.iterdir()] == ["record.json"]
    assert json.loads(target.read_text()) == {"run": 1}
