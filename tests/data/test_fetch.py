"""fetch-gaia without a network: the query text, the file written, the offline message."""

import socket

import astropy.units as u
import numpy as np
import pytest

from starmix.data.clusters import cluster_reference
from starmix.data.fetch import cone_query, fetch_gaia_cone
from starmix.data.gaia import ARCHIVE_COLUMNS, load_gaia
from starmix.workflows.cli import main
from tests.conftest import make_field


class FakeTap:
    """Stands in for astroquery's Gaia TAP client; records the query it is given."""

    def __init__(self, table):
        self.table, self.queries = table, []

    def launch_job_async(self, query):
        self.queries.append(query)
        return self

    def get_results(self):
        return self.table


def test_query_text():
    query = cone_query(cluster_reference("NGC6819").center, 20 * u.arcmin)
    assert query.startswith("SELECT source_id, ra, dec, parallax")
    assert all(column in query for column in ARCHIVE_COLUMNS)
    assert "FROM gaiadr3.gaia_source" in query
    assert "CIRCLE('ICRS', 295.327000, 40.190000, 0.333333)" in query


def test_fetch_writes_a_file_the_loader_reads(tmp_path):
    table = make_field(n_cluster=5, n_field=5)[list(ARCHIVE_COLUMNS)]
    tap = FakeTap(table)
    path = fetch_gaia_cone(cluster_reference("NGC6819").center, 20 * u.arcmin,
                           tmp_path / "cone.fits.gz", tap=tap)
    assert len(tap.queries) == 1
    loaded = load_gaia(path).data
    np.testing.assert_array_equal(loaded["source_id"], table["source_id"])


def test_offline_fails_fast_with_a_clear_message(tmp_path, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    code = main(["fetch-gaia", "NGC6819", "--radius", "20arcmin",
                 "--out", str(tmp_path / "x.fits.gz")])
    assert code == 1
    assert "cannot reach the Gaia archive" in capsys.readouterr().err
    assert not (tmp_path / "x.fits.gz").exists()


def test_bad_radius(tmp_path, capsys):
    assert main(["fetch-gaia", "NGC6819", "--radius", "20kg", "--out", str(tmp_path / "x")]) == 1
    assert "positive angle" in capsys.readouterr().err


@pytest.mark.smoke
def test_simulate_command(tmp_path, capsys):
    out = tmp_path / "field.fits.gz"
    assert main(["simulate", "ngc6819", "--out", str(out), "--n-cluster", "50",
                 "--n-field", "150", "--seed", "5"]) == 0
    assert "200 simulated stars (50 members" in capsys.readouterr().out
    assert len(load_gaia(out).data) == 200
