"""Real ROS 2 peers of the node, as separate processes: a camera that publishes a frame with real faces, and a
listener of the node's outputs that checks each one is anonymized. Also the loopback-only DDS environment and
the colcon workspace a vehicle engineer builds. Used by test/test_launch.py and the benchmarks.

    python test/ros_peers.py camera TOPIC [--size 512x512] [--rate 10] [--reliable]
    python test/ros_peers.py listen OUT.json TOPIC... [--reference astronaut|street] [--size WxH]

A topic whose last name is `compressed` carries JPEG sensor_msgs/CompressedImage, any other raw rgb8 Image.
"""
from __future__ import annotations

import argparse
import array
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ros_env import ros_environ

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FILES = ["ldfa_ros", "launch", "config", "resource", "package.xml", "setup.py", "setup.cfg", "README.md"]
ASTRONAUT_FACE = (181, 58, 270, 178)  # x1, y1, x2, y2 in skimage.data.astronaut()


def ros_env(domain: int) -> dict[str, str]:
    """The environment of a process that starts nodes: `ros_env.ros_environ` (loopback-only DDS, the domain) and
    this Python's ROS runtime, as `export AMENT_PREFIX_PATH=VENV PATH=VENV/bin:$PATH` gives it."""
    prefix = sys.prefix
    return {**os.environ, **ros_environ(domain), "AMENT_PREFIX_PATH": prefix,
            "PATH": f"{prefix}/bin:{os.environ.get('PATH', '')}", "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}


def build_workspace(workspace: Path, env: dict[str, str]) -> Path:
    """`colcon build --packages-select ldfa_ros` of a copy of this package in WORKSPACE/src; returns setup.bash."""
    package = workspace / "src" / "ldfa_ros"
    package.mkdir(parents=True)
    for name in PACKAGE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, package / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, package / name)
    subprocess.run(["colcon", "build", "--packages-select", "ldfa_ros"], cwd=workspace, env=env, check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    return workspace / "install" / "setup.bash"


def start(command: str, env: dict[str, str], log: Path, setup_bash: Path | None = None) -> subprocess.Popen:
    """A shell command in its own process group (as a terminal runs it), output to LOG."""
    script = f"source {setup_bash} && exec {command}" if setup_bash else f"exec {command}"
    return subprocess.Popen(["bash", "-c", script], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def interrupt(process: subprocess.Popen, timeout: float = 30.0, presses: int = 1) -> int:
    """Ctrl-C as a terminal sends it (SIGINT to the whole process group), pressed `presses` times 0.2 s
    apart; the exit code, or -9 if it hung."""
    for press in range(presses):
        if press:
            time.sleep(0.2)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return -9


def peer(kind: str, out: Path | None, topics: list[str], env: dict[str, str], log: Path, *extra: str) -> Any:
    """This script as a camera or listener process."""
    args = [sys.executable, str(Path(__file__).resolve()), kind, *([str(out)] if out else []), *topics, *extra]
    return subprocess.Popen(args, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def read_json(path: Path) -> dict:
    """The listener's last report ({} before its first)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def frame(reference: str, size: tuple[int, int]) -> np.ndarray:
    """The RGB frame a camera publishes: the astronaut photo, or the built-in street frame with four faces."""
    from ldfa_ros.samples import sample_frames

    rgb = sample_frames()["astronaut.png" if reference == "astronaut" else "street_1080p.png"]
    return rgb if rgb.shape[1::-1] == size else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def face_boxes(reference: str, size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Where the faces of `frame(reference, size)` are."""
    if reference == "astronaut":
        boxes = [ASTRONAUT_FACE]
        scale_x, scale_y = size[0] / 512, size[1] / 512
    else:  # the astronaut's face pasted by ldfa_ros.samples (its crop starts at x 140, y 30), two largest sizes
        boxes = [(x + (ASTRONAUT_FACE[0] - 140) * h // 200, 500 + (ASTRONAUT_FACE[1] - 30) * h // 200,
                  x + (ASTRONAUT_FACE[2] - 140) * h // 200, 500 + (ASTRONAUT_FACE[3] - 30) * h // 200)
                 for x, h in ((150, 400), (800, 200))]
        scale_x, scale_y = size[0] / 1920, size[1] / 1080
    return [(int(a * scale_x), int(b * scale_y), int(c * scale_x), int(d * scale_y)) for a, b, c, d in boxes]


def _qos(reliable: bool, depth: int) -> Any:
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)


def camera(topic: str, size: tuple[int, int], rate: float, reliable: bool, reference: str) -> None:
    """Publish the reference frame at RATE with the current time as header stamp, once subscribed, until
    interrupted; then print how many were sent."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import CompressedImage, Image

    rgb = frame(reference, size)
    rclpy.init()
    node = rclpy.create_node("camera_" + topic.strip("/").replace("/", "_"))
    if topic.rsplit("/", 1)[-1] == "compressed":
        msg: Any = CompressedImage(format="rgb8; jpeg compressed bgr8")
        msg.data = array.array("B", cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
        publisher = node.create_publisher(CompressedImage, topic, _qos(reliable, 5))
    else:
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3,
                    data=array.array("B", rgb.tobytes()))
        publisher = node.create_publisher(Image, topic, _qos(reliable, 5))
    msg.header.frame_id = topic
    sent = 0

    def tick() -> None:  # from the first subscriber on: frames sent before discovery are no transport loss
        nonlocal sent
        if not publisher.get_subscription_count():
            return
        msg.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(msg)
        sent += 1

    node.create_timer(1.0 / rate, tick)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        print(json.dumps({"topic": topic, "sent": sent}), flush=True)
        node.destroy_node()
        rclpy.try_shutdown()


def listen(out: Path, topics: list[str], reference: str, size: tuple[int, int], reliable: bool) -> None:
    """Subscribe to the node's outputs and /diagnostics; write a report to OUT once a second until interrupted.

    Per topic: frames, how many were the raw input bytes, the smallest mean change inside a face box (an
    anonymized face changes by tens of grey levels, JPEG noise by about one), latency from the header stamp.
    """
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import CompressedImage, Image

    raw = frame(reference, size)
    jpeg = cv2.imencode(".jpg", raw[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    boxes = face_boxes(reference, size)
    stats: dict[str, dict[str, Any]] = {t: {"frames": 0, "raw": 0, "face_change_min": None, "latency_ms": []}
                                        for t in topics}
    diagnostics: dict[str, dict[str, str]] = {}
    rclpy.init()
    node = rclpy.create_node("ldfa_listener")

    def received(topic: str, msg: Any) -> None:
        now = node.get_clock().now().nanoseconds
        s = stats[topic]
        s["frames"] += 1
        s["latency_ms"].append((now - (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)) / 1e6)
        data = bytes(msg.data)
        if isinstance(msg, CompressedImage):
            s["raw"] += data == jpeg
            rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        else:
            s["raw"] += data == raw.tobytes()
            rgb = np.frombuffer(data, np.uint8).reshape(msg.height, msg.width, 3)
        change = min(float(np.abs(rgb[y1:y2, x1:x2].astype(np.int16) - raw[y1:y2, x1:x2]).mean())
                     for x1, y1, x2, y2 in boxes)
        s["face_change_min"] = change if s["face_change_min"] is None else min(s["face_change_min"], change)

    def diagnosed(msg: Any) -> None:
        for status in msg.status:
            diagnostics[status.name] = {"level": str(int.from_bytes(status.level, "little")
                                                     if isinstance(status.level, bytes) else status.level),
                                        "message": status.message, **{kv.key: kv.value for kv in status.values}}

    for topic in topics:
        kind = CompressedImage if topic.rsplit("/", 1)[-1] == "compressed" else Image
        node.create_subscription(kind, topic, lambda msg, topic=topic: received(topic, msg), _qos(reliable, 10))
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnosed, 10)

    def report() -> None:
        summary = {t: {**{k: v for k, v in s.items() if k != "latency_ms"},
                       "latency_ms": _percentiles(s["latency_ms"])} for t, s in stats.items()}
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"topics": summary, "diagnostics": diagnostics,
                                   "latencies_ms": {t: s["latency_ms"] for t, s in stats.items()}}))
        tmp.replace(out)

    node.create_timer(1.0, report)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        report()
        node.destroy_node()
        rclpy.try_shutdown()


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": round(float(p50), 1), "p99": round(float(p99), 1), "max": round(max(values), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    cam = sub.add_parser("camera")
    cam.add_argument("topic")
    cam.add_argument("--rate", type=float, default=10.0)
    cam.add_argument("--reliable", action="store_true", help="reliable publisher (default: best-effort)")
    lis = sub.add_parser("listen")
    lis.add_argument("out", type=Path)
    lis.add_argument("topics", nargs="+")
    lis.add_argument("--reliable", action="store_true", help="reliable subscriptions (default: best-effort)")
    for p in (cam, lis):
        p.add_argument("--size", default="512x512", help="WIDTHxHEIGHT")
        p.add_argument("--reference", choices=["astronaut", "street"], default="astronaut")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    assert len(size) == 2
    if args.kind == "camera":
        camera(args.topic, (size[0], size[1]), args.rate, args.reliable, args.reference)
    else:
        listen(args.out, args.topics, args.reference, (size[0], size[1]), args.reliable)


if __name__ == "__main__":
    main()
