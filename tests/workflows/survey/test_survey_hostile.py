"""``starmix survey`` given hostile input: every case fails before any fit (or has no fit to
run), with a one-line error naming the option, column or file and nothing half-written, and
the survey record tells the truth when a signal stops the survey at any phase, including
its final writes."""

import json
import signal
import subprocess
import sys
import textwrap

import pytest
from astropy.table import Table

from starmix.data.survey_catalogue import read_survey_catalogue
from starmix.workflows.cli import main
from starmix.workflows.runs.interrupt import HANDLED_SIGNALS
from starmix.workflows.survey.run import SurveyOptions, run_survey

HEADER = "name,ra,dec,pmra,pmdec,parallax\n"


def write_csv(path, text):
    path.write_text(text)
    return path


def run_cli(argv, capsys):
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def error_line(stderr):
    """The command's own error: one line, no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("starmix: error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def one_row(tmp_path):
    return write_csv(tmp_path / "one.csv", HEADER + "Alpha 1,30,20,-1.5,2.0,1.2\n")


@pytest.fixture
def bad_rows(tmp_path):
    """Rows that all need no fit (each is an error row): a blank name, a name of dashes
    only, a declination out of range."""
    return write_csv(tmp_path / "bad.csv", HEADER + '"  ",10,10,1,1,1\n--,11,10,1,1,1\n'
                                           "Broken 9,12,95,1,1,1\n")


# ---------------------------------------------------------------- catalogues (14a, 14b)


@pytest.mark.parametrize("suffix", ["csv", "ecsv", "tsv"])
def test_a_header_only_catalogue_is_an_error_naming_it(tmp_path, capsys, suffix):
    path = tmp_path / f"empty.{suffix}"
    if suffix == "tsv":  # VizieR: header, units and dashes rows, no data
        path.write_text("name\tra\tdec\n\tdeg\tdeg\n----\t--\t---\n")
    else:
        Table(names=["name", "ra", "dec"], dtype=[str, float, float]).write(
            path, format=f"ascii.{suffix}")
    code, stderr = run_cli(["survey", path, "--out", tmp_path / "out"], capsys)
    assert code == 1
    assert f"CATALOGUE {path}: no rows" in error_line(stderr)
    assert not (tmp_path / "out").exists()


def test_blank_names_are_error_rows_never_a_folder_named_dashes(tmp_path):
    path = write_csv(tmp_path / "c.csv", HEADER + '"   ",10,10,1,1,1\n,11,10,1,1,1\n'
                                       "--,12,10,1,1,1\n-NGC 1-,13,10,1,1,1\n"
                                       f"{'x' * 250},14,10,1,1,1\n")
    blank, empty, dashes, fine, long = read_survey_catalogue(path)
    for target in (blank, empty):
        assert target.problem == "the name (column 'name') is empty"
        assert target.name == f"row {target.row}" and target.key == "unnamed"
    assert dashes.problem.startswith("the name '--' (column 'name') has no letter or digit")
    assert fine.problem is None and fine.key == "NGC_1"  # no folder starts with '-'
    assert "250 characters long" in long.problem
    assert "same folder name" not in (empty.problem or "")  # blank rows are not duplicates


def test_a_numeric_name_column_with_an_empty_cell_is_an_error_row(tmp_path):
    path = tmp_path / "c.ecsv"
    Table(rows=[[1.0, 10.0, 10.0], [float("nan"), 11.0, 10.0]],
          names=["name", "ra", "dec"]).write(path, format="ascii.ecsv")
    first, second = read_survey_catalogue(path)
    assert first.problem is None and first.key == "1.0"
    assert second.problem == "the name (column 'name') is empty"


def test_a_survey_of_bad_rows_writes_error_rows_naming_row_and_column(tmp_path, capsys,
                                                                      bad_rows):
    out = tmp_path / "out"
    code, stderr = run_cli(["survey", bad_rows, "--out", out], capsys)
    assert code == 5, stderr
    assert not list((out / "clusters").iterdir())  # no cluster folder at all, no '--'
    table = Table.read(out / "survey.ecsv")
    assert list(table["verdict"]) == ["error"] * 3
    assert list(table["message"][:2]) == [
        "catalogue row 0: the name (column 'name') is empty",
        "catalogue row 1: the name '--' (column 'name') has no letter or digit to name its "
        "results folder"]
    record = json.loads((out / "survey_record.json").read_text())
    assert (record["status"], record["exit_code"]) == ("complete", 5)


# ---------------------------------------------------------------- a damaged record (14c)


@pytest.mark.parametrize(("content", "reason"), [
    (b'{"status": "runn', "is not valid JSON (line 1 col 12); remove it or choose another "
                          "--out"),
    (b'{"status": "running",\n "settings": {"gaia": ', "is not valid JSON (line 2 col 23)"),
    (b"\xff\xfe\x00", "is not valid JSON (not UTF-8 text)"),
    (b"[1, 2]", "not a survey record"),
    (b'{"settings": "simulate"}', "not a survey record"),
])
def test_a_damaged_survey_record_is_named(tmp_path, capsys, one_row, content, reason):
    out = tmp_path / "out"
    out.mkdir()
    (out / "survey_record.json").write_bytes(content)
    code, stderr = run_cli(["survey", one_row, "--out", out], capsys)
    assert code == 1
    line = error_line(stderr)
    assert f"the survey record {out / 'survey_record.json'} is damaged" in line
    assert reason in line and "remove it or choose another --out" in line
    assert (out / "survey_record.json").read_bytes() == content
    assert sorted(p.name for p in out.iterdir()) == ["survey_record.json"]


# ---------------------------------------------------------------- options (14d, bounds)


@pytest.mark.parametrize(("options", "message"), [
    (["--memory-limit", "lots"], "--memory-limit must be 'auto' or a size per worker"),
    (["--memory-limit", "1MB"], "--memory-limit must be 'auto' or a size per worker"),
    (["--memory-limit=-4GiB"], "--memory-limit must be 'auto' or a size per worker"),
    (["--memory-limit", "1000TiB"], "more than this machine's memory"),
    (["--workers", "0"], "--workers must be from 1 to"),
    (["--workers", "100000"], "--workers must be from 1 to"),
    (["--scheduler", "lots"], "--scheduler 'lots' is not a Dask scheduler address"),
    (["--scheduler", "tcp://host:99999"], "--scheduler 'tcp://host:99999' is not a Dask"),
    (["--scheduler", "tcp://host:8786", "--workers", "1"], "--workers is for the local"),
    (["--scheduler", "tcp://host:8786", "--memory-limit", "4GiB"], "--memory-limit is for"),
    (["--limit", "-1"], "--limit must be at least 1, got -1"),
    (["--limit", "0"], "--limit must be at least 1, got 0"),
    (["--sim-seed", "-1"], "--sim-seed must be a whole number from 0 to 2**32 - 1"),
    (["--sim-field-density", "0"], "--sim-field-density must be above 0 and at most 100"),
    (["--sim-field-density", "1e9"], "--sim-field-density must be above 0 and at most 100"),
    (["--sim-field-density", "nan"], "--sim-field-density must be above 0 and at most 100"),
])
def test_absurd_options_are_refused_before_anything_is_written(tmp_path, capsys, one_row,
                                                               options, message):
    out = tmp_path / "out"
    code, stderr = run_cli(["survey", one_row, "--out", out, *options], capsys)
    assert code == 1
    assert message in error_line(stderr)
    assert not out.exists()


def test_a_bad_option_leaves_an_existing_survey_record_as_it_was(tmp_path, capsys,
                                                                  bad_rows):
    out = tmp_path / "out"
    assert run_cli(["survey", bad_rows, "--out", out], capsys)[0] == 5
    before = (out / "survey_record.json").read_bytes()
    config = tmp_path / "survey.toml"
    config.write_text('memory_limit = "lots"\n')
    for options in (["--memory-limit", "lots"], ["--config", config], ["--workers", "0"]):
        code, stderr = run_cli(["survey", bad_rows, "--out", out, *options], capsys)
        assert code == 1 and "--" in error_line(stderr)
        assert (out / "survey_record.json").read_bytes() == before  # still "complete"


def test_an_error_after_the_record_is_written_marks_it_failed(tmp_path, one_row):
    class NoWorkers:  # a client whose cluster cannot take a task
        def submit(self, *args, **kwargs):
            raise ValueError("the scheduler has no workers")

    out = tmp_path / "out"
    with pytest.raises(ValueError, match="no workers"):
        run_survey(one_row, out, SurveyOptions(figures=False, checks="off"),
                   client=NoWorkers(), say=lambda message: None)
    record = json.loads((out / "survey_record.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == 1
    assert record["error"] == "ValueError: the scheduler has no workers"


# ---------------------------------------------------------------- signals (13)

# Runs `starmix survey` and sends the process a signal of its own at one phase: cheap (a
# catalogue of bad rows needs no fit) and certain (no race with a timer).
HOOK = textwrap.dedent('''
    import os
    import signal
    import sys

    import starmix.workflows.survey.run as survey
    import starmix.workflows.survey.plots as plots

    phase, number = sys.argv[1], int(sys.argv[2])
    sent = []


    def fire():
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), number)


    def wrap(owner, name, before=False, when=lambda *args: True):
        real = getattr(owner, name)

        def hooked(*args, **kwargs):
            if before and when(*args):
                fire()
            result = real(*args, **kwargs)
            if not before and when(*args):
                fire()
            return result

        setattr(owner, name, hooked)


    final = lambda path, payload: payload.get("status") == "complete"  # noqa: E731
    if phase == "catalogue":  # before anything is written
        wrap(survey, "read_survey_catalogue", before=True)
    elif phase == "start":  # while the first record is written (held back until it is)
        wrap(survey, "write_json", before=True)
    elif phase == "table":  # between the table's two files
        wrap(survey, "write_table", when=lambda path, table: path.suffix == ".ecsv")
    elif phase == "figures":  # while the figures are drawn
        wrap(plots, "draw_survey_figures", before=True)
    elif phase == "record":  # during the final record's write
        wrap(survey, "write_json", before=True, when=final)
    elif phase == "after-record":  # just after it
        wrap(survey, "write_json", when=final)
    elif phase == "close":  # as the survey unlocks its folder
        wrap(survey.SurveyFolder, "close", before=True)

    from starmix.workflows.cli import command

    sys.argv = ["starmix", "survey", *sys.argv[3:]]
    command()
''')

SIGHUP = [signal.SIGHUP] if signal.SIGHUP in HANDLED_SIGNALS else []
CASES = [("start", signal.SIGTERM), ("table", signal.SIGINT), ("figures", signal.SIGTERM),
         ("record", signal.SIGTERM), ("after-record", signal.SIGINT),
         ("close", (SIGHUP or [signal.SIGTERM])[0])]


def run_hooked(tmp_path, phase, number, catalogue, out):
    script = tmp_path / "hooked_survey.py"
    script.write_text(HOOK)
    return subprocess.run([sys.executable, str(script), phase, str(int(number)),
                           str(catalogue), "--out", str(out)], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("phase", "number"), CASES, ids=[f"{p}-{s.name}" for p, s in CASES])
def test_a_signal_at_any_phase_leaves_a_record_marked_interrupted(tmp_path, bad_rows,
                                                                 phase, number):
    out = tmp_path / "out"
    done = run_hooked(tmp_path, phase, number, bad_rows, out)
    assert done.returncode == 128 + number, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    record_path = out / "survey_record.json"
    record = json.loads(record_path.read_text())
    assert record["status"] == "interrupted", record
    assert record["exit_code"] == done.returncode
    assert f"the run record {record_path} is marked interrupted" in done.stderr
    assert "no results folder was touched" not in done.stderr
    # the table and figures are complete: one row per catalogue row
    assert len(Table.read(out / "survey.ecsv")) == 3
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "survey_differences.png", "survey_recovered.png", "survey_sky.png"]
    assert not [p for p in out.rglob("*") if ".partial-" in p.name]
    # the same command then completes the survey
    again = subprocess.run([sys.executable, "-m", "starmix.workflows.cli", "survey",
                            str(bad_rows), "--out", str(out)], capture_output=True, text=True,
                           timeout=120) if phase == "start" else None
    if again is not None:
        assert again.returncode == 5, again.stderr
        assert json.loads(record_path.read_text())["status"] == "complete"


def test_a_signal_before_anything_is_written_says_so(tmp_path, bad_rows):
    out = tmp_path / "out"
    done = run_hooked(tmp_path, "catalogue", signal.SIGTERM, bad_rows, out)
    assert done.returncode == 143, done.stderr
    assert "no results folder was touched" in done.stderr
    assert not out.exists()


def test_larger_cones_are_scheduled_first():
    """The survey submits every cluster with its cone's area as the Dask priority, so the
    longest tasks start first and the last tasks to finish are short ones."""
    from starmix.data.survey_catalogue import SurveyTarget
    from starmix.workflows.survey.run import expected_cost

    fields = SurveyTarget.__dataclass_fields__

    def target(radius):
        values = {name: None for name in fields}
        values.update(name="X", key="X", row=0, radius_arcmin=radius)
        return SurveyTarget(**{name: values[name] for name in fields})

    assert expected_cost(target(30.0)) == 900 > expected_cost(target(10.0)) == 100
    assert expected_cost(target(None)) == 0 and expected_cost(target(float("nan"))) == 0
