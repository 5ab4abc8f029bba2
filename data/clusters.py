"""Reference values for a few open clusters, usable without a network.

Centres, mean proper motions and parallaxes are the Cantat-Gaudin et al. (2020, A&A 640,
A1) means of members; NGC 6819 also has Hunt & Reffert (2023) values. Names are matched
without spaces, underscores or case (``"NGC 6819"``, ``"ngc6819"``, ``"M67"``).
"""

from dataclasses import dataclass

import astropy.units as u
from astropy.coordinates import SkyCoord


@dataclass(frozen=True)
class ClusterReference:
    """Published cluster parameters: degrees, mas/yr (pmra includes cos dec) and mas."""

    name: str
    ra: float
    dec: float
    pmra: float
    pmdec: float
    parallax: float
    source: str

    @property
    def center(self) -> SkyCoord:
        return SkyCoord(self.ra * u.deg, self.dec * u.deg)


CANTAT_GAUDIN_2020 = "Cantat-Gaudin et al. 2020, A&A 640, A1"
CLUSTERS = {
    "NGC6819": ClusterReference("NGC 6819", 295.327, 40.190, -2.916, -3.856, 0.356,
                                CANTAT_GAUDIN_2020),
    "NGC2682": ClusterReference("NGC 2682", 132.846, 11.814, -10.986, -2.964, 1.135,
                                CANTAT_GAUDIN_2020),
    "NGC188": ClusterReference("NGC 188", 11.798, 85.244, -2.307, -0.960, 0.507,
                               CANTAT_GAUDIN_2020),
}
ALIASES = {"M67": "NGC2682"}
HUNT_REFFERT_2023 = {
    "NGC6819": ClusterReference("NGC 6819", 295.327, 40.190, -2.90, -3.87, 0.376,
                                "Hunt & Reffert 2023, A&A 673, A114"),
}


def normalise_name(name: str) -> str:
    key = name.upper().replace(" ", "").replace("_", "")
    return ALIASES.get(key, key)


def cluster_reference(name: str) -> ClusterReference | None:
    """The built-in reference for ``name``, or None."""
    return CLUSTERS.get(normalise_name(name))


def resolve_center(name: str | None = None, center: tuple[float, float] | None = None):
    """Cluster centre as (SkyCoord, where it came from).

    An explicit ``center`` (RA, Dec in degrees) wins; then the built-in table; then
    astropy's name resolver, which needs a network.
    """
    if center is not None:
        ra, dec = center
        if not (0 <= ra < 360 and -90 <= dec <= 90):
            raise ValueError(f"--center RA DEC out of range: {ra}, {dec} (degrees)")
        return SkyCoord(ra * u.deg, dec * u.deg), "given by --center"
    if name is None:
        raise ValueError("give a cluster name or --center RA DEC")
    reference = cluster_reference(name)
    if reference is not None:
        return reference.center, f"built-in ({reference.source})"
    try:
        return SkyCoord.from_name(name), "resolved online by astropy (Sesame)"
    except Exception as err:  # noqa: BLE001 - any resolver failure gets the same advice
        known = ", ".join(sorted(CLUSTERS) + sorted(ALIASES))
        raise ValueError(
            f"cannot resolve cluster {name!r}: not built in ({known}) and the online name "
            f"resolver failed ({type(err).__name__}: no network?). Pass --center RA DEC."
        ) from None
