"""Steps 1-3 of the cluster workflow: what to fit (:class:`ClusterInput`, the options of
``starmix run cluster``), the Gaia table (the user's, or the simulated NGC 6819 field), its
checks for the model, the quality cuts, and the footprint on the sky.
"""

from dataclasses import dataclass, fields

import numpy as np
from astropy.table import Table

from starmix.data.cluster_field import simulate_cluster_field
from starmix.data.clusters import ClusterReference, resolve_center
from starmix.data.footprint import Footprint, table_footprint
from starmix.data.gaia import (
    CORRELATION_NAMES,
    ERROR_COLUMNS,
    ERROR_MODELS,
    QualityCuts,
    apply_quality_cuts,
    assign_errors,
    correct_parallax_zero_point,
    load_gaia,
    validate_gaia,
)
from starmix.data.input_checks import DataValidationError, source_name
from starmix.models import CLUSTER_MODELS
from starmix.models.cluster_parallax import FIELDS as PARALLAX_FIELDS
from starmix.models.field import MAX_FIELD_COMPONENTS, MIN_STARS
from starmix.workflows.inference.membership import LOG_LIKELIHOOD_MODES

CLUSTER_WEIGHT_RANGE = (0.001, 0.95)
MAX_SIMULATED = 5_000_000  # stars per population of the simulated field

DETECTION_METHODS = ("laplace", "nuts")


def _check_numbers(*checks) -> None:
    """Each (option, value, lowest, inclusive, highest): finite and within its bounds
    (None: unbounded; a value of None is not given and passes)."""
    for option, value, low, inclusive, high in checks:
        if value is None:
            continue
        if not np.isfinite(float(value)):
            raise ValueError(f"{option} must be a finite number, got {value}")
        if low is not None and (value < low if inclusive else value <= low):
            raise ValueError(f"{option} must be {'at least' if inclusive else 'above'} "
                             f"{low}, got {value:g}")
        if high is not None and value > high:
            raise ValueError(f"{option} must be at most {high}, got {value}")


@dataclass(frozen=True)
class StarSource:
    """Where the stars come from (``starmix run cluster``'s data options): the table
    ``data`` (a path or, from Python, an astropy Table) with ``columns`` renames,
    ``drop_invalid``, ``assign_errors`` (``error_model``: ``dr3`` or ``dr2``) and the
    parallax ``zero_point``; or, with ``data=None``, the simulated NGC 6819 field
    (``sim_seed``, ``n_cluster`` members and ``n_field`` field stars)."""

    data: object = None
    columns: str | None = None
    drop_invalid: bool = False
    assign_errors: bool = False
    error_model: str = "dr3"
    zero_point: bool = False
    sim_seed: int = 42
    n_cluster: int | None = None
    n_field: int | None = None

    def __post_init__(self):
        _check_numbers(("--n-cluster", self.n_cluster, 0, True, MAX_SIMULATED),
                       ("--n-field", self.n_field, 1, True, MAX_SIMULATED),
                       ("--sim-seed", self.sim_seed, 0, True, 2**32 - 1))
        if self.error_model not in ERROR_MODELS:
            raise ValueError(f"--error-model must be one of {', '.join(ERROR_MODELS)}, got "
                             f"{self.error_model!r}")


@dataclass(frozen=True)
class Target:
    """Which cluster: its ``cluster`` name (looked up in ``catalogue``, then the built-in
    list; a survey passes its catalogue row as ``reference``), a ``center`` (RA, Dec in
    degrees) that overrides the name's, and the ``footprint`` (RA, Dec in degrees, radius
    in arcmin) the data were selected from, for the joint model's field density."""

    cluster: str | None = None
    catalogue: str | None = None
    center: tuple[float, float] | None = None
    footprint: tuple[float, float, float] | None = None
    reference: ClusterReference | None = None

    def __post_init__(self):
        if self.center is not None and not (np.all(np.isfinite(self.center))
                                            and -90 <= self.center[1] <= 90):
            raise ValueError(f"--center RA DEC in degrees, DEC within [-90, 90], got "
                             f"{' '.join(f'{v:g}' for v in self.center)}")
        if self.footprint is not None and not (np.all(np.isfinite(self.footprint))
                                               and self.footprint[2] > 0
                                               and -90 <= self.footprint[1] <= 90):
            raise ValueError("--footprint RA DEC RADIUS: degrees, degrees, a positive radius "
                             f"in arcmin, got {' '.join(f'{v:g}' for v in self.footprint)}")


