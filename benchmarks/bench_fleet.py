"""Throughput of `ldfa fleet` with 1 and 2 workers on this machine (a local Ray instance), blur method.

Writes `--bags` ROS 2 bags of `--frames` 1920x1080 JPEG camera frames each (real faces at four sizes,
panning, plus Imu/TF/String), then for each `--configs` WORKERSxCPUS (CPUs per worker, which is also
its detector's thread count) runs `ldfa fleet` over all of them in a child process and reads its
report: frames/s of the job (first worker start to last bag), frames/s per worker (frames / time spent
inside bags), and wall time with Ray's start. A single-process `ldfa bag`
of one bag is the baseline a worker should match. Prints a table and writes JSON (default
benchmarks/results/bench_fleet.json).

    python benchmarks/bench_fleet.py [--bags 4] [--frames 24] [--configs 1x1 2x1 1x2] [--preset recall] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ldfa_ros.bag import report_path
from ldfa_ros.fleet import FLEET_REPORT
from ldfa_ros.samples import write_sample_bag


def run(cmd: list[str]) -> float:
    """Run an `ldfa` command in a child process; its wall time."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ldfa_ros.cli", *cmd], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ldfa {' '.join(cmd)} exited with {done.returncode}: {done.stderr[-2000:]}")
    return time.perf_counter() - start


def fleet(bags: list[Path], out: Path, config: str, preset: str) -> dict[str, Any]:
    workers, cpus = config.split("x")
    load = os.getloadavg()[0]
    wall = run(["fleet", *map(str, bags), "-o", str(out), "--workers", workers, "--cpus-per-worker", cpus,
                "--overwrite", "--preset", preset])
    report = json.loads((out / FLEET_REPORT).read_text())
    totals = report["totals"]
    return {"workers": int(workers), "cpus_per_worker": float(cpus), "frames": totals["frames_this_run"],
            "frames_per_s": totals["frames_per_s"],
            "frames_per_s_per_worker": totals["frames_per_s_per_worker"], "processing_s": report["processing_s"],
            "wall_s_with_ray_start": round(wall, 1), "load_before": load,
            "load_after": os.getloadavg()[0], "bags_per_worker": _bags_per_worker(report)}


def _bags_per_worker(report: dict[str, Any]) -> list[int]:
    count: dict[int, int] = {}
    for bag in report["bags"]:
        count[bag["worker"]["pid"]] = count.get(bag["worker"]["pid"], 0) + 1
    return sorted(count.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bags", type=int, default=4)
    parser.add_argument("--frames", type=int, default=24, help="frames per bag")
    parser.add_argument("--configs", nargs="+", default=["1x1", "2x1", "1x2"], help="WORKERSxCPUS_PER_WORKER")
    parser.add_argument("--preset", default="recall", choices=["realtime", "recall"],
                        help="detector preset (the offline commands' default: recall)")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_fleet.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_fleet_"))
    try:
        bags = [write_sample_bag(work / f"drive_{i}", args.frames, encoding="jpeg") for i in range(args.bags)]
        load = os.getloadavg()[0]
        run(["bag", str(bags[0]), "-o", str(work / "single"), "--method", "blur", "--preset", args.preset])
        single = json.loads(report_path(work / "single").read_text())
        baseline = {"frames_per_s": single["frames_per_s"], "load_before": load, "load_after": os.getloadavg()[0]}
        rows = [fleet(bags, work / f"out_{c}", c, args.preset) for c in args.configs]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"ldfa bag, one process, one bag: {baseline['frames_per_s']} frames/s")
    print("workers  cpus each  frames/s  per worker  processing s  wall s (with Ray start)  bags per worker")
    for r in rows:
        print(f"{r['workers']:>7}  {r['cpus_per_worker']:>9}  {r['frames_per_s']:>8}  "
              f"{r['frames_per_s_per_worker']:>10}  {r['processing_s']:>12}"
              f"  {r['wall_s_with_ray_start']:>23}  {r['bags_per_worker']}")
    result = {"benchmark": "bench_fleet", "bags": args.bags, "frames_per_bag": args.frames,
              "frame": "1920x1080 JPEG, 4 real faces", "method": "blur", "preset": args.preset, "cpus": os.cpu_count(),
              "machine": platform.platform(), "python": platform.python_version(),
              "note": "2-core VM shared with other engineers' jobs: load_before/after are 1-minute load averages",
              "ldfa_bag_baseline": baseline, "fleet": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
