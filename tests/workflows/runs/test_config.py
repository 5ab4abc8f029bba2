import pytest

from starmix.workflows.runs.options import (
    SamplingOptions,
    dataclass_defaults,
    merge_options,
    pick,
    read_config_file,
)


def test_cli_beats_config_beats_default(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('draws = 50\ntarget-accept = 0.95\nsampler = "pymc"\n')
    defaults = dataclass_defaults(SamplingOptions)
    merged = merge_options({"draws": 70, "tune": None}, read_config_file(path), defaults)
    options = pick(SamplingOptions, merged)
    assert (options.draws, options.target_accept, options.tune) == (70, 0.95, None)


def test_unknown_config_key_is_named(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("drawz = 5\n")
    with pytest.raises(ValueError, match="drawz"):
        merge_options({}, read_config_file(path), dataclass_defaults(SamplingOptions))


@pytest.mark.parametrize("bad", [{"draws": 0}, {"sampler": "gibbs"}, {"target_accept": 1.5}])
def test_bad_sampling_options(bad):
    with pytest.raises(ValueError):
        SamplingOptions(**bad)
