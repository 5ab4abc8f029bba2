"""Options shared by every workflow, read from the command line and an optional TOML file.

Precedence: command-line flag > ``--config`` TOML file > built-in default. TOML keys are the
long option names with ``-`` or ``_`` (``target_accept = 0.95``). Values are typed by the
option they set (:func:`typed_options`): ``figures = "no"`` or ``draws = 100.5`` is an
error that names the file and the key, as is the same key spelt twice.
"""

import os
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path

from starmix.data.input_checks import check_regular_file, is_table, source_name

SAMPLERS = ("auto", "pymc", "nutpie", "numpyro", "blackjax")
MASS_MATRICES = ("low_rank", "diag")
# Hard bounds that need no knowledge of the model: more chains than any machine has cores
# for, or more draws or tuning steps than a run could finish, are a mistake (10**12 draws
# made nutpie abort with a Rust panic, 2**63 - 1 overflowed its integers). Whether the
# draws fit in memory and on disk is checked per model before sampling
# (:func:`starmix.workflows.inference.sampling.check_draw_budget`).
MAX_CHAINS = 64
MAX_STEPS = 10**8  # draws, and tuning steps, per chain


def in_python(name: str) -> str:
    """The end of an option's error message naming its Python keyword too (the same
    checks run for ``--draws`` on the command line and ``draws=`` in the API)."""
    return f" (in Python: {name}=)"


def available_cores() -> int:
    """CPUs this process may use (PyMC's own default assumes half are hyperthreads)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@dataclass(frozen=True)
class SamplingOptions:
    """NUTS settings. ``seed`` fixes every random step; ``cores=None`` runs as many chains
    in parallel as there are CPUs available. ``sampler="auto"`` and ``tune=None`` are
    settled per model by :func:`starmix.workflows.inference.sampling.resolve_sampler` (nutpie with
    300
    tuning steps when installed, else PyMC's NUTS with 1000). ``mass_matrix`` is nutpie's
    adaptation: ``low_rank`` (diagonal plus the leading correlations, learnt from draws and
    gradients) or ``diag``; the other samplers adapt a diagonal one. ``chains`` is at most
    ``MAX_CHAINS`` (64) and ``draws`` and ``tune`` at most ``MAX_STEPS`` (10**8); whether
    the draws fit in the machine's memory and disk is checked before sampling."""

    draws: int = 1000
    tune: int | None = None
    chains: int = 4
    cores: int | None = None
    seed: int = 42
    sampler: str = "auto"
    target_accept: float = 0.9
    mass_matrix: str = "low_rank"

    def __post_init__(self):
        for name in ("draws", "tune", "chains"):
            if getattr(self, name) is not None and getattr(self, name) < (name != "tune"):
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}"
                                 f"{in_python(name)}")
        for name, limit in (("draws", MAX_STEPS), ("tune", MAX_STEPS), ("chains", MAX_CHAINS)):
            if getattr(self, name) is not None and getattr(self, name) > limit:
                raise ValueError(f"--{name} must be at most {limit:,} (a limit of starmix, "
                                 f"whatever the machine), got {getattr(self, name)}"
                                 f"{in_python(name)}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"--seed must be a whole number from 0 to 2**32 - 1, got {self.seed}"
                             f"{in_python('seed')}")
        if self.cores is not None and self.cores < 1:
            raise ValueError(f"--cores must be at least 1 (chains run in parallel on that many "
                             f"CPUs; {available_cores()} available), got {self.cores}"
                             f"{in_python('cores')}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"--sampler must be one of {SAMPLERS}, got {self.sampler!r}"
                             f"{in_python('sampler')}")
        if self.mass_matrix not in MASS_MATRICES:
            raise ValueError(f"--mass-matrix must be one of {MASS_MATRICES}, "
                             f"got {self.mass_matrix!r}{in_python('mass_matrix')}")
        if not 0 < self.target_accept < 1:
            raise ValueError(f"--target-accept must lie in (0, 1), got {self.target_accept}"
                             f"{in_python('target_accept')}")


@dataclass(frozen=True)
class GateThresholds:
    """Convergence gate: every monitored parameter must meet all of these."""

    r_hat_max: float = 1.01
    ess_bulk_min: float = 400
    ess_tail_min: float = 400
    divergences_max: int = 0

    def __post_init__(self):
        if not self.r_hat_max >= 1:
            raise ValueError(f"--r-hat-max must be at least 1, got {self.r_hat_max}"
                             f"{in_python('r_hat_max')}")
        for name in ("ess_bulk_min", "ess_tail_min", "divergences_max"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 0, got "
                                 f"{getattr(self, name)}{in_python(name)}")


