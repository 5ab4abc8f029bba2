"""ClusterInput's option groups: every flat option belongs to one group with the same
default, and each group checks its own options (the error names the flag)."""

import dataclasses

import pytest

from starmix.workflows.cluster.inputs import GROUPS, ClusterInput, Cuts, StarSource


def test_every_option_is_in_exactly_one_group_with_the_same_default():
    flat = {f.name: f.default for f in dataclasses.fields(ClusterInput) if f.name != "model"}
    grouped = [(f.name, f.default) for group in GROUPS.values()
               for f in dataclasses.fields(group)]
    assert sorted(name for name, _ in grouped) == sorted(flat)
    assert {name: default for name, default in grouped} == flat


def test_the_groups_hold_the_flat_values():
    inputs = ClusterInput(model="pmplx", data="stars.csv", g_max=18.0, max_stars=500,
                          field_components=3, detection_method="nuts")
    assert inputs.source == StarSource(data="stars.csv")
    assert inputs.cuts == Cuts(g_max=18.0, max_stars=500)
    assert inputs.cuts.quality_cuts().g_max == 18.0
    assert inputs.shape.field_components == inputs.field_components == "3"
    assert inputs.detect.detection_method == "nuts"
    assert inputs.target.cluster is None


@pytest.mark.parametrize("group, options, flag", [
    (Cuts, {"ruwe_max": 0.0}, "--ruwe-max"),
    (Cuts, {"max_stars": 3}, "--max-stars"),
    (StarSource, {"n_field": 0}, "--n-field"),
    (StarSource, {"error_model": "dr1"}, "--error-model"),
])
def test_each_group_checks_its_own_options(group, options, flag):
    with pytest.raises(ValueError, match=flag):
        group(**options)
    with pytest.raises(ValueError, match=flag):  # and so does the flat form, by the group
        ClusterInput(**options)
