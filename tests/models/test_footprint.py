"""The joint model's footprint is the data's cone, not a disc around --center."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from pytensor.graph.traversal import ancestors

from starmix.data.footprint import estimated_footprint, table_footprint
from tests.conftest import make_field


def test_simulated_field_records_its_cone():
    table = make_field(n_cluster=50, n_field=200)
    cone = table_footprint(table)
    assert (cone.ra, cone.dec, cone.radius_arcmin) == pytest.approx((295.327, 40.19, 20.0))
    assert cone.origin == "recorded in the table's metadata"


def test_given_footprint_wins_and_is_checked():
    table = make_field(n_cluster=50, n_field=200)
    assert table_footprint(table, (295.0, 40.0, 30.0)).origin == "given by --footprint"
    with pytest.raises(ValueError, match="--footprint"):
        table_footprint(table, (295.0, 40.0, -1.0))


def test_estimated_cone_holds_every_star_and_is_near_the_true_one():
    rng = np.random.default_rng(0)
    centre = SkyCoord(120 * u.deg, 30 * u.deg)
    stars = centre.directional_offset_by(rng.uniform(0, 360, 4000) * u.deg,
                                         20 * np.sqrt(rng.random(4000)) * u.arcmin)
    table = Table({"ra": stars.ra.deg, "dec": stars.dec.deg})
    cone = estimated_footprint(table)
    assert cone.center.separation(centre).to_value(u.arcmin) < 0.5
    assert 19.5 < cone.radius_arcmin < 21.0
    assert stars.separation(cone.center).to_value(u.arcmin).max() <= cone.radius_arcmin


def test_radius_cut_must_lie_inside_the_cone():
    table = make_field(n_cluster=50, n_field=200)
    inside = SkyCoord(295.327 * u.deg, 40.19 * u.deg)
    assert table_footprint(table, None, inside, 10.0).radius_arcmin == 10.0
    off = inside.directional_offset_by(0 * u.deg, 15 * u.arcmin)
    with pytest.raises(ValueError, match="reaches outside"):
        table_footprint(table, None, off, 10.0)


def test_joint_plane_is_centred_on_the_cone_and_prior_on_the_cluster():
    from starmix.models.cluster_joint import from_table

    table = make_field(n_cluster=50, n_field=200)
    off_centre = SkyCoord(295.327 * u.deg, 40.19 * u.deg).directional_offset_by(
        90 * u.deg, 8 * u.arcmin)
    model = from_table(table, {"pmra": -2.9, "pmdec": -3.9, "parallax": 0.36},
                       center=off_centre, footprint=table_footprint(table))
    values = {var.name: var.get_value() for var in ancestors(model.free_RVs)
              if getattr(var, "name", None) and hasattr(var, "get_value")}
    assert float(values["selection_radius"]) == pytest.approx(20.0)
    assert values["cluster_offset_prior_center"] == pytest.approx([8.0, 0.0], abs=0.05)
