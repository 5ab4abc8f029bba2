"""``starmix search``: the simulated sky, HEALPix patches with margins, candidates found
once, the table source's cones, and a whole search (across RA 0) verified by the joint
model on a real Dask cluster, resumed, and refused with other settings."""

import json
from dataclasses import asdict
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack

from starmix.data.cluster_field import simulate_cluster_field
from starmix.data.sky import SkyRegion, parse_region, simulate_sky
from starmix.data.survey_catalogue import SurveyTarget
from starmix.data.survey_sources import TableSource, gaia_source
from starmix.workflows.cli import main
from starmix.workflows.runs.options import GateThresholds, SamplingOptions
from starmix.workflows.search.candidates import find_candidates, healpix_pixels
from starmix.workflows.search.run import SearchOptions, run_search
from starmix.workflows.survey.run import Execution

SHORT = SamplingOptions(draws=150, tune=150, chains=2, seed=3)
LENIENT = GateThresholds(r_hat_max=1.2, ess_bulk_min=20, ess_tail_min=20, divergences_max=5)


def separation_deg(table, region: SkyRegion) -> np.ndarray:
    return SkyCoord(np.asarray(table["ra"], float) * u.deg,
                    np.asarray(table["dec"], float) * u.deg).separation(region.center).deg


def test_simulated_sky_lies_in_its_cone_across_ra_zero_and_repeats_with_its_seed():
    region = parse_region("cone 0.2 -30 1.0")
    stars, truth = simulate_sky(region, (100, 200), field_density=0.2, seed=5)
    assert separation_deg(stars, region).max() <= 1.0
    ra = np.asarray(stars["ra"], float)
    assert (ra > 359).any() and (ra < 1).any()  # both sides of RA 0, on the sphere
    assert len(np.unique(stars["source_id"])) == len(stars)
    assert list(truth["n_members"]) == [100, 200]
    for row in truth:
        members = stars[stars["cluster"] == row["name"]]
        assert 0.9 * row["n_members"] <= len(members) <= row["n_members"]  # cut by the cone
        assert np.median(np.asarray(members["pmra"], float)) == pytest.approx(row["pmra"],
                                                                               abs=0.3)
    again, _ = simulate_sky(region, (100, 200), field_density=0.2, seed=5)
    assert np.array_equal(np.asarray(again["pmra"]), np.asarray(stars["pmra"]))
    other, _ = simulate_sky(region, (100, 200), field_density=0.2, seed=6)
    assert not np.array_equal(np.asarray(other["ra"])[:50], np.asarray(stars["ra"])[:50])


def test_each_rich_cluster_is_one_candidate():
    region = parse_region("cone 120 40 1.0")
    stars, truth = simulate_sky(region, (200, 400), field_density=0.3, seed=8)
    candidates = find_candidates(stars)
    at = SkyCoord(np.asarray(candidates["ra"]) * u.deg, np.asarray(candidates["dec"]) * u.deg)
    for row in truth:
        near = (at.separation(SkyCoord(row["ra"] * u.deg, row["dec"] * u.deg)).arcmin < 5) & (
            np.hypot(candidates["pmra"] - row["pmra"], candidates["pmdec"] - row["pmdec"]) < 0.5)
        assert near.sum() == 1, (row["name"], candidates)


def test_a_cluster_on_the_corner_of_four_patches_is_found_once():
    """Its centre on a HEALPix vertex: its stars fall in several pixels, each patch sees it
    whole through its margin, and only the pixel holding its centre keeps it."""
    import cdshealpix

    order = 6
    pixel = int(healpix_pixels([200.0], [10.0], order)[0])
    lon, lat = cdshealpix.nested.vertices(np.array([pixel]), order)
    corner = SkyCoord(lon[0][0], lat[0][0])
    field = simulate_cluster_field("ngc6819", seed=1, n_cluster=0, n_field=3000,
                                   center_ra=float(corner.ra.deg),
                                   center_dec=float(corner.dec.deg), radius_arcmin=60)
    cluster = simulate_cluster_field(
        "ngc6819", seed=2, n_cluster=300, n_field=0, center_ra=float(corner.ra.deg),
        center_dec=float(corner.dec.deg), radius_arcmin=30, plummer_radius_arcmin=4,
        cluster_parallax=0.8, cluster_pmra=-3.0, cluster_pmdec=-5.0)
    for table in (field, cluster):
        table.meta.clear()
    stars = vstack([field, cluster])
    held = healpix_pixels(cluster["ra"], cluster["dec"], order)
    assert len(np.unique(held)) >= 3  # its members really are split between pixels
    candidates = find_candidates(stars, order=order, margin_arcmin=30)
    near = np.hypot(candidates["pmra"] + 3.0, candidates["pmdec"] + 5.0) < 0.5
    assert near.sum() == 1, candidates
    assert SkyCoord(candidates["ra"][near][0] * u.deg, candidates["dec"][near][0] * u.deg
                    ).separation(corner).arcmin < 3


