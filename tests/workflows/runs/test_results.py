import json
from pathlib import Path

import pytest
from astropy import units as u
from astropy.table import Table

from starmix.workflows.runs.files import atomic_path, write_json, write_table


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "table.ecsv"
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_failed_rewrite_keeps_the_old_file(tmp_path):
    target = write_json(tmp_path / "record.json", {"n": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("{broken")
        raise RuntimeError
    assert json.loads(target.read_text()) == {"n": 1}


def test_tables_keep_units(tmp_path):
    table = Table({"pmra": [1.0, 2.0] * u.mas / u.yr})
    path = write_table(tmp_path / "t.ecsv", table)
    assert Table.read(path)["pmra"].unit == u.mas / u.yr


def test_json_holds_numpy_values_and_paths_exactly(tmp_path):
    import numpy as np

    payload = {"n": np.int64(3), "x": np.float32(0.5), "v": np.arange(3), "p": tmp_path,
               "m": np.array([[1.5, 2.0]])}
    path = write_json(tmp_path / "r.json", payload)
    text = path.read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "n": 3,')  # indented, one newline
    assert json.loads(text) == {"n": 3, "x": 0.5, "v": [0, 1, 2], "p": str(tmp_path),
                                "m": [[1.5, 2.0]]}
    with pytest.raises(TypeError, match="cannot write set to JSON"):
        write_json(tmp_path / "bad.json", {"s": {1, 2}})
    assert not (tmp_path / "bad.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_write_text_and_figure_go_through_a_temporary_file(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import os

    import matplotlib.pyplot as plt
    from PIL import Image

    seen = []
    real_replace = os.replace

    def spy(source, target):
        seen.append((Path(source).name, Path(target).name))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    from starmix.workflows.runs.files import save_figure, write_text

    assert write_text(tmp_path / "a.md", "hello").read_text() == "hello"
    figure, axis = plt.subplots(figsize=(2, 1))
    axis.plot([0, 1])
    png = save_figure(tmp_path / "f.png", figure)
    plt.close(figure)
    assert [target for _, target in seen] == ["a.md", "f.png"]
    assert all(source.startswith(f".{Path(target).stem}.partial-") for source, target in seen)
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.info["dpi"] == pytest.approx((120, 120), abs=0.1)


def test_posterior_round_trips_as_netcdf4(tmp_path):
    import numpy as np
    import xarray as xr

    from starmix.workflows.runs.files import write_posterior

    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(
        {"a": (("chain", "draw"), np.arange(6.0).reshape(2, 3))})})
    path = write_posterior(tmp_path / "posterior.nc", tree)
    assert path.read_bytes()[:4] == b"\x89HDF"  # netCDF-4 (HDF5), written by h5netcdf
    with xr.open_datatree(path) as back:
        np.testing.assert_array_equal(back["posterior"]["a"].values, tree["posterior"]["a"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posterior.nc"]
