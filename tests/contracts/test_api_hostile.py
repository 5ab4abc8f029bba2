"""Hostile input to the sampling options and the Python API (issue 32): each case is refused
with a one-line error naming the option, column or file (exit 1 from the command line),
before any sampling, never a traceback from deep inside a library."""

import json
import shutil
from collections import namedtuple

import numpy as np
import pytest

import starmix
from starmix.api import FitFileError, RunRecordError
from starmix.workflows.cli import main
from starmix.workflows.inference import sampling as sampling_module
from starmix.workflows.runs.options import MAX_CHAINS, MAX_STEPS, SamplingOptions
from tests.conftest import make_field

pytestmark = pytest.mark.smoke
GB = 10**9


@pytest.fixture
def no_sampling(monkeypatch):
    """Fail the test if any sampler starts."""
    from starmix.workflows.inference import nutpie_sampler

    def refuse(*args, **kwargs):
        raise AssertionError("sampling started")

    monkeypatch.setattr(nutpie_sampler, "sample_nutpie", refuse)
    monkeypatch.setattr(sampling_module, "_sample_with_pymc", refuse)


@pytest.fixture
def one_gb(monkeypatch, no_sampling):
    """A machine with 1 GB of memory available."""
    monkeypatch.setattr(sampling_module, "available_memory", lambda: GB)


def error_line(capsys) -> str:
    """The one line the command line printed as its error."""
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line.startswith("starmix: error:")]
    assert len(lines) == 1, lines
    return lines[0]


# -- 10: chains, draws and tuning steps bounded by the machine -----------------------------

@pytest.mark.parametrize("option, value", [("--draws", "1000000000000"),
                                           ("--chains", "100000"),
                                           ("--tune", str(MAX_STEPS + 1))])
def test_cli_refuses_absurd_sampling_options(tmp_path, capsys, no_sampling, option, value):
    out = tmp_path / "x"
    assert main(["run", "outlier-line", option, value, "--out", str(out)]) == 1
    line = error_line(capsys)
    assert option in line and "at most" in line and value in line, line
    assert not out.exists()


def test_config_file_with_an_int64_draws_is_one_line(tmp_path, capsys, no_sampling):
    config = tmp_path / "run.toml"
    config.write_text("draws = 9223372036854775807\n")
    out = tmp_path / "x"
    assert main(["run", "outlier-line", "--config", str(config), "--out", str(out)]) == 1
    line = error_line(capsys)
    assert "--draws must be at most 100,000,000" in line and "9223372036854775807" in line
    assert not out.exists()


def test_survey_refuses_absurd_draws(tmp_path, capsys, no_sampling):
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("name,ra,dec\nA,10.0,20.0\n")
    assert main(["survey", str(catalogue), "--draws", "1000000000000",
                 "--out", str(tmp_path / "survey")]) == 1
    assert "--draws" in error_line(capsys)


def test_sampling_options_hard_bounds():
    SamplingOptions(draws=MAX_STEPS, tune=MAX_STEPS, chains=MAX_CHAINS)
    with pytest.raises(ValueError, match=r"--chains must be at most 64"):
        SamplingOptions(chains=MAX_CHAINS + 1)
    with pytest.raises(ValueError, match=r"--draws must be at most 100,000,000"):
        SamplingOptions(draws=2**63 - 1)
    with pytest.raises(ValueError, match=r"--tune must be at most"):
        SamplingOptions(tune=MAX_STEPS + 1)


def test_draw_budget_memory_and_disk(tmp_path, monkeypatch):
    options = SamplingOptions(draws=1_000_000, chains=4)
    monkeypatch.setattr(sampling_module, "available_memory", lambda: 12 * GB)
    with pytest.raises(ValueError) as error:
        sampling_module.check_draw_budget(1200, options)
    message = str(error.value)
    assert message.startswith("--draws 1000000 x --chains 4: the posterior")
    assert "would need 38.4 GB in memory (12.0 GB available)" in message
    assert sampling_module.check_draw_budget(100, options) == 4 * 10**6 * 100 * 8

    # the disk: the free space where the results go (the nearest existing folder)
    usage = namedtuple("usage", "total used free")
    seen = []

    def small_disk(path):
        seen.append(path)
        return usage(10 * GB, 10 * GB - 10**6, 10**6)

    monkeypatch.setattr(sampling_module.shutil, "disk_usage", small_disk)
    with pytest.raises(ValueError, match=rf"on disk \(1.0 MB free for {tmp_path}\)"):
        sampling_module.check_draw_budget(100, options, tmp_path / "not" / "yet")
    assert seen == [tmp_path]


