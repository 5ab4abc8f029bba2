import json

import pytest
from astropy import units as u
from astropy.table import Table

from workflows.results import atomic_path, write_json, write_table


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
