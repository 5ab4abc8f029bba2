"""``python -m validation`` (``make validate``): SBC, coverage, membership calibration, report.

    python -m validation                 # everything at full size (about 2 hours on 2 cores)
    python -m validation --quick         # 20 replicates, 8 fields: a few minutes
    python -m validation sbc --cases pmra pm2d --replicates 200
    python -m validation report          # rebuild the report from saved results

Every fit is a Dask task: on a local cluster of ``--workers`` single-threaded processes
(default 2), or on the running cluster at ``--scheduler tcp://host:8786``. Results (JSON,
one file per experiment) go to ``--results``; a rerun only fits what is
missing. The report (markdown + figures) goes to ``--figures``.
"""

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from starmix.workflows.runs.interrupt import RunInterrupted, stop_on_signals
from starmix.workflows.survey.run import close_client
from validation.cases import CASES, CORRECT_CASES, WRONG_CASES, sbc_task
from validation.coverage import COVERAGE_SAMPLING, COVERAGE_TIMEOUT_S, coverage_task
from validation.report import write_report
from validation.runner import make_client, run_all
from validation.sbc import SBC_SAMPLING, SBC_TIMEOUT_S


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m validation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", nargs="?", default="all",
                        choices=["all", "sbc", "coverage", "report"])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES),
                        default=[*CORRECT_CASES, *WRONG_CASES], help="SBC cases (default all)")
    parser.add_argument("--replicates", type=int, default=100, help="SBC replicates per case")
    parser.add_argument("--wrong-replicates", type=int, default=40,
                        help="SBC replicates of the deliberately wrong models (they only "
                             "need to fail)")
    parser.add_argument("--fields", type=int, default=50, help="simulated fields for coverage")
    parser.add_argument("--quick", action="store_true",
                        help="20 replicates and 8 fields (a smoke run; too few to judge)")
    parser.add_argument("--workers", "--jobs", type=int, default=2,
                        help="local Dask worker processes, one thread each (default 2)")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler "
                                            "(tcp://host:8786) instead of a local cluster")
    parser.add_argument("--results", default="results/validation", help="saved fits")
    parser.add_argument("--figures", default="figures/validation", help="report and figures")
    args = parser.parse_args(argv)
    if args.quick:
        args.replicates, args.wrong_replicates, args.fields = 20, 20, 8
    return args


def run_sbc(args, client) -> None:
    for name in args.cases:
        replicates = args.wrong_replicates if name in WRONG_CASES else args.replicates
        run_all(Path(args.results) / f"sbc_{name}.json", sbc_task, range(replicates),
                client, f"SBC {name}", {"case": name, "description": CASES[name].description,
                                            "sampling": asdict(SBC_SAMPLING),
                                            "timeout_s": SBC_TIMEOUT_S},
                SBC_TIMEOUT_S, case_name=name, sampling=asdict(SBC_SAMPLING))


def run_coverage(args, client) -> None:
    run_all(Path(args.results) / "coverage.json", coverage_task, range(1, args.fields + 1),
            client, "coverage", {"sampling": asdict(COVERAGE_SAMPLING),
                                    "timeout_s": COVERAGE_TIMEOUT_S},
            COVERAGE_TIMEOUT_S, sampling=asdict(COVERAGE_SAMPLING))


def main(argv=None) -> int:
    args = parse_args(argv)
    client = None
    try:
        with stop_on_signals():
            if args.step != "report":
                client = make_client(args.workers, args.scheduler)
            if args.step in ("all", "sbc"):
                run_sbc(args, client)
            if args.step in ("all", "coverage"):
                run_coverage(args, client)
            if client is not None:
                close_client(client)
                client = None
            report = write_report(Path(args.results), Path(args.figures))
    except RunInterrupted as stop:
        print(f"validation {stop}; finished fits are saved in {args.results}, a rerun "
              "continues from there", file=sys.stderr)
        return stop.exit_code
    finally:
        if client is not None:
            close_client(client)
    print(f"report: {report.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
