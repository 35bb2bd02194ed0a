"""Load test of the live node on real ROS 2 (rclpy + Fast DDS, loopback-only profile: shared memory + UDP).

Per configuration: `ldfa_node` (method blur, real CenterFace on the CPU) as its own process, CAMERAS camera
processes publishing the built-in street frame (four real faces) at RATE Hz as raw rgb8 Image or JPEG
CompressedImage, at 720p or 1080p, with a reliable or best-effort publisher; the node's subscriptions
best-effort depth 1 (its default) or reliable depth N (through `qos_overrides.*` parameters); a listener
of the outputs (reliable, as a recorder would be). It reports what a vehicle team needs, not pass/fail:
the share of sent frames that reached the node (its inputs = frames taken by the worker + drops, from
/diagnostics totals) and the loss the node itself reports, output rate, latency header stamp -> output
received, the node's CPU and RSS. Needs the runtime of scripts/ros_setup.sh.

    python benchmarks/load_node.py [--seconds 60] [--cameras 4] [--rate 10] [--only NAME...] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))

import ros_peers  # noqa: E402

UDP_ONLY_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <transport_descriptors><transport_descriptor><transport_id>udp_lo</transport_id><type>UDPv4</type>
    <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList></transport_descriptor></transport_descriptors>
  <participant profile_name="lo_only" is_default_profile="true"><rtps>
    <userTransports><transport_id>udp_lo</transport_id></userTransports>
    <useBuiltinTransports>false</useBuiltinTransports>
    <builtin><initialPeersList><locator><udpv4><address>127.0.0.1</address></udpv4></locator></initialPeersList>
    </builtin></rtps></participant>
</profiles>
"""


@dataclass(frozen=True)
class Config:
    name: str
    size: str  # WIDTHxHEIGHT
    jpeg: bool
    publisher_reliable: bool
    subscription_reliable: bool
    subscription_depth: int = 1
    transport: str = "shm+udp"  # the localhost profile; "udp": loopback UDP only


CONFIGS = [
    Config("720p raw, BE pub, BE sub d1", "1280x720", False, False, False),
    Config("720p raw, REL pub, BE sub d1", "1280x720", False, True, False),
    Config("720p raw, REL pub, REL sub d5", "1280x720", False, True, True, 5),
    Config("720p raw, REL pub, REL sub d5, UDP only", "1280x720", False, True, True, 5, "udp"),
    Config("1080p raw, BE pub, BE sub d1", "1920x1080", False, False, False),
    Config("1080p raw, REL pub, BE sub d1", "1920x1080", False, True, False),
    Config("1080p raw, REL pub, REL sub d5", "1920x1080", False, True, True, 5),
    Config("720p JPEG, REL pub, BE sub d1", "1280x720", True, True, False),
    Config("1080p JPEG, REL pub, BE sub d1", "1920x1080", True, True, False),
]


def proc_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MB) of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, rss