@dataclass(frozen=True)
class Cuts:
    """Which stars are fitted: the quality cuts (``ruwe_max``, ``g_max`` in mag,
    ``parallax_over_error_min``, ``radius_arcmin`` around the centre; None: off) and a
    seeded random subsample of ``max_stars``."""

    ruwe_max: float | None = 1.4
    g_max: float | None = 20.0
    parallax_over_error_min: float | None = None
    radius_arcmin: float | None = None
    max_stars: int | None = None

    def __post_init__(self):
        _check_numbers(("--ruwe-max", self.ruwe_max, 0, False, None),
                       ("--g-max", self.g_max, None, None, None),
                       ("--parallax-over-error-min", self.parallax_over_error_min, None, None,
                        None),
                       ("--radius", self.radius_arcmin, 0, False, None),
                       ("--max-stars", self.max_stars, MIN_STARS, True, None))

    def quality_cuts(self) -> QualityCuts:
        """The cuts :func:`starmix.data.gaia.apply_quality_cuts` makes."""
        return QualityCuts(self.ruwe_max, self.g_max, self.parallax_over_error_min,
                           self.radius_arcmin)


@dataclass(frozen=True)
class ModelShape:
    """How the chosen model is shaped: ``field_components`` (K field Gaussians, 1-5, or
    ``auto``), the parallax model's ``parallax_field`` and ``parallax_offset``, the joint
    model's ``radial_velocity`` prior (mean, sd in km/s), ``magnitude_prior``,
    ``cluster_halo`` and, from Python, ``priors`` replacing the cluster's own."""

    field_components: str | int = "2"
    parallax_field: str = "exponential"
    parallax_offset: bool = False
    radial_velocity: tuple[float, float] | None = None
    magnitude_prior: bool = False
    cluster_halo: bool = False
    priors: dict | None = None

    def __post_init__(self):
        if isinstance(self.field_components, int) and not isinstance(
                self.field_components, bool):  # a config file's `field_components = 3`
            object.__setattr__(self, "field_components", str(self.field_components))
        if self.field_components != "auto":
            try:
                k = int(self.field_components)
            except (TypeError, ValueError):
                k = None
            if k is None or not 1 <= k <= MAX_FIELD_COMPONENTS or str(k) != str(
                    self.field_components).strip():
                raise ValueError(f"--field-components must be 1 to {MAX_FIELD_COMPONENTS} or "
                                 f"'auto', got {self.field_components!r}")
        if self.parallax_field not in PARALLAX_FIELDS:
            raise ValueError(f"--parallax-field must be one of {', '.join(PARALLAX_FIELDS)}, "
                             f"got {self.parallax_field!r}")
        if self.radial_velocity is not None and not (
                np.all(np.isfinite(self.radial_velocity)) and self.radial_velocity[1] > 0):
            raise ValueError("--radial-velocity MEAN SD: SD must be positive (km/s), got "
                             f"{' '.join(f'{v:g}' for v in self.radial_velocity)}")


@dataclass(frozen=True)
class DetectionOptions:
    """Whether a cluster is there (``detection``: PSIS-LOO against field-only models, fitted
    by ``detection_method``: ``laplace`` or ``nuts``), and how much of the pointwise
    log-likelihood is kept (``log_likelihood``: auto, all, thin, none)."""

    detection: bool = True
    detection_method: str = "laplace"
    log_likelihood: str = "auto"

    def __post_init__(self):
        if self.detection_method not in DETECTION_METHODS:
            raise ValueError(f"--detection-method must be one of {DETECTION_METHODS}, got "
                             f"{self.detection_method!r}")
        if self.log_likelihood not in LOG_LIKELIHOOD_MODES:
            raise ValueError(f"--log-likelihood must be one of {LOG_LIKELIHOOD_MODES}, got "
                             f"{self.log_likelihood!r}")


# ClusterInput's option groups, as its properties name them
GROUPS = {"source": StarSource, "target": Target, "cuts": Cuts, "shape": ModelShape,
          "detect": DetectionOptions}


