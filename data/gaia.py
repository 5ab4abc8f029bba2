"""Gaia tables: read any archive-like file, validate it for a model, cut it, select sky regions.

Columns use Gaia archive names (``parallax``, ``pmra_error``, ``pmra_pmdec_corr``, ...).
Files with VizieR-style names (``Plx``, ``pmRA``, ``pmDE``, ``Gmag``, ``BP-RP``) are renamed
on reading; any other spelling can be mapped with ``columns={"my_name": "archive_name"}``.
Units follow the Gaia archive: degrees, mas, mas/yr, mag. A column the file gives in another
unit that converts (``pmra`` in deg/yr, ``parallax`` in arcsec) is converted on reading;
one that does not (``parallax`` in km) is an error naming it. Validation takes RA in
[-360, 360) degrees and wraps it into [0, 360), with a note; dec must lie in [-90, 90].
"""

from dataclasses import asdict, dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle, SkyCoord
from astropy.table import Column, Table
from pyia import GaiaData
from pyia.data import gaia_unit_map

from starmix.data.input_checks import (
    DataValidationError,
    as_float_column,
    drop_rows,
    duplicate_mask,
    raise_first,
    read_table,
    require_columns,
    row_problems,
    source_name,
)

ARCHIVE_COLUMNS = (
    "source_id", "ra", "dec", "parallax", "parallax_error", "pmra", "pmra_error", "pmdec",
    "pmdec_error", "pmra_pmdec_corr", "parallax_pmra_corr", "parallax_pmdec_corr",
    "phot_g_mean_mag", "bp_rp", "ruwe",
)
VIZIER_NAMES = {
    "Source": "source_id", "RA_ICRS": "ra", "DE_ICRS": "dec", "Plx": "parallax",
    "e_Plx": "parallax_error", "pmRA": "pmra", "e_pmRA": "pmra_error", "pmDE": "pmdec",
    "e_pmDE": "pmdec_error", "pmRApmDEcor": "pmra_pmdec_corr",
    "PlxpmRAcor": "parallax_pmra_corr", "PlxpmDEcor": "parallax_pmdec_corr",
    "Gmag": "phot_g_mean_mag", "BP-RP": "bp_rp", "RUWE": "ruwe",
}
UNIT_COLUMNS = (*ARCHIVE_COLUMNS, "ra_error", "dec_error", "ecl_lat", "radial_velocity",
                "radial_velocity_error")
# The archive unit of each column starmix reads (pyia's map, its marcsec spelt mas): a file's
# other unit is converted to it on reading
ARCHIVE_UNITS = {name: u.Unit(gaia_unit_map[name].to_string().replace("marcsec", "mas"))
                 for name in UNIT_COLUMNS if name in gaia_unit_map}
UNIT_ALIASES = {"degree": "deg", "degrees": "deg", "mags": "mag", "magnitude": "mag",
                "magnitudes": "mag"}
RA_READ = (-360.0, 360.0)  # degrees accepted; [-360, 0) is wrapped into [0, 360)
RA_OUTSIDE = "are outside [0, 360) degrees (RA in [-360, 0) is wrapped)"


def load_gaia(path, columns: dict[str, str] | None = None) -> GaiaData:
    """Read a Gaia table (FITS, FITS.gz, CSV, ECSV, VOTable; or a table object given in
    Python, copied) into a ``pyia.GaiaData``.

    ``columns`` maps names in the file to archive names; VizieR-style names are mapped
    automatically. Blank cells become NaN (never silently a fill value), archive units are
    attached where the file has none, and ``table.meta["renamed"]`` lists every rename.
    A column of ``ARCHIVE_UNITS`` in another unit is converted to the archive's
    (``table.meta["converted_units"]``: {column: "deg / yr -> mas / yr"}); a unit that
    does not convert, or that astropy does not recognise, is a
    :class:`DataValidationError` naming the column and the unit.
    """
    table = read_table(path, "Gaia table")
    renames = {**{k: v for k, v in VIZIER_NAMES.items() if k in table.colnames}, **(columns or {})}
    for old, new in renames.items():
        require_columns(table.colnames, [old])
        if new in table.colnames and new != old:
            raise DataValidationError(new, f"clash: both {old!r} and {new!r} present", 0, 0)
        table.rename_column(old, new)
    table.meta["renamed"] = renames
    table.meta["source_file"] = source_name(path)
    for name in table.colnames:
        column = table[name]
        if column.dtype.kind == "f" and getattr(column, "mask", None) is not None:
            table[name] = np.ma.filled(column, np.nan)
        if table[name].unit is None and name in gaia_unit_map:
            table[name].unit = ARCHIVE_UNITS.get(name, gaia_unit_map[name])
    converted = convert_archive_units(table)
    if converted:
        table.meta["converted_units"] = converted
    return GaiaData(table)