def test_draw_budget_estimate_counts_the_stored_values():
    from starmix.data.line import simulate_outlier_line
    from starmix.workflows.line.run import LineInput, build_line_model

    data = simulate_outlier_line()
    model, _ = build_line_model(data, LineInput())
    parameters = 2 + 1 + 2 + 1  # m, b, ln_s_out, w (2), s_out
    stored = sampling_module.stored_values_per_draw(model, log_likelihood=False)
    with_log_likelihood = sampling_module.stored_values_per_draw(model)
    assert with_log_likelihood - stored == len(data)
    # the per-point log_component (point x component) is stored unless left out
    assert stored == (parameters + 2 * len(data) + sampling_module.SAMPLE_STATS_PER_DRAW)


def test_outlier_line_draws_beyond_memory_fail_before_sampling(tmp_path, capsys, one_gb):
    out = tmp_path / "x"
    assert main(["run", "outlier-line", "--draws", "10000000", "--out", str(out)]) == 1
    line = error_line(capsys)
    assert "--draws 10000000 x --chains 4: the posterior" in line
    assert "in memory (1.0 GB available)" in line
    assert not out.exists()


def test_cluster_draws_beyond_memory_fail_before_sampling(tmp_path, one_gb):
    table = make_field(seed=3, n_cluster=100, n_field=200)
    with pytest.raises(ValueError, match=r"--draws 10000000 x --chains 4: .* in memory"):
        starmix.fit_cluster(table, model="pm2d", out=tmp_path / "run", quiet=True,
                            draws=10_000_000)
    with pytest.raises(ValueError, match=r"--draws 1000000 x --chains 4: .* in memory"):
        starmix.fit_cluster(table, model="pm2d", out=tmp_path / "run", quiet=True,
                            field_components="auto", draws=1_000_000)
    assert not (tmp_path / "run").exists()


def test_density_draws_beyond_memory_fail_before_sampling(tmp_path, one_gb):
    values = np.random.default_rng(1).normal(size=200)
    with pytest.raises(ValueError, match=r"--draws 10000000 x --chains 4: .* in memory"):
        starmix.fit_density(values, np.full(200, 0.1), out=tmp_path / "run", quiet=True,
                            draws=10_000_000)
    assert not (tmp_path / "run").exists()


# -- 11: the Python API's inputs ----------------------------------------------------------

def test_fit_cluster_takes_a_pyia_gaiadata(tmp_path, one_gb):
    """GaiaData (listed in fit_cluster's docstring) is read as its astropy Table: the run
    gets past loading, cutting and the model to the draw budget (1 GB here)."""
    pyia = pytest.importorskip("pyia")
    table = make_field(seed=3, n_cluster=100, n_field=200)
    with pytest.raises(ValueError, match=r"--draws 10000000 x --chains 4: .* in memory"):
        starmix.fit_cluster(pyia.GaiaData(table), model="pm2d", out=tmp_path / "run",
                            quiet=True, draws=10_000_000)
    assert "p_cluster" not in table.colnames


def test_fit_density_errors_of_another_length():
    with pytest.raises(ValueError, match=r"^errors has 50 values but values has 100$"):
        starmix.fit_density(np.ones(100), np.ones(50))
    with pytest.raises(ValueError, match=r"errors have 1 coordinates per value but values "
                                         r"have 2"):
        starmix.fit_density(np.ones((100, 2)), np.ones(100))
    with pytest.raises(ValueError, match=r"values must have shape \(N,\) or \(N, d\)"):
        starmix.fit_density(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=r"values must be numbers"):
        starmix.fit_density(["a", "b"])


def fake_results(folder, recorded=None, **names):
    """A results folder whose run record lists the files ``names`` (label: relative name,
    each holding its own name), recorded as written in ``recorded`` (another folder: the
    results were moved since)."""
    folder.mkdir(parents=True)
    recorded = recorded or folder
    files = {}
    for label, name in names.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)
        files[label] = str(recorded / name)
    files["run_record"] = str(recorded / "run_record.json")
    record = {"workflow": "outlier-line", "status": "passed", "files": files}
    (folder / "run_record.json").write_text(json.dumps(record))
    return folder


def test_load_fit_names_the_damaged_record(tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match=f"{folder}: no such results folder"):
        starmix.load_fit(folder)
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="not a starmix results folder: it has no "
                                                "run_record.json"):
        starmix.load_fit(folder)
    record = folder / "run_record.json"
    cases = {'{"workflow": "outlier-line", "status": "passed"}': "no 'files' entry",
             '{"files": {"run_record": "/a/run_record.json"}}': "no 'status' entry",
             '{"status": "passed", "files": {}}': "does not list the run record",
             '[1, 2]': "holds a JSON list",
             '{"status": "passed", "files": {"run_record": "/a/run_record.json", '
             '"posterior": "/b/posterior.nc"}}': "'/b/posterior.nc' \\(posterior\\), outside",
             '{"status": "pas': "not valid JSON"}
    for text, reason in cases.items():
        record.write_text(text)
        with pytest.raises(RunRecordError,
                           match=f"^{record} is not a starmix run record: .*{reason}"):
            starmix.load_fit(folder)


