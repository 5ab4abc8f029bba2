"""The Python API: run a workflow from a notebook or script and get a :class:`Fit` back.

Each function runs the same steps as its ``starmix run`` command (load and check the data,
build the model, NUTS, the convergence gate, membership, predictive checks, results), into
``out`` when given; without it, into a scratch folder whose files the :class:`Fit` then
holds in memory (the folder is removed) until :meth:`Fit.save` writes them. Bad input
raises the same errors as the command line (a
:class:`starmix.data.input_checks.DataValidationError` names the column and the count of
bad rows) before any sampling. A fit whose gate fails, or that finds no cluster, is
returned all the same: check :attr:`Fit.passed` and :attr:`Fit.status`.
"""

import io
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from astropy.table import Table

from starmix.workflows import registry
from starmix.workflows.base import resolve
from starmix.workflows.runs.files import write_json
from starmix.workflows.runs.folder import OutputFolder
from starmix.workflows.runs.options import GateThresholds, SamplingOptions, dataclass_defaults, pick
from starmix.workflows.runs.record import RECORD_NAME, RunRecord, RunRecordError
from starmix.workflows.runs.run import RunResult

# What reading a damaged file can raise: h5py's OSError, xarray's ValueError for an unknown
# format, astropy's and the parsers' errors for a broken table
READ_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError,
               UnicodeDecodeError)


class FitFileError(OSError):
    """A fit's file that is missing or cannot be read: the message names the file."""


@dataclass
class Fit:
    """A finished run. ``status`` is ``passed``, ``failed`` (convergence gate),
    ``no_cluster`` or ``checks_failed`` (with ``checks="strict"``); the results are kept in
    every case. Tables carry units; ``idata`` is the ArviZ ``DataTree`` saved as
    ``posterior.nc`` (posterior, log_likelihood, observed_data and, with checks, the
    predictive groups); ``record`` is the run record
    (:class:`starmix.workflows.runs.record.RunRecord`).

    A fit run with ``out`` lives in that folder (``out_dir``) and reads its files from it;
    a fit run without ``out`` holds every file it wrote in memory (its scratch folder is
    removed when the run ends; ``out_dir`` is None) until :meth:`save` writes them."""

    result: RunResult = field(repr=False)
    contents: dict[str, bytes] | None = field(default=None, repr=False)

    @classmethod
    def in_memory(cls, result: RunResult) -> "Fit":
        """The fit of a run in a scratch folder, its files read into memory (the folder can
        then be removed)."""
        contents = {label: Path(path).read_bytes() for label, path in result.files.items()
                    if label != "run_record"}
        return cls(result, contents)

    @property
    def workflow(self) -> str:
        """The registered name of the workflow that made this fit."""
        return self.record.workflow

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def passed(self) -> bool:
        """True when the gate passed (and, for a cluster, one was found)."""
        return self.result.status == "passed"

    @property
    def out_dir(self) -> Path | None:
        """The folder holding this fit's files (None for a fit held in memory)."""
        return None if self.contents is not None else self.result.out_dir

    @property
    def record(self) -> RunRecord:
        """The run record (``run_record.json``): settings, data, gate, checks, timings."""
        return self.result.record

    def _where(self) -> str:
        return ("this fit (held in memory)" if self.out_dir is None
                else str(self.out_dir / RECORD_NAME))

    def _listed(self, label: str) -> str | None:
        """The label under which the record lists the file ``label``, or None; a density
        run names its files per sample (``posterior_NAME``): the first sample's."""
        files = self.result.files
        if label in files:
            return label
        return next((key for key in files if key.startswith(f"{label}_")), None)

    def _label(self, label: str) -> str:
        """:meth:`_listed`, or :class:`RunRecordError` when the run record lists none."""
        listed = self._listed(label)
        if listed is None:
            raise RunRecordError(f"{self._where()} lists no {label} file (this "
                                 f"{self.workflow} fit has none)")
        return listed

    def _read(self, label: str, reader):
        """``reader(source)`` of the file ``label`` (a path, or the bytes in memory as a
        file object); a missing or damaged file is a :class:`FitFileError` naming it."""
        label = self._label(label)
        path = Path(self.result.files[label])
        if self.contents is not None:
            source = io.BytesIO(self.contents[label])
        elif not path.is_file():
            raise FitFileError(f"{path} cannot be read: the file is missing (listed in "
                               f"{self.out_dir / RECORD_NAME})")
        else:
            source = path
        try:
            return reader(source)
        except READ_ERRORS as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise FitFileError(f"{path} cannot be read: {reason}") from None

    @cached_property
    def idata(self):
        import xarray as xr

        def read(source):
            with xr.open_datatree(source, engine="h5netcdf") as tree:
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
        if "membership" not in self.result.files:
            see = ": see Fit.density" if self._listed("density") else ""
            raise AttributeError(f"a {self.workflow} fit has no membership{see}")
        return self._read("membership", _read_ecsv)

    @cached_property
    def summary(self) -> Table:
        """Posterior summary per parameter (mean, sd, HDI, r_hat, ESS)."""
        return self._read("summary", _read_ecsv)

    def _hook(self, name: str):
        hook = getattr(registry.get(self.workflow), name)
        if hook is None:
            raise NotImplementedError(f"the {self.workflow} workflow has no {name}")
        return resolve(hook)

    def plot_corner(self, var_names=None, truths=None):
        """Corner plot of the model's parameters (or ``var_names``); returns the figure."""
        return self._hook("plot_corner")(self, var_names, truths)

    def plot_membership(self):
        """The objects coloured by membership: the points about the line, or a cluster's
        vector-point diagram (its parallaxes when the model has no proper motions)."""
        return self._hook("plot_membership")(self)

    def save(self, path: str | Path) -> Path:
        """Write this fit's files (those its run record lists) to the folder ``path`` (one
        run per folder: an existing folder of someone else's files is an error), written
        aside and swapped in, with the run record's file paths pointing at the copies.
        ``path`` may not lie inside this fit's folder, nor contain it. Returns the folder."""
        target = Path(os.path.abspath(Path(path).expanduser()))
        source = Path(os.path.abspath(self.result.out_dir))
        if self.contents is None and (target == source or target.is_relative_to(source)
                                      or source.is_relative_to(target)):
            where = "is" if target == source else ("lies inside" if target.is_relative_to(
                source) else "contains")
            raise ValueError(f"cannot save to {path}: it {where} this fit's own folder "
                             f"{self.out_dir}; give a folder elsewhere")
        relatives = {}
        for label, name in self.result.files.items():
            try:
                relatives[label] = Path(os.path.abspath(name)).relative_to(source)
            except ValueError:
                raise RunRecordError(f"{self._where()} lists {name}, outside the fit's "
                                     "folder") from None
        folder = OutputFolder(path)
        staging = folder.open()
        try:
            for label, relative in relatives.items():
                if label == "run_record":
                    continue
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                if self.contents is not None:
                    (staging / relative).write_bytes(self.contents[label])
                    continue
                original = source / relative
                if not original.is_file():
                    raise FitFileError(f"cannot save: {original} is missing (listed in "
                                       f"{self.out_dir / RECORD_NAME})")
                shutil.copy2(original, staging / relative)
            moved = {label: str(folder.final / relative) for label, relative in relatives.items()}
            write_json(staging / RECORD_NAME, {**self.record.to_dict(), "files": moved})
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


