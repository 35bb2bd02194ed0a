"""Throughput and peak memory of `ldfa bag` on a long 1080p bag, blur method.

Builds a ROS 2 bag with `--frames` 1920x1080 camera frames (real faces at four sizes, panning; raw rgb8
or JPEG) plus Imu/TF/String topics, then runs `ldfa bag` on it in a child process for each `--jobs`
value and reports frames/s (the bag pass, from the run's report) and the child's peak RSS (whole
process: interpreter, detector, window of frames). Prints a table and writes JSON
(default benchmarks/results/bench_bag.json).

    python benchmarks/bench_bag.py [--frames 300] [--encoding rgb8|jpeg] [--jobs 1 2] [--json PATH]
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
from ldfa_ros.samples import write_sample_bag


def run_bag(source: Path, output: Path, jobs: int, storage: str) -> dict[str, Any]:
    """One `ldfa bag` run in a child process: its report, wall time and peak RSS."""
    cmd = [sys.executable, "-m", "ldfa_ros.cli", "bag", str(source), "-o", str(output), "--method", "blur",
           "--jobs", str(jobs), "--storage", storage, "--overwrite"]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {os.waitstatus_to_exitcode(status)}")
    report = json.loads(report_path(output).read_text())
    topic = next(iter(report["image_topics"].values()))
    return {"jobs": jobs, "frames_per_s": report["frames_per_s"], "bag_pass_s": report["elapsed_s"],
            "wall_s_with_startup": round(wall, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "frames_in": topic["frames_in"], "frames_out": topic["frames_out"],
            "faces_hidden": topic["faces_hidden"], "output_bytes": sum(p.stat().st_size for p in output.iterdir())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--encoding", choices=("rgb8", "jpeg"), default="rgb8")
    parser.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_bag.json"))
    parser.add_argument("--workdir", help="where to put the bags (default: a temporary folder, removed after)")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_bag_"))
    try:
        source = work / "input"
        shutil.rmtree(source, ignore_errors=True)
        t0 = time.perf_counter()
        write_sample_bag(source, args.frames, encoding=args.encoding, storage=args.storage)
        built_s = time.perf_counter() - t0
        input_bytes = sum(p.stat().st_size for p in source.iterdir())
        load_before = os.getloadavg()
        runs = [run_bag(source, work / f"output_jobs{jobs}", jobs, args.storage) for jobs in args.jobs]
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "bag": {"frames": args.frames, "size": "1920x1080", "encoding": args.encoding, "storage": args.storage,
                "input_bytes": input_bytes, "build_s": round(built_s, 1)},
        "method": "blur", "runs": runs,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_avg_before": [round(v, 2) for v in load_before],
                    "load_avg_after": [round(v, 2) for v in os.getloadavg()]},
    }
    print(f"{args.frames} frames 1920x1080 {args.encoding} ({input_bytes / 2**20:.0f} MiB, {args.storage}), blur, "
          f"{os.cpu_count()} CPUs, load {load_before[0]:.1f}")
    print(f"{'jobs':>4} {'frames/s':>9} {'bag pass s':>11} {'peak RSS MiB':>13} {'frames in/out':>14}")
    for r in runs:
        print(f"{r['jobs']:>4} {r['frames_per_s']:>9} {r['bag_pass_s']:>11} {r['peak_rss_mib']:>13} "
              f"{r['frames_in']:>6}/{r['frames_out']:<7}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