@dataclass(frozen=True)
class ClusterInput:
    """What to fit and on which stars: the options of ``starmix run cluster``, flat as a user
    gives them (command-line flags, config keys, :func:`starmix.fit_cluster` keywords and
    the run record's ``settings``), checked and read by the steps in five groups:
    :class:`StarSource` (``source``: the table or the simulated NGC 6819 field),
    :class:`Target` (``target``: which cluster, its centre and footprint), :class:`Cuts`
    (``cuts``: which stars), :class:`ModelShape` (``shape``) and :class:`DetectionOptions`
    (``detect``). ``data=None`` simulates the NGC 6819 field.

    ``cluster`` names the cluster (its published values start the fit and are compared in
    the figures; looked up in ``catalogue``, then the built-in list); without a name the
    fit starts from the field's most significant proper-motion overdensities.
    ``detection`` compares the fit with field-only models (PSIS-LOO); ``detection_method``
    says how the field-only models are fitted: ``laplace`` (a Laplace approximation
    corrected by importance sampling, NUTS where its Pareto k says it is poor;
    :mod:`starmix.workflows.inference.laplace`) or ``nuts`` (always NUTS). ``priors`` (from
    Python only): replacements for the cluster's own priors, {parameter: factory}, the
    names in the model's ``replaceable_priors`` (a factory takes the name and returns the
    PyMC variable). ``reference`` (from Python only): published values to start from, in
    place of looking ``cluster`` up (a survey passes its catalogue row's)."""

    model: str = "pm2d"
    data: str | None = None
    cluster: str | None = None
    catalogue: str | None = None
    center: tuple[float, float] | None = None
    columns: str | None = None
    drop_invalid: bool = False
    assign_errors: bool = False
    error_model: str = "dr3"
    zero_point: bool = False
    ruwe_max: float | None = 1.4
    g_max: float | None = 20.0
    parallax_over_error_min: float | None = None
    radius_arcmin: float | None = None
    footprint: tuple[float, float, float] | None = None
    max_stars: int | None = None
    field_components: str | int = "2"  # 1-5, or "auto"
    parallax_field: str = "exponential"
    parallax_offset: bool = False
    radial_velocity: tuple[float, float] | None = None
    detection: bool = True
    detection_method: str = "laplace"
    magnitude_prior: bool = False
    cluster_halo: bool = False
    log_likelihood: str = "auto"
    sim_seed: int = 42
    n_cluster: int | None = None
    n_field: int | None = None
    priors: dict | None = None
    reference: ClusterReference | None = None

    def __post_init__(self):
        """Every option is checked here, before any data are read, by the group it belongs
        to: a bad value, or an option the chosen model or data source does not use, is an
        error naming it."""
        if self.model not in CLUSTER_MODELS:
            raise ValueError(f"--model must be one of {sorted(CLUSTER_MODELS)}, "
                             f"got {self.model!r}")
        shape = self.shape  # checks its options, and normalises field_components
        object.__setattr__(self, "field_components", shape.field_components)
        for name in ("source", "target", "cuts", "detect"):
            getattr(self, name)
        unused = unused_options(self)
        if unused:
            raise ValueError("; ".join(f"{option} {why}" for option, why in unused.items())
                             + ": leave it out")

    def _group(self, kind):
        return kind(**{f.name: getattr(self, f.name) for f in fields(kind)})

    @property
    def source(self) -> StarSource:
        """Where the stars come from."""
        return self._group(StarSource)

    @property
    def target(self) -> Target:
        """Which cluster, its centre and footprint."""
        return self._group(Target)

    @property
    def cuts(self) -> Cuts:
        """Which stars are fitted."""
        return self._group(Cuts)

    @property
    def shape(self) -> ModelShape:
        """The model's shape options."""
        return self._group(ModelShape)

    @property
    def detect(self) -> DetectionOptions:
        """The detection step's options."""
        return self._group(DetectionOptions)


