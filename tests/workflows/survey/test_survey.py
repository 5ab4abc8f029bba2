"""``starmix survey``: catalogues, Gaia sources (simulated, folder, HATS through LSDB), and
whole surveys on a real ``distributed.LocalCluster`` of worker processes: error rows, a
worker killed mid-survey, resuming, Ctrl-C."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from starmix.data.survey_catalogue import (
    CONE_CEILING_ARCMIN,
    CONE_FLOOR_ARCMIN,
    cone_radius,
    read_survey_catalogue,
)
from starmix.data.survey_sources import FolderSource, HatsSource, SimulatedSource, gaia_source
from starmix.workflows.cli import main
from starmix.workflows.runs.options import GateThresholds, SamplingOptions
from starmix.workflows.survey.run import Execution, SurveyOptions, run_survey
from tests.conftest import make_field, shared_file

# Small, quick clusters: ~100 members (31 counted at G < 18) in a 10' cone of ~160 stars
SHORT = SamplingOptions(draws=150, tune=150, chains=2, seed=3)
LENIENT = GateThresholds(r_hat_max=1.2, ess_bulk_min=20, ess_tail_min=20, divergences_max=5)
# the survey machinery's tests fit pmplx (the cheapest model with parallax); the default,
# auto (joint where the stars have positions), runs in the LSDB test below
QUICK = SurveyOptions(model="pmplx", figures=False, checks="off", sim_field_density=0.5)
CLUSTERS = [  # name, ra, dec, pmra, pmdec, parallax, members (G < 18), radius
    ("Alpha 1", 30.0, 20.0, -1.5, 2.0, 1.2, 31, 10.0),
    ("Beta_2", 120.0, -40.0, 4.0, -3.0, 0.8, 31, 10.0),
    ("Gamma 3", 250.0, 60.0, -6.0, -1.0, 2.0, 31, 10.0),
    ("Delta 4", 310.0, 5.0, 0.5, -5.0, 1.0, 31, 10.0),
]


def write_catalogue(path, clusters=CLUSTERS, bad_dec=False):
    rows = [list(c) for c in clusters]
    if bad_dec:
        rows.append(["Broken 9", 10.0, 95.0, 1.0, 1.0, 1.0, 31, 10.0])
    table = Table(rows=rows, names=["name", "ra", "dec", "pmra", "pmdec", "parallax",
                                    "n_members", "radius"])
    table.write(path, format="ascii.ecsv", overwrite=True)
    return path


@pytest.fixture(scope="module")
def client():
    """A real local Dask cluster of two single-threaded worker processes, set up as
    ``starmix survey`` sets up its own (a task whose worker dies is not retried)."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=":0", memory_limit="4GiB")
    with Client(cluster) as connection:
        yield connection
    cluster.close()


# ---------------------------------------------------------------- catalogues and sources


def test_cg20_catalogue_reads_as_it_is_with_the_cone_rule_per_cluster():
    targets = read_survey_catalogue(shared_file("cg20_cluster_parameters.tsv"))
    assert len(targets) == 2017
    assert sum(t.problem is not None for t in targets) == 0
    wrapped = next(t for t in targets if t.name == "NGC_7789")  # -0.666 in the file
    assert wrapped.ra == pytest.approx(359.334) and "ra -0.666 read as 359.334" in wrapped.note
    first = targets[0]
    assert (first.name, first.ra, first.dec, first.pmra, first.parallax) == (
        "ASCC_10", 51.87, 34.981, -1.737, 1.459)
    assert first.distance_pc == 660 and first.n_members == 65
    assert "10 pc at the cluster's distance" in first.radius_rule
    radii = np.array([t.radius_arcmin for t in targets])
    assert radii.min() == CONE_FLOOR_ARCMIN and radii.max() == CONE_CEILING_ARCMIN
    assert first.reference().pmdec == -1.368


def test_cone_radius_rule():
    # 10 pc at 2 kpc is 17.19 arcmin; nearer and farther clusters hit the ceiling and floor
    assert cone_radius(2000.0, None)[0] == pytest.approx(17.1887, abs=1e-3)
    assert cone_radius(300.0, None)[0] == CONE_CEILING_ARCMIN
    assert cone_radius(9000.0, None)[0] == CONE_FLOOR_ARCMIN
    radius, rule = cone_radius(None, 0.5)  # 1/parallax = 2 kpc
    assert radius == pytest.approx(17.1887, abs=1e-3) and "1/parallax" in rule
    assert cone_radius(None, None) == (20.0, "default 20 arcmin (no distance)")