def test_a_table_source_cuts_each_cone_on_the_sphere(tmp_path):
    region = parse_region("cone 359.8 10 0.8")
    stars, _ = simulate_sky(region, (), field_density=0.3, seed=2)
    path = tmp_path / "stars.parquet"
    stars.write(path)
    source = gaia_source(str(path))
    assert isinstance(source, TableSource)
    target = SurveyTarget(0, "X", "X", 0.05, 10.1, 20.0, "given")  # across RA 0
    cone, provenance = source.field(target)
    offsets = SkyCoord(np.asarray(cone["ra"]) * u.deg, np.asarray(cone["dec"]) * u.deg
                       ).separation(SkyCoord(0.05 * u.deg, 10.1 * u.deg)).arcmin
    assert offsets.max() <= 20.0 and len(cone) == provenance["rows"] > 100
    assert (cone.meta["FOOTRA"], cone.meta["FOOTDEC"], cone.meta["FOOTRAD"]) == pytest.approx(
        (0.05, 10.1, 20.0))
    (tmp_path / "notes.txt").write_text("not a table")
    with pytest.raises(ValueError, match="not a Gaia table"):
        gaia_source(str(tmp_path / "notes.txt"))


@pytest.mark.parametrize("options, message", [
    ({"region": "cone 10 95 1"}, "Dec within"),
    ({"region": "box 1 2 3"}, "cone RA DEC RADIUS"),
    ({"region": "box 10 20 -5 x"}, "Dec must be a number"),
    ({"region": "box 0 40 -20 20"}, "fit in a cone of 15"),
    ({"region": "box galactic 10 20 -95 5"}, "b must rise within"),
    ({"region": "cone 10 20 30"}, "at most 15 deg"),
    ({"region": "cone galactic 10 95 1"}, "b within"),
    ({"order": 2}, "--order"),
    ({"selection": "dbscan"}, "--selection"),
    ({"sim_richness": (100, 0)}, "--sim-richness"),
    ({"inject_richness": (0,), "gaia": "."}, "--inject-richness"),
])
def test_search_options_name_what_is_wrong(options, message):
    with pytest.raises(ValueError, match=message):
        SearchOptions(**options)


def test_a_galactic_cone_is_the_same_cone_in_icrs():
    region = parse_region("cone galactic 0 0 1.5")
    centre = SkyCoord(l=0 * u.deg, b=0 * u.deg, frame="galactic")
    assert region.center.separation(centre).arcsec < 1e-6
    assert (region.ra, region.dec) == pytest.approx((266.405, -28.936), abs=1e-3)
    assert region.radius == 1.5 and region.frame == "galactic"
    assert region.describe() == "cone (l, b) = (0, 0), 1.5 deg"
    assert parse_region("galactic 0 0 1.5") == region
    stars, _ = simulate_sky(region, (100,), field_density=0.05, seed=1)
    at = SkyCoord(np.asarray(stars["ra"]) * u.deg, np.asarray(stars["dec"]) * u.deg)
    assert np.all(at.separation(centre).deg <= 1.5)


BOXES = ["box 350 10 -5 5", "box galactic 120 135 60 75", "box 0 360 82 90",
         "box 200 260 -89 -84"]


def brute_edge_distance_arcmin(region, at: SkyCoord) -> np.ndarray:
    """The distance to the nearest of 4,001 points per edge of the region's outline."""
    lines = region.outline(4001)
    edge = SkyCoord(np.concatenate([line.ra.deg for line in lines]) * u.deg,
                    np.concatenate([line.dec.deg for line in lines]) * u.deg)
    return np.array([edge.separation(point).arcmin.min() for point in at])


