"""Kill rate of the last ``mutmut run`` (``make mutation``), per module, and the survivors.

Reads ``mutmut results --all true``. A mutant counts as killed when a test failed on it
(or it timed out); "survived" and "no tests" (no selected test reaches the code) count
against the module. Prints one row per module and the names of the surviving mutants
(``mutmut show NAME`` prints a mutant's diff).
"""

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KILLED = {"killed", "timeout"}
NOT_RUN = {"skipped", "not checked", "check was interrupted by user"}
TARGET = 0.9
# Code that runs when its module is imported: mutmut imports the modules once and forks a
# child per mutant, so a mutant of these functions is never executed by any test. They are
# reported apart (their behaviour is tested, through the kernels they build, in
# tests/test_fused.py).
IMPORT_TIME = tuple(f"starmix.models.fused.{name}" for name in (
    "x__specialised_kernel", "x__specialised_loglike", "x__cached_per_dim", "x__upper_pairs",
    "xǁ_SpecialisedCacheǁ__init__"))


def main() -> int:
    mutmut = Path(sys.executable).parent / "mutmut"
    found = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=ROOT,
                           capture_output=True, text=True)
    by_module: dict[str, Counter] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for line in found.stdout.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if "__mutmut_" not in name:
            continue
        module = name.rsplit(".", 1)[0]  # the module: everything before the mutant name
        if name.startswith(IMPORT_TIME):
            module = "(import-time, untestable)"
        by_module[module][status] += 1
        if status not in KILLED | NOT_RUN:
            survivors[module].append(f"{name} ({status})")
    if not by_module:
        print("no mutmut results: run `make mutation` first", file=sys.stderr)
        return 1
    print(f"{'module':<26} {'mutants':>8} {'killed':>7} {'rate':>6}")
    total_run = total_killed = unchecked = 0
    for module, counts in sorted(by_module.items()):
        run = sum(n for status, n in counts.items() if status not in NOT_RUN)
        killed = sum(counts[status] for status in KILLED)
        unchecked += sum(n for status, n in counts.items() if status in NOT_RUN)
        if not module.startswith("("):
            total_run, total_killed = total_run + run, total_killed + killed
        rate = killed / run if run else float("nan")
        print(f"{module:<26} {run:>8} {killed:>7} {rate:>6.1%}")
    overall = total_killed / total_run if total_run else float("nan")
    print(f"{'all testable':<26} {total_run:>8} {total_killed:>7} {overall:>6.1%}   "
          f"(target {TARGET:.0%}: {'met' if overall >= TARGET else 'NOT met'})")
    if unchecked:
        print(f"{unchecked} mutants not checked yet (an interrupted run): the rates cover "
              "the checked ones only")
    for module, names in sorted(survivors.items()):
        print(f"\nsurvivors in {module} ({len(names)}):")
        for name in names:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
