"""Matching a published member list to a field table without ids (data/members.py)."""

import numpy as np
import pytest
from astropy.table import Table

from starmix.data.members import load_member_list, match_members


def test_members_match_their_nearest_field_star_once():
    rng = np.random.default_rng(0)
    field = Table({"phot_g_mean_mag": rng.uniform(10, 18, 500),
                   "pmra": rng.normal(0, 5, 500), "pmdec": rng.normal(0, 5, 500),
                   "parallax": rng.uniform(0, 2, 500)})
    pick = np.array([3, 10, 99, 250])
    members = Table({name: np.asarray(field[name])[pick] + rng.normal(0, 0.01, 4)
                     for name in field.colnames})
    members["PMemb"] = [1.0, 0.8, 0.6, 0.9]
    far = Table({"phot_g_mean_mag": [30.0], "pmra": [0.0], "pmdec": [0.0], "parallax": [1.0],
                 "PMemb": [1.0]})
    from astropy.table import vstack

    match = match_members(field, vstack([members, far]))
    assert list(match.field_index) == [*pick, -1]
    assert match.rate == pytest.approx(0.8)
    labels = match.labels(len(field), 0.7)
    assert set(np.flatnonzero(labels)) == {3, 10, 250}


def test_cg18_m67_members_match_the_dr3_field():
    from starmix.data.gaia import load_gaia
    from tests.conftest import shared_file

    field = load_gaia(shared_file("m67_gaiadr3_field.csv.gz")).data
    match = match_members(field, load_member_list(shared_file("m67_members_cg18.csv")))
    assert match.rate > 0.95  # measured 0.976
    assert len(set(match.field_index[match.field_index >= 0])) == (match.field_index >= 0).sum()
