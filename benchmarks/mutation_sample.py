"""Check a seeded random sample of the mutants a ``mutmut run`` has not reached yet.

mutmut runs the mutants whose tests are fastest first; those of the model modules come last
and cost most (each one rebuilds and compiles models: mutmut's worst-case estimate for the
rest of the field module alone is 12 hours). When a full run does not fit, this script
picks ``--per-module`` of the unchecked mutants of each module at random (``--seed``),
records the sample and the number it was drawn from in ``mutants/sample.json``, and runs
``mutmut run`` on exactly those (a rerun finishes the same sample).
``benchmarks/mutation_report.py`` then estimates each module's kill rate by strata: every
mutant checked by the ordinary run counts as itself, the unchecked ones at the sampled
rate, with a binomial interval.

Run: ``make mutation-sample`` (after ``make mutation`` was interrupted, or instead of it).
"""

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_FILE = ROOT / "mutants" / "sample.json"


def mutant_statuses(mutmut: Path) -> dict[str, str]:
    found = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=ROOT,
                           capture_output=True, text=True)
    statuses = {}
    for line in found.stdout.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if "__mutmut_" in name:
            statuses[name] = status
    return statuses


def module_of(name: str) -> str:
    return name.partition("__mutmut_")[0].rsplit(".", 1)[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-module", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-children", type=int, default=2)
    args = parser.parse_args(argv)
    mutmut = Path(sys.executable).parent / "mutmut"
    statuses = mutant_statuses(mutmut)
    if not statuses:
        print("no mutants yet: run `make mutation` first (it may be interrupted once the "
              "fast modules are done)", file=sys.stderr)
        return 1
    if SAMPLE_FILE.is_file():  # an interrupted sample run: finish the same sample
        saved = json.loads(SAMPLE_FILE.read_text())
        sample, unchecked_counts = saved["sample"], saved["unchecked"]
        print(f"continuing the sample in {SAMPLE_FILE} (seed {saved['seed']})", flush=True)
    else:
        unchecked = defaultdict(list)
        for name, status in sorted(statuses.items()):
            if status == "not checked":
                unchecked[module_of(name)].append(name)
        rng = np.random.default_rng(args.seed)
        sample = {module: sorted(rng.choice(names, min(args.per_module, len(names)),
                                            replace=False).tolist())
                  for module, names in unchecked.items()}
        unchecked_counts = {module: len(names) for module, names in unchecked.items()}
        SAMPLE_FILE.write_text(json.dumps({
            "seed": args.seed, "per_module": args.per_module, "unchecked": unchecked_counts,
            "sample": sample}, indent=1))
    chosen = [name for names in sample.values() for name in names
              if statuses.get(name) == "not checked"]
    print(f"{len(chosen)} sampled mutants to check, of {sum(unchecked_counts.values())} "
          f"unchecked in {len(sample)} modules; list in {SAMPLE_FILE}", flush=True)
    if chosen:
        subprocess.run([str(mutmut), "run", "--max-children", str(args.max_children), *chosen],
                       cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
