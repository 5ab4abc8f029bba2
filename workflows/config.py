"""Options shared by every workflow, read from the command line and an optional TOML file.

Precedence: command-line flag > ``--config`` TOML file > built-in default. TOML keys are the
long option names with ``-`` or ``_`` (``target_accept = 0.95``).
"""

import os
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

SAMPLERS = ("auto", "pymc", "nutpie", "numpyro", "blackjax")
MASS_MATRICES = ("low_rank", "diag")


def available_cores() -> int:
    """CPUs this process may use (PyMC's own default assumes half are hyperthreads)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@dataclass(frozen=True)
class SamplingOptions:
    """NUTS settings. ``seed`` fixes every random step; ``cores=None`` runs as many chains
    in parallel as there are CPUs available. ``sampler="auto"`` and ``tune=None`` are
    settled per model by :func:`workflows.sampling.resolve_sampler` (nutpie with 300
    tuning steps when installed, else PyMC's NUTS with 1000). ``mass_matrix`` is nutpie's
    adaptation: ``low_rank`` (diagonal plus the leading correlations, learnt from draws and
    gradients) or ``diag``; the other samplers adapt a diagonal one."""

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
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"--sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.mass_matrix not in MASS_MATRICES:
            raise ValueError(f"--mass-matrix must be one of {MASS_MATRICES}, "
                             f"got {self.mass_matrix!r}")
        if not 0 < self.target_accept < 1:
            raise ValueError(f"--target-accept must lie in (0, 1), got {self.target_accept}")


@dataclass(frozen=True)
class GateThresholds:
    """Convergence gate: every monitored parameter must meet all of these."""

    r_hat_max: float = 1.01
    ess_bulk_min: float = 400
    ess_tail_min: float = 400
    divergences_max: int = 0


def read_config_file(path: str | Path | None) -> dict:
    """Read a TOML config into a flat dict with ``_`` in key names (empty for None)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    return {key.replace("-", "_"): value for key, value in raw.items()}


def merge_options(cli: dict, config: dict, defaults: dict) -> dict:
    """CLI values that are not None win over config values, which win over defaults."""
    unknown = set(config) - set(defaults)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(defaults)}")
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
    """Dataclass instances as one JSON-ready dict keyed by class name."""
    return {type(obj).__name__: asdict(obj) for obj in objects}
