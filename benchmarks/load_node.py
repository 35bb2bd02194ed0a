"""Load test of the live node: N cameras x R Hz of synthetic 1080p frames for S seconds, with blur.

Runs `ldfa_ros/node.py` on the rclpy stand-in of test/rclpy_standin (no ROS 2 here) with the real
CenterFace detector: one publisher thread delivers camera frames on schedule to the subscription
callbacks, as an executor would, while the node's worker anonymizes the newest frames.
It reports what a vehicle team needs to know, not pass/fail: output rate, drops, latency from the
header stamp, the worker's queue (frames waiting; bounded by the number of cameras) and the
process memory over time. Prints a summary and writes JSON (default benchmarks/results/load_node.json).

    python benchmarks/load_node.py [--cameras 8] [--rate 30] [--seconds 60] [--json PATH]
"""
from __future__ import annotations

import argparse
import array
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))


def rss_mb() -> float:
    """Resident memory of this process (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second per camera")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "load_node.json"))
    args = parser.parse_args()

    from rclpy_standin.activate import standin_imports

    with standin_imports():
        import rclpy
        import standin
        from builtin_interfaces.msg import Time
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Image
        from std_msgs.msg import Header

        from ldfa_ros.samples import sample_frames
        from ldfa_ros.node import LdfaNode

        bus = standin.BUS
        rclpy.init()
        cameras = [f"/cam{i}/image_raw" for i in range(args.cameras)]
        node = LdfaNode(parameter_overrides=[Parameter("cameras", value=cameras), Parameter("method", value="blur")])
        base = sample_frames()["street_1080p.png"]
        h, w = base.shape[:2]
        frames = [array.array("B", np.ascontiguousarray(np.roll(base, 97 * i, axis=1)).tobytes())
                  for i in range(args.cameras)]

        latencies: list[float] = []
        publish = node._publish

        def timed_publish(out):  # latency from the header stamp to the moment of publishing
            publish(out)
            if out.msg is not None:
                stamp = out.header.stamp
                latencies.append(bus.clock() / 1e9 - (stamp.sec + stamp.nanosec / 1e9))
        node._live._publish = timed_publish

        stop = threading.Event()
        sent = [0]

        def cameras_publish() -> None:
            period, start = 1.0 / args.rate, time.monotonic()
            tick = 0
            while not stop.is_set():
                for i, topic in enumerate(cameras):
                    ns = bus.clock()
                    bus.deliver(topic, Image(header=Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9),
                                                           frame_id=f"cam{i}"), height=h, width=w, encoding="rgb8",
                                             is_bigendian=0, step=w * 3, data=frames[i]))
                    sent[0] += 1
                tick += 1
                time.sleep(max(0.0, start + tick * period - time.monotonic()))

        publisher = threading.Thread(target=cameras_publish, daemon=True)
        samples = []
        start = time.monotonic()
        publisher.start()
        while (elapsed := time.monotonic() - start) < args.seconds:
            time.sleep(1.0)
            bus.fire_timers()  # /diagnostics once a second
            report = bus.published.pop("/diagnostics")[-1]
            outputs = sum(len(bus.published.pop(f"{c}/anonymized", [])) for c in cameras)
            samples.append({"t_s": round(elapsed, 1), "rss_mb": round(rss_mb(), 1), "pending": node._live.pending(),
                            "outputs": outputs, "sent": sent[0],
                            "status": {s.name: {kv.key: kv.value for kv in s.values} for s in report.status}})
        stop.set()
        publisher.join()
        node.destroy_node()
        rclpy.try_shutdown()

    # The pipeline alone on the same frames, right after: what one worker can do on this machine now.
    from ldfa_ros.pipeline import FrameInput

    pixels = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in frames]
    begin = time.perf_counter()
    for i, rgb in enumerate(pixels[:4]):
        node._live.pipeline.process_many([FrameInput(rgb, f"alone{i}")])
    alone_ms = (time.perf_counter() - begin) * 1000 / 4
    totals = [node._live.totals(c) for c in cameras]
    lat = np.asarray(latencies) * 1000
    # Memory once every buffer exists (from the first outputs on), as the peak of the first and of the
    # last third: RSS swings by a few frames' worth as messages come and go, a leak shows as a rising peak.
    first = next((i for i, s in enumerate(samples) if s["outputs"]), 0)
    rss = [s["rss_mb"] for s in samples[first:]] or [float("nan")]
    third = max(1, len(rss) // 3)
    early, late = max(rss[:third]), max(rss[-third:])
    result = {
        "setup": {"cameras": args.cameras, "rate_hz": args.rate, "seconds": args.seconds, "frame": f"{w}x{h} rgb8",
                  "method": "blur", "detector": "CenterFace (onnxruntime CPU)", "cpu_count": os.cpu_count(),
                  "machine": platform.processor() or platform.machine(), "python": platform.python_version()},
        "inputs": sum(t.get("inputs", 0) for t in totals),
        "outputs": sum(t.get("outputs", 0) for t in totals),
        "drops": sum(t.get("drops", 0) for t in totals),
        "errors": sum(t.get("errors", 0) for t in totals),
        "output_rate_hz_per_camera": round(sum(t.get("outputs", 0) for t in totals) / args.seconds / args.cameras, 2),
        "input_rate_hz_total": round(sum(t.get("inputs", 0) for t in totals) / args.seconds, 1),
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p99": round(float(np.percentile(lat, 99)), 1),
                       "max": round(float(lat.max()), 1)} if lat.size else None,
        "pipeline_alone_ms_per_frame": round(alone_ms, 1),
        "worker_busy_share": round(sum(t.get("outputs", 0) for t in totals) * alone_ms / 1000 / args.seconds, 2),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "pending_max": max(s["pending"] for s in samples),
        "rss_mb": {"min": min(rss), "max": max(rss), "peak_first_third": early, "peak_last_third": late,
                   "peak_growth": round(late - early, 1)},
        "per_camera": {c: t for c, t in zip(cameras, totals)},
        "timeline": [{k: v for k, v in s.items() if k != "status"} for s in samples],
        "last_diagnostics": samples[-1]["status"] if samples else {},
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.cameras} cameras x {args.rate:g} Hz x {args.seconds:g} s of {w}x{h}, blur, {os.cpu_count()} CPUs")
    print(f"inputs {result['inputs']} ({result['input_rate_hz_total']}/s), outputs {result['outputs']} "
          f"({result['output_rate_hz_per_camera']} Hz per camera), drops {result['drops']}, errors {result['errors']}")
    if lat.size:
        print(f"latency from header stamp: p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms")
    print(f"pipeline alone: {alone_ms:.0f} ms per frame, so the worker was busy {result['worker_busy_share']:.0%} "
          f"of the time (load average {result['load_average_1min_at_end']} on {os.cpu_count()} CPUs)")
    print(f"frames waiting for the worker: at most {result['pending_max']} (bound: {args.cameras})")
    print(f"memory: {min(rss)}-{max(rss)} MB; peak {early} MB in the first third, {late} MB in the last")
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
