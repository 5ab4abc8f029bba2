"""The workflow registry: a workflow is added in one place, and the command line, the run
record, ``load_fit`` and ``reproduce`` all know it from there."""

import json
from dataclasses import dataclass

import numpy as np
import pytest
from astropy.table import Table

import starmix
from starmix.workflows import cli, registry
from starmix.workflows.base import Example, Outcome, Workflow, execute
from starmix.workflows.reproduce import chosen_runs, reproduce_choices
from starmix.workflows.runs.files import write_table
from starmix.workflows.runs.options import GateThresholds, SamplingOptions, as_record


@dataclass(frozen=True)
class ToyInput:
    """A toy workflow's one option: the mean of the values it draws."""

    mean: float = 1.0


def add_toy_options(parser) -> None:
    parser.add_argument("--mean", type=float, help="mean of the drawn values (default 1)")


def run_toy(out_dir, inputs=ToyInput(), sampling=SamplingOptions(), gate=GateThresholds(),
            figures=True, quiet=False, checks="on"):
    def steps(run):
        with run.step("draw"):
            values = np.random.default_rng(sampling.seed).normal(inputs.mean, 1.0, 200)
            run.keep("values", write_table(run.out_dir / "values.ecsv", Table({"x": values})))
        return Outcome("passed", {"sample_mean": float(values.mean())})

    return execute(run_toy, out_dir, as_record(inputs, sampling, gate), steps, quiet=quiet,
                   checks=checks)


@pytest.fixture
def toy():
    workflow = registry.register(Workflow(
        name="toy", inputs=ToyInput, runner=run_toy, add_options=add_toy_options,
        summary="draw values", description="Draw normal values (a test's toy workflow).",
        examples=(Example("toy", "toy", "starmix run toy"),)))
    yield workflow
    registry.unregister("toy")


def test_a_registered_workflow_runs_from_the_command_line(toy, tmp_path, capsys, monkeypatch):
    out = tmp_path / "toy"
    assert cli.main(["run", "toy", "--mean", "3", "--seed", "5", "--out", str(out)]) == 0
    record = json.loads((out / "run_record.json").read_text())
    assert record["workflow"] == "toy" and record["schema"] == 2
    assert record["settings"]["ToyInput"]["mean"] == 3.0
    assert abs(record["sample_mean"] - 3.0) < 0.3  # the option reached the runner
    values = Table.read(out / "values.ecsv")
    assert abs(float(np.mean(values["x"])) - 3.0) < 0.3
    fit = starmix.load_fit(out)
    assert fit.workflow == "toy" and fit.passed
    with pytest.raises(NotImplementedError, match="the toy workflow has no plot_corner"):
        fit.plot_corner()
    assert "toy" in reproduce_choices()
    assert [example.label for _, example in chosen_runs(["toy"])] == ["toy"]
    # the default folder is results/<name>, and --help lists the workflow
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "toy"]) == 0
    assert json.loads((tmp_path / "results" / "toy" / "run_record.json").read_text())[
        "settings"]["ToyInput"]["mean"] == 1.0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "toy: draw values" in " ".join(capsys.readouterr().out.split())


def test_names_are_registered_once():
    with pytest.raises(ValueError, match="already registered: ngc6819"):
        registry.register(Workflow(name="other", aliases=("ngc6819",), inputs=ToyInput,
                                   runner=run_toy, add_options=add_toy_options, summary="",
                                   description=""))
    with pytest.raises(ValueError, match="unknown workflow 'nope'"):
        registry.get("nope")
    assert registry.get("ngc6819") is registry.get("cluster")


def test_every_workflow_resolves():
    # each registered name points at importable objects with the runner's signature
    import inspect

    for workflow in registry.WORKFLOWS.values():
        inputs, runner = workflow.load()
        parameters = list(inspect.signature(runner).parameters)
        assert parameters[:4] == ["out_dir", "inputs", "sampling", "gate"], workflow.name
        assert {"figures", "quiet", "checks"} <= set(parameters), workflow.name
        inputs()  # the defaults are valid
        assert workflow.example_runs(), workflow.name
