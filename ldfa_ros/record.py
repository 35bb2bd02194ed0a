"""Privacy-safe recording: only anonymized topics reach a bag.

Two ways, both ROS-free here:
- `Recorder`: the node's `record_path` parameter. The node hands it each message it publishes; a
  writer thread serializes and writes them to an MCAP bag with rosbags. Raw frames are never given
  to it, so they never reach disk. A full queue drops (and counts) rather than slowing the node.
- `record_topics`: the topic list for `ros2 bag record` in `launch/record.launch.py`: the
  anonymized outputs plus user-listed topics, minus every raw camera topic. It is the one place
  that decides what is raw, so the launch file holds no hand-kept exclusion list.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from .node_config import camera_topics

log = logging.getLogger("ldfa_ros.record")

# vision_msgs 4.x (Humble and Jazzy), the message definitions of the detections topic; rosbags'
# built-in type stores do not include vision_msgs.
VISION_MSGS = {
    "vision_msgs/msg/Point2D": "float64 x\nfloat64 y\n",
    "vision_msgs/msg/Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "vision_msgs/msg/BoundingBox2D": "vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n",
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose":
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n",
    "vision_msgs/msg/Detection2D": "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n"
                                   "vision_msgs/BoundingBox2D bbox\nstring id\n",
    "vision_msgs/msg/Detection2DArray": "std_msgs/Header header\nvision_msgs/Detection2D[] detections\n",
}
_STORES = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}
QUEUE_SIZE = 64  # messages waiting for the disk; about 0.4 GB of 1080p RGB frames at most


def typestore(distro: str | None = None) -> Typestore:
    """rosbags message types of `distro` (default $ROS_DISTRO; Humble's when unknown) with vision_msgs."""
    store = get_typestore(_STORES.get((distro or os.environ.get("ROS_DISTRO", "")).lower(), Stores.ROS2_HUMBLE))
    types: dict[str, Any] = {}
    for name, text in VISION_MSGS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


class Recorder:
    """Writes messages of the given topics to a new MCAP bag from a writer thread.

    `topics` maps each fully resolved topic name to its type ('sensor_msgs/msg/Image', ...);
    `serialize` turns a message into CDR bytes (rclpy's `serialize_message` in the node)."""

    def __init__(self, path: Path, topics: dict[str, str], serialize: Callable[[Any], bytes],
                 queue_size: int = QUEUE_SIZE, distro: str | None = None) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"record_path {self.path} already exists; give a new path for each recording")
        store = typestore(distro)
        unknown = sorted(t for t in topics.values() if t not in store.types)
        if unknown:
            raise ValueError(f"cannot record message types {', '.join(unknown)}: not in the rosbags type store")
        self.serialize = serialize
        self.written = self.dropped = self.errors = 0
        self._closed = False
        self._writer = Writer(self.path, version=8, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections = {topic: self._writer.add_connection(topic, msgtype, typestore=store)
                             for topic, msgtype in topics.items()}
        self._queue: queue.Queue[tuple[str, int, Any] | None] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._run, name="ldfa-recorder", daemon=True)
        self._thread.start()

    def write(self, topic: str, timestamp_ns: int, msg: Any) -> bool:
        """Queue a message for the bag; False (and counted) when the queue is full or the bag closed."""
        if topic not in self._connections:
            raise KeyError(f"topic {topic!r} is not recorded; recorded: {', '.join(self._connections)}")
        if self._closed:
            self.dropped += 1
            return False
        try:
            self._queue.put_nowait((topic, timestamp_ns, msg))
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def close(self) -> None:
        """Write what is queued and close the bag; later writes are refused and counted."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._writer.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            topic, timestamp, msg = item
            try:
                self._writer.write(self._connections[topic], timestamp, self.serialize(msg))
                self.written += 1
            except Exception as exc:  # noqa: BLE001 - a bad message must not stop the recording
                self.errors += 1
                log.error("recording %s failed: %s: %s", topic, type(exc).__name__, exc)


@dataclass(frozen=True)
class RecordPlan:
    """What `ros2 bag record` gets: `topics`, and the user-listed topics refused as raw camera images."""

    topics: list[str]
    excluded: list[str]


def resolve(name: str, namespace: str = "/") -> str:
    """A topic name made absolute in `namespace` (private '~' names are not supported here)."""
    if name.startswith("~"):
        raise ValueError(f"topic {name!r}: private names cannot be recorded by name; use an absolute name")
    if name.startswith("/"):
        return name
    return f"{namespace.rstrip('/')}/{name}"


def record_topics(cameras: Sequence[str], *, output_suffix: str = "anonymized", detections_suffix: str = "faces",
                  publish_detections: bool = False, extra_topics: Sequence[str] = (),
                  namespace: str = "/") -> RecordPlan:
    """Topics to record: every camera's anonymized output (and detections), then `extra_topics`
    except those of a raw camera: a camera's input, its base topic and everything below it
    (image_transport's /compressed, /theora, ...) other than this node's own outputs."""
    outputs: list[str] = []
    raw_bases: list[str] = []
    for cam in camera_topics(cameras, output_suffix, detections_suffix):
        outputs.append(resolve(cam.output, namespace))
        if publish_detections:
            outputs.append(resolve(cam.detections, namespace))
        raw = resolve(cam.input, namespace)
        raw_bases.append(raw.rpartition("/")[0] if cam.compressed else raw)
    topics, excluded = list(outputs), []
    for extra in extra_topics:
        name = resolve(extra, namespace)
        if name in topics:
            continue
        if any(name == base or name.startswith(base + "/") for base in raw_bases):
            excluded.append(name)
        else:
            topics.append(name)
    return RecordPlan(topics, excluded)


def bag_record_command(bag: str, topics: Sequence[str], storage: str = "mcap") -> list[str]:
    """The `ros2 bag record` command line for exactly `topics` (never -a: that would take raw topics)."""
    if not topics:
        raise ValueError("no topics to record")
    return ["ros2", "bag", "record", "-s", storage, "-o", bag, *topics]
