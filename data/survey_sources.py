"""Where a survey's Gaia stars come from, one cone per cluster (``--gaia SOURCE``).

* :class:`SimulatedSource` (``simulate``, the default): a field made for each cluster from
  its catalogue values with the project's simulator (:mod:`starmix.data.cluster_field`), so a
  survey runs with no data at all.
* :class:`FolderSource` (a folder): one Gaia file per cluster, matched by name as
  :mod:`starmix.data.clusters` matches names (``NGC_188.fits`` is NGC 188).
* :class:`HatsSource` (a HATS catalogue folder): a cone search with LSDB around each
  cluster's centre.
* :class:`TableSource` (one Gaia table file): each cluster's cone cut from it (``starmix
  search`` verifies its candidates this way).

Each source is a small picklable object whose :meth:`field` returns the stars of one
target (an astropy Table, or a file path the loader reads) and a provenance record; a
survey sends it to its Dask workers.
"""

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table

from starmix.data.cluster_field import KAPPA, simulate_cluster_field
from starmix.data.clusters import normalise_name
from starmix.data.survey_catalogue import SurveyTarget

GAIA_SUFFIXES = (".fits", ".fits.gz", ".fit", ".csv", ".csv.gz", ".ecsv", ".vot", ".xml",
                 ".parquet")
HATS_MARKERS = ("properties", "hats.properties", "collection.properties")


@dataclass(frozen=True)
class SimulatedSource:
    """A simulated Gaia cone per cluster from its catalogue values.

    The cluster: ``n_members / MEMBER_FRACTION_G18`` members (catalogue counts such as
    CG20's ``nbstars07`` are of stars with G < 18, a fraction 0.31 of the simulator's
    G = 12-20 luminosity function), or ``DEFAULT_MEMBERS`` without a count; a Plummer
    profile of ``PLUMMER_PC`` parsecs; parallax from the catalogue (else 1/distance);
    internal motion ``DISPERSION_KMS`` km/s, kept within 0.03-0.45 mas/yr (pm2d's prior
    allows up to 0.5). The field: ``field_density`` stars per arcmin² (G = 10-20) over the
    cone, with the simulator's NGC 6819 field kinematics. Each cluster's seed is drawn from
    ``seed`` and its name, so a cluster's field does not depend on the others."""

    seed: int = 42
    field_density: float = 2.0
    MEMBER_FRACTION_G18 = 0.31
    DEFAULT_MEMBERS = 200
    PLUMMER_PC = 1.5
    DISPERSION_KMS = 0.5

    def describe(self) -> str:
        return f"simulate (seed {self.seed}, {self.field_density:g} field stars/arcmin²)"

    def field(self, target: SurveyTarget) -> tuple[Table, dict]:
        parallax = target.parallax
        if parallax is None and target.distance_pc:
            parallax = 1000.0 / target.distance_pc
        missing = [name for name, value in (("pmra", target.pmra), ("pmdec", target.pmdec),
                                            ("parallax or distance", parallax))
                   if value is None]
        if missing:
            raise ValueError(f"--gaia simulate: row {target.row} ({target.name}) has no "
                             f"{', '.join(missing)}, which the simulated field needs")
        if parallax <= 0:
            raise ValueError(f"--gaia simulate: row {target.row} ({target.name}) has parallax "
                             f"{parallax:g} mas; the simulated field needs a positive one")
        distance_pc = target.distance_pc or 1000.0 / parallax
        n_cluster = (self.DEFAULT_MEMBERS if target.n_members is None
                     else round(max(target.n_members, 0) / self.MEMBER_FRACTION_G18))
        plummer = max(math.degrees(math.atan(self.PLUMMER_PC / distance_pc)) * 60, 0.3)
        seed = int(np.random.SeedSequence([self.seed, zlib.crc32(target.key.encode())])
                   .generate_state(1)[0])
        settings = {
            "center_ra": target.ra, "center_dec": target.dec,
            "radius_arcmin": target.radius_arcmin, "n_cluster": n_cluster,
            "n_field": max(1, round(self.field_density * math.pi * target.radius_arcmin**2)),
            "plummer_radius_arcmin": round(min(plummer, target.radius_arcmin / 2), 3),
            "cluster_parallax": parallax, "cluster_pmra": target.pmra,
            "cluster_pmdec": target.pmdec,
            "cluster_pm_dispersion": round(float(np.clip(
                self.DISPERSION_KMS / (KAPPA * distance_pc / 1000), 0.03, 0.45)), 4)}
        table = simulate_cluster_field("ngc6819", seed=seed, **settings)
        return table, {"source": "simulated from the catalogue values "
                                 "(data/survey_sources.py)", "simulation_seed": seed,
                       **settings}