def test_bad_catalogue_rows_are_kept_with_the_reason(tmp_path):
    path = tmp_path / "cat.csv"
    Table(rows=[["A", 10.0, 95.0, -1.0], ["B", 400.0, 10.0, 2.0], ["C", 1.0, 1.0, -5.0],
                ["a", 2.0, 2.0, 3.0]],
          names=["name", "ra", "dec", "distance"]).write(path, format="ascii.csv")
    a, b, c, d = read_survey_catalogue(path)
    assert "dec 95 is not in [-90, 90]" in a.problem and "distance -1 pc" in a.problem
    assert "ra 400 is not in [0, 360)" in b.problem
    assert "distance -5 pc is not positive" in c.problem
    assert "same folder name as row 0" in d.problem  # A and a share a folder
    assert a.reference() is None  # no pm or parallax in this catalogue


def test_catalogue_without_a_name_column_names_what_it_looked_for(tmp_path):
    path = tmp_path / "cat.csv"
    Table(rows=[[1.0, 2.0]], names=["ra", "dec"]).write(path, format="ascii.csv")
    with pytest.raises(ValueError, match="no name column"):
        read_survey_catalogue(path)
    assert main(["survey", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")]) == 1


def test_simulated_source_follows_the_catalogue_and_its_seed(tmp_path):
    target = read_survey_catalogue(write_catalogue(tmp_path / "c.ecsv"))[0]
    source = SimulatedSource(seed=5, field_density=0.5)
    table, provenance = source.field(target)
    again, _ = source.field(target)
    assert np.array_equal(table["pmra"], again["pmra"])  # same seed, same field
    assert provenance["n_cluster"] == round(31 / 0.31) == int(table["is_member"].sum())
    assert provenance["n_field"] == round(0.5 * math.pi * 10**2)
    members = table[table["is_member"]]
    assert np.median(members["pmra"]) == pytest.approx(-1.5, abs=0.1)
    assert np.median(members["parallax"]) == pytest.approx(1.2, abs=0.1)
    separation = SkyCoord(table["ra"], table["dec"], unit="deg").separation(
        SkyCoord(30.0, 20.0, unit="deg")).arcmin
    assert separation.max() <= 10.0
    other, _ = SimulatedSource(seed=6, field_density=0.5).field(target)
    assert not np.array_equal(table["pmra"], other["pmra"])


def test_simulated_source_needs_the_motion(tmp_path):
    path = tmp_path / "c.csv"
    Table(rows=[["A", 10.0, 10.0]], names=["name", "ra", "dec"]).write(path, format="ascii.csv")
    with pytest.raises(ValueError, match=r"row 0 \(A\) has no pmra, pmdec, parallax"):
        SimulatedSource().field(read_survey_catalogue(path)[0])


def test_folder_source_matches_files_by_name(tmp_path):
    folder = tmp_path / "gaia"
    folder.mkdir()
    make_field(n_cluster=10, n_field=20).write(folder / "alpha_1.fits")
    (folder / "notes.txt").write_text("not gaia")
    targets = read_survey_catalogue(write_catalogue(tmp_path / "c.ecsv"))
    source = gaia_source(str(folder))
    assert isinstance(source, FolderSource)
    assert source.field(targets[0])[0].endswith("alpha_1.fits")  # "Alpha 1"
    with pytest.raises(FileNotFoundError, match="no Gaia file for Beta_2"):
        source.field(targets[1])
    with pytest.raises(FileNotFoundError, match="--gaia"):
        gaia_source(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no Gaia files"):
        gaia_source(str(tmp_path / "empty"))


@pytest.fixture(scope="module")
def hats_catalogue(tmp_path_factory):
    """A tiny HATS catalogue made with hats-import from two simulated cluster fields."""
    from distributed import Client
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    root = tmp_path_factory.mktemp("hats")
    (root / "input").mkdir()
    tables = []
    targets = read_survey_catalogue(write_catalogue(root / "c.ecsv", CLUSTERS[:2]))
    for number, target in enumerate(targets):
        table, _ = SimulatedSource(seed=11, field_density=0.5).field(target)
        table.meta = {}
        table.to_pandas().to_parquet(root / "input" / f"part{number}.parquet")
        tables.append(table)
    arguments = ImportArguments(input_path=root / "input", file_reader="parquet",
                                output_path=root, output_artifact_name="gaia",
                                ra_column="ra", dec_column="dec", progress_bar=False,
                                tmp_dir=root / "tmp", resume=False)
    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=":0") as local:
        pipeline_with_client(arguments, local)
    return root / "gaia", targets, tables


def test_lsdb_cone_search_returns_the_stars_of_the_cone(hats_catalogue):
    path, targets, tables = hats_catalogue
    source = gaia_source(str(path))
    assert isinstance(source, HatsSource)
    for target, table in zip(targets, tables, strict=True):
        found, provenance = source.field(target)
        assert "LSDB cone search" in provenance["source"]
        assert sorted(found["source_id"]) == sorted(table["source_id"])
        assert set(found.colnames) >= {"ra", "dec", "pmra", "parallax", "pmra_error"}
        smaller = type(target)(**{**target.record(), "radius_arcmin": 4.0})
        inner, _ = source.field(smaller)
        separation = SkyCoord(table["ra"], table["dec"], unit="deg").separation(
            SkyCoord(target.ra, target.dec, unit="deg")).arcmin
        assert len(inner) == int((separation <= 4.0).sum()) < len(table)


def test_agreement_is_judged_in_units_of_the_combined_error():
    from starmix.data.survey_catalogue import SurveyTarget
    from starmix.workflows.survey.rows import base_row, compare

    target = SurveyTarget(0, "A", "A", 10.0, 10.0, 10.0, "given", pmra=1.0, pmdec=-2.0,
                          parallax=0.5, pmra_error=0.03, distance_pc=1900.0)
    row = base_row(target, "cluster found", "passed")
    row.update(pmra=1.1, pmra_error=0.04, pmdec=-1.975, pmdec_error=0.01, parallax=0.52,
               parallax_error=0.01, distance=1000 / 0.52)
    compare(row, target)
    assert row["z_pmra"] == pytest.approx(0.1 / 0.05)  # hypot(0.04, 0.03)
    assert row["z_pmdec"] == pytest.approx(2.5) and row["z_parallax"] == pytest.approx(2.0)
    assert row["agrees"] and row["diff_distance"] == pytest.approx(1000 / 0.52 - 1900)
    row["pmdec"] = -1.9699  # just past 3 combined errors
    compare(row, target)
    assert not row["agrees"]
    compare(row, target, {"pmdec": 0.026})  # on real data Gaia's floor joins in
    assert row["z_pmdec"] == pytest.approx(0.0301 / math.hypot(0.01, 0.026)) and row["agrees"]
    row.update(pmdec=-2.0, parallax=math.nan)  # an estimate missing is not agreement
    compare(row, target)
    assert not row["agrees"]


# ---------------------------------------------------------------- whole surveys


def recovered_within(table, z=4.0):
    """Every cluster with estimates recovered its published motion and parallax."""
    done = table[np.isfinite(np.asarray(table["pmra"], float))]
    for name in ("pmra", "pmdec", "parallax"):
        assert np.all(np.abs(np.asarray(done[f"z_{name}"], float)) < z), name
    return len(done)


@pytest.mark.workflow
def test_survey_on_a_local_cluster_with_a_bad_row_and_resume(tmp_path, client):
    catalogue = write_catalogue(tmp_path / "c.ecsv", CLUSTERS[:3], bad_dec=True)
    out = tmp_path / "survey"
    result = run_survey(catalogue, out, QUICK, SHORT, LENIENT, client=client)
    table = Table.read(out / "survey.ecsv")
    assert list(table["name"]) == ["Alpha 1", "Beta_2", "Gamma 3", "Broken 9"]
    verdicts = dict(zip(table["name"], table["verdict"], strict=True))
    assert verdicts["Broken 9"] == "error"
    assert "dec 95 is not in [-90, 90]" in table["message"][3]
    assert all(verdicts[n] in ("cluster found", "gate failed") for n in ("Alpha 1", "Beta_2",
                                                                         "Gamma 3"))
    assert recovered_within(table) == 3
    assert np.all(table["members_p07"][:3] > 50)  # ~100 members each
    assert table["pmra"].unit == "mas / yr" and table["wall_time"].unit == "s"
    parquet = Table.read(out / "survey.parquet")
    assert list(parquet["verdict"]) == list(table["verdict"])
    assert result.exit_code == 5  # one error row
    record = json.loads((out / "survey_record.json").read_text())
    assert record["verdicts"]["error"] == 1 and record["status"] == "complete"
    for name in ("Alpha_1", "Beta_2", "Gamma_3"):
        assert json.loads((out / "clusters" / name / "run_record.json").read_text())[
            "data"]["source"].startswith("simulated from the catalogue values")
    for figure in ("survey_recovered", "survey_differences", "survey_sky"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 10_000
    # a rerun skips the complete clusters: no task, the same rows
    stamp = (out / "clusters" / "Alpha_1" / "run_record.json").stat().st_mtime_ns
    again = run_survey(catalogue, out, QUICK, SHORT, LENIENT, client=None)
    assert (out / "clusters" / "Alpha_1" / "run_record.json").stat().st_mtime_ns == stamp
    assert list(again.table["pmra"][:3]) == list(table["pmra"][:3])
    # other settings into the same folder are refused, naming them
    with pytest.raises(ValueError, match="other settings .*model"):
        run_survey(catalogue, out, SurveyOptions(model="pm2d", figures=False, checks="off",
                                                 sim_field_density=0.5), SHORT, LENIENT,
                   client=client)


@pytest.mark.workflow
def test_a_worker_killed_mid_survey_leaves_error_rows_that_a_rerun_completes(tmp_path,
                                                                             client):
    catalogue = write_catalogue(tmp_path / "c.ecsv")
    out = tmp_path / "survey"
    killed = []

    def kill_a_busy_worker(row, connection):
        if killed:
            return
        busy = [worker for worker, keys in connection.processing().items() if keys]
        assert busy, "no cluster was left running to kill a worker under"
        killed.append(busy[0])
        pid = connection.run(os.getpid, workers=[busy[0]])[busy[0]]
        os.kill(pid, signal.SIGKILL)  # as the kernel's out-of-memory killer does

    first = run_survey(catalogue, out, QUICK, SHORT, LENIENT, client=client,
                       on_result=kill_a_busy_worker)
    verdicts = list(first.table["verdict"])
    errors = [i for i, verdict in enumerate(verdicts) if verdict == "error"]
    assert killed and 1 <= len(errors) <= 2, verdicts
    assert all("worker running this cluster died" in first.table["message"][i] for i in errors)
    assert verdicts.count("error") < len(verdicts)  # the others finished
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
    second = run_survey(catalogue, out, QUICK, SHORT, LENIENT, client=client)
    assert "error" not in list(second.table["verdict"]) and second.exit_code == 0
    assert recovered_within(second.table) == 4


@pytest.mark.workflow
def test_survey_through_lsdb_on_a_hats_catalogue_on_a_scheduler_by_address(tmp_path, client,
                                                                          hats_catalogue):
    path, targets, _ = hats_catalogue
    catalogue = write_catalogue(tmp_path / "c.ecsv", CLUSTERS[:2])
    options = SurveyOptions(gaia=str(path), figures=False, checks="off")
    # through --scheduler: the survey connects to the running cluster by its address
    result = run_survey(catalogue, tmp_path / "survey", options, SHORT, LENIENT,
                        Execution(scheduler=client.scheduler.address))
    assert result.exit_code == 0, list(result.table["message"])
    assert recovered_within(result.table) == 2
    record = json.loads((tmp_path / "survey" / "clusters" / "Alpha_1" /
                         "run_record.json").read_text())
    assert "LSDB cone search" in record["data"]["source"]
    assert list(result.table["model"]) == ["joint", "joint"]  # the default, with positions


@pytest.mark.workflow
def test_ctrl_c_stops_the_workers_and_keeps_complete_clusters(tmp_path):
    catalogue = write_catalogue(tmp_path / "c.ecsv")
    out = tmp_path / "survey"
    command = [sys.executable, "-m", "starmix.workflows.cli", "survey", str(catalogue),
               "--out", str(out), "--workers", "1", "--no-figures", "--no-checks",
               "--model", "pmplx",
               "--sim-field-density", "0.5", "--draws", "150", "--tune", "150",
               "--chains", "2", "--ess-bulk-min", "20", "--ess-tail-min", "20",
               "--r-hat-max", "1.2", "--divergences-max", "5"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "clusters").glob("*/run_record.json")):
        time.sleep(0.5)
    assert process.poll() is None, process.stderr.read()
    os.killpg(process.pid, signal.SIGINT)  # the whole process group, as a terminal does
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    table = Table.read(out / "survey.ecsv")
    done = [n for n, v in zip(table["name"], table["verdict"], strict=True) if v != "not run"]
    assert 1 <= len(done) < 4 and "not run" in list(table["verdict"])
    for name in done:
        key = name.replace(" ", "_")
        assert json.loads((out / "clusters" / key / "run_record.json").read_text())[
            "status"] in ("passed", "failed")
    assert json.loads((out / "survey_record.json").read_text())["status"] == "interrupted"
    time.sleep(2)
    leftover = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True,
                              text=True).stdout.split()
    assert not leftover, f"worker processes left running: {leftover}"


def test_the_default_model_is_joint_where_the_stars_have_positions(tmp_path):
    from starmix.workflows.survey.run import model_for

    table = Table({"ra": [1.0, 2.0], "dec": [3.0, 4.0], "pmra": [0.1, 0.2]})
    assert SurveyOptions().model == "auto"
    assert model_for(table) == "joint"
    assert model_for(Table({"pmra": [0.1], "pmdec": [0.2], "parallax": [1.0]})) == "pmplx"
    assert model_for(table, "pm2d") == "pm2d"  # a model given is kept
    table.write(tmp_path / "cone.ecsv")
    assert model_for(str(tmp_path / "cone.ecsv")) == "joint"  # a folder source's file
    with pytest.raises(ValueError, match="--model must be 'auto' or one of"):
        SurveyOptions(model="best")