class ConfigError(ValueError):
    """A config file that cannot be used: the message names the file and the key."""


def read_config_file(path: str | Path | None, schema: dict | None = None) -> dict:
    """Read a TOML config into a flat dict with ``_`` in key names (empty for None).

    With ``schema`` ({key: type annotation}, see :func:`option_types`), every value is
    checked against its option's type and unknown keys are an error. A missing file is a
    ``FileNotFoundError``; a directory, FIFO, device or symbolic link loop a
    :class:`ConfigError` saying what the path is (never opened)."""
    if path is None:
        return {}
    path = Path(path)
    check_regular_file(path, "config file", "a TOML file", ConfigError)
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path}: not valid TOML: {err}") from None
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read: {err.strerror or err}") from None
    config = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name in config:
            raise ConfigError(f"config file {path}: {key!r} sets the same option as another "
                              f"key spelt differently ({name!r}); keep one")
        config[name] = value
    if schema is None:
        return config
    unknown = sorted(set(config) - set(schema))
    if unknown:
        raise ConfigError(f"config file {path}: unknown keys {unknown}; known: {sorted(schema)}")
    return {key: typed_value(value, schema[key], f"config file {path}: key {key!r}")
            for key, value in config.items()}


def option_types(*classes) -> dict:
    """{field name: its type annotation} of the given dataclasses."""
    hints = {}
    for cls in classes:
        hints.update(typing.get_type_hints(cls))
    return hints


def typed_value(value, annotation, where: str):
    """``value`` checked against ``annotation``: bool, int, float (ints accepted), str, a
    tuple of floats, or a union of these (each tried in turn; None is never a TOML value).
    Anything else is a :class:`ConfigError` naming ``where``."""
    options = [a for a in (typing.get_args(annotation)
                           if isinstance(annotation, types.UnionType)
                           or typing.get_origin(annotation) is typing.Union else (annotation,))
               if a is not type(None)]
    errors = []
    for option in options:
        try:
            return _typed_single(value, option, where)
        except ConfigError as error:
            errors.append(error)
    raise errors[0]


def _typed_single(value, base, where: str):
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if base is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false (TOML booleans, unquoted), "
                          f"got {value!r}")
    if base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be a whole number, got {value!r}")
    if base is float:
        if number:
            return float(value)
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if base is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be a string (in quotes), got {value!r}")
    if typing.get_origin(base) is tuple:
        items = typing.get_args(base)
        if isinstance(value, list) and len(value) == len(items) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return tuple(float(v) for v in value)
        raise ConfigError(f"{where} must be a list of {len(items)} numbers, got {value!r}")
    raise ConfigError(f"{where}: cannot check values of type {base}")


def merge_options(cli: dict, config: dict, defaults: dict) -> dict:
    """CLI values that are not None win over config values, which win over defaults."""
    unknown = set(config) - set(defaults)
    if unknown:
        raise ConfigError(f"unknown config keys {sorted(unknown)}; known: {sorted(defaults)}")
    merged = dict(defaults)
    merged.update(config)
    merged.update({key: value for key, value in cli.items() if value is not None})
    return merged


def dataclass_defaults(*classes) -> dict:
    """Field defaults of the given dataclasses, as one flat dict."""
    return {field.name: field.default for cls in classes for field in fields(cls)}


def pick(cls, options: dict):
    """Build dataclass ``cls`` from the matching keys of a flat options dict."""
    names = [field.name for field in fields(cls) if field.name in options]
    return cls(**{name: options[name] for name in names})


def as_record(*objects) -> dict:
    """Dataclass instances as one JSON-ready dict keyed by class name; a table given in
    Python as ``data`` is recorded by its description, not its contents."""
    return {type(obj).__name__: {field.name: _record_value(getattr(obj, field.name))
                                 for field in fields(obj)} for obj in objects}


def _record_value(value):
    if is_table(value):
        return source_name(value)
    if isinstance(value, dict) and any(callable(item) for item in value.values()):
        return {key: f"given in Python ({getattr(item, '__name__', type(item).__name__)})"
                for key, item in value.items()}
    return asdict(value) if is_dataclass(value) else value