def convert_archive_units(table: Table) -> dict[str, str]:
    """Convert, in place, every column of ``ARCHIVE_UNITS`` whose unit differs from the
    archive's but converts to it; return {column: "from -> to"}.

    Harmless spellings are read as meant ("degrees", "mags"; a dimensionless magnitude is
    mag). A unit that does not convert (``parallax`` in km, a dimensionless ``pmra``) or
    that astropy does not recognise is a :class:`DataValidationError` naming the column
    and the unit."""
    converted = {}
    for name, expected in ARCHIVE_UNITS.items():
        if name not in table.colnames or table[name].unit is None:
            continue
        column = table[name]
        unit = _parsed_unit(column.unit)
        if unit is None:
            raise DataValidationError(
                name, f"has unit {column.unit.to_string()!r}, which astropy does not "
                f"recognise: expected {expected} (or a unit that converts to it)", 0, 0)
        if unit == u.dimensionless_unscaled and expected == u.mag:
            unit = u.mag  # magnitudes written without a unit
        if unit == expected:
            column.unit = expected
            continue
        if not unit.is_equivalent(expected):
            shown = ("'' (dimensionless)" if unit == u.dimensionless_unscaled
                     else repr(unit.to_string()))
            raise DataValidationError(name, f"has unit {shown}, which does not convert to "
                                      f"the archive's {expected}", 0, 0)
        if column.dtype.kind not in "fiu":  # text: validation names the cells
            continue
        values = np.asarray(column, float) * unit.to(expected)
        table[name] = Column(values, name=name, unit=expected, description=column.description)
        converted[name] = f"{unit} -> {expected}"
    return converted


def _parsed_unit(unit):
    """``unit`` as an astropy unit; an unrecognised string is tried in the other unit
    formats and ``UNIT_ALIASES``; None when nothing parses."""
    if not isinstance(unit, u.UnrecognizedUnit):
        return unit
    text = unit.to_string().strip()
    for candidate in (text, UNIT_ALIASES.get(text.lower(), text.lower())):
        for form in ("generic", "fits", "cds", "vounit", "ogip"):
            try:
                return u.Unit(candidate, format=form)
            except ValueError:
                continue
    return None