def _run(runner, out, *args, **kwargs) -> Fit:
    """``runner`` into ``out``; without ``out``, into a scratch folder whose files the
    :class:`Fit` then holds in memory, the folder removed (also when the run fails)."""
    if out is not None:
        return Fit(runner(Path(out), *args, **kwargs))
    scratch = Path(tempfile.mkdtemp(prefix="starmix-"))
    try:
        return Fit.in_memory(runner(scratch / "run", *args, **kwargs))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
    from starmix.workflows.line.run import LineInput, run_outlier_line

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
    return _run(run_outlier_line, out, inputs, sampling, gate, figures=figures, quiet=quiet,
                checks=checks)


def fit_cluster(table=None, model: str = "pm2d", *, out=None, figures: bool = False,
                checks: str = "on", quiet: bool = False, **options) -> Fit:
    """Fit a cluster-versus-field mixture to a Gaia table (astropy ``Table``, pyia
    ``GaiaData``, pandas ``DataFrame`` or a file path; archive column names and units:
    mas, mas/yr, deg). ``model``: ``pmra``, ``parallax``, ``pm2d``, ``pmplx`` or ``joint``.
    Without ``table`` the simulated NGC 6819 field is fitted.

    ``options``: every option of ``starmix run cluster`` by its Python name (``cluster``,
    ``center``, ``ruwe_max``, ``g_max``, ``field_components``, ``magnitude_prior``, ...,
    see :class:`starmix.workflows.cluster.inputs.ClusterInput`), sampling options (``draws``,
    ``chains``, ``seed``, ...) and gate thresholds. A misspelt option is an error.
    ``priors={name: factory}`` replaces the cluster's own priors (names in
    ``CLUSTER_MODELS[model].replaceable_priors``), e.g.
    ``priors={"cluster_pm_dispersion": lambda name: pm.HalfNormal(name, 0.1)}``.
    """
    from starmix.data.input_checks import is_table
    from starmix.workflows.cluster.inputs import ClusterInput
    from starmix.workflows.cluster.run import run_cluster

    if table is not None and not is_table(table) and is_table(getattr(table, "data", None)):
        table = table.data  # a pyia GaiaData: its astropy Table (copied when read)
    sampling, gate, rest = _options(options)
    unknown = set(rest) - set(ClusterInput.__dataclass_fields__)
    if unknown:
        raise TypeError(f"fit_cluster() got unknown options: {', '.join(sorted(unknown))}")
    inputs = ClusterInput(model=model, data=table, **rest)
    return _run(run_cluster, out, inputs, sampling, gate, figures=figures, quiet=quiet,
                checks=checks)


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
    from starmix.workflows.density.fit import DENSITY_SAMPLING
    from starmix.workflows.density.run import DensityInput, run_density

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
    return _run(run_density, out, inputs, sampling, gate, figures=figures, quiet=quiet,
                checks=checks)


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
        record = RunRecord.read(record_file)
    except OSError as err:
        raise FitFileError(f"{record_file} cannot be read: {err.strerror or err}") from None
    return Fit(RunResult(record.status, folder, record.files_beside(record_file), record))
