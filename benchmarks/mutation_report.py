"""Kill rate of the last ``mutmut run`` (``make mutation``), per module, and the survivors.

Reads ``mutmut results --all true``. A mutant counts as killed when a test failed on it
(or it timed out); "survived" and "no tests" (no selected test reaches the code) count
against the module. Prints one row per module and the names of the surviving mutants
(``mutmut show NAME`` prints a mutant's diff).
"""

import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_FILE = ROOT / "mutants" / "sample.json"  # benchmarks/mutation_sample.py
KILLED = {"killed", "timeout"}
NOT_RUN = {"skipped", "not checked", "check was interrupted by user"}
TARGET = 0.9
# Code that runs when its module is imported: mutmut imports the modules once and forks a
# child per mutant, so a mutant of these functions is never executed by any test. They are
# reported apart (their behaviour is tested, through the kernels they build, in
# tests/models/test_fused.py).
IMPORT_TIME = tuple(f"starmix.models.fused.{name}" for name in (
    "x__specialised_kernel", "x__specialised_loglike", "x__cached_per_dim", "x__upper_pairs",
    "xǁ_SpecialisedCacheǁ__init__"))


def wilson(killed: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    if n == 0:
        return float("nan"), float("nan")
    p = killed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def run_and_killed(counts: Counter) -> tuple[int, int]:
    """Mutants checked (any status but not run) and killed, from a status count."""
    run = sum(n for status, n in counts.items() if status not in NOT_RUN)
    return run, sum(counts[status] for status in KILLED)


def stratified(census: Counter, sample: Counter, n_unchecked: int):
    """A module's estimated kill rate and 95% interval: the mutants the ordinary run
    checked count as themselves; the ``n_unchecked`` it did not reach count at the rate of
    their random sample (``sample``: statuses of the sampled ones checked so far)."""
    (census_run, census_killed), (sample_run, sample_killed) = map(run_and_killed,
                                                                   (census, sample))
    total = census_run + n_unchecked
    if not sample_run:
        return census_killed / census_run if census_run else float("nan"), (float("nan"),) * 2
    low, high = wilson(sample_killed, sample_run)
    rate = (census_killed + n_unchecked * sample_killed / sample_run) / total
    return rate, ((census_killed + n_unchecked * low) / total,
                  (census_killed + n_unchecked * high) / total)


def main() -> int:
    mutmut = Path(sys.executable).parent / "mutmut"
    found = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=ROOT,
                           capture_output=True, text=True)
    saved = json.loads(SAMPLE_FILE.read_text()) if SAMPLE_FILE.is_file() else None
    sampled = {name for names in (saved or {}).get("sample", {}).values() for name in names}
    by_module: dict[str, Counter] = defaultdict(Counter)
    in_sample: dict[str, Counter] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for line in found.stdout.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if "__mutmut_" not in name:
            continue
        module = name.partition("__mutmut_")[0].rsplit(".", 1)[0]
        if name.startswith(IMPORT_TIME):
            module = "(import-time, untestable)"
        (in_sample if name in sampled else by_module)[module][status] += 1
        if status not in KILLED | NOT_RUN:
            survivors[module].append(f"{name} ({status}{', sampled' if name in sampled else ''})")
    if not by_module:
        print("no mutmut results: run `make mutation` first", file=sys.stderr)
        return 1
    unchecked_at_sampling = (saved or {}).get("unchecked", {})
    print(f"{'module':<26} {'mutants':>8} {'checked':>8} {'killed':>7} {'rate':>6}"
          + ("   estimate (95% interval) with the sample of the unchecked" if saved else ""))
    totals = Counter()
    unchecked = 0
    for module in sorted(set(by_module) | set(in_sample)):
        counts, sample = by_module[module], in_sample[module]
        run, killed = run_and_killed(counts)
        not_run = sum(n for status, n in counts.items() if status in NOT_RUN)
        n_all = sum(counts.values()) + sum(sample.values())
        unchecked += not_run
        rate = killed / run if run else float("nan")
        line = f"{module:<26} {n_all:>8} {run:>8} {killed:>7} {rate:>6.1%}"
        n_unchecked = unchecked_at_sampling.get(module, 0)
        if not module.startswith("("):
            if saved and n_unchecked:
                estimate, (low, high) = stratified(counts, sample, n_unchecked)
                sample_run = run_and_killed(sample)[0]
                line += (f"   {estimate:6.1%} ({low:.1%}-{high:.1%}; {sample_run} of "
                         f"{n_unchecked} unchecked sampled)")
                totals["estimated_killed"] += estimate * (run + n_unchecked)
                totals["estimated_total"] += run + n_unchecked
            else:
                totals["estimated_killed"] += killed
                totals["estimated_total"] += run
            totals["run"] += run
            totals["killed"] += killed
        print(line)
    overall = totals["killed"] / totals["run"] if totals["run"] else float("nan")
    print(f"{'all testable, checked':<26} {'':>8} {totals['run']:>8} {totals['killed']:>7} "
          f"{overall:>6.1%}   (target {TARGET:.0%}: {'met' if overall >= TARGET else 'NOT met'}"
          " on the checked mutants)")
    if saved:
        estimate = totals["estimated_killed"] / totals["estimated_total"]
        print(f"all testable, estimated: {estimate:.1%} of {totals['estimated_total']:.0f} "
              f"mutants (the unchecked at their sampled rate; target {TARGET:.0%}: "
              f"{'met' if estimate >= TARGET else 'NOT met'})")
    if unchecked:
        print(f"{unchecked} mutants not checked (an interrupted run"
              + (", outside the sample" if saved else "") + ")")
    for module, names in sorted(survivors.items()):
        print(f"\nsurvivors in {module} ({len(names)}):")
        for name in names:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