@pytest.mark.parametrize("text", BOXES)
def test_a_box_knows_its_area_its_stars_and_their_distance_to_its_edges(text):
    """Across RA 0, in galactic coordinates, a polar cap and a box beside the south pole:
    the area is the fraction of uniform points on the sphere it holds, every point of the
    box lies in the cone that holds it, and the distance to the edges (negative outside)
    is the brute-force distance to the outline."""
    region = parse_region(text)
    rng = np.random.default_rng(0)
    n = 400_000
    sphere = SkyCoord(rng.uniform(0, 360, n) * u.deg,
                      np.degrees(np.arcsin(rng.uniform(-1, 1, n))) * u.deg)
    inside = region.contains(sphere)
    expected = region.area / (4 * np.pi * (180 / np.pi) ** 2) * n
    assert abs(inside.sum() - expected) < 4 * np.sqrt(expected), (inside.sum(), expected)
    assert sphere[inside].separation(region.center).deg.max() <= region.radius
    near = sphere[sphere.separation(region.center).deg <= region.radius + 2][:300]
    distance = region.edge_distance_arcmin(near)
    assert np.all((distance >= 0) == region.contains(near))
    assert np.abs(np.abs(distance) - brute_edge_distance_arcmin(region, near)).max() < 0.2


def test_boxes_parse_describe_and_simulate_on_the_sphere():
    box = parse_region("box 350 10 -5 5")
    assert (box.lon_min, box.width, box.frame) == (350, 20, "icrs")
    assert box.describe() == "box RA 350 to 10, Dec -5 to 5 deg"
    assert box.area == pytest.approx(20 * 10 * np.cos(np.radians(2.5)) ** 1, rel=0.01)
    assert (box.ra % 360, box.dec) == pytest.approx((0, 0), abs=1e-6)
    assert parse_region("box galactic 120 135 75 60").describe() == \
        "box l 120 to 135, b 60 to 75 deg"
    cap = parse_region("box 0 360 82 90")
    assert cap.center.dec.deg == pytest.approx(90, abs=1e-6)
    assert cap.radius == pytest.approx(8, abs=0.01)
    assert cap.describe() == "box RA 0 to 360, Dec 82 to 90 deg"
    stars, truth = simulate_sky(parse_region("box galactic 100 104 -3 3"), (100, 200), (1.0,),
                                field_density=0.2, seed=5, sizes_pc=(1.0, 3.0))
    assert list(truth["plummer_pc"]) == [1.0, 3.0]
    assert truth["plummer_arcmin"][1] == pytest.approx(3 * truth["plummer_arcmin"][0])
    at = SkyCoord(np.asarray(stars["ra"]) * u.deg, np.asarray(stars["dec"]) * u.deg)
    region = parse_region("box galactic 100 104 -3 3")
    assert region.contains(at).all()
    assert len(stars) == pytest.approx(0.2 * region.area * 3600 + 0.9 * 300, rel=0.1)
    centres = SkyCoord(np.asarray(truth["ra"]) * u.deg, np.asarray(truth["dec"]) * u.deg)
    assert np.all(region.edge_distance_arcmin(centres) >= 20 - 1e-6)
    lon, lat = at.galactic.l.deg, at.galactic.b.deg
    assert (lon.min(), lon.max(), lat.min(), lat.max()) == pytest.approx((100, 104, -3, 3),
                                                                          abs=0.02)


def test_a_table_is_cut_to_a_box_and_the_cones_kept_inside_it(tmp_path):
    """A Gaia table through the search's first steps with a box: the stars outside the
    box are counted, not kept; each candidate's verification cone ends at the box's
    nearest edge."""
    from starmix.workflows.search.run import candidate_cones, region_stars

    stars, _ = simulate_sky(parse_region("cone 0 0 2"), (300,), field_density=0.2, seed=2)
    path = tmp_path / "stars.ecsv"
    stars.write(path)
    options = SearchOptions(region="box 359 1.5 -1 1.2", gaia=str(path))
    region = parse_region(options.region)
    kept, truth = region_stars(options, region)
    at = SkyCoord(np.asarray(stars["ra"]) * u.deg, np.asarray(stars["dec"]) * u.deg)
    assert truth is None and len(kept) == region.contains(at).sum()
    assert kept.meta["outside_region"] == len(stars) - len(kept) > 0
    candidates = Table({"candidate": ["a", "b"], "ra": [0.0, 1.4], "dec": [0.0, 0.5],
                        "parallax": [1.0, 1.0], "r50_arcmin": [30.0, 30.0]})
    cones = candidate_cones(candidates, region)
    assert list(cones["radius_arcmin"]) == pytest.approx([60.0, 6.0], abs=0.01)


