"""A results folder never costs the user a file: the hostile cases of issue 32.

A planted lock link, a foreign ``run_record.json``, the user's own files (the run's input
among them) in ``--out``, a symbolic-link ``--out``, a full disk and SIGHUP. Each test
failed before the fix: the victim of the link held the run's pid, ``obs.csv`` and
``mydata.csv`` were deleted, the link was replaced by a folder, the full disk ended in a
segmentation fault in libhdf5 (exit 139), and SIGHUP left no record (exit 129).
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from starmix.workflows.cli import main
from starmix.workflows.runs.files import DiskFullError, write_json, write_text
from starmix.workflows.runs.folder import OutputFolder, OutputFolderError

QUICK = ["--draws", "60", "--tune", "60", "--chains", "2", "--sampler", "nutpie",
         "--ess-bulk-min", "1", "--ess-tail-min", "1", "--r-hat-max", "10", "--no-figures"]


def run_line(out, *extra):
    return main(["run", "outlier-line", *QUICK, *extra, "--out", str(out)])


def record_of(folder):
    return json.loads((Path(folder) / "run_record.json").read_text())


def one_error_line(capsys, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("starmix: error:")]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in "\n".join(err)
    return errors[0]


def test_a_planted_lock_link_is_refused_and_its_target_untouched(tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / ".X.lock").symlink_to(victim)
    assert run_line(tmp_path / "X") == 1
    one_error_line(capsys, "lock file", "symbolic link")
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "X").exists()


def test_a_hard_linked_lock_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.link(victim, tmp_path / ".X.lock")
    with pytest.raises(OutputFolderError, match="hard links"):
        OutputFolder(tmp_path / "X").open()
    assert victim.read_text() == "precious\n"


def test_a_lock_that_is_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / ".X.lock")
    with pytest.raises(OutputFolderError, match="not a regular file"):
        OutputFolder(tmp_path / "X").open()


@pytest.mark.parametrize("record", ['{}', 'not json', '{"workflow": "x", "status": "passed"}',
                                    '{"workflow": "x", "status": "passed", "files": '
                                    '{"run_record": "/elsewhere/run_record.json", '
                                    '"data": "/etc/passwd"}}'])
def test_a_folder_with_a_foreign_record_is_refused_and_kept(tmp_path, capsys, record):
    out = tmp_path / "U"
    out.mkdir()
    (out / "obs.csv").write_text("data\n")
    (out / "run_record.json").write_text(record)
    assert run_line(out) == 1
    one_error_line(capsys, "run_record.json", "not a starmix run record")
    assert (out / "obs.csv").read_text() == "data\n"
    assert (out / "run_record.json").read_text() == record


def test_a_rerun_keeps_the_users_files_and_refuses_its_input_inside_out(tmp_path, capsys):
    out = tmp_path / "V"
    assert run_line(out) == 0
    capsys.readouterr()
    table = out / "membership.ecsv"
    from astropy.table import Table

    data = Table.read(table)[["x", "y", "y_err"]]
    data.write(out / "mydata.csv")
    assert run_line(out, "--data", str(out / "mydata.csv")) == 1
    one_error_line(capsys, "--data", "inside --out")
    assert (out / "mydata.csv").is_file()

    # any file the previous record does not list stops a rerun before it starts
    data.write(tmp_path / "elsewhere.csv")
    (out / "figures").mkdir()
    (out / "figures" / "my_plot.png").write_bytes(b"png")
    assert run_line(out, "--data", str(tmp_path / "elsewhere.csv")) == 1
    line = one_error_line(capsys, "does not list", "mydata.csv")
    assert "my_plot.png" in line
    assert (out / "mydata.csv").is_file() and (out / "figures" / "my_plot.png").is_file()

    (out / "mydata.csv").unlink()
    (out / "figures" / "my_plot.png").unlink()
    assert run_line(out, "--data", str(tmp_path / "elsewhere.csv")) == 0
    assert record_of(out)["settings"]["LineInput"]["data"] == str(tmp_path / "elsewhere.csv")


def test_a_file_added_during_the_run_is_kept_beside_the_folder(tmp_path, capsys):
    out = tmp_path / "V"
    folder = OutputFolder(out)
    staging = folder.open()
    write_json(staging / "run_record.json", {"workflow": "w", "status": "passed", "files": {
        "run_record": str(out / "run_record.json"), "a": str(out / "a.txt")}})
    write_text(staging / "a.txt", "first")
    folder.commit()

    second = OutputFolder(out)
    staging = second.open()
    (out / "notes.txt").write_text("mine")  # written by the user while the run is going
    write_json(staging / "run_record.json", {"workflow": "w", "status": "passed", "files": {
        "run_record": str(out / "run_record.json")}})
    second.commit()
    assert sorted(path.name for path in out.iterdir()) == ["run_record.json"]
    kept = tmp_path / f"V.kept-{os.getpid()}"
    assert (kept / "notes.txt").read_text() == "mine"
    assert not (kept / "a.txt").exists()  # the previous run's own file is gone
    assert str(kept) in capsys.readouterr().err
    assert not list(tmp_path.glob(".V.*"))


def test_a_symlinked_out_is_written_into_its_target(tmp_path):
    target = tmp_path / "T"
    target.mkdir()
    link = tmp_path / "L"
    link.symlink_to(target)
    assert run_line(link) == 0
    assert link.is_symlink() and (target / "run_record.json").is_file()
    assert run_line(link) == 0  # a rerun through the link replaces the target's run
    assert link.is_symlink()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["L", "T"]


def test_a_symlink_loop_as_out_is_one_error(tmp_path, capsys):
    (tmp_path / "A").symlink_to(tmp_path / "B")
    (tmp_path / "B").symlink_to(tmp_path / "A")
    assert run_line(tmp_path / "A") == 1
    one_error_line(capsys, "--out")


def test_enospc_at_a_write_is_one_error_naming_the_file(tmp_path, monkeypatch):
    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    folder = tmp_path / "out"
    folder.mkdir()
    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(DiskFullError, match="no space left on device writing table.json"):
        write_json(folder / "table.json", {"a": 1})
    assert list(folder.iterdir()) == []


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the ENOSPC unit test covers the rest")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "800k")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_ends_with_one_line_and_keeps_the_previous_run(small_disk):
    """A real process on an 800 KiB tmpfs: the first run (about 0.5 MB) fits, the second does
    not fit beside it. Exit 1, one line, the first run whole, nothing left behind."""
    out = small_disk / "R"
    command = [sys.executable, "-m", "starmix.workflows.cli", "run", "outlier-line", *QUICK,
               "--draws", "200", "--out", str(out)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    second = subprocess.run([*command, "--seed", "5"], capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 1, second.stderr
    errors = [line for line in second.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "posterior" in errors[0] and "MB" in errors[0], errors
    assert "Traceback" not in second.stderr and "Exception ignored" not in second.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert sorted(path.name for path in small_disk.iterdir()) == ["R"]


def test_sighup_stops_the_run_like_sigterm(tmp_path):
    out = tmp_path / "line"
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "starmix.workflows.cli", "run", "outlier-line",
             "--draws", "100000", "--chains", "2", "--no-figures", "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        deadline = time.monotonic() + 120
        while "NUTS:" not in stderr_path.read_text():
            assert process.poll() is None, stderr_path.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1.0)
        process.send_signal(signal.SIGHUP)
        assert process.wait(timeout=60) == 129
    assert "interrupted by SIGHUP during 'sample'" in stderr_path.read_text()
    record = record_of(out)
    assert record["status"] == "interrupted"
    assert record["interrupted"] == {"signal": "SIGHUP", "step": "sample"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["line", "stderr.txt"]
