"""The Python API: run a workflow from a notebook or script and get a :class:`Fit` back.

Each function runs the same steps as its ``starmix run`` command (load and check the data,
build the model, NUTS, the convergence gate, membership, predictive checks, results), into
``out`` when given, else into a fresh temporary folder that :meth:`Fit.save` copies
elsewhere. Bad input raises the same errors as the command line (a
:class:`starmix.data.input_checks.DataValidationError` names the column and the count of
bad rows) before any sampling. A fit whose gate fails, or that finds no cluster, is
returned all the same: check :attr:`Fit.passed` and :attr:`Fit.status`.
"""

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from astropy.table import Table

from starmix.workflows.config import GateThresholds, SamplingOptions, dataclass_defaults, pick
from starmix.workflows.outdir import RECORD_NAME, OutputFolder
from starmix.workflows.results import write_json
from starmix.workflows.run import RunResult

LINE_CORNER = ("m", "b", "s_out", "w")
# What reading a damaged file can raise: h5py's OSError, xarray's ValueError for an unknown
# format, astropy's and the parsers' errors for a broken table
READ_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError,
               UnicodeDecodeError)


class RunRecordError(ValueError):
    """A ``run_record.json`` that is not a starmix run record: the message names the file and
    what is wrong."""


class FitFileError(OSError):
    """A fit's file that is missing or cannot be read: the message names the file."""