def test_clusters_injected_into_real_stars_take_donors_errors_and_leave_the_field_alone(
        tmp_path):
    """``--inject-richness`` on a table: the field's rows unchanged, each cluster's members
    inside the region and the field's G range (counted in ``n_injected``), centred on its
    planned motion, with the errors of field stars of nearly their G, recomputed (l, b)
    and masked derived columns; the same seed gives the same stars."""
    from starmix.data.sky import INJECTED_ID_BASE, inject_clusters
    from starmix.workflows.search.run import region_stars

    field, _ = simulate_sky(parse_region("cone 30 -40 1.5"), (), field_density=0.3, seed=4)
    field = field[np.asarray(field["phot_g_mean_mag"]) <= 18]  # a G <= 18 field, as DR2's
    at = SkyCoord(np.asarray(field["ra"]) * u.deg, np.asarray(field["dec"]) * u.deg)
    field["l"], field["b"] = at.galactic.l.deg, at.galactic.b.deg
    field["r_est"] = 1000 / np.abs(np.asarray(field["parallax"], float))
    for name in ("cluster", "is_member"):
        field.remove_column(name)
    path = tmp_path / "field.ecsv"
    field.write(path)
    options = SearchOptions(region="cone 30 -40 1.4", gaia=str(path),
                            inject_richness=(100, 300), sim_seed=9)
    region = parse_region(options.region)
    stars, truth = region_stars(options, region)
    real = ~np.asarray(stars["is_member"])
    inside = region.contains(at)
    assert np.array_equal(np.asarray(stars["source_id"])[real],
                          np.asarray(field["source_id"])[inside])
    assert stars.meta["outside_region"] == int((~inside).sum())
    assert stars.meta["field_density"] == pytest.approx(inside.sum() / (region.area * 3600))
    g_max = float(np.max(field["phot_g_mean_mag"]))
    for row in truth:
        members = stars[np.asarray(stars["cluster"]) == row["name"]]
        assert len(members) == row["n_injected"] and 0.2 * row["n_members"] < len(members) \
            < row["n_members"]  # G <= 18 of G = 12-20
        assert np.all(np.asarray(members["source_id"]) >= INJECTED_ID_BASE)
        assert np.asarray(members["phot_g_mean_mag"]).max() <= g_max
        assert np.median(np.asarray(members["pmra"])) == pytest.approx(row["pmra"], abs=0.1)
        assert set(np.asarray(members["pmra_error"])) <= set(np.asarray(field["pmra_error"]))
        here = SkyCoord(np.asarray(members["ra"]) * u.deg, np.asarray(members["dec"]) * u.deg)
        assert region.contains(here).all()
        assert np.allclose(members["b"], here.galactic.b.deg)
        assert members["r_est"].mask.all() and not stars["r_est"][real].mask.any()
    again, _ = region_stars(options, region)
    assert np.array_equal(np.asarray(again["pmra"]), np.asarray(stars["pmra"]))
    with pytest.raises(ValueError, match="--inject-richness"):
        SearchOptions(inject_richness=(50,))
    assert len(inject_clusters(field, region, (), seed=1)[1]) == 0


def test_a_found_cluster_the_catalogue_names_is_not_false():
    from starmix.workflows.search.run import score_truth

    truth = Table({"name": ["SIM-001"], "ra": [10.0], "dec": [-30.0], "pmra": [1.0],
                   "pmdec": [2.0], "parallax": [1.0], "n_members": [50]})
    clusters = Table({"cluster": ["SMX-001", "SMX-002", "SMX-003"], "ra": [10.0, 11.0, 12.0],
                      "dec": [-30.0, -30.0, -30.0], "pmra": [1.1, 18.7, 5.0],
                      "pmdec": [2.0, 2.6, 5.0], "parallax": [1.0, 4.2, 2.0],
                      "catalogue": ["new", "known (Blanco_1)", "new"]})
    scored = score_truth(truth, clusters)
    assert list(truth["found_as"]) == ["SMX-001"]
    assert scored["false_detections"] == ["SMX-003"]
    assert scored["known_found"] == ["SMX-002 known (Blanco_1)"]


