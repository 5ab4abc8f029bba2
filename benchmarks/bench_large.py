"""The whole pm2d workflow on a 200,000-star field: peak memory and posterior file size.

``make bench-large`` simulates an NGC 6819-like field of ``--stars`` stars (default
200,000; the default member fraction), writes it as FITS, and runs
``starmix run cluster --model pm2d`` on it as a user would (4 chains x 1000 draws,
detection on, figures off) in a child process, echoing its progress. It prints the wall
time, the child's peak resident memory (``ru_maxrss``, and per step from ``/proc``), the
size of ``posterior.nc``, the run's status and the
log-likelihood thinning it chose, against the targets: peak memory within 4 GiB and a
posterior file under 1 GB.
"""

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

PEAK_TARGET_MIB = 4096
POSTERIOR_TARGET_BYTES = 1e9


def watch_memory(process: subprocess.Popen, phase: dict) -> None:
    """Record the child's resident memory per step (from /proc, every 0.2 s)."""
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            rss_kib = next(int(line.split()[1]) for line in status.read_text().splitlines()
                           if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            break
        peaks = phase["peaks"]
        peaks[phase["name"]] = max(peaks.get(phase["name"], 0), rss_kib / 1024)
        time.sleep(0.2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stars", type=int, default=200_000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--out", default="results/bench-large",
                        help="folder for the field file and the run (default results/bench-large)")
    parser.add_argument("--log-likelihood", default="auto",
                        choices=["auto", "all", "thin", "none"])
    parser.add_argument("--json", default="results/bench_large.json")
    args = parser.parse_args(argv)

    from fields import scaled_field

    from starmix.data.cluster_field import write_cluster_field

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    field_path = out / f"field_{args.stars}.fits"
    if not field_path.is_file():
        print(f"simulating {args.stars} stars -> {field_path}", flush=True)
        write_cluster_field(scaled_field(args.stars), field_path)
    run_dir = out / "run"
    command = [sys.executable, "-m", "starmix.workflows.cli", "run", "cluster", "--model", "pm2d",
               "--data", str(field_path), "--cluster", "NGC6819", "--no-figures",
               "--draws", str(args.draws), "--chains", str(args.chains),
               "--log-likelihood", args.log_likelihood, "--out", str(run_dir)]
    print(" ".join(command), flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1)
    phase = {"name": "start", "peaks": {}}
    watcher = threading.Thread(target=watch_memory, args=(process, phase), daemon=True)
    watcher.start()
    for line in process.stdout:  # the run's own progress lines, as they come
        print(f"  | {line.rstrip()}", flush=True)
        text = line.split("] ", 1)[-1].strip()
        if line.startswith("[starmix") and text.endswith("..."):
            phase["name"] = text.rstrip(" .")
        elif line.startswith("[starmix") and text.startswith("detection: "):
            phase["name"] = text.split(";")[0][:60]
    code = process.wait()
    watcher.join(timeout=2)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    record_path = run_dir / "run_record.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    posterior = run_dir / "posterior.nc"
    size = posterior.stat().st_size if posterior.is_file() else float("nan")
    thinning = record.get("log_likelihood", {})
    result = {"stars": args.stars, "chains": args.chains, "draws": args.draws,
              "exit_code": code, "status": record.get("status"), "wall_s": round(seconds, 1),
              "peak_mib": round(peak_mib), "posterior_bytes": size,
              "peak_mib_by_step": {k: round(v) for k, v in phase["peaks"].items()},
              "log_likelihood": thinning,
              "peak_target_met": peak_mib <= PEAK_TARGET_MIB,
              "posterior_target_met": size < POSTERIOR_TARGET_BYTES}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print("peak resident memory by step (MiB, sampled every 0.2 s):")
    for name, value in phase["peaks"].items():
        print(f"  {name:<60} {value:8.0f}")
    print(f"pm2d workflow, {args.stars} stars, {args.chains} x {args.draws} draws: exit "
          f"{code} ({record.get('status')}), {seconds:.0f} s")
    print(f"  peak memory     {peak_mib:8.0f} MiB   (target <= {PEAK_TARGET_MIB} MiB: "
          f"{'met' if result['peak_target_met'] else 'NOT met'})")
    print(f"  posterior.nc    {size / 1e6:8.0f} MB    (target < 1000 MB: "
          f"{'met' if result['posterior_target_met'] else 'NOT met'})")
    if thinning:
        print(f"  log-likelihood  {thinning['mode']}: {thinning['draws_per_chain']} of "
              f"{thinning['of_draws_per_chain']} draws per chain kept"
              f"{'' if thinning['saved'] else ' (not saved)'}")
    print(f"written {args.json}")
    return 0 if code in (0, 2, 3) else code


if __name__ == "__main__":
    sys.exit(main())