@dataclass
class Fit:
    """A finished run. ``status`` is ``passed``, ``failed`` (convergence gate),
    ``no_cluster`` or ``checks_failed`` (with ``checks="strict"``); the results are kept in
    every case. Tables carry units; ``idata`` is the ArviZ ``DataTree`` saved as
    ``posterior.nc`` (posterior, log_likelihood, observed_data and, with checks, the
    predictive groups)."""

    result: RunResult = field(repr=False)
    workflow: str

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def passed(self) -> bool:
        """True when the gate passed (and, for a cluster, one was found)."""
        return self.result.status == "passed"

    @property
    def out_dir(self) -> Path:
        """The folder holding this fit's files."""
        return self.result.out_dir

    @property
    def record(self) -> dict:
        """The run record (``run_record.json``): settings, data, gate, checks, timings."""
        return self.result.record

    def _file(self, label: str) -> Path:
        """The file ``label``; a density run names its files per sample
        (``posterior_NAME``): the first sample's. :class:`RunRecordError` when the run
        record lists none."""
        files = self.result.files
        if label in files:
            return Path(files[label])
        named = [key for key in files if key.startswith(f"{label}_")]
        if not named:
            raise RunRecordError(f"{self.out_dir / RECORD_NAME} lists no {label} file (this "
                                 f"{self.workflow} fit has none)")
        return Path(files[named[0]])

    def _read(self, label: str, reader):
        """``reader(path)`` of the file ``label``; a missing or damaged file is a
        :class:`FitFileError` naming it."""
        path = self._file(label)
        if not path.is_file():
            raise FitFileError(f"{path} cannot be read: the file is missing (listed in "
                               f"{self.out_dir / RECORD_NAME})")
        try:
            return reader(path)
        except READ_ERRORS as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise FitFileError(f"{path} cannot be read: {reason}") from None

    @cached_property
    def idata(self):
        import xarray as xr

        def read(path):
            with xr.open_datatree(path) as tree:
                return tree.load()
        return self._read("posterior", read)

    @cached_property
    def density(self) -> Table:
        """A 1-D density fit's grid: the posterior density's mean and 16/50/84% band and
        each baseline, per unit of the value."""
        return self._read("density", _read_ecsv)

    @cached_property
    def membership(self) -> Table:
        """One row per object: its data and the membership probability (mean and 16/50/84
        percentiles over the posterior draws)."""
        if self.workflow in ("density", "ages"):
            raise AttributeError("a density fit has no membership: see Fit.density")
        return self._read("membership", _read_ecsv)

    @cached_property
    def summary(self) -> Table:
        """Posterior summary per parameter (mean, sd, HDI, r_hat, ESS)."""
        return self._read("summary", _read_ecsv)

    def plot_corner(self, var_names=None, truths=None):
        """Corner plot of the model's parameters (or ``var_names``); returns the figure."""
        from starmix.models import CLUSTER_MODELS
        from starmix.workflows.plots import corner_plot

        if self.workflow == "outlier-line":
            names, component = var_names or LINE_CORNER, "line"
        elif self.workflow in ("density", "ages"):
            names = [name for name in var_names or ("w", "mean") if name in
                     self.idata["posterior"]]
            return corner_plot(self.idata, names, truths=truths)
        else:
            model = self.record["settings"]["ClusterInput"]["model"]
            names, component = var_names or CLUSTER_MODELS[model].parameters, "cluster"
        names = [name for name in names if name in self.idata["posterior"]]
        return corner_plot(self.idata, names, coords={"component": component}, truths=truths)

    def plot_membership(self):
        """The objects coloured by membership: the points about the line, or a cluster's
        vector-point diagram (its parallaxes when the model has no proper motions)."""
        from starmix.workflows import cluster_plots, line_plots

        table = self.membership
        if self.workflow == "outlier-line":
            from starmix.data.line import LineData

            outlier = (np.asarray(table["true_outlier"], bool) if "true_outlier" in
                       table.colnames else None)
            data = LineData(np.asarray(table["x"], float), np.asarray(table["y"], float),
                            np.asarray(table["y_err"], float), is_outlier=outlier)
            return line_plots.membership_figure(data, np.asarray(table["p_line"]))
        p = np.asarray(table["p_cluster"], float)
        if {"pmra", "pmdec"} <= set(table.colnames):
            weights = p if p.sum() > 0 else None
            centre = (np.average(table["pmra"], weights=weights),
                      np.average(table["pmdec"], weights=weights))
            return cluster_plots.vector_point_diagram(table, p, centre)
        return cluster_plots.parallax_histogram(table, p)

    def save(self, path: str | Path) -> Path:
        """Copy this fit's files (those its run record lists) to the folder ``path`` (one
        run per folder: an existing folder of someone else's files is an error), written
        aside and swapped in, with the run record's file paths pointing at the copies.
        ``path`` may not lie inside this fit's folder, nor contain it. Returns the folder."""
        source = Path(os.path.abspath(self.out_dir))
        target = Path(os.path.abspath(Path(path).expanduser()))
        if target == source or target.is_relative_to(source) or source.is_relative_to(target):
            where = "is" if target == source else ("lies inside" if target.is_relative_to(
                source) else "contains")
            raise ValueError(f"cannot save to {path}: it {where} this fit's own folder "
                             f"{self.out_dir}; give a folder elsewhere")
        copies = {}
        for label, name in self.result.files.items():
            try:
                copies[label] = Path(os.path.abspath(name)).relative_to(source)
            except ValueError:
                raise RunRecordError(f"{self.out_dir / RECORD_NAME} lists {name}, outside "
                                     "the fit's folder") from None
        folder = OutputFolder(path)
        staging = folder.open()
        try:
            for label, relative in copies.items():
                if label == "run_record":
                    continue
                original = source / relative
                if not original.is_file():
                    raise FitFileError(f"cannot save: {original} is missing (listed in "
                                       f"{self.out_dir / RECORD_NAME})")
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(original, staging / relative)
            moved = {label: str(folder.final / relative) for label, relative in copies.items()}
            write_json(staging / RECORD_NAME, {**self.record, "files": moved})
            folder.commit()
        except BaseException:
            folder.abandon()
            raise
        finally:
            folder.release()
        return folder.final


def _read_ecsv(path: Path) -> Table:
    return Table.read(path, format="ascii.ecsv")


def _options(options: dict) -> tuple[SamplingOptions, GateThresholds, dict]:
    """Split keyword options into sampling, gate and workflow options."""
    shared = dataclass_defaults(SamplingOptions, GateThresholds)
    rest = {name: value for name, value in options.items() if name not in shared}
    return pick(SamplingOptions, options), pick(GateThresholds, options), rest


def _out_dir(out) -> Path:
    return Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="starmix-")) / "run"


