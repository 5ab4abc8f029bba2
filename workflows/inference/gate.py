"""Convergence gate: r_hat, bulk and tail ESS per parameter, and divergent transitions."""

from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from starmix.workflows.runs.options import GateThresholds


@dataclass
class GateReport:
    """Outcome of the convergence gate; ``failures`` are readable one-line reasons."""

    passed: bool
    failures: list[str]
    divergences: int
    diagnostics: pd.DataFrame = field(repr=False)
    thresholds: GateThresholds = field(default_factory=GateThresholds)

    def as_record(self) -> dict:
        return {
            "passed": self.passed,
            "failures": self.failures,
            "divergences": self.divergences,
            "thresholds": vars(self.thresholds),
            "per_parameter": {
                name: {key: _json_number(value) for key, value in row.items()}
                for name, row in self.diagnostics.iterrows()
            },
        }

    def text(self) -> str:
        head = "convergence gate: PASSED" if self.passed else "convergence gate: FAILED"
        lines = [head, f"  divergent transitions: {self.divergences}"]
        lines += [f"  - {reason}" for reason in self.failures]
        return "\n".join(lines)


def convergence_gate(
    idata: xr.DataTree, var_names, thresholds: GateThresholds | None = None
) -> GateReport:
    """Check every element of ``var_names`` in the posterior against ``thresholds``.

    r_hat is undefined with one chain; that fails the gate with a reason saying so.
    """
    thresholds = thresholds or GateThresholds()
    table = az.summary(idata, var_names=list(var_names), kind="diagnostics", round_to="none")
    table = table[["r_hat", "ess_bulk", "ess_tail"]]
    failures = []
    for name, row in table.iterrows():
        if not np.isfinite(row.r_hat):
            failures.append(f"{name}: r_hat is undefined (need >= 2 chains)")
        elif row.r_hat > thresholds.r_hat_max:
            failures.append(f"{name}: r_hat {row.r_hat:.3f} > {thresholds.r_hat_max}")
        if not row.ess_bulk >= thresholds.ess_bulk_min:
            failures.append(f"{name}: bulk ESS {row.ess_bulk:.0f} < {thresholds.ess_bulk_min:g}")
        if not row.ess_tail >= thresholds.ess_tail_min:
            failures.append(f"{name}: tail ESS {row.ess_tail:.0f} < {thresholds.ess_tail_min:g}")
    divergences = count_divergences(idata)
    if divergences > thresholds.divergences_max:
        failures.append(
            f"{divergences} divergent transitions (at most {thresholds.divergences_max} allowed):"
            " raise --target-accept or reparametrise"
        )
    return GateReport(not failures, failures, divergences, table, thresholds)


def count_divergences(idata: xr.DataTree) -> int:
    stats = idata["sample_stats"]
    return int(stats["diverging"].sum()) if "diverging" in stats else 0


def _json_number(value):
    value = float(value)
    return value if np.isfinite(value) else None
