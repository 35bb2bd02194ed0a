"""Ctrl-C in the `ros2 launch` terminal while frames flow, N times: exit code, traceback, every output anonymized.

Builds the package in a temporary colcon workspace, then per try starts two real camera processes (raw Image
and JPEG CompressedImage of the astronaut photo at 5 Hz), a listener of the outputs and
`ros2 launch ldfa_ros ldfa.launch.py cameras:=/cam_front/image_raw,/cam_rear/image_raw/compressed`; once both
outputs have frames it sends SIGINT to the launch process group, as a terminal does. Needs the runtime of
scripts/ros_setup.sh in this Python. Writes benchmarks/results/launch_sigint.json.

    python benchmarks/launch_sigint.py [--tries 10] [--presses 1] [--domain 77] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))

import ros_peers  # noqa: E402

CAMERAS = ["/cam_front/image_raw", "/cam_rear/image_raw/compressed"]
OUTPUTS = ["/cam_front/image_raw/anonymized", "/cam_rear/image_raw/anonymized/compressed"]


def one_try(env: dict[str, str], setup_bash: Path, tmp: Path, min_frames: int, presses: int) -> dict:
    """One launch, cameras flowing, Ctrl-C (`presses` times); what a user would see."""
    cameras = [ros_peers.peer("camera", None, [t], env, tmp / f"camera{i}.log", "--rate", "5")
               for i, t in enumerate(CAMERAS)]
    listener = ros_peers.peer("listen", tmp / "listen.json", OUTPUTS, env, tmp / "listen.log")
    begin = time.monotonic()
    launch = ros_peers.start("ros2 launch ldfa_ros ldfa.launch.py cameras:=" + ",".join(CAMERAS), env,
                             tmp / "launch.log", setup_bash)
    flowing = False
    while time.monotonic() - begin < 180 and launch.poll() is None:
        report = ros_peers.read_json(tmp / "listen.json").get("topics", {})
        if report and all(report[t]["frames"] >= min_frames for t in OUTPUTS):
            flowing = True
            break
        time.sleep(0.5)
    started = time.monotonic()
    code = ros_peers.interrupt(launch, presses=presses)
    stop_s = time.monotonic() - started
    for other in [*cameras, listener]:
        ros_peers.interrupt(other)
    log = (tmp / "launch.log").read_text()
    topics = ros_peers.read_json(tmp / "listen.json").get("topics", {})
    anonymized = flowing and all(s["raw"] == 0 and (s["face_change_min"] or 0) > 15 for s in topics.values())
    return {"exit_code": code, "traceback": "Traceback" in log, "process_died": "process has died" in log,
            "frames_flowing_at_sigint": flowing, "all_outputs_anonymized": anonymized,
            "outputs": {t: s["frames"] for t, s in topics.items()}, "seconds_to_exit": round(stop_s, 2),
            "seconds_to_first_frames": round(started - begin, 1),
            "log_tail": log[-1500:] if code != 0 or "Traceback" in log else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--min-frames", type=int, default=3, help="outputs per camera before Ctrl-C")
    parser.add_argument("--presses", type=int, default=1, help="Ctrl-C presses, 0.2 s apart (2: the impatient user)")
    parser.add_argument("--domain", type=int, default=50 + os.getpid() % 50, help="ROS_DOMAIN_ID")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "launch_sigint.json"))
    args = parser.parse_args()
    env = ros_peers.ros_env(args.domain)
    with tempfile.TemporaryDirectory() as tmp:
        setup_bash = ros_peers.build_workspace(Path(tmp) / "ws", env)
        tries = []
        for i in range(args.tries):
            folder = Path(tmp) / f"try{i}"
            folder.mkdir()
            tries.append(one_try(env, setup_bash, folder, args.min_frames, args.presses))
            t = tries[-1]
            print(f"try {i + 1}: exit {t['exit_code']}, traceback {t['traceback']}, anonymized "
                  f"{t['all_outputs_anonymized']}, outputs {t['outputs']}, exit took {t['seconds_to_exit']} s",
                  flush=True)
    clean = sum(t["exit_code"] == 0 and not t["traceback"] and not t["process_died"] and t["all_outputs_anonymized"]
                for t in tries)
    result = {"tries": args.tries, "presses": args.presses, "clean": clean, "cpu_count": os.cpu_count(),
              "load_average_1min_at_end": round(os.getloadavg()[0], 2), "results": tries}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{clean} of {args.tries} tries: exit 0, no traceback, every output anonymized; written {args.json}")
    return 0 if clean == args.tries else 1


if __name__ == "__main__":
    sys.exit(main())