def fit_outlier_line(x=None, y=None, y_err=None, *, x_err=None, xy_corr=None,
                     intrinsic_scatter: bool = False, out=None, figures: bool = False,
                     checks: str = "on", quiet: bool = False, **options) -> Fit:
    """Fit a straight line with outliers (a marginalised two-component mixture: points on
    the line, and a broad outlier population) to points ``x``, ``y`` with errors ``y_err``
    (and optionally ``x_err`` and the x-y error correlation ``xy_corr``), in the units of
    the data. Without ``x`` and ``y`` the built-in reference data are fitted.

    ``options``: sampling (``draws``, ``tune``, ``chains``, ``seed``, ``sampler``,
    ``target_accept``, ...) and gate thresholds (``r_hat_max``, ``ess_bulk_min``, ...), as
    the command-line flags of the same names. ``checks``: ``on``, ``off`` or ``strict``.
    """
    from starmix.workflows.outlier_line import LineInput, run_outlier_line

    sampling, gate, rest = _options(options)
    if rest:
        raise TypeError(f"fit_outlier_line() got unknown options: {', '.join(sorted(rest))}")
    inputs = LineInput()
    if x is not None or y is not None:
        if x is None or y is None or y_err is None:
            raise ValueError("fit_outlier_line needs x, y and y_err together")
        columns = {"x": x, "y": y, "y_err": y_err}
        columns.update({k: v for k, v in (("x_err", x_err), ("xy_corr", xy_corr))
                        if v is not None})
        inputs = LineInput(data=Table(columns), xerr="x_err" if x_err is not None else None,
                           xycorr="xy_corr" if xy_corr is not None else None,
                           intrinsic_scatter=intrinsic_scatter)
    elif intrinsic_scatter:
        inputs = LineInput(intrinsic_scatter=True)
    result = run_outlier_line(_out_dir(out), inputs, sampling, gate, figures=figures,
                              quiet=quiet, checks=checks)
    return Fit(result, "outlier-line")


def fit_cluster(table=None, model: str = "pm2d", *, out=None, figures: bool = False,
                checks: str = "on", quiet: bool = False, **options) -> Fit:
    """Fit a cluster-versus-field mixture to a Gaia table (astropy ``Table``, pyia
    ``GaiaData``, pandas ``DataFrame`` or a file path; archive column names and units:
    mas, mas/yr, deg). ``model``: ``pmra``, ``parallax``, ``pm2d``, ``pmplx`` or ``joint``.
    Without ``table`` the simulated NGC 6819 field is fitted.

    ``options``: every option of ``starmix run cluster`` by its Python name (``cluster``,
    ``center``, ``ruwe_max``, ``g_max``, ``field_components``, ``magnitude_prior``, ...,
    see :class:`starmix.workflows.cluster.ClusterInput`), sampling options (``draws``,
    ``chains``, ``seed``, ...) and gate thresholds. A misspelt option is an error.
    ``priors={name: factory}`` replaces the cluster's own priors (names in
    ``CLUSTER_MODELS[model].replaceable_priors``), e.g.
    ``priors={"cluster_pm_dispersion": lambda name: pm.HalfNormal(name, 0.1)}``.
    """
    from starmix.data.input_checks import is_table
    from starmix.workflows.cluster import ClusterInput, run_cluster

    if table is not None and not is_table(table) and is_table(getattr(table, "data", None)):
        table = table.data  # a pyia GaiaData: its astropy Table (copied when read)
    sampling, gate, rest = _options(options)
    unknown = set(rest) - set(ClusterInput.__dataclass_fields__)
    if unknown:
        raise TypeError(f"fit_cluster() got unknown options: {', '.join(sorted(unknown))}")
    inputs = ClusterInput(model=model, data=table, **rest)
    result = run_cluster(_out_dir(out), inputs, sampling, gate, figures=figures, quiet=quiet,
                         checks=checks)
    return Fit(result, "cluster")