def test_damaged_files_of_a_fit_are_named(tmp_path):
    folder = fake_results(tmp_path / "run", posterior="posterior.nc", summary="summary.ecsv",
                          membership="membership.ecsv")
    (folder / "membership.ecsv").unlink()
    import xarray as xr

    xr.DataTree(xr.Dataset({"m": ("draw", np.arange(10_000.0))})).to_netcdf(
        folder / "posterior.nc", engine="h5netcdf")
    whole = (folder / "posterior.nc").read_bytes()
    (folder / "posterior.nc").write_bytes(whole[:len(whole) // 2])  # a truncated copy
    (folder / "summary.ecsv").write_text("# %ECSV 1.0\n# ---\n# garbage: [\nparameter\n")
    fit = starmix.load_fit(folder)
    with pytest.raises(FitFileError, match=f"^{folder / 'posterior.nc'} cannot be read: "
                                           ".*truncated file"):
        fit.idata  # noqa: B018
    (folder / "posterior.nc").write_text("not netCDF")
    with pytest.raises(FitFileError, match=f"^{folder / 'posterior.nc'} cannot be read: "):
        fit.idata  # noqa: B018
    with pytest.raises(OSError, match=f"^{folder / 'summary.ecsv'} cannot be read: "):
        fit.summary  # noqa: B018
    with pytest.raises(FitFileError, match="membership.ecsv cannot be read: the file is "
                                           "missing"):
        fit.membership  # noqa: B018
    (folder / "posterior.nc").unlink()
    with pytest.raises(FitFileError, match="posterior.nc cannot be read: the file is missing"):
        fit.idata  # noqa: B018


def test_fit_reads_its_lists_not_a_missing_label(tmp_path):
    fit = starmix.load_fit(fake_results(tmp_path / "run", summary="summary.ecsv"))
    with pytest.raises(RunRecordError, match="run_record.json lists no posterior file"):
        fit.idata  # noqa: B018


# -- 12: Fit.save of a loaded, moved folder ------------------------------------------------

def moved_results(tmp_path):
    """Results written in ``old`` and moved to ``tmp_path/copied`` (as ``cp -r`` would),
    with a killed run's leftovers beside and inside."""
    folder = fake_results(tmp_path / "copied", recorded=tmp_path / "old" / "place",
                          posterior="posterior.nc", summary="summary.ecsv",
                          membership="membership.ecsv",
                          figure_line_fit="figures/outlier_line_fit.png")
    (folder / ".posterior.nc.partial-123").write_text("half a file")
    (folder / ".copy.lock").write_text("")
    (folder / ".copy.staging-99").mkdir()
    return folder


def test_save_a_loaded_copy_elsewhere(tmp_path):
    fit = starmix.load_fit(moved_results(tmp_path))
    saved = fit.save(tmp_path / "elsewhere")
    record = json.loads((saved / "run_record.json").read_text())
    assert record["files"] == {
        "posterior": str(saved / "posterior.nc"), "summary": str(saved / "summary.ecsv"),
        "membership": str(saved / "membership.ecsv"),
        "figure_line_fit": str(saved / "figures" / "outlier_line_fit.png"),
        "run_record": str(saved / "run_record.json")}
    # only the files the record lists, none of a killed run's leftovers
    found = sorted(str(path.relative_to(saved)) for path in saved.rglob("*"))
    assert found == ["figures", "figures/outlier_line_fit.png", "membership.ecsv",
                     "posterior.nc", "run_record.json", "summary.ecsv"]
    again = starmix.load_fit(saved)
    assert again.result.files["posterior"] == saved / "posterior.nc"
    figure = saved / "figures" / "outlier_line_fit.png"
    assert figure.read_text() == "figures/outlier_line_fit.png"
    # and that copy saved again
    assert again.save(tmp_path / "third").is_dir()


def test_save_refuses_its_own_folder(tmp_path):
    folder = moved_results(tmp_path)
    before = sorted(path.name for path in folder.rglob("*"))
    fit = starmix.load_fit(folder)
    for target, where in ((folder / "copy", "lies inside"), (folder, "is"),
                          (tmp_path, "contains")):
        with pytest.raises(ValueError, match=f"cannot save to {target}: it {where} this "
                                             "fit's own folder"):
            fit.save(target)
    assert sorted(path.name for path in folder.rglob("*")) == before


def test_save_names_a_missing_file(tmp_path):
    folder = moved_results(tmp_path)
    fit = starmix.load_fit(folder)
    (folder / "summary.ecsv").unlink()
    with pytest.raises(FitFileError, match=f"cannot save: {folder / 'summary.ecsv'} is "
                                           "missing"):
        fit.save(tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()
    shutil.rmtree(folder)
