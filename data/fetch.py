"""Fetch a Gaia DR3 cone around a cluster from the ESA archive (astroquery's TAP client).

Only :func:`fetch_gaia_cone` touches the network; the query text is built by
:func:`cone_query` and can be checked offline.
"""

import socket
from pathlib import Path

import astropy.units as u
from astropy.coordinates import SkyCoord

from starmix.data.footprint import footprint_meta
from starmix.data.gaia import ARCHIVE_COLUMNS

GAIA_ARCHIVE_HOST = ("gea.esac.esa.int", 443)


def cone_query(center: SkyCoord, radius: u.Quantity, table: str = "gaiadr3.gaia_source") -> str:
    """ADQL for every archive column of the stars within ``radius`` of ``center``."""
    ra, dec, radius_deg = center.ra.deg, center.dec.deg, radius.to_value(u.deg)
    return (
        f"SELECT {', '.join(ARCHIVE_COLUMNS)}\n"
        f"FROM {table}\n"
        f"WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
        f"CIRCLE('ICRS', {ra:.6f}, {dec:.6f}, {radius_deg:.6f}))"
    )


def check_network(address=GAIA_ARCHIVE_HOST, timeout: float = 5.0) -> None:
    """Fail fast, with a clear message, when the Gaia archive cannot be reached."""
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as err:
        raise ConnectionError(
            f"cannot reach the Gaia archive at {address[0]} ({err}). fetch-gaia needs a "
            "network; run it where there is one, or use 'starmix simulate' or --data FILE."
        ) from None


def fetch_gaia_cone(center: SkyCoord, radius: u.Quantity, out: str | Path, tap=None) -> Path:
    """Run the cone query and write the result as FITS (``.fits.gz`` compressed).

    ``tap`` is an object with ``launch_job_async(query)`` (astroquery's ``Gaia`` by
    default); tests pass a fake one.
    """
    from starmix.data.files import atomic_path

    if tap is None:
        check_network()
        from astroquery.gaia import Gaia as tap
    job = tap.launch_job_async(cone_query(center, radius))
    table = job.get_results()
    table.meta["QUERY"] = "gaiadr3.gaia_source cone"
    table.meta.update(footprint_meta(center, radius.to_value(u.arcmin)))
    with atomic_path(out) as temporary:
        table.write(temporary, format="fits", overwrite=True)
    return Path(out)