def fit_density(values=None, errors=None, *, columns=None, log: bool = False, lower=None,
                upper=None, truncate: bool = False, components: int | None = None,
                max_components: int = 4, out=None, figures: bool = False,
                checks: str = "on", quiet: bool = False, **options) -> Fit:
    """Fit a Gaussian-mixture density with per-object errors (extreme deconvolution) to
    ``values`` ((N,) or (N, d), d <= 3, any units) with 1-sigma ``errors`` of the same
    shape (None: no errors), as ``starmix run density`` does: K by PSIS-LOO over
    1..``max_components`` (or ``components``), baselines, synthetic samples. ``columns``
    names the coordinates. Without ``values`` the built-in sample is fitted. ``options``:
    sampling and gate options (defaults: 2000 draws, target acceptance 0.99).
    """
    from starmix.workflows.density import DensityInput, run_density
    from starmix.workflows.density_fit import DENSITY_SAMPLING

    sampling, gate, rest = _options({**vars(DENSITY_SAMPLING), **options})
    if rest:
        raise TypeError(f"fit_density() got unknown options: {', '.join(sorted(rest))}")
    shape = dict(log=log, lower=lower, upper=upper, truncate=truncate, components=components,
                 max_components=max_components)
    if values is None:
        inputs = DensityInput(**shape)
    else:
        values = _array("values", values)
        names = list(columns or [f"x{j + 1}" for j in range(values.shape[1])])
        if len(names) != values.shape[1]:
            raise ValueError(f"columns names {len(names)} coordinates, values have "
                             f"{values.shape[1]}")
        table = Table({name: values[:, j] for j, name in enumerate(names)})
        error_names = None
        if errors is not None:
            errors = _array("errors", errors)
            if len(errors) != len(values):
                raise ValueError(f"errors has {len(errors)} values but values has "
                                 f"{len(values)}")
            if errors.shape != values.shape:
                raise ValueError(f"errors have {errors.shape[1]} coordinates per value but "
                                 f"values have {values.shape[1]}")
            error_names = [f"e_{name}" for name in names]
            for j, name in enumerate(error_names):
                table[name] = errors[:, j]
        table.meta["source"] = "values given in Python"
        inputs = DensityInput(data=table, columns=",".join(names),
                              errors=",".join(error_names) if error_names else None, **shape)
    result = run_density(_out_dir(out), inputs, sampling, gate, figures=figures, quiet=quiet,
                         checks=checks)
    return Fit(result, "density")


def _array(name: str, values) -> np.ndarray:
    """``values`` as an (N, d) float array, or a ValueError naming ``name``."""
    try:
        array = np.asarray(values, float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numbers: {err}") from None
    if array.ndim not in (1, 2) or len(array) == 0:
        raise ValueError(f"{name} must have shape (N,) or (N, d) with N > 0, got shape "
                         f"{array.shape}")
    return array[:, None] if array.ndim == 1 else array


def load_fit(path: str | Path) -> Fit:
    """A :class:`Fit` from a results folder written by ``starmix run`` or :meth:`Fit.save`
    (the folder may have been moved since: files are found beside the record).

    A folder without a run record is a ``FileNotFoundError``, a record that is not a
    starmix run record a :class:`RunRecordError` (a ValueError), both naming the file."""
    folder = Path(path)
    record_file = folder / RECORD_NAME
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such results folder")
    if not record_file.is_file():
        raise FileNotFoundError(f"{folder} is not a starmix results folder: it has no "
                                f"{RECORD_NAME}")
    try:
        record = json.loads(record_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunRecordError(f"{record_file} is not a starmix run record: not valid JSON "
                             f"({err})") from None
    except OSError as err:
        raise FitFileError(f"{record_file} cannot be read: {err.strerror or err}") from None
    files = _recorded_files(record, record_file)
    workflow = record.get("workflow")
    workflow = workflow if workflow in ("outlier-line", "density", "ages") else "cluster"
    return Fit(RunResult(record["status"], folder, files, record), workflow)


def _recorded_files(record, record_file: Path) -> dict[str, Path]:
    """The record's files, found beside ``record_file`` (their recorded folder may be
    another); :class:`RunRecordError` naming what the record lacks."""
    def broken(what):
        return RunRecordError(f"{record_file} is not a starmix run record: {what}")

    if not isinstance(record, dict):
        raise broken(f"it holds a JSON {type(record).__name__}, not an object")
    files = record.get("files")
    if not isinstance(files, dict):
        raise broken("no 'files' entry")
    if not isinstance(record.get("status"), str):
        raise broken("no 'status' entry")
    if not isinstance(files.get("run_record"), str):
        raise broken("its 'files' entry does not list the run record itself")
    recorded = Path(files["run_record"]).parent
    found = {}
    for label, name in files.items():
        try:
            relative = Path(name).relative_to(recorded)
        except (TypeError, ValueError):
            raise broken(f"'files' lists {name!r} ({label}), outside the run's folder") from None
        if ".." in relative.parts:
            raise broken(f"'files' lists {name!r} ({label}), outside the run's folder")
        found[label] = record_file.parent / relative
    return found