def unused_options(inputs: "ClusterInput") -> dict[str, str]:
    """Options set away from their defaults that this run would not use: {option: why}."""
    default = ClusterInput.__dataclass_fields__
    takes = CLUSTER_MODELS[inputs.model].options  # the model's own options
    only_parallax = f"is for --model parallax only (this run: --model {inputs.model})"
    gaussian_field = inputs.model != "parallax" or inputs.parallax_field == "gaussian"
    with_data = "is for a --data table (this run uses the simulated field)"
    simulated = "is for the simulated field (this run reads --data)"
    rules = {
        "field_components": ("--field-components", gaussian_field,
                             "is for --model parallax only with --parallax-field gaussian"),
        "parallax_field": ("--parallax-field", "parallax_field" in takes, only_parallax),
        "parallax_offset": ("--parallax-offset",
                            inputs.model == "parallax" and inputs.parallax_field != "gaussian",
                            "is for --model parallax with the exponential or beta field"),
        "cluster_halo": ("--cluster-halo", "cluster_halo" in takes,
                         f"is for --model pm2d, pmplx or joint (this run: --model "
                         f"{inputs.model})"),
        "radial_velocity": ("--radial-velocity", inputs.model == "joint",
                            f"is for --model joint only (this run: --model {inputs.model})"),
        "footprint": ("--footprint", "footprint" in takes,
                      "is for --model joint (the only model with a sky term)"),
        "catalogue": ("--catalogue", inputs.cluster is not None,
                      "is read for the cluster --cluster NAME names: give the name too"),
        "columns": ("--columns", inputs.data is not None, with_data),
        "assign_errors": ("--assign-errors", inputs.data is not None, with_data),
        "error_model": ("--error-model", inputs.assign_errors,
                        "chooses the errors --assign-errors gives: give that too"),
        "zero_point": ("--zero-point", inputs.data is not None, with_data),
        "drop_invalid": ("--drop-invalid", inputs.data is not None, with_data),
        "sim_seed": ("--sim-seed", inputs.data is None, simulated),
        "n_cluster": ("--n-cluster", inputs.data is None, simulated),
        "n_field": ("--n-field", inputs.data is None, simulated),
    }
    return {option: why for name, (option, used, why) in rules.items()
            if not used and getattr(inputs, name) != default[name].default}


def parse_columns(text: str | None) -> dict[str, str]:
    """``"Plx=parallax,pmRA=pmra"`` -> {"Plx": "parallax", "pmRA": "pmra"}."""
    if not text:
        return {}
    pairs = [item.split("=") for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"--columns takes name=archive_name pairs, got {text!r}")
    return {old.strip(): new.strip() for old, new in pairs}


def load_cluster_table(inputs: ClusterInput) -> tuple[Table, dict]:
    """Step 1: the user's Gaia table, or the simulated NGC 6819 field (``inputs.source``),
    with the correlation columns the model reads."""
    source = inputs.source
    if source.data is None:
        sizes = {k: v for k, v in (("n_cluster", source.n_cluster),
                                   ("n_field", source.n_field)) if v is not None}
        table = simulate_cluster_field("ngc6819", seed=source.sim_seed, **sizes)
        return table, {"source": "simulated NGC 6819 field (data/cluster_field.py)",
                       "simulation_seed": source.sim_seed, **sizes}
    table = load_gaia(source.data, parse_columns(source.columns)).data
    provenance = {"source": source_name(source.data), "renamed": table.meta.get("renamed", {})}
    if table.meta.get("converted_units"):
        provenance["converted_units"] = table.meta["converted_units"]
    if source.assign_errors:
        table = assign_errors(table, source.error_model)
        provenance["errors"] = table.meta["errors"]
    correlations = CORRELATION_NAMES
    if (all(name in table.colnames for name in ERROR_COLUMNS)
            and not any(name in table.colnames for name in correlations)):
        # a file with its own errors but none of the three correlations (as many DR2
        # extractions): zero correlations, said in the record, never silently
        table = table.copy()
        for name in correlations:
            table[name] = np.zeros(len(table))
        provenance["correlations"] = ("absent from the file: taken as zero (the file's own "
                                      "errors are kept)")
    needed = [name for name in correlations
              if name in CLUSTER_MODELS[inputs.model].required_columns]
    missing = [name for name in needed if name not in table.colnames]
    if missing and len(missing) < len(needed):
        present = [name for name in needed if name in table.colnames]
        raise DataValidationError(
            ", ".join(missing), f"missing, while the table has {', '.join(present)}: give "
            f"all {len(needed)} correlation columns the {inputs.model} model reads, or none "
            "(then they are taken as zero, and the run record says so)", 0, 0)
    if source.zero_point:
        table = correct_parallax_zero_point(table)
        provenance["parallax_zero_point"] = {
            "applied": table.meta["zero_point"],
            "median_mas": float(np.nanmedian(table["parallax_zero_point"]))}
    if "source_id" not in table.colnames:
        table["source_id"] = np.arange(len(table))
        provenance["source_id"] = "absent in the file: row numbers used"
    return table, provenance


