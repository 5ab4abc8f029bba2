"""The sky footprint a table was selected from: a cone (centre, radius).

The joint model's field is uniform over this footprint, so it must be the data's real
selection, not a disc around the cluster (a cluster off the cone's centre would otherwise
see a footprint larger than the cone, and drift to the cone's centre). In order:

1. given (``--footprint RA DEC RADIUS``, degrees and arcmin);
2. recorded in the table's metadata by ``starmix simulate`` and ``starmix fetch-gaia``
   (``FOOTRA``, ``FOOTDEC`` in degrees, ``FOOTRAD`` in arcmin);
3. estimated from the stars: the centre of their positions and the largest separation
   from it, rounded up to 0.1 arcmin, said so in the run record.

A ``--radius`` cut around the cluster centre makes the footprint that disc, which must lie
inside the cone.
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

META_KEYS = ("FOOTRA", "FOOTDEC", "FOOTRAD")


@dataclass(frozen=True)
class Footprint:
    """A cone: centre (degrees), radius (arcmin), and where it came from."""

    ra: float
    dec: float
    radius_arcmin: float
    origin: str

    @property
    def center(self) -> SkyCoord:
        return SkyCoord(self.ra * u.deg, self.dec * u.deg)

    def record(self) -> dict:
        return {"ra": self.ra, "dec": self.dec, "radius_arcmin": self.radius_arcmin,
                "origin": self.origin}


def footprint_meta(center: SkyCoord, radius_arcmin: float) -> dict:
    """Metadata that :func:`table_footprint` reads back."""
    return {"FOOTRA": float(center.ra.deg), "FOOTDEC": float(center.dec.deg),
            "FOOTRAD": float(radius_arcmin)}


def table_footprint(table: Table, given=None, cut_center: SkyCoord | None = None,
                    cut_radius_arcmin: float | None = None) -> Footprint:
    """The footprint of ``table`` (see the module docstring); ``given`` is (ra, dec,
    radius_arcmin); ``cut_*`` a ``--radius`` cut around the cluster centre."""
    if given is not None:
        ra, dec, radius = (float(value) for value in given)
        if not (0 <= ra < 360 and -90 <= dec <= 90 and radius > 0):
            raise ValueError(f"--footprint RA DEC RADIUS out of range: {ra}, {dec}, {radius}")
        cone = Footprint(ra, dec, radius, "given by --footprint")
    elif all(key in table.meta for key in META_KEYS):
        cone = Footprint(*(float(table.meta[key]) for key in META_KEYS),
                         "recorded in the table's metadata")
    else:
        cone = estimated_footprint(table)
    if cut_radius_arcmin is None:
        return cone
    distance = cut_center.separation(cone.center).to_value(u.arcmin)
    if distance + cut_radius_arcmin > cone.radius_arcmin * 1.01:
        raise ValueError(
            f"--radius {cut_radius_arcmin:g} arcmin around the cluster centre reaches outside "
            f"the data's footprint ({cone.radius_arcmin:g} arcmin around ({cone.ra:.4f}, "
            f"{cone.dec:.4f}), {cone.origin}; the centre is {distance:.1f} arcmin from it): "
            "give a smaller --radius")
    return Footprint(float(cut_center.ra.deg), float(cut_center.dec.deg),
                     float(cut_radius_arcmin), "the --radius cut around the cluster centre")


def estimated_footprint(table: Table) -> Footprint:
    """The smallest cone around the stars' mean direction that holds every star."""
    stars = SkyCoord(np.asarray(table["ra"], float) * u.deg,
                     np.asarray(table["dec"], float) * u.deg)
    xyz = stars.cartesian.xyz.value.mean(axis=1)
    centre = SkyCoord(x=xyz[0], y=xyz[1], z=xyz[2], representation_type="cartesian")
    centre = SkyCoord(centre.spherical.lon, centre.spherical.lat)
    radius = float(np.ceil(stars.separation(centre).to_value(u.arcmin).max() * 10) / 10)
    return Footprint(float(centre.ra.deg), float(centre.dec.deg), radius,
                     "estimated from the stars (no --footprint and none recorded)")
