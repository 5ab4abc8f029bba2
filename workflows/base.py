"""The :class:`Workflow` type and the one run skeleton (:func:`execute`) every workflow's
runner is written in.

A workflow is named once, in :mod:`starmix.workflows.registry`, as a :class:`Workflow`:
its input options, its runner, the command-line options it adds, its sampling defaults,
and the figures it draws with their captions (for ``starmix reproduce``). The command line,
``starmix reproduce`` and the Python API read the registry; nothing else spells a
workflow's name. Classes and functions are given as ``"module:name"`` strings (imported on
first use, so that ``starmix --help`` stays light) or as the objects themselves.

A runner is ``runner(out_dir, inputs, sampling, gate, figures=True, quiet=False,
checks="on") -> RunResult`` and is written as :func:`execute` with its steps::

    def run_line(out_dir, inputs=LineInput(), sampling=..., gate=..., figures=True,
                 quiet=False, checks="on"):
        def steps(run):
            with run.step("load data"):
                ...
            return Outcome(status, details, reports)
        return execute(run_line, out_dir, as_record(inputs, sampling, gate), steps,
                       quiet=quiet, checks=checks)

:func:`execute` is given the runner itself and finds the workflow's name in the registry
(:func:`workflow_name`), so a runner never spells its own name.
"""

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from starmix.workflows.runs.run import Run, RunResult, final_status


def resolve(target):
    """The object ``target`` names (``"package.module:name"``), or ``target`` itself."""
    if not isinstance(target, str):
        return target
    module, _, name = target.partition(":")
    if not name:
        raise ValueError(f"{target!r} is not a 'module:name' reference")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Example:
    """One run ``starmix reproduce`` makes for a workflow and the figures it keeps.

    ``inputs``: keyword arguments of the workflow's input type (the defaults otherwise);
    ``folder``: where the figures go, under ``figures/``; each figure is copied as
    ``prefix`` + its file name in the run; ``caption_prefix`` starts each caption; ``out``:
    the run's folder under reproduce's results folder (default: ``label``)."""

    label: str
    title: str
    command: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    folder: str = ""
    prefix: str = ""
    caption_prefix: str = ""
    out: str = ""


@dataclass(frozen=True)
class Workflow:
    """A workflow, as the command line, ``reproduce`` and the API see it.

    ``name``: ``starmix run NAME``; ``aliases``: other names the command line takes;
    ``inputs``: the input-options dataclass; ``runner``: the function that runs it (see the
    module docstring); ``add_options``: ``add_options(parser)`` adds the workflow's own
    command-line options (the sampling, gate and output options are shared);
    ``sampling``: a :class:`~starmix.workflows.runs.options.SamplingOptions` whose
    ``draws``, ``tune`` and ``target_accept`` replace the shared defaults (None: the shared
    ones); ``per_option``: an input option whose value the default results folder is
    suffixed with (``results/cluster-pm2d``); ``figures``: caption of each figure label;
    ``examples``: the runs ``starmix reproduce`` makes (or a function that returns them);
    ``plot_corner(fit, var_names, truths)`` and ``plot_membership(fit)``: what
    :class:`starmix.api.Fit`'s methods of those names draw (None: the workflow has none);
    ``summary``: one line for the
    command's help; ``description``: the workflow's ``--help`` text."""

    name: str
    inputs: Any
    runner: Any
    add_options: Any
    summary: str
    description: str
    aliases: tuple[str, ...] = ()
    sampling: Any = None
    per_option: str | None = None
    figures: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    examples: Any = ()
    plot_corner: Any = None
    plot_membership: Any = None

    def load(self) -> tuple[type, Callable]:
        """The input type and the runner, imported."""
        return resolve(self.inputs), resolve(self.runner)

    def sampling_defaults(self) -> dict:
        """The sampling options this workflow sets other defaults for."""
        if self.sampling is None:
            return {}
        sampling = resolve(self.sampling)
        return {"draws": sampling.draws, "tune": sampling.tune,
                "target_accept": sampling.target_accept}

    def default_out(self, called_as: str, options: Mapping) -> str:
        """The default results folder: ``results/<name as called>[-<per_option value>]``."""
        out = f"results/{called_as}"
        return f"{out}-{options[self.per_option]}" if self.per_option else out

    def example_runs(self) -> tuple[Example, ...]:
        """The runs ``starmix reproduce`` makes."""
        examples = resolve(self.examples)
        return tuple(examples() if callable(examples) else examples)

    def caption(self, label: str) -> str:
        """The caption of the figure ``label`` (or of its kind, the part before ``_``)."""
        return self.figures.get(label) or self.figures.get(label.split("_")[0], label)


@dataclass
class Outcome:
    """What a workflow's steps end with: the run's status, the record's details, and the
    reports (objects with ``text()``; None is skipped) printed after the record is
    written."""

    status: str
    details: dict
    reports: tuple = ()


# "module:function" of each registered runner -> its workflow's name; the registry fills it
# (:func:`name_runner`), and ``starmix.workflows`` imports the registry, so it is full
# whenever a runner can be called
_RUNNER_NAMES: dict[str, str] = {}


def runner_key(runner) -> str:
    """``"module:function"`` of a runner given as itself or as that string."""
    if isinstance(runner, str):
        return runner
    return f"{runner.__module__}:{runner.__qualname__}"


def name_runner(runner, name: str | None) -> None:
    """Record (``name`` None: forget) the workflow name of ``runner``."""
    if name is None:
        _RUNNER_NAMES.pop(runner_key(runner), None)
    else:
        _RUNNER_NAMES[runner_key(runner)] = name


def workflow_name(runner) -> str:
    """The registered name of the workflow ``runner`` runs."""
    key = runner_key(runner)
    if key not in _RUNNER_NAMES:
        raise ValueError(f"{key} is not the runner of a registered workflow: register it "
                         "(starmix.workflows.registry.register)")
    return _RUNNER_NAMES[key]


def execute(runner, out_dir: str | Path, settings: dict,
            steps: Callable[[Run], Outcome], quiet: bool = False, checks: str = "on",
            label: str | None = None) -> RunResult:
    """The run skeleton: check the ``checks`` mode, open the results folder (one run per
    folder, checked before any work), run ``steps`` inside it (each ``run.step`` is timed
    and recorded; an error or interrupt is recorded as such), write the run record with
    the outcome, print the reports, and return the :class:`RunResult`. ``runner``: the
    calling runner (the record names its registered workflow, :func:`workflow_name`);
    ``label``: what progress messages and the record call the run (default: the name)."""
    workflow = workflow_name(runner)
    final_status(True, None, checks)  # an unknown mode fails before any work
    run = Run(workflow, out_dir, settings, quiet=quiet, label=label)
    with run:
        outcome = steps(run)
        result = run.finish(outcome.status, **outcome.details)
        for report in outcome.reports:
            if report is not None:
                print(report.text())
        return result