def run(config: Config, args: argparse.Namespace, tmp: Path) -> dict:
    env = ros_peers.ros_env(args.domain)
    if config.transport == "udp":
        (tmp / "udp.xml").write_text(UDP_ONLY_PROFILE)
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(tmp / "udp.xml")
    inputs = [f"/cam{i}/image_raw" + ("/compressed" if config.jpeg else "") for i in range(args.cameras)]
    outputs = [f"/cam{i}/image_raw/anonymized" + ("/compressed" if config.jpeg else "") for i in range(args.cameras)]
    qos = []
    if config.subscription_reliable:
        for topic in inputs:
            qos += ["-p", f"qos_overrides.{topic}.subscription.reliability:=reliable",
                    "-p", f"qos_overrides.{topic}.subscription.depth:={config.subscription_depth}"]
    node_args = " ".join(["--ros-args", "-p", f"cameras:=[{','.join(inputs)}]", "-p", "method:=blur", *qos])
    node_env = {**env, "PYTHONPATH": os.pathsep.join([args.node_src, env["PYTHONPATH"]])} if args.node_src else env
    node = ros_peers.start(f"{Path(sys.prefix) / 'bin' / 'ldfa_node'} {node_args}", node_env, tmp / "node.log")
    listener = ros_peers.peer("listen", tmp / "listen.json", outputs, env, tmp / "listen.log", "--size", config.size,
                              "--reference", "street", *(["--reliable"] if args.reliable_listener else []))
    deadline = time.monotonic() + 180  # warm-up: the node publishes /diagnostics once it subscribes
    while not ros_peers.read_json(tmp / "listen.json").get("diagnostics") and time.monotonic() < deadline:
        if node.poll() is not None:
            raise RuntimeError(f"ldfa_node exited: {(tmp / 'node.log').read_text()[-2000:]}")
        time.sleep(1)
    extra = ["--rate", str(args.rate), "--size", config.size, "--reference", "street"]
    cameras = [ros_peers.peer("camera", None, [topic], env, tmp / f"camera{i}.log",
                              *extra, *(["--reliable"] if config.publisher_reliable else []))
               for i, topic in enumerate(inputs)]
    samples = []
    begin = time.monotonic()
    cpu0, _ = proc_sample(node.pid)
    while (elapsed := time.monotonic() - begin) < args.seconds:
        time.sleep(1.0)
        cpu, rss = proc_sample(node.pid)
        samples.append({"t_s": round(elapsed, 1), "cpu_s": round(cpu - cpu0, 2), "rss_mb": round(rss, 1)})
    for camera in cameras:
        ros_peers.interrupt(camera)
    time.sleep(2.5)  # two more diagnostics periods: totals include every frame that arrived
    node_exit = ros_peers.interrupt(node)
    ros_peers.interrupt(listener)
    sent = {json.loads((tmp / f"camera{i}.log").read_text().strip().splitlines()[-1])["topic"]:
            json.loads((tmp / f"camera{i}.log").read_text().strip().splitlines()[-1])["sent"]
            for i in range(args.cameras)}
    report = ros_peers.read_json(tmp / "listen.json")
    per_camera = {}
    for topic, output in zip(inputs, outputs):
        status = next((v for k, v in report.get("diagnostics", {}).items() if k.endswith(f": {topic}")), {})
        reached = int(status.get("frames_total", 0)) + int(status.get("drops_total", 0))
        seen = report.get("topics", {}).get(output, {})
        per_camera[topic] = {"sent": sent[topic], "reached_node": reached, "outputs_received": seen.get("frames", 0),
                             "raw_outputs": seen.get("raw", 0), "face_change_min": seen.get("face_change_min"),
                             "dds_lost_reported": int(status.get("dds_lost_total", 0)),
                             "diagnostics": status}
    latencies = [v for vs in report.get("latencies_ms", {}).values() for v in vs]
    total_sent = sum(c["sent"] for c in per_camera.values())
    total_reached = sum(c["reached_node"] for c in per_camera.values())
    rss = [s["rss_mb"] for s in samples]
    lat = np.asarray(latencies)
    return {
        "config": asdict(config),
        "sent": total_sent, "reached_node": total_reached,
        "reached_share": round(total_reached / total_sent, 3) if total_sent else None,
        "outputs_received": sum(c["outputs_received"] for c in per_camera.values()),
        "dds_lost_reported": sum(c["dds_lost_reported"] for c in per_camera.values()),
        "raw_outputs": sum(c["raw_outputs"] for c in per_camera.values()),
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p99": round(float(np.percentile(lat, 99)), 1)}
        if lat.size else None,
        "node_cpu_percent_of_one_core": round(100 * samples[-1]["cpu_s"] / samples[-1]["t_s"], 1),
        "node_rss_mb": {"min": min(rss), "max": max(rss), "end": rss[-1]},
        "node_exit_code": node_exit,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "per_camera": per_camera,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second per camera")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--only", nargs="*", help="configuration names (default: all)")
    parser.add_argument("--domain", type=int, default=50 + os.getpid() % 50, help="ROS_DOMAIN_ID")
    parser.add_argument("--best-effort-listener", dest="reliable_listener", action="store_false",
                        help="subscribe to the outputs best-effort (default: reliable depth 10, as a recorder)")
    parser.add_argument("--node-src", help="a folder holding another ldfa_ros to run as the node (e.g. an older "
                                           "commit's, from `git archive`), to compare under the same load")
    parser.add_argument("--label", default="", help="what this run measures (e.g. the node's commit)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "load_node.json"))
    args = parser.parse_args()
    configs = [c for c in CONFIGS if not args.only or c.name in args.only]
    results = []
    for config in configs:
        with tempfile.TemporaryDirectory() as tmp:
            r = run(config, args, Path(tmp))
        results.append(r)
        print(f"{config.name}: reached node {r['reached_node']}/{r['sent']} ({r['reached_share']:.0%}), "
              f"DDS lost (node's count) {r['dds_lost_reported']}, outputs {r['outputs_received']}, raw "
              f"{r['raw_outputs']}, latency {r['latency_ms']}, node CPU {r['node_cpu_percent_of_one_core']}% RSS "
              f"{r['node_rss_mb']['max']:.0f} MB, load {r['load_average_1min_at_end']}", flush=True)
    setup = {"cameras": args.cameras, "rate_hz": args.rate, "seconds": args.seconds, "method": "blur",
             "frame": "built-in street frame (4 real faces), resized", "rmw": "rmw_fastrtps_cpp",
             "listener": "reliable depth 10" if args.reliable_listener else "best-effort depth 10",
             "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
             "python": platform.python_version()}
    result = {"label": args.label, "setup": setup, "results": results}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
