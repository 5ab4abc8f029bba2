"""The results folder holds one run: checked first, locked, staged and swapped in.

Each test here failed before :mod:`starmix.workflows.runs.folder` existed: two runs into one
``--out``
mixed their files, a second run left the first one's files beside its own, a killed run's
partial files stayed, and a bad ``--out`` failed only after sampling, with a traceback.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from starmix.workflows.cli import main
from starmix.workflows.runs.folder import OutputFolder, OutputFolderError
from tests.conftest import SHORT_ARGS

QUICK = ["--draws", "60", "--tune", "60", "--chains", "2", "--sampler", "nutpie",
         "--ess-bulk-min", "1", "--ess-tail-min", "1", "--r-hat-max", "10"]


def files_in(folder):
    return {os.path.abspath(path) for path in folder.rglob("*") if path.is_file()}


def listed_in_record(folder):
    record = json.loads((folder / "run_record.json").read_text())
    return {os.path.abspath(path) for path in record["files"].values()}, record


def test_second_run_into_a_folder_fails_at_once_and_a_killed_run_leaves_no_lock(
        tmp_path, capsys):
    out = tmp_path / "line"
    stderr_path = tmp_path / "first.txt"
    first = subprocess.Popen(
        [sys.executable, "-m", "starmix.workflows.cli", "run", "outlier-line", "--draws", "100000",
         "--chains", "2", "--no-figures", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=stderr_path.open("w"), start_new_session=True,
        env={**os.environ, "CI": "true"})
    deadline = time.monotonic() + 120
    while "NUTS:" not in stderr_path.read_text():
        assert first.poll() is None, stderr_path.read_text()
        assert time.monotonic() < deadline
        time.sleep(0.2)

    started = time.monotonic()
    assert main(["run", "outlier-line", *QUICK, "--out", str(out)]) == 1
    assert time.monotonic() - started < 10  # at once, not after its own sampling
    message = capsys.readouterr().err
    assert f"another starmix run (process {first.pid}) is writing into this folder" in message
    assert "load data" not in message

    os.killpg(first.pid, signal.SIGKILL)  # no clean-up at all
    first.wait(timeout=30)
    staging = list(tmp_path.glob(".line.staging-*"))
    assert staging  # what the killed run left

    assert main(["run", "outlier-line", *QUICK, "--no-figures", "--out", str(out)]) == 0
    assert not list(tmp_path.glob(".line.staging-*"))
    listed, record = listed_in_record(out)
    assert files_in(out) == listed and record["status"] == "passed"


def test_the_lock_is_exclusive_and_released(tmp_path):
    first = OutputFolder(tmp_path / "out")
    first.open()
    with pytest.raises(OutputFolderError, match="another starmix run"):
        OutputFolder(tmp_path / "out").open()
    first.abandon()
    second = OutputFolder(tmp_path / "out")
    second.open()
    second.abandon()
    assert list(tmp_path.iterdir()) == []  # abandon removes what the run created


@pytest.mark.smoke
def test_a_second_run_leaves_none_of_the_first_runs_files(tmp_path):
    out = tmp_path / "line"
    assert main(["run", "outlier-line", *QUICK, "--out", str(out)]) == 0
    assert (out / "figures").is_dir()
    first_listed, _ = listed_in_record(out)
    assert files_in(out) == first_listed

    # the second run writes fewer files: none of the first run's may stay beside them
    assert main(["run", "outlier-line", *QUICK, "--no-figures", "--seed", "3",
                 "--out", str(out)]) == 0
    listed, record = listed_in_record(out)
    assert files_in(out) == listed
    assert not (out / "figures").exists()
    assert record["settings"]["SamplingOptions"]["seed"] == 3


def test_leftovers_of_killed_runs_are_removed(tmp_path):
    out = tmp_path / "line"
    out.mkdir()
    (out / "run_record.json").write_text(json.dumps({
        "workflow": "outlier-line", "status": "passed",
        "files": {"run_record": str(out / "run_record.json")}}))
    (out / ".posterior.partial-4242.nc").write_bytes(b"half")
    (out / "figures").mkdir()
    (out / "figures" / ".outlier_line_fit.partial-4242.png").write_bytes(b"")
    (tmp_path / ".line.staging-4242").mkdir()
    (tmp_path / ".line.staging-4242" / "posterior.nc").write_bytes(b"x")
    (tmp_path / ".line.old-4242").mkdir()
    folder = OutputFolder(out)
    folder.open()
    assert not list(out.rglob(".*partial*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".line.lock", "line", folder.staging.name])
    folder.abandon()


@pytest.mark.parametrize("case", ["file", "under_file", "sys", "foreign_folder"])
def test_bad_out_fails_before_loading_and_writes_nothing(tmp_path, capsys, case):
    (tmp_path / "a_file").write_text("keep me")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me too")
    out = {"file": tmp_path / "a_file", "under_file": tmp_path / "a_file" / "results",
           "sys": "/sys/starmix-results", "foreign_folder": tmp_path / "mine"}[case]
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main(["run", "outlier-line", "--out", str(out)]) == 1
    message = capsys.readouterr().err
    assert f"--out {out}" in message
    assert "load data" not in message and "Traceback" not in message
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "a_file").read_text() == "keep me"


@pytest.mark.parametrize(("options", "named"), [
    (["--radial-velocity", "0", "-1"], "--radial-velocity"),
    (["--max-stars", "0"], "--max-stars"),
    (["--radius", "0", "--center", "295.3", "40.2"], "--radius"),
    (["--ruwe-max", "0"], "--ruwe-max"),
    (["--model", "parallax", "--field-components", "3"], "--field-components"),
    (["--model", "pm2d", "--parallax-offset"], "--parallax-offset"),
    (["--n-cluster", "-5"], "--n-cluster"),
    (["--center", "295", "95"], "--center"),
    (["--cores", "0"], "--cores"),
    (["--cores", "-3"], "--cores"),
])
def test_bad_cluster_options_fail_before_loading(tmp_path, capsys, options, named):
    out = tmp_path / "o"
    assert main(["run", "cluster", *options, "--out", str(out)]) == 1
    message = capsys.readouterr().err
    assert named in message and "load data" not in message
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_error_after_loading_leaves_the_previous_run_whole(tmp_path, capsys):
    out = tmp_path / "line"
    assert main(["run", "outlier-line", *SHORT_ARGS, "--no-figures", "--out", str(out)]) == 0
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    bad = tmp_path / "two.csv"
    bad.write_text("x,y,y_err\n1,2,1\n2,3,1\n")
    assert main(["run", "outlier-line", "--data", str(bad), "--out", str(out)]) == 1
    assert "at least 10" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["line", "two.csv"]