def test_a_hats_sky_of_many_partitions_gives_the_tables_stars_and_candidates(tmp_path):
    """A simulated sky across RA 0 imported as a HATS catalogue of many partitions
    (hats-import, at most 600 stars each): the search's LSDB route reads a box through it
    and gets the very stars, and so the very candidates, of the table route."""
    import hats
    from distributed import Client
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    from starmix.workflows.search.run import region_stars

    stars, _ = simulate_sky(parse_region("cone 0.1 0 1.8"), (300,), field_density=0.3,
                            seed=3)
    stars.meta = {}
    (tmp_path / "input").mkdir()
    stars.to_pandas().to_parquet(tmp_path / "input" / "sky.parquet")
    stars.write(tmp_path / "sky.ecsv")
    arguments = ImportArguments(input_path=tmp_path / "input", file_reader="parquet",
                                output_path=tmp_path, output_artifact_name="gaia",
                                ra_column="ra", dec_column="dec", pixel_threshold=600,
                                progress_bar=False, tmp_dir=tmp_path / "tmp", resume=False)
    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=":0") as local:
        pipeline_with_client(arguments, local)
    partitions = hats.read_hats(tmp_path / "gaia").get_healpix_pixels()
    assert len(partitions) >= 15
    region_text = "box 358.8 1.3 -1.2 1.1"
    region = parse_region(region_text)
    through_hats, _ = region_stars(SearchOptions(region=region_text,
                                                 gaia=str(tmp_path / "gaia")), region)
    through_table, _ = region_stars(SearchOptions(region=region_text,
                                                  gaia=str(tmp_path / "sky.ecsv")), region)
    assert 0 < len(through_hats) < len(stars)
    assert sorted(through_hats["source_id"]) == sorted(through_table["source_id"])
    through_hats.sort("source_id")
    through_table.sort("source_id")
    a, b = find_candidates(through_hats), find_candidates(through_table)
    assert len(a) >= 1 and np.allclose(np.asarray(a["pmra"]), np.asarray(b["pmra"]))


def test_a_real_cluster_carries_gaia_systematics_beside_its_statistical_errors():
    from starmix.workflows.search.run import cluster_table

    row = {"name": "C001", "pmra": 18.7, "pmdec": 2.6, "parallax": 4.2, "radius_arcmin": 60.0,
           "pmra_error": 0.02, "pmdec_error": 0.03, "parallax_error": 0.004,
           "members_sum_p": 300.0}
    kept = [{"row": row, "centre": (0.9, -29.9), "plummer_arcmin": 40.0, "delta_elpd": 391.0,
             "delta_elpd_se": 33.0, "gate": "passed", "folder": "C001",
             "systematic": {"pmra": 0.026, "pmdec": 0.026, "parallax": 0.0103}}]
    real = cluster_table(kept, None)[0]
    assert (real["parallax_error"], real["parallax_systematic"]) == (0.004, 0.0103)
    assert real["pmra_systematic"] == 0.026 and str(real.table["parallax_systematic"].unit) \
        == "mas"
    assert cluster_table(kept, None, simulated=True)[0]["pmdec_systematic"] == 0.0


def test_a_found_cluster_is_scored_by_its_members_where_its_centre_drifts():
    """Two injected clusters 31' apart with nearly one motion, fitted as one cluster whose
    centre lies between them (more than 10' from each): its members are theirs, so both
    are recovered and it is listed as blended, not false; a cluster of field stars is
    false, one the catalogue names is known, and one at an injected cluster's place and
    motion recovers it by position even when most of its members are field stars."""
    from starmix.workflows.search.run import score_truth

    truth = Table({"name": ["SIM-001", "SIM-002", "SIM-003"], "ra": [0.0, 0.55, 5.0],
                   "dec": [-28.5, -28.35, -28.0], "pmra": [6.84, 7.28, 3.0],
                   "pmdec": [-6.46, -7.21, 1.0], "parallax": [1.0, 1.0, 0.5],
                   "n_members": [50, 50, 50]})
    clusters = Table({"cluster": ["SMX-001", "SMX-002", "SMX-003", "SMX-004"],
                      "ra": [0.3, 3.0, 0.9, 5.05], "dec": [-28.44, -29.0, -30.0, -28.1],
                      "pmra": [7.04, 2.0, 18.7, 3.1], "pmdec": [-6.87, 2.0, 2.6, 1.0],
                      "parallax": [0.99, 0.7, 4.2, 0.5],
                      "catalogue": ["new", "new", "known (Blanco_1)", "new"]})
    ids = np.arange(1000)
    stars = Table({"source_id": ids, "cluster": np.array(
        ["SIM-001"] * 18 + ["SIM-002"] * 25 + ["SIM-003"] * 20 + [""] * 937)})
    members = Table({"source_id": np.concatenate([ids[:17], ids[18:40], ids[100:130],
                                                  ids[300:310], ids[43:46], ids[500:520]]),
                     "cluster": ["SMX-001"] * 39 + ["SMX-002"] * 30 + ["SMX-003"] * 10
                     + ["SMX-004"] * 23})
    positional = score_truth(truth.copy(), clusters)
    assert positional["false_detections"] == ["SMX-001", "SMX-002"]  # the drifted centre
    scored = score_truth(truth, clusters, members, stars)
    assert list(truth["found_as"]) == ["SMX-001", "SMX-001", "SMX-004"]  # SMX-004 by place
    assert scored["false_detections"] == ["SMX-002"] and scored["blended"] == ["SMX-001"]
    assert scored["known_found"] == ["SMX-003 known (Blanco_1)"]