def validate_gaia(table: Table, required, drop_invalid: bool = False):
    """Check ``required`` columns; return (table, {reason: rows dropped}).

    Checks: an empty table; missing columns; text in a number column; non-finite values;
    ``*_error`` <= 0; ``*_corr`` outside [-1, 1]; ``ra`` outside [-360, 360) and ``dec``
    outside [-90, 90] degrees; blank (masked) or repeated ``source_id``. Without
    ``drop_invalid`` the first problem raises :class:`DataValidationError`; with it, bad
    rows are removed and counted per reason (a row bad for two reasons counts under both;
    ``"total"`` is the union). A required ``ra`` in [-360, 0) is wrapped into [0, 360) in
    the returned table (a copy; ``table.meta["ra_wrapped"]`` says how many rows).
    """
    if len(table) == 0:
        raise DataValidationError(", ".join(required) or "<none>", "have no rows: empty table",
                                  0, 0)
    require_columns(table.colnames, list(required))
    numeric, text = {}, {}
    for name in required:
        if name == "source_id":
            continue
        if drop_invalid:
            numeric[name], text[name] = as_float_column(name, table[name], lenient=True)
        else:
            numeric[name] = as_float_column(name, table[name])
    masks = row_problems(numeric, text,
                         positive=[name for name in numeric if name.endswith("_error")],
                         correlations=[name for name in numeric if name.endswith("_corr")])
    masks.update(_position_problems(numeric))
    if "source_id" in table.colnames:
        blank = np.ma.getmaskarray(table["source_id"])
        if blank.any():
            masks[("source_id", "are blank (masked): every star needs its id")] = blank
        ids = np.ma.getdata(table["source_id"])
        repeated = np.zeros(len(table), dtype=bool)
        repeated[~blank] = duplicate_mask(np.asarray(ids)[~blank])
        if repeated.any():
            masks[("source_id", "repeat an earlier source_id")] = repeated
    if not drop_invalid:
        raise_first(masks, len(table))
        return _wrapped_ra(table, numeric.get("ra")), {}
    keep, dropped = drop_rows(masks, len(table), ", ".join(required))
    table = table[keep]
    for name, cells in text.items():  # a column whose text cells are gone: now numbers
        if cells.any():
            table[name] = numeric[name][keep]
    return _wrapped_ra(table, numeric["ra"][keep] if "ra" in numeric else None), dropped