def prepare_stars(table: Table, inputs: ClusterInput, center, seed: int, say):
    """Steps 2-3: validate the input for the model, apply quality cuts, optionally subsample."""
    spec = CLUSTER_MODELS[inputs.model]
    cuts = inputs.cuts.quality_cuts()
    required = (*spec.required_columns, *(("phot_g_mean_mag",) if inputs.magnitude_prior else ()))
    if inputs.radius_arcmin is not None and {"ra", "dec"} <= set(table.colnames):
        required = (*required, *(name for name in ("ra", "dec") if name not in required))
    table, dropped = validate_gaia(table, required, inputs.drop_invalid)
    table, cut_record = apply_quality_cuts(table, cuts, center)
    for reason, count in dropped.items():
        say(f"dropped (--drop-invalid) {count} rows: {reason}")
    if "ra_wrapped" in table.meta:
        say(f"note: {table.meta['ra_wrapped']}")
    for cut, count in cut_record["removed"].items():
        say(f"quality cut {cut}: removed {count} rows")
    record = {"quality_cuts": cut_record, "dropped_invalid": dropped,
              **({"ra_wrapped": table.meta["ra_wrapped"]} if "ra_wrapped" in table.meta else {})}
    if inputs.max_stars is not None and len(table) > inputs.max_stars:
        keep = np.sort(np.random.default_rng(seed).choice(len(table), inputs.max_stars,
                                                          replace=False))
        record["subsample"] = {"from": len(table), "to": inputs.max_stars, "seed": seed}
        say(f"random subsample of {inputs.max_stars} of {len(table)} stars (--max-stars)")
        table = table[keep]
    record["n_stars"] = len(table)
    check_enough_stars(table, spec.required_columns, record)
    return table, record


def check_enough_stars(table: Table, columns, record: dict) -> None:
    """At least ``MIN_STARS`` stars, and spread in every measured column; else an error
    that gives the counts after each selection step."""
    if len(table) < MIN_STARS:
        steps = [f"{count} removed by {reason}" for reason, count in
                 record["dropped_invalid"].items() if reason == "total"]
        steps += [f"{count} by {cut}" for cut, count in record["quality_cuts"]["removed"].items()
                  if count]
        raise ValueError(
            f"{len(table)} stars left to fit ({'; '.join(steps) or 'no rows removed'}); a "
            f"cluster model needs at least {MIN_STARS}: loosen the cuts or give a larger field")
    for name in columns:
        if name == "source_id" or name.endswith(("_error", "_corr")):
            continue
        values = np.asarray(table[name], float)
        if np.ptp(values) == 0:
            raise DataValidationError(name, f"are all identical ({values[0]:g}): a mixture "
                                      "needs values that differ", len(values), len(values))


def footprint_for(table, inputs: ClusterInput, center) -> Footprint | None:
    """The data's sky footprint (:mod:`starmix.data.footprint`) for the joint model, else None."""
    if inputs.model != "joint":
        return None
    return table_footprint(table, inputs.footprint, center, inputs.radius_arcmin)


def check_inside(table: Table, footprint: Footprint) -> None:
    """Every star must lie inside the footprint (1% tolerance), or the field's sky density
    is wrong: an error names the option and counts the stars outside."""
    import astropy.units as u

    from starmix.data.gaia import separation

    outside = separation(table, footprint.center) > footprint.radius_arcmin * 1.01 * u.arcmin
    if outside.any():
        raise ValueError(
            f"--footprint: {int(outside.sum())} of {len(table)} stars lie outside the "
            f"footprint ({footprint.radius_arcmin:g} arcmin around ({footprint.ra:.4f}, "
            f"{footprint.dec:.4f}), {footprint.origin}); give the cone the data were "
            "selected from")


def resolve_cluster_center(inputs: ClusterInput, reference):
    """(centre or None, where it came from): ``--center``, else the published centre, else
    astropy's name resolver; None when the run names no cluster and gives no centre (only
    the joint model and ``--radius`` need one)."""
    needs_center = inputs.model == "joint" or inputs.radius_arcmin is not None
    if reference is None and inputs.cluster is not None and not needs_center:
        raise ValueError(
            f"--cluster {inputs.cluster!r}: no published values for it (not in "
            f"{'--catalogue ' + inputs.catalogue if inputs.catalogue else 'a --catalogue file'}"
            " nor the built-in list: NGC6819, NGC2682/M67, NGC188); give a catalogue that "
            "holds it, or leave --cluster out to start from the field's overdensities")
    if inputs.center is not None or (reference is None and inputs.cluster is not None):
        return resolve_center(inputs.cluster, inputs.center)
    if reference is not None:
        return reference.center, f"published ({reference.source})"
    if inputs.model == "joint" or inputs.radius_arcmin is not None:
        raise ValueError(f"{'--model joint' if inputs.model == 'joint' else '--radius'} "
                         "needs the cluster centre: give --cluster NAME or --center RA DEC")
    return None, "none (no --cluster or --center)"