def test_sim_richness_with_no_numbers_searches_an_empty_sky(tmp_path, monkeypatch):
    """``--sim-richness`` alone: nothing injected (the selection function's false-positive
    searches); the options reach the search as an empty tuple."""
    import types

    import starmix.workflows.search.run as search_run

    seen = {}

    def fake(out, options, sampling, gate, execution):
        seen["options"] = options
        return types.SimpleNamespace(out_dir=Path(out), exit_code=0, record={})

    monkeypatch.setattr(search_run, "run_search", fake)
    assert main(["search", "cone 100 20 1", "--sim-richness", "--out",
                 str(tmp_path / "s")]) == 0
    assert seen["options"].sim_richness == ()
    stars, truth = simulate_sky(parse_region("cone 100 20 1"), (), field_density=0.3,
                                seed=1)
    assert len(truth) == 0 and set(stars["cluster"]) == {""}


def test_the_command_refuses_a_bad_region_in_one_line(tmp_path, capsys):
    assert main(["search", "cone 10 20", "--out", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert "REGION must be 'cone RA DEC RADIUS'" in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


@pytest.mark.workflow
def test_a_search_across_ra_zero_finds_the_injected_cluster_and_resumes(tmp_path):
    options = SearchOptions(region="cone 0.3 -30 0.6", sim_richness=(300,),
                            sim_field_density=0.3, sim_seed=4)
    out = tmp_path / "search"
    result = run_search(out, options, SHORT, LENIENT, Execution(workers=2))
    assert result.exit_code == 0
    truth = Table.read(out / "truth.ecsv", format="ascii.ecsv")
    assert list(truth["found_as"]) == ["SMX-001"]
    clusters = Table.read(out / "clusters.ecsv", format="ascii.ecsv")
    found = clusters[clusters["cluster"] == "SMX-001"][0]
    assert SkyCoord(found["ra"] * u.deg, found["dec"] * u.deg).separation(
        SkyCoord(truth["ra"][0] * u.deg, truth["dec"][0] * u.deg)).arcmin < 2
    assert abs(found["pmra"] - truth["pmra"][0]) < 0.1
    assert abs(found["parallax"] - truth["parallax"][0]) < 0.05
    assert found["delta_elpd"] > 10 and found["catalogue"] == "not cross-matched"
    assert found["parallax_error"] > 0 and found["parallax_systematic"] == 0  # simulated
    assert result.record["truth"]["false_detections"] == []
    members = Table.read(out / "members.parquet")
    mine = members[members["cluster"] == "SMX-001"]
    stars = Table.read(out / "stars.parquet")
    injected = set(np.asarray(stars["source_id"])[np.asarray(stars["cluster"]) != ""].tolist())
    assert len(mine) > 100
    assert len(injected & set(mine["source_id"].tolist())) / len(mine) > 0.8
    assert (out / "sky.png").stat().st_size > 10_000
    record = json.loads((out / "search_record.json").read_text())
    assert record["status"] == "complete" and record["candidates"]["n"] >= 1
    # a rerun reuses the stars, the candidates and every verified run
    again = run_search(out, options, SHORT, LENIENT, Execution(workers=2))
    assert again.record["wall_time_s"] < 30
    # ... and its record keeps the time the search took, not only the rerun's
    assert again.record["total_wall_time_s"] == pytest.approx(
        record["total_wall_time_s"] + again.record["wall_time_s"], abs=0.05)
    assert again.record["candidates"]["seconds"] == record["candidates"]["seconds"]
    assert list(again.clusters["cluster"]) == list(clusters["cluster"])
    with pytest.raises(ValueError, match="sim_seed"):
        run_search(out, SearchOptions(region="cone 0.3 -30 0.6", sim_richness=(300,),
                                      sim_field_density=0.3, sim_seed=5), SHORT, LENIENT)


def test_a_cluster_no_patch_owns_is_kept_once_and_a_lone_unowned_lump_is_not():
    """Views of one cluster from four patches whose centres each fall in another patch's
    pixel: one is kept (the most central); an owned view replaces its duplicates; a lump
    that only one patch labels, centred in another's pixel, stays out."""
    from starmix.workflows.search.candidates import one_view

    def view(patch, ra, owned, from_centre, pmra=5.0):
        return {"patch": patch, "ra": ra, "dec": -28.0, "pmra": pmra, "pmdec": -6.0,
                "parallax": 1.0, "r50_arcmin": 6.0, "owned": owned,
                "from_centre_arcmin": from_centre}

    corner = [view(p, 0.70 + 0.01 * i, False, 30.0 + i) for i, p in enumerate((1, 2, 3, 4))]
    kept = one_view(corner)
    assert len(kept) == 1 and kept[0]["patch"] == 1
    assert [v["patch"] for v in one_view([*corner, view(5, 0.72, True, 40.0)])] == [5]
    lone = [view(8, 3.0, False, 20.0, pmra=1.0)]
    assert one_view(lone) == []
    assert len(one_view(corner + lone)) == 1


def test_an_injected_cluster_on_a_pixel_corner_of_the_blanco1_field_is_proposed():
    """The case that found the bug: seed 4's 18-member cluster (75 over G = 12-20) on the
    corner of four HEALPix pixels of the real Blanco 1 field: each patch's view centred
    in another's pixel, so no patch owned it and it was never proposed."""
    from starmix.data.gaia import load_gaia
    from starmix.workflows.search.run import match_values, nearest_match, region_stars
    from tests.conftest import shared_file

    path = shared_file("blanco1_gaiadr2_field.csv.gz")
    options = SearchOptions(region="cone 0.875 -30.016 2.5", gaia=str(path), sim_seed=4,
                            inject_richness=(50,) * 4 + (75,) * 4 + (100,) * 4)
    assert load_gaia(path).data is not None
    stars, truth = region_stars(options, parse_region(options.region))
    row = truth[truth["name"] == "SIM-005"][0]
    assert (row["n_members"], row["n_injected"]) == (75, 18)
    candidates = find_candidates(stars)
    assert nearest_match(match_values(row), [match_values(c) for c in candidates]) is not None


def test_pieces_of_one_nearby_cluster_merge_and_different_motions_do_not():
    """HDBSCAN's leaf selection cuts a nearby cluster into pieces tens of arcmin apart:
    within 5 pc at their parallax and alike in motion and parallax they are one candidate
    (centred between them); a neighbour with another motion stays apart."""
    from starmix.workflows.search.candidates import merge

    def piece(ra, pmra, n, parallax=4.2):
        return {"ra": ra, "dec": -30.0, "pmra": pmra, "pmdec": 2.6, "parallax": parallax,
                "n_stars": n, "r50_arcmin": 6.0, "pm_sd": 0.3, "patch": 1}

    # at 4.2 mas (238 pc) 5 pc is 72': pieces 30' and 50' apart are one cluster
    merged = merge([piece(0.9, 18.6, 20), piece(1.4, 18.7, 10), piece(0.3, 18.6, 10),
                    piece(1.2, 16.0, 30)])
    assert len(merged) == 2
    one = next(c for c in merged if c.get("pieces") == 3)
    assert one["n_stars"] == 40 and abs(one["ra"] - 0.85) < 0.1
    assert one["r50_arcmin"] > 25  # it spans its pieces (the farthest lies 30' out)
    # at 0.4 mas (2.5 kpc) 5 pc is 7': the same separations are two clusters
    assert len(merge([piece(0.9, 18.6, 20, 0.4), piece(1.4, 18.7, 10, 0.4)])) == 2


def test_blanco1_is_one_candidate_with_a_cone_that_holds_it():
    """The real Blanco 1 DR2 field (2.5 deg, RA through 0), no name or centre given:
    HDBSCAN cuts the cluster into pieces; they merge into one candidate near CG20's values,
    and its verification cone (10 pc at 240 pc) holds the whole cluster. (The verified
    search, 94 s, is in docs/search.md; the joint model's verdict on this field is tested
    in tests/workflows/cluster.)"""
    from starmix.data.sky import parse_region
    from starmix.workflows.search.run import SearchOptions, candidate_cones, region_stars
    from tests.conftest import shared_file

    path = shared_file("blanco1_gaiadr2_field.csv.gz")
    options = SearchOptions(region="cone 0.875 -30.016 2.5", gaia=str(path))
    region = parse_region(options.region)
    stars, truth = region_stars(options, region)
    assert truth is None and len(stars) == 14_707 and stars.meta["outside_region"] == 78
    cones = candidate_cones(find_candidates(stars), region)
    blanco1 = (np.hypot(cones["pmra"] - 18.7, cones["pmdec"] - 2.6) < 0.5) & (
        np.abs(cones["parallax"] - 4.2) < 0.2)
    assert blanco1.sum() == 1, cones
    cone = cones[blanco1][0]
    assert cone["pieces"] >= 2 and cone["radius_arcmin"] > 100
    assert SkyCoord(cone["ra"] * u.deg, cone["dec"] * u.deg).separation(
        SkyCoord(0.853 * u.deg, -29.958 * u.deg)).arcmin < 40  # its Plummer radius: 47'


def test_an_earlier_search_without_a_newer_option_at_its_default_is_the_same_search():
    from starmix.workflows.search.run import changed_settings

    settings = {**asdict(SearchOptions()), "sampling": {"draws": 500}}
    earlier = {k: v for k, v in json.loads(json.dumps(settings)).items()
               if k != "inject_richness"}
    assert changed_settings(earlier, settings) == []
    assert changed_settings(earlier, {**settings, "inject_richness": (50,)}) == [
        "inject_richness"]
    assert changed_settings(earlier, {**settings, "sim_seed": 7}) == ["sim_seed"]


def test_a_search_folder_with_foreign_files_or_links_is_refused(tmp_path):
    """A rerun writes only into an earlier search's folder: a file no search writes, or a
    planted link in place of one of its files, is an error naming it, and nothing is
    touched."""
    from starmix.workflows.search.run import SEARCH_RECORD

    out = tmp_path / "s"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="no search_record.json"):
        run_search(out, SearchOptions())
    (out / SEARCH_RECORD).write_text("{}")
    with pytest.raises(ValueError, match=r"1 entry that no search wrote \(notes.txt\)"):
        run_search(out, SearchOptions())
    (out / "notes.txt").unlink()
    (out / "stars.parquet").symlink_to(tmp_path / "elsewhere.parquet")
    with pytest.raises(ValueError, match="stars.parquet"):
        run_search(out, SearchOptions())
    assert (out / SEARCH_RECORD).read_text() == "{}"


def test_a_small_distant_cluster_blended_with_field_stars_is_described_by_its_core():
    """The bench's sparse sky (seed 42): its 100-member cluster at 0.4 mas comes out of
    HDBSCAN as ~160 stars whose median parallax (0.26 mas) made it look 10.5 pc wide, past
    the compactness cut; its core is the cluster."""
    region = parse_region("cone 280 -10 2.83")
    stars, truth = simulate_sky(region, (25, 25, 50, 50, 100, 100, 200, 200, 500, 1000),
                                field_density=0.3, seed=42)
    row = truth[truth["name"] == "SIM-006"][0]
    assert (row["n_members"], row["parallax"]) == (100, 0.4)
    near = SkyCoord(np.asarray(stars["ra"]) * u.deg, np.asarray(stars["dec"]) * u.deg
                    ).separation(SkyCoord(row["ra"] * u.deg, row["dec"] * u.deg)).deg < 1.0
    candidates = find_candidates(stars[near])
    hit = [c for c in candidates
           if np.hypot(c["pmra"] - row["pmra"], c["pmdec"] - row["pmdec"]) < 0.5]
    assert len(hit) == 1, candidates
    assert hit[0]["parallax"] == pytest.approx(0.4, abs=0.05)