def _position_problems(numeric: dict[str, np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Bad-row masks of finite ``ra`` outside ``RA_READ`` and ``dec`` outside [-90, 90]
    (degrees); non-finite values are counted by :func:`row_problems`."""
    masks = {}
    with np.errstate(invalid="ignore"):
        if "ra" in numeric:
            ra = numeric["ra"]
            outside = np.isfinite(ra) & ~((ra >= RA_READ[0]) & (ra < RA_READ[1]))
            if outside.any():
                masks[("ra", RA_OUTSIDE)] = outside
        if "dec" in numeric:
            dec = numeric["dec"]
            outside = np.isfinite(dec) & ~((dec >= -90) & (dec <= 90))
            if outside.any():
                masks[("dec", "are outside [-90, 90] degrees")] = outside
    return masks


def _wrapped_ra(table: Table, ra: np.ndarray | None) -> Table:
    """``table`` with ``ra`` (degrees, already checked) in [-360, 0) wrapped into [0, 360):
    a copy noted in ``meta["ra_wrapped"]``; the same table when nothing wraps."""
    if ra is None or not (ra < 0).any():
        return table
    negative = ra < 0
    wrapped = ra.copy()
    wrapped[negative] = np.mod(ra[negative], 360.0)
    wrapped[wrapped >= 360.0] = 0.0  # np.mod(-1e-20, 360) rounds to 360
    table = table.copy(copy_data=False)
    table["ra"] = Column(wrapped, name="ra", unit=u.deg)
    table.meta["ra_wrapped"] = (f"{int(negative.sum())} rows with ra in [-360, 0) degrees "
                                f"wrapped into [0, 360) (e.g. {ra[negative][0]:g} -> "
                                f"{wrapped[negative][0]:g})")
    return table


@dataclass(frozen=True)
class QualityCuts:
    """Explicit sample cuts; a cut set to None is off. Defaults: RUWE < 1.4 (Lindegren et al.
    2021) and G <= 20. Cuts on parallax S/N bias distant stars, so that one is off."""

    ruwe_max: float | None = 1.4
    g_max: float | None = 20.0
    parallax_over_error_min: float | None = None
    radius_arcmin: float | None = None


def apply_quality_cuts(table: Table, cuts: QualityCuts, center: SkyCoord | None = None):
    """Apply ``cuts``; return (table, record) where the record gives rows removed per cut
    and notes cuts that could not be applied because their column is absent."""
    keep = np.ones(len(table), dtype=bool)
    record = {"cuts": asdict(cuts), "removed": {}, "not_applied": []}
    tests = {
        "ruwe_max": ("ruwe", lambda t, v: np.asarray(t["ruwe"]) < v),
        "g_max": ("phot_g_mean_mag", lambda t, v: np.asarray(t["phot_g_mean_mag"]) <= v),
        "parallax_over_error_min": (
            "parallax_error",
            lambda t, v: np.asarray(t["parallax"]) / np.asarray(t["parallax_error"]) >= v,
        ),
    }
    for cut, (column, passes) in tests.items():
        value = getattr(cuts, cut)
        if value is None:
            continue
        if column not in table.colnames:
            record["not_applied"].append(f"{cut}: no {column!r} column")
            continue
        with np.errstate(invalid="ignore"):
            passed = passes(table, value)
        keep = _cut(keep, passed, cut, value, record)
    if cuts.radius_arcmin is not None:
        if center is None:
            raise ValueError("--radius needs the cluster centre: give --cluster NAME or "
                             "--center RA DEC")
        missing = [name for name in ("ra", "dec") if name not in table.colnames]
        if missing:
            raise DataValidationError(missing[0], "is missing, and --radius cuts on the sky "
                                      "position: leave --radius out for a table without "
                                      "positions", 0, 0)
        inside = separation(table, center) <= cuts.radius_arcmin * u.arcmin
        keep = _cut(keep, inside, "radius_arcmin", cuts.radius_arcmin, record)
    return table[keep], record


CUT_OPTIONS = {"ruwe_max": "--ruwe-max", "g_max": "--g-max",
               "parallax_over_error_min": "--parallax-over-error-min",
               "radius_arcmin": "--radius"}


def _cut(keep: np.ndarray, passed: np.ndarray, cut: str, value, record: dict) -> np.ndarray:
    """Apply one cut and record the rows it removed; no star left is an error naming it."""
    after = keep & passed
    record["removed"][cut] = int((keep & ~passed).sum())
    if keep.any() and not after.any():
        raise ValueError(f"quality cut {CUT_OPTIONS[cut]} {value:g} leaves no star to fit "
                         f"({int(keep.sum())} before it, 0 after); loosen it or turn it off")
    return after


def separation(table: Table, center: SkyCoord) -> Angle:
    """Angular distance of every star from ``center``."""
    stars = SkyCoord(np.asarray(table["ra"]) * u.deg, np.asarray(table["dec"]) * u.deg)
    return stars.separation(center)


# Gaia DR2's median uncertainties against G (Gaia Collaboration, Brown et al. 2018, A&A 616,
# A1, Table 3: parallax 0.02-0.04 mas at G < 15, 0.1 mas at G = 17, 0.7 mas at G = 20, 2 mas
# at G = 21; proper motion 0.07, 0.2, 1.2 and 3 mas/yr), interpolated in log sigma. Against
# the real DR2 Blanco 1 field (../shared/data; one field, not a sky average) the parallax
# errors' medians per magnitude at G = 13-18 are within 14% of it, the proper motions'
# 21-35% below it at G = 14-18 (docs/real-fields.md); pygaia has no DR2 model.
DR2_PARALLAX_ERRORS = ((13.0, 0.03), (15.0, 0.04), (17.0, 0.1), (20.0, 0.7), (21.0, 2.0))
DR2_PM_ERRORS = ((15.0, 0.07), (17.0, 0.2), (20.0, 1.2), (21.0, 3.0))
ERROR_MODELS = ("dr3", "dr2")
ERROR_COLUMNS = ("parallax_error", "pmra_error", "pmdec_error")
CORRELATION_NAMES = ("pmra_pmdec_corr", "parallax_pmra_corr", "parallax_pmdec_corr")


def _log_interp(g: np.ndarray, points) -> np.ndarray:
    magnitudes, sigmas = zip(*points, strict=True)
    return 10 ** np.interp(g, magnitudes, np.log10(sigmas))


def model_errors(g: np.ndarray, release: str = "dr3") -> dict[str, np.ndarray]:
    """Sky-averaged parallax (mas) and proper-motion (mas/yr) errors at G for a Gaia
    release: ``dr3`` from pygaia's DR3 model, ``dr2`` from ``DR2_PARALLAX_ERRORS`` and
    ``DR2_PM_ERRORS`` (Brown et al. 2018, Table 3)."""
    if release not in ERROR_MODELS:
        raise ValueError(f"--error-model must be one of {', '.join(ERROR_MODELS)}, got "
                         f"{release!r}")
    g = np.asarray(g, float)
    if release == "dr2":
        pm = _log_interp(g, DR2_PM_ERRORS)
        return {"parallax_error": _log_interp(g, DR2_PARALLAX_ERRORS), "pmra_error": pm,
                "pmdec_error": pm.copy()}
    from pygaia.errors.astrometric import parallax_uncertainty, proper_motion_uncertainty

    pmra_error, pmdec_error = proper_motion_uncertainty(g, release="dr3")
    return {"parallax_error": parallax_uncertainty(g, release="dr3") / 1000,
            "pmra_error": pmra_error / 1000, "pmdec_error": pmdec_error / 1000}


def assign_errors(table: Table, release: str = "dr3") -> Table:
    """Add Gaia errors from G where a file has none (``release``: ``dr3`` or ``dr2``, see
    :func:`model_errors`).

    Error columns the file has are kept (the NGC 188 DR2 cone's own ``parallax_error``);
    the missing ones among ``parallax_error``, ``pmra_error`` and ``pmdec_error`` (mas,
    mas/yr) become the release's sky-averaged expectation at each star's G, and missing
    correlations zero. ``table.meta["errors"]`` says which were assigned and how.
    """
    g = np.asarray(table["phot_g_mean_mag"], float)
    table = table.copy()
    modelled = model_errors(g, release)
    assigned = [name for name in ERROR_COLUMNS if name not in table.colnames]
    kept = [name for name in ERROR_COLUMNS if name in table.colnames]
    for name in assigned:
        unit = u.mas if name == "parallax_error" else u.mas / u.yr
        table[name] = modelled[name] * unit
    for name in CORRELATION_NAMES:
        if name not in table.colnames:
            table[name] = np.zeros(len(table))
    source = ("Gaia DR2 medians of Brown et al. (2018), Table 3" if release == "dr2"
              else "pygaia's Gaia DR3 model")
    note = (f"assigned from G with {source}: {', '.join(assigned)}" if assigned
            else "none assigned")
    if kept:
        note += f"; the file's own {', '.join(kept)} kept"
    table.meta["errors"] = note + "; missing correlations zero"
    return table


def assign_dr3_errors(table: Table) -> Table:
    """:func:`assign_errors` with the DR3 model (files such as the M67 and NGC 188 DR3
    fields, which carry astrometry but no uncertainties)."""
    return assign_errors(table, "dr3")


ZERO_POINT_COLUMNS = ("phot_g_mean_mag", "nu_eff_used_in_astrometry", "pseudocolour",
                      "ecl_lat", "astrometric_params_solved")


def correct_parallax_zero_point(table: Table) -> Table:
    """Subtract the Lindegren et al. (2021) parallax zero-point (``gaiadr3-zeropoint``).

    Needs the columns in ``ZERO_POINT_COLUMNS``; the correction per star is kept in
    ``parallax_zero_point`` and ``table.meta["zero_point"]`` records it was applied.
    """
    require_columns(table.colnames, ZERO_POINT_COLUMNS)
    try:
        from zero_point import zpt
    except ImportError:
        raise ValueError("the parallax zero-point correction (--zero-point) needs the "
                         "'gaiadr3-zeropoint' package: pip install -e '.[zeropoint]'") from None
    zpt.load_tables()
    offset = zpt.get_zpt(*(np.asarray(table[name]) for name in ZERO_POINT_COLUMNS),
                         _warnings=False)
    table = table.copy()
    table["parallax_zero_point"] = offset * u.mas
    table["parallax"] = table["parallax"] - table["parallax_zero_point"]
    table.meta["zero_point"] = "Lindegren et al. 2021 (gaiadr3-zeropoint), subtracted"
    return table
