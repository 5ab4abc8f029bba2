"""Property-based: no command line and no TOML file makes ``starmix`` print a traceback.

Whatever the arguments, :func:`starmix.workflows.cli.main` either runs (here a stand-in runner that
records the options it was given), or stops with exit code 1 and a one-line message that
names an option, key or file (argparse's usage errors included; ``--help`` exits 0).
"""

import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starmix.workflows import cli
from starmix.workflows.runs.options import (
    ConfigError,
    GateThresholds,
    SamplingOptions,
    option_types,
)
from starmix.workflows.runs.run import RunResult

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

OPTIONS = ["--draws", "--tune", "--chains", "--cores", "--seed", "--sampler", "--mass-matrix",
           "--target-accept", "--out", "--no-figures", "--r-hat-max", "--ess-bulk-min",
           "--ess-tail-min", "--divergences-max", "--model", "--cluster", "--catalogue",
           "--center", "--assign-errors", "--error-model", "--drop-invalid", "--zero-point",
           "--sim-seed",
           "--n-cluster",
           "--n-field", "--ruwe-max", "--g-max", "--parallax-over-error-min", "--radius",
           "--footprint", "--max-stars", "--field-components", "--parallax-field",
           "--parallax-offset", "--radial-velocity", "--magnitude-prior", "--cluster-halo",
           "--no-detection",
           "--intrinsic-scatter", "--x", "--y", "--yerr", "--xerr", "--xycorr", "--columns",
           "--drow", "-x", "--"]
VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1", "2", "3", "auto", "9", "1e309", "nan", "inf", "-inf",
                     "0.5", "1.5", "abc", "", " ", "pm2d", "joint", "parallax", "pmplx",
                     "pmra", "nutpie", "pymc", "diag", "beta", "NGC188", "M67", "=",
                     "a=b", "Plx=parallax", "x=y=z", "/sys/x", "é", "--draws"]),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)
TOKENS = st.one_of(st.sampled_from(OPTIONS), VALUES)


class Ran(Exception):
    """Raised by the stand-in runner: the options got through every check."""


@pytest.fixture
def no_real_runs(monkeypatch):
    """Replace the workflows' runners (not their input classes, whose checks we test)."""
    real = cli.workflow_runner

    def fake_runner(**kwargs):
        return RunResult("passed", Path(kwargs["out_dir"]), {}, {})

    monkeypatch.setattr(cli, "workflow_runner",
                        lambda workflow: (real(workflow)[0], fake_runner))


def outcome(argv, capsys) -> int:
    try:
        code = cli.main(argv)
    except SystemExit as stop:  # argparse: --help (0) or a usage error (1)
        code = stop.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code in (0, 1), (argv, code, captured.err)
    if code == 1:
        assert "error:" in captured.err, captured.err
    return code


@SETTINGS
@given(workflow=st.sampled_from(["outlier-line", "cluster", "ngc6819"]),
       tokens=st.lists(TOKENS, max_size=8))
def test_any_command_line_runs_or_fails_with_a_message(no_real_runs, capsys, tmp_path_factory,
                                                       workflow, tokens):
    out = str(tmp_path_factory.mktemp("out") / "o")
    outcome(["run", workflow, *tokens, "--out", out], capsys)


KEYS = st.one_of(
    st.sampled_from(["draws", "tune", "chains", "cores", "seed", "sampler", "target-accept",
                     "target_accept", "mass_matrix", "figures", "out", "model", "cluster",
                     "center", "field_components", "radial-velocity", "g_max", "ruwe_max",
                     "max_stars", "drop_invalid", "magnitude_prior", "intrinsic-scatter",
                     "detection", "footprint", "r_hat_max", "divergences_max", "unknown"]),
    st.text(min_size=1, max_size=6))
TOML_VALUES = st.recursive(
    st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
              st.text(max_size=6), st.sampled_from(["false", "no", "auto", "pm2d", "3"])),
    lambda inner: st.lists(inner, max_size=3), max_leaves=4)


def toml_text(pairs) -> str:
    lines = []
    for key, value in pairs:
        lines.append(f"{toml_key(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else (
        '"' + key.encode("unicode_escape").decode().replace('"', '\\"') + '"')


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value == float("inf") else (
            "-inf" if value == float("-inf") else repr(value)))
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    return "[" + ", ".join(toml_value(item) for item in value) + "]"


@SETTINGS
@given(pairs=st.lists(st.tuples(KEYS, TOML_VALUES), max_size=5),
       workflow=st.sampled_from(["outlier-line", "cluster"]),
       garbage=st.one_of(st.none(), st.text(max_size=20)))
def test_any_toml_file_runs_or_fails_with_a_message(no_real_runs, capsys, tmp_path_factory,
                                                    pairs, workflow, garbage):
    folder = tmp_path_factory.mktemp("config")
    path = folder / "run.toml"
    path.write_text(toml_text(pairs) if garbage is None else garbage, encoding="utf-8")
    code = outcome(["run", workflow, "--config", str(path), "--out", str(folder / "o")],
                   capsys)
    if code == 0:  # everything accepted: each value has its option's type
        from starmix.workflows.cluster.inputs import ClusterInput
        from starmix.workflows.line.run import LineInput

        schema = {**option_types(SamplingOptions, GateThresholds,
                                 LineInput if workflow == "outlier-line" else ClusterInput),
                  "out": str, "figures": bool}
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        assert {key.replace("-", "_") for key in raw} <= set(schema)


def test_a_typed_config_error_names_file_and_key(tmp_path):
    from starmix.workflows.runs.options import read_config_file

    path = tmp_path / "run.toml"
    path.write_text('chains = "four"\n')
    with pytest.raises(ConfigError, match=rf"config file {path}: key 'chains' must be a whole"):
        read_config_file(path, option_types(SamplingOptions))
