"""The outlier-line workflow: data -> model -> NUTS -> gate -> membership -> files -> figures.

Every step is a function of its own; :func:`run_outlier_line` calls them in order.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pymc as pm
import xarray as xr
from astropy.table import Table

from starmix.data.input_checks import DataValidationError, source_name
from starmix.data.line import LineData, load_line_table, simulate_outlier_line
from starmix.models.outlier_line import LINE_PARAMETERS, MIN_POINTS, outlier_line
from starmix.workflows.base import Outcome, execute
from starmix.workflows.inference.checks import check_step
from starmix.workflows.inference.gate import GateReport, convergence_gate
from starmix.workflows.inference.membership import Membership, membership_from_posterior
from starmix.workflows.inference.sampling import (
    check_starting_point,
    sample_posterior,
    sampler_used,
)
from starmix.workflows.inference.summary import summary_table
from starmix.workflows.line import plots as line_plots
from starmix.workflows.plots import common as plots
from starmix.workflows.plots.checks import predictive_figure
from starmix.workflows.plots.pgm import outlier_line_pgm
from starmix.workflows.runs.files import save_figure, write_posterior, write_table
from starmix.workflows.runs.options import GateThresholds, SamplingOptions, as_record
from starmix.workflows.runs.run import Run, RunResult, final_status

FIGURES = {
    "line_fit": "outlier_line_fit.png",
    "corner": "outlier_line_corner.png",
    "membership": "outlier_line_membership.png",
    "pgm": "outlier_line_pgm.png",
    "checks": "outlier_line_checks.png",
}


@dataclass(frozen=True)
class LineInput:
    """Where the points come from: a table file with column names, or the simulator."""

    data: str | None = None
    x: str = "x"
    y: str = "y"
    yerr: str = "y_err"
    xerr: str | None = None
    xycorr: str | None = None
    intrinsic_scatter: bool = False
    drop_invalid: bool = False

    def __post_init__(self):
        if (self.xycorr is not None) and self.xerr is None:
            raise ValueError("--xycorr needs --xerr: a correlation between errors needs both")
        if self.data is None:
            given = [option for option, value in (("--x", self.x != "x"),
                                                  ("--y", self.y != "y"),
                                                  ("--yerr", self.yerr != "y_err"),
                                                  ("--xerr", self.xerr is not None),
                                                  ("--xycorr", self.xycorr is not None),
                                                  ("--drop-invalid", self.drop_invalid))
                     if value]
            if given:
                raise ValueError(f"{', '.join(given)} name columns of --data: give --data "
                                 "FILE too (without it the built-in reference data are used)")


def load_line_data(inputs: LineInput) -> LineData:
    """Step 1: read and validate the user's table, or simulate the reference data. Fewer
    than ``MIN_POINTS`` points, or x values without spread, are an error that says why."""
    if inputs.data is None:
        return simulate_outlier_line()
    data = load_line_table(inputs.data, inputs.x, inputs.y, inputs.yerr, inputs.xerr,
                           inputs.xycorr, drop_invalid=inputs.drop_invalid)
    dropped = f" after --drop-invalid removed {data.dropped['total']}" if data.dropped else ""
    if len(data) < MIN_POINTS:
        raise ValueError(
            f"{source_name(inputs.data)}: {len(data)} points{dropped}; the outlier line "
            f"needs at least {MIN_POINTS} (five parameters: with fewer points the outlier "
            "component can take any subset of them and the fit says nothing)")
    if np.ptp(data.x) == 0:
        raise DataValidationError(inputs.x, f"are all identical ({data.x[0]:g}): a line "
                                  "needs points at more than one x", len(data), len(data))
    return data


def build_line_model(data: LineData, inputs: LineInput) -> tuple[pm.Model, Callable[[], None]]:
    """Step 2a: the components form of the outlier-line model (it carries membership), and
    its starting-point check (:func:`starmix.workflows.inference.sampling.check_starting_point` on
    the input
    columns; the sampler runs it when the log-density at the start is not finite)."""
    model = outlier_line(data.x, data.y, data.y_err, x_err=data.x_err, xy_corr=data.xy_corr,
                         intrinsic_scatter=inputs.intrinsic_scatter)
    columns = {inputs.x: data.x, inputs.y: data.y, inputs.yerr: data.y_err}
    columns.update({name: values for name, values in ((inputs.xerr, data.x_err),
                                                      (inputs.xycorr, data.xy_corr))
                    if name is not None and values is not None})
    return model, partial(check_starting_point, model, columns,
                          [name for name in (inputs.yerr, inputs.xerr) if name is not None])


def line_parameters(inputs: LineInput) -> list[str]:
    return [*LINE_PARAMETERS, "s_out"] + (["ln_s_int", "s_int"] if inputs.intrinsic_scatter
                                           else [])


def line_membership(idata: xr.DataTree) -> Membership:
    """Step 4: probability that each point lies on the line (weights included)."""
    return membership_from_posterior(idata["posterior"].to_dataset(), component="line")


def membership_table(data: LineData, membership: Membership) -> Table:
    table = Table({"point": np.arange(len(data)), "x": data.x, "y": data.y, "y_err": data.y_err})
    for name, column in membership.columns().items():
        table[name] = column
    if data.is_outlier is not None:
        table["true_outlier"] = data.is_outlier
    return table


def save_line_results(run: Run, idata, summary: Table, members: Table) -> None:
    """Step 5: posterior, summary and membership tables (each written atomically)."""
    run.keep("posterior", write_posterior(run.out_dir / "posterior.nc", idata))
    run.keep("summary", write_table(run.out_dir / "summary.ecsv", summary))
    run.keep("membership", write_table(run.out_dir / "membership.ecsv", members))


def draw_line_figures(run: Run, data: LineData, idata, membership: Membership, var_names,
                      check_arrays=None):
    """Step 6: data-space fit, corner plot, membership colours, the PGM and the predictive
    checks."""
    truths = {"m": data.truth.get("m"), "b": data.truth.get("b"),
              "w[line]": data.truth.get("w_line"), "s_out": 15.0 if data.truth else None}
    truths = {name: value for name, value in truths.items() if value is not None}
    corner_vars = [name for name in ("m", "b", "s_out", "w") if name in var_names]
    figures = {
        "line_fit": line_plots.line_fit_figure(data, idata),
        "corner": plots.corner_plot(idata, corner_vars, coords={"component": "line"},
                                    truths=truths),
        "membership": line_plots.membership_figure(data, membership.mean),
        "pgm": outlier_line_pgm(),
    }
    if check_arrays is not None:
        figures["checks"] = predictive_figure(check_arrays, "outlier line: predictive checks of y")
    for label, figure in figures.items():
        run.keep(f"figure_{label}", save_figure(run.out_dir / "figures" / FIGURES[label], figure))
        plots.close(figure)


def run_outlier_line(
    out_dir: str | Path,
    inputs: LineInput = LineInput(),
    sampling: SamplingOptions = SamplingOptions(),
    gate: GateThresholds = GateThresholds(),
    figures: bool = True,
    quiet: bool = False,
    checks: str = "on",
) -> RunResult:
    """Run the whole workflow; returns the result even when the gate fails (status "failed").
    ``checks``: predictive checks ``on``, ``off`` or ``strict`` (as in the cluster workflow).

    Bad input raises :class:`data.DataValidationError` before anything is written.
    """
    def steps(run: Run) -> Outcome:
        with run.step("load data"):
            data = load_line_data(inputs)
            run.say(f"{len(data)} points from {data.source}")
            for reason, count in data.dropped.items():
                run.say(f"dropped (--drop-invalid) {count} rows: {reason}")
        with run.step("build model"):
            model, check_start = build_line_model(data, inputs)
        with run.step("sample"):
            idata = sample_posterior(model, sampling, check_start=check_start,
                                     out_dir=run.out_dir)
        var_names = line_parameters(inputs)
        with run.step("convergence gate"):
            report: GateReport = convergence_gate(idata, var_names, gate)
        with run.step("membership"):
            membership = line_membership(idata)
        details = {}
        check_report, check_arrays = check_step(run, model, idata, sampling.seed, "y", checks,
                                                details)
        with run.step("save results"):
            save_line_results(run, idata, summary_table(idata, var_names),
                              membership_table(data, membership))
        if figures:
            with run.step("figures"):
                draw_line_figures(run, data, idata, membership, var_names, check_arrays)
        details.update(data={"source": data.source, "n_points": len(data),
                             "dropped": data.dropped}, convergence=report.as_record(),
                       sampler_used=sampler_used(idata))
        return Outcome(final_status(report.passed, check_report, checks), details,
                       (report, check_report))

    return execute(run_outlier_line, out_dir, as_record(inputs, sampling, gate), steps,
                   quiet=quiet, checks=checks)
