"""Real Gaia files from ../shared/data (skipped with a reason when absent)."""

import numpy as np

from starmix.data.gaia import ARCHIVE_COLUMNS, load_gaia, validate_gaia
from tests.conftest import shared_file


def test_m67_and_ngc188_fields_load_through_the_column_mapping():
    for name, rows in [("m67_gaiadr3_field.csv.gz", 46_175),
                       ("ngc188_gaiadr3_field.csv.gz", 199_653)]:
        data = load_gaia(shared_file(name)).data
        assert len(data) == rows
        assert {"parallax", "pmra", "pmdec", "phot_g_mean_mag", "bp_rp"} <= set(data.colnames)
        kept, dropped = validate_gaia(data, ["parallax", "pmra", "pmdec"], drop_invalid=True)
        assert 0 < dropped["total"] < 0.02 * rows  # the README's ~1% NaN astrometry


def test_m67_field_contains_the_cluster():
    data = load_gaia(shared_file("m67_gaiadr3_field.csv.gz")).data
    near = (np.abs(data["pmra"] + 10.986) < 0.5) & (np.abs(data["pmdec"] + 2.964) < 0.5)
    assert 1.10 < np.nanmedian(data["parallax"][near]) < 1.17


def test_edr3_cone_has_the_full_schema_and_passes_validation():
    data = load_gaia(shared_file("edr3_field_ra345.67_dec59.56.csv")).data
    required = [name for name in ARCHIVE_COLUMNS if name != "ruwe"]
    kept, dropped = validate_gaia(data, required)
    assert len(kept) == 11_980 and dropped == {}
    assert data["pmra_error"].unit == "mas / yr"