@dataclass(frozen=True)
class FolderSource:
    """A folder of Gaia files, one per cluster, named for it (any suffix the loader reads)."""

    folder: str

    def describe(self) -> str:
        return f"folder {self.folder}"

    def files(self) -> dict[str, Path]:
        found = {}
        for path in sorted(Path(self.folder).iterdir()):
            name = path.name
            suffix = next((s for s in GAIA_SUFFIXES if name.lower().endswith(s)), None)
            if suffix and path.is_file():
                found.setdefault(normalise_name(name[:-len(suffix)]), path)
        return found

    def field(self, target: SurveyTarget) -> tuple[str, dict]:
        path = self.files().get(normalise_name(target.name))
        if path is None:
            raise FileNotFoundError(
                f"--gaia {self.folder}: no Gaia file for {target.name} (looked for "
                f"{target.key} with a suffix {', '.join(GAIA_SUFFIXES)}, names matched "
                "without case, spaces or underscores)")
        return str(path), {"source": str(path)}


@dataclass(frozen=True)
class HatsSource:
    """A HATS-partitioned Gaia catalogue, cone-searched per cluster with LSDB."""

    path: str

    def describe(self) -> str:
        return f"HATS catalogue {self.path} (LSDB cone search)"

    def field(self, target: SurveyTarget) -> tuple[Table, dict]:
        import dask
        import lsdb

        search = lsdb.ConeSearch(target.ra, target.dec, target.radius_arcmin * 60)
        try:
            catalogue = lsdb.open_catalog(self.path, search_filter=search)
        except Exception as err:  # noqa: BLE001 - LSDB raises several kinds for one cause
            message = str(err)
            if "empty" not in message.lower() and "no coverage" not in message.lower():
                raise ValueError(f"--gaia {self.path}: LSDB could not open the catalogue "
                                 f"({type(err).__name__}: {message})") from None
            catalogue = None
        if catalogue is None:
            frame = None
        else:
            with dask.config.set(scheduler="synchronous"):  # inside a Dask task: no nesting
                frame = catalogue.compute(progress_bar=False)
        if frame is None or len(frame) == 0:
            raise ValueError(f"--gaia {self.path}: no stars within {target.radius_arcmin:g} "
                             f"arcmin of ({target.ra:.4f}, {target.dec:.4f}) for "
                             f"{target.name}")
        frame = frame.drop(columns=[c for c in frame.columns if c.startswith("_healpix")])
        table = Table.from_pandas(frame.reset_index(drop=True))
        return table, {"source": f"{self.path} (LSDB cone search, "
                                 f"{target.radius_arcmin:g} arcmin)", "rows": len(table)}


@dataclass(frozen=True)
class TableSource:
    """One Gaia table holding every cluster's stars (``starmix search`` writes the stars of
    its region this way): each target's cone is cut from it, on the sphere, and recorded
    as the run's footprint. The table is read once per process."""

    path: str

    def describe(self) -> str:
        return f"table {self.path} (a cone per cluster)"

    def field(self, target: SurveyTarget) -> tuple[Table, dict]:
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        from starmix.data.footprint import footprint_meta

        table = _read_whole(self.path)
        centre = SkyCoord(target.ra * u.deg, target.dec * u.deg)
        stars = SkyCoord(np.asarray(table["ra"], float) * u.deg,
                         np.asarray(table["dec"], float) * u.deg)
        inside = stars.separation(centre).arcmin <= target.radius_arcmin
        if not inside.any():
            raise ValueError(f"--gaia {self.path}: no stars within {target.radius_arcmin:g} "
                             f"arcmin of ({target.ra:.4f}, {target.dec:.4f}) for "
                             f"{target.name}")
        cone = table[inside]
        cone.meta = dict(footprint_meta(centre, target.radius_arcmin))
        return cone, {"source": f"{self.path} (cone of {target.radius_arcmin:g} arcmin)",
                      "rows": int(inside.sum())}


_WHOLE: dict = {}


def _read_whole(path: str) -> Table:
    """The table at ``path``, read once per process (a survey's tasks share it)."""
    if path not in _WHOLE:
        from starmix.data.gaia import load_gaia

        _WHOLE.clear()
        _WHOLE[path] = load_gaia(path).data
    return _WHOLE[path]


def gaia_source(spec: str, seed: int = 42, field_density: float = 2.0):
    """``--gaia SOURCE`` as a source object: ``simulate``, a HATS catalogue folder, a
    folder of per-cluster files, or one Gaia table holding them all. An unusable value is
    an error naming it."""
    if spec == "simulate":
        if not field_density > 0:
            raise ValueError(f"--sim-field-density must be positive, got {field_density}")
        return SimulatedSource(seed, field_density)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"--gaia {spec}: no such folder (give 'simulate', a folder "
                                "of per-cluster Gaia files, or a HATS catalogue)")
    if not path.is_dir():
        if not any(path.name.lower().endswith(suffix) for suffix in GAIA_SUFFIXES):
            raise ValueError(f"--gaia {spec}: not a Gaia table ({', '.join(GAIA_SUFFIXES)}), "
                             "a folder of per-cluster Gaia files or a HATS catalogue")
        return TableSource(str(path.resolve()))
    if any((path / marker).is_file() for marker in HATS_MARKERS):
        return HatsSource(str(path.resolve()))
    source = FolderSource(str(path.resolve()))
    if not source.files():
        raise ValueError(f"--gaia {spec}: the folder holds no Gaia files "
                         f"({', '.join(GAIA_SUFFIXES)}) and is not a HATS catalogue")
    return source
