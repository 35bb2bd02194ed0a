"""Small real bags for the bag tests, written with rosbags: ROS 2 (sqlite3, mcap) and ROS 1.

Each camera topic shows the astronaut's real face in every frame, in a different encoding; the face is
erased from frame 0 of every camera (the detector then finds nothing there), so only looking ahead in
time can cover it. Imu, TF and String topics stand for the data that must pass through untouched.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import StoragePlugin, Writer as Writer2
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

FRAMES = 4
START_NS = 1_700_000_000_000_000_000
PERIOD_NS = 100_000_000  # 10 Hz cameras
FACE = (117, 58, 206, 178)  # x1 y1 x2 y2 of the astronaut's face in `scene()`
ERASED_FRAME = 0
# topic -> (message type, encoding or format)
CAMERAS = {
    "/cam/rgb": ("sensor_msgs/msg/Image", "rgb8"),
    "/cam/bgr": ("sensor_msgs/msg/Image", "bgr8"),
    "/cam/bayer": ("sensor_msgs/msg/Image", "bayer_rggb8"),
    "/cam/jpeg": ("sensor_msgs/msg/CompressedImage", "jpeg"),
    "/cam/png": ("sensor_msgs/msg/CompressedImage", "png"),
}
OTHERS = {"/imu": "sensor_msgs/msg/Imu", "/tf": "tf2_msgs/msg/TFMessage", "/chatter": "std_msgs/msg/String"}
BEST_EFFORT = Qos(QosHistory.KEEP_LAST, 1, QosReliability.BEST_EFFORT, QosDurability.VOLATILE,
                  QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)


def scene() -> np.ndarray:
    """320x320 RGB crop of the astronaut photo; her face is at FACE."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[0:320, 64:384])


def erased(rgb: np.ndarray) -> np.ndarray:
    """The scene without a face: the face box filled with a checkerboard (texture that blurring visibly
    changes, and that the detector does not take for a face)."""
    out = rgb.copy()
    x1, y1, x2, y2 = FACE
    squares = np.indices((y2 - y1, x2 - x1)).sum(axis=0) // 8 % 2
    out[y1:y2, x1:x2] = (squares * 200)[..., None].astype(np.uint8)
    return out


@dataclass
class BagSpec:
    """What a test bag holds, to check the output against."""

    path: Path
    typestore: Any
    ros1: bool


def frame_rgb(index: int) -> np.ndarray:
    return erased(scene()) if index == ERASED_FRAME else scene()


def image_message(ts: Any, msgtype: str, kind: str, rgb: np.ndarray, stamp_ns: int, frame_id: str) -> Any:
    """An Image/CompressedImage of `rgb` in encoding or format `kind`."""
    header = _header(ts, stamp_ns, frame_id)
    if msgtype.endswith("CompressedImage"):
        ok, data = cv2.imencode(".png" if kind == "png" else ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        return ts.types[msgtype](header=header, format=kind, data=data.reshape(-1))
    if kind == "rgb8":
        pixels = rgb
    elif kind == "bgr8":
        pixels = rgb[..., ::-1]
    else:  # bayer_rggb8: each site keeps its own colour
        pixels = np.empty(rgb.shape[:2], np.uint8)
        pixels[0::2, 0::2], pixels[0::2, 1::2] = rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1]
        pixels[1::2, 0::2], pixels[1::2, 1::2] = rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    return ts.types[msgtype](header=header, height=h, width=w, encoding=kind, is_bigendian=0,
                             step=pixels.strides[0], data=pixels.reshape(-1))


def _header(ts: Any, stamp_ns: int, frame_id: str) -> Any:
    stamp = ts.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    fields = {"stamp": stamp, "frame_id": frame_id}
    if "seq" in ts.fielddefs["std_msgs/msg/Header"][1][0]:  # ROS 1 headers carry a sequence number
        fields["seq"] = 7
    return ts.types["std_msgs/msg/Header"](**fields)


def other_message(ts: Any, msgtype: str, index: int) -> Any:
    """A non-image message with content that differs per index."""
    t = ts.types
    header = _header(ts, START_NS + index, "base_link")
    if msgtype == "std_msgs/msg/String":
        return t[msgtype](data=f"hello {index}")
    vec = t["geometry_msgs/msg/Vector3"]
    quat = t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)
    if msgtype == "sensor_msgs/msg/Imu":
        cov = np.arange(9, dtype=np.float64) * index
        return t[msgtype](header=header, orientation=quat, orientation_covariance=cov,
                          angular_velocity=vec(x=0.1 * index, y=0.0, z=0.0), angular_velocity_covariance=cov,
                          linear_acceleration=vec(x=0.0, y=9.81, z=0.0), linear_acceleration_covariance=cov)
    transform = t["geometry_msgs/msg/Transform"](translation=vec(x=float(index), y=0.0, z=0.0), rotation=quat)
    stamped = t["geometry_msgs/msg/TransformStamped"](header=header, child_frame_id="cam", transform=transform)
    return t[msgtype](transforms=[stamped])


def write_bag(path: Path, kind: str, *, corrupt: dict[str, int] | None = None) -> BagSpec:
    """Write a test bag: kind is 'sqlite3', 'mcap' (ROS 2 directories) or 'ros1' (path should end in .bag).

    `corrupt` maps a camera topic to a frame index whose image data is replaced by garbage."""
    ros1 = kind == "ros1"
    ts = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    if ros1:  # the Noetic store lacks tf2_msgs; its definition is one line
        ts.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms", "tf2_msgs/msg/TFMessage"))
    corrupt = corrupt or {}
    if ros1:
        writer: Any = Writer1(path)
    else:
        writer = Writer2(path, version=9, storage_plugin=StoragePlugin[kind.upper()])
    serialize = ts.serialize_ros1 if ros1 else ts.serialize_cdr
    with writer:
        conns = {}
        for topic, msgtype in [*((t, m) for t, (m, _) in CAMERAS.items()), *OTHERS.items()]:
            extra = {} if ros1 else {"offered_qos_profiles": [BEST_EFFORT] if topic in CAMERAS else []}
            conns[topic] = writer.add_connection(topic, msgtype, typestore=ts, **extra)
        for i in range(FRAMES):
            stamp = START_NS + i * PERIOD_NS
            for topic, (msgtype, enc) in CAMERAS.items():
                msg = image_message(ts, msgtype, enc, frame_rgb(i), stamp, topic.strip("/"))
                if corrupt.get(topic) == i:
                    msg.data = np.frombuffer(b"not an image", np.uint8).copy() if "Compressed" in msgtype \
                        else msg.data[: len(msg.data) // 2].copy()
                writer.write(conns[topic], stamp + 1000, serialize(msg, msgtype))
            for j, (topic, msgtype) in enumerate(OTHERS.items()):
                for k in range(3):  # faster than the cameras, interleaved with them
                    writer.write(conns[topic], stamp + 2000 + 30_000_000 * k + j,
                                 serialize(other_message(ts, msgtype, 3 * i + k), msgtype))
    return BagSpec(path, ts, ros1)
