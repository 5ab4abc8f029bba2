"""Interrupted runs: a real ``starmix`` process stopped by SIGTERM or Ctrl-C during sampling."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import SHORT_ARGS
from workflows import outlier_line
from workflows.cli import main
from workflows.interrupt import RunInterrupted
from workflows.results import atomic_path, write_json

pytestmark = pytest.mark.smoke

LONG_RUN = ["run", "outlier-line", "--draws", "100000", "--chains", "2", "--no-figures"]


def start_and_wait_for_sampling(out, stderr_path, timeout=120.0):
    """Start a long run in its own process group; return once NUTS is running."""
    stderr = stderr_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "workflows.cli", *LONG_RUN, "--out", str(out)],
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
    assert f"interrupted by {signal.Signals(signal_number).name} during 'sample'" in message
    assert "this run wrote no result files" in message
    assert not out.exists() or not any(out.rglob("*"))

    # the same folder works again afterwards
    assert main(["run", "outlier-line", *SHORT_ARGS, "--no-figures", "--out", str(out)]) == 0
    assert json.loads((out / "run_record.json").read_text())["status"] == "passed"
    assert not list(out.rglob(".*partial*"))


def test_interrupted_write_keeps_the_old_file_whole(tmp_path):
    target = write_json(tmp_path / "record.json", {"run": 1})
    with pytest.raises(RunInterrupted), atomic_path(target) as temporary:
        temporary.write_text('{"run": 2, "half')
        raise RunInterrupted(signal.SIGTERM)
    assert [path.name for path in tmp_path.iterdir()] == ["record.json"]
    assert json.loads(target.read_text()) == {"run": 1}


def test_interruption_after_writing_marks_the_record(tmp_path, monkeypatch, capsys):
    def stop_in_figures(*_args, **_kwargs):
        raise RunInterrupted(signal.SIGINT)

    monkeypatch.setattr(outlier_line, "draw_line_figures", stop_in_figures)
    out = tmp_path / "line"
    assert main(["run", "outlier-line", *SHORT_ARGS, "--out", str(out)]) == 130
    record = json.loads((out / "run_record.json").read_text())
    assert record["status"] == "interrupted"
    assert record["interrupted"] == {"signal": "SIGINT", "step": "figures"}
    assert set(record["files"]) >= {"posterior", "summary", "membership"}
    stderr = capsys.readouterr().err
    assert "during 'figures'" in stderr
    assert "posterior.nc" in stderr
