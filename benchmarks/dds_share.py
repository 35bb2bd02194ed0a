"""What reaches the live node over real DDS: 4 cameras (720p raw rgb8 and JPEG, each with a best-effort
and a reliable subscription) for S seconds, on ROS 2 (rclpy + Fast DDS on loopback).

Starts `python -m ldfa_ros.node` and a camera process (test/ros_camera.py, reliable publishers of the
astronaut photo) and, for each camera, reports: frames sent, frames that reached the node's subscription
(its `inputs_total`), messages DDS reported lost (`dds_lost_total`), anonymized outputs received here,
end-to-end latency (camera stamp to arrival here) p50/p99, and the node's CPU and peak RSS. Prints a
summary and writes JSON (default benchmarks/results/dds_share.json).

    python benchmarks/dds_share.py [--seconds 60] [--rate 10] [--domain 42] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))
CAMERAS = {  # topic -> (kind, subscription reliability)
    "/b/raw_be/image_raw": ("raw", "best_effort"),
    "/b/raw_rel/image_raw": ("raw", "reliable"),
    "/b/jpeg_be/image_raw/compressed": ("jpeg", "best_effort"),
    "/b/jpeg_rel/image_raw/compressed": ("jpeg", "reliable"),
}


def proc_usage(pid: int) -> tuple[float, float]:
    """CPU seconds used so far and current RSS in MiB of process `pid` (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:")) / 1024
    return cpu, rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second per camera")
    parser.add_argument("--domain", type=int, default=42)
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "dds_share.json"))
    args = parser.parse_args()
    import ros_env  # before any message module: it sets ROS_PYTHON_CHECK_FIELDS

    os.environ.update(ros_env.ros_environ(args.domain))
    from diagnostic_msgs.msg import DiagnosticArray
    from ros_env import RosProcess, node_command
    from sensor_msgs.msg import CompressedImage, Image
    from test_node import Probe, statuses, values

    probe = Probe()
    arrivals: dict[str, list[float]] = {topic: [] for topic in CAMERAS}

    def on_output(topic: str):
        def callback(msg) -> None:
            now = probe.node.get_clock().now().nanoseconds * 1e-9
            arrivals[topic].append(now - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))
        return callback

    for topic, (kind, _) in CAMERAS.items():
        out = topic.replace("/compressed", "/anonymized/compressed") if kind == "jpeg" else f"{topic}/anonymized"
        probe.node.create_subscription(CompressedImage if kind == "jpeg" else Image, out, on_output(topic), 10)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
    overrides = [a for t, (_, q) in CAMERAS.items() for a in ("-p", f"qos_overrides.{t}.subscription.reliability:={q}")]
    node = RosProcess(node_command("-p", f"cameras:=[{','.join(CAMERAS)}]", *overrides), args.domain)
    node.wait_for_line("anonymizing", 180)
    camera = RosProcess([sys.executable, str(ROOT / "test" / "ros_camera.py"), *(f"{t}:{k}:reliable" for t, (k, _) in
                         CAMERAS.items()), "--rate", str(args.rate), "--size", "1280x720",
                         "--seconds", str(args.seconds)], args.domain)
    camera.wait_for_line("ready", 120)
    cpu0, _ = proc_usage(node._proc.pid)
    load = [os.getloadavg()[0]]
    start, peak_rss = time.monotonic(), 0.0
    while camera._proc.poll() is None:
        peak_rss = max(peak_rss, proc_usage(node._proc.pid)[1])
        time.sleep(0.5)
    elapsed = time.monotonic() - start
    load.append(os.getloadavg()[0])
    cpu1, _ = proc_usage(node._proc.pid)
    time.sleep(3)  # the last reports
    sent = {line.split()[1]: int(line.split()[2]) for line in camera.lines if line.startswith("sent ")}
    latest = statuses(diagnostics)
    node.signal(signal.SIGINT)
    exit_code = node.wait(60)
    probe.close()
    rows = {}
    for topic, (kind, qos) in CAMERAS.items():
        v = values(latest[f"/ldfa_node: {topic}"])
        lat = np.asarray(arrivals[topic]) * 1000
        rows[topic] = {"encoding": "rgb8 1280x720" if kind == "raw" else "jpeg 1280x720", "subscription": qos,
                       "sent": sent[topic], "reached_node": int(v["inputs_total"]),
                       "share_reaching_node": round(int(v["inputs_total"]) / max(sent[topic], 1), 3),
                       "dds_lost": int(v["dds_lost_total"]), "outputs_received": len(lat),
                       "latency_p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
                       "latency_p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None}
    result = {"seconds": round(elapsed, 1), "rate_hz": args.rate, "node_cpu_percent": round(100 * (cpu1 - cpu0) /
              elapsed, 1), "node_peak_rss_mib": round(peak_rss, 1), "node_exit_code": exit_code,
              "cameras": rows, "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "load_average_1min_start_end": load,
              "note": "method blur on CPU; the machine's 2 cores were shared with other jobs"}
    print(json.dumps(result, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
