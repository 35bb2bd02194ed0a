"""Small real bags for the bag tests, written with rosbags: ROS 2 (sqlite3, mcap) and ROS 1.

Each camera topic shows the astronaut's real face in every frame, in a different encoding; the face is
erased from frame 0 of every camera (the detector then finds nothing there), so only looking ahead in
time can cover it. Imu, TF and String topics stand for the data that must pass through untouched.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import lz4.frame
import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import StoragePlugin, Writer as Writer2
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
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


def write_bag(path: Path, kind: str, *, corrupt: dict[str, int] | None = None, compression: str = "") -> BagSpec:
    """Write a test bag: kind is 'sqlite3', 'mcap' (ROS 2 directories) or 'ros1' (path should end in .bag).

    `corrupt` maps a camera topic to a frame index whose image data is replaced by garbage; `compression`
    ('bz2', 'lz4') compresses the chunks of a ROS 1 bag; for ROS 2 ('file', 'message') it is rosbag2's zstd
    compression of each file or each message."""
    ros1 = kind == "ros1"
    ts = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    if ros1:  # the Noetic store lacks tf2_msgs; its definition is one line
        ts.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms", "tf2_msgs/msg/TFMessage"))
    corrupt = corrupt or {}
    if ros1:
        writer: Any = Writer1(path)
        if compression:
            writer.set_compression(Writer1.CompressionFormat[compression.upper()])
        if compression == "lz4":  # as `rosbag record --lz4` writes it (rosbags' own frames roslz4 cannot read)
            writer.compressor = lambda data: lz4.frame.compress(
                data, block_size=lz4.frame.BLOCKSIZE_MAX1MB, block_linked=False, content_checksum=True,
                store_size=False)
    else:
        writer = Writer2(path, version=9, storage_plugin=StoragePlugin[kind.upper()])
        if compression:
            writer.set_compression(CompressionMode[compression.upper()], CompressionFormat.ZSTD)
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


# Bags as real recorders write them, built here without the code under test.
VENDOR = "acme_msgs/msg/WheelSpeeds"
VENDOR_MSG = "std_msgs/Header header\nfloat64 left\nfloat64 right\n"
RECORDER_CAMERAS = {"/cam/jpeg": ("sensor_msgs/msg/CompressedImage", "jpeg"),
                    "/cam/rgb": ("sensor_msgs/msg/Image", "rgb8")}
RECORDER_OTHERS = {"/range": "sensor_msgs/msg/Range", "/wheels": VENDOR, "/imu": "sensor_msgs/msg/Imu"}
# Humble's `ros2 bag record` writes QoS as YAML with integer enums; Jazzy (metadata v9) with names.
HUMBLE_QOS = ("- history: 3\n  depth: 0\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 2147483647\n"
              "    nsec: 4294967295\n  lifespan:\n    sec: 2147483647\n    nsec: 4294967295\n  liveliness: 1\n"
              "  liveliness_lease_duration:\n    sec: 2147483647\n    nsec: 4294967295\n"
              "  avoid_ros_namespace_conventions: false")
JAZZY_QOS = ("- history: keep_last\n  depth: 10\n  reliability: reliable\n  durability: volatile\n  deadline:\n"
             "    sec: 9223372036\n    nsec: 854775807\n  lifespan:\n    sec: 9223372036\n    nsec: 854775807\n"
             "  liveliness: automatic\n  liveliness_lease_duration:\n    sec: 9223372036\n    nsec: 854775807\n"
             "  avoid_ros_namespace_conventions: false")


def recorder_typestore(distro: Stores) -> Any:
    """The typestore of a ROS 2 distro with the vendor type a vehicle bag would carry."""
    ts = get_typestore(distro)
    ts.register(get_types_from_msg(VENDOR_MSG, VENDOR))
    return ts


def recorder_messages(ts: Any, frames: int = FRAMES) -> list[tuple[str, str, int, bytes]]:
    """(topic, type, log time, CDR bytes) in time order: cameras at 10 Hz with the astronaut's face, and
    a Range, a vendor type and Imu at 30 Hz, serialized with `ts` (a Humble store writes Humble's Range)."""
    out = []
    for i in range(frames):
        stamp = START_NS + i * PERIOD_NS
        for topic, (msgtype, kind) in RECORDER_CAMERAS.items():
            msg = image_message(ts, msgtype, kind, scene(), stamp, topic.strip("/"))
            out.append((topic, msgtype, stamp + 1000, ts.serialize_cdr(msg, msgtype)))
        for k in range(3):
            t = stamp + 2000 + 33_000_000 * k
            header = _header(ts, t, "base_link")
            msgs = {"/range": ts.types["sensor_msgs/msg/Range"](header=header, radiation_type=1, field_of_view=0.5,
                                                                min_range=0.2, max_range=4.0, range=1.5 + k,
                                                                **({"variance": 0.01} if "variance" in ts.fielddefs[
                                                                    "sensor_msgs/msg/Range"][1][-1] else {})),
                    "/wheels": ts.types[VENDOR](header=header, left=float(i), right=float(k)),
                    "/imu": other_message(ts, "sensor_msgs/msg/Imu", 3 * i + k)}
            for j, (topic, msgtype) in enumerate(RECORDER_OTHERS.items()):
                out.append((topic, msgtype, t + j, ts.serialize_cdr(msgs[topic], msgtype)))
    return out


def _split(messages: list, files: int) -> list[list]:
    size = -(-len(messages) // files)
    return [messages[i: i + size] for i in range(0, len(messages), size)]


def _rosbag2_metadata(version: int, storage: str, names: list[str], parts: list[list], qos: str,
                      extra: dict[str, Any]) -> str:
    import yaml

    counts: dict[str, int] = {}
    for topic, *_ in (m for part in parts for m in part):
        counts[topic] = counts.get(topic, 0) + 1
    types = {t: m for t, m in [*((t, m) for t, (m, _) in RECORDER_CAMERAS.items()), *RECORDER_OTHERS.items()]}
    stamps = [m[2] for part in parts for m in part]
    info = {
        "version": version, "storage_identifier": storage,
        "duration": {"nanoseconds": max(stamps) - min(stamps)},
        "starting_time": {"nanoseconds_since_epoch": min(stamps)},
        "message_count": len(stamps),
        "topics_with_message_count": [{"topic_metadata": {"name": t, "type": types[t], "serialization_format": "cdr",
                                                          "offered_qos_profiles": qos, **extra.get("topic", {})},
                                       "message_count": n} for t, n in counts.items()],
        "compression_format": "", "compression_mode": "",
        "relative_file_paths": names,
        "files": [{"path": n, "starting_time": {"nanoseconds_since_epoch": p[0][2]},
                   "duration": {"nanoseconds": p[-1][2] - p[0][2]}, "message_count": len(p)}
                  for n, p in zip(names, parts)],
        **extra.get("bag", {}),
    }
    return yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False)


def write_humble_bag(path: Path, files: int = 1) -> Path:
    """A rosbag2 directory as Humble's recorder writes it: sqlite3 db schema 3, metadata version 5, no
    message definitions anywhere, QoS with integer enums; a vendor type and Humble's Range beside images."""
    ts = recorder_typestore(Stores.ROS2_HUMBLE)
    parts = _split(recorder_messages(ts), files)
    path.mkdir()
    names = [f"{path.name}_{i}.db3" for i in range(len(parts))]
    meta = _rosbag2_metadata(5, "sqlite3", names, parts, HUMBLE_QOS, {})
    topics = list(dict.fromkeys((t, m) for part in parts for t, m, _, _ in part))
    for name, part in zip(names, parts):
        db = sqlite3.connect(path / name)
        db.executescript(
            "CREATE TABLE schema(schema_version INTEGER PRIMARY KEY,ros_distro TEXT NOT NULL);"
            "CREATE TABLE metadata(id INTEGER PRIMARY KEY,metadata_version INTEGER NOT NULL,metadata TEXT NOT NULL);"
            "CREATE TABLE topics(id INTEGER PRIMARY KEY,name TEXT NOT NULL,type TEXT NOT NULL,"
            "serialization_format TEXT NOT NULL,offered_qos_profiles TEXT NOT NULL);"
            "CREATE TABLE messages(id INTEGER PRIMARY KEY,topic_id INTEGER NOT NULL,timestamp INTEGER NOT NULL,"
            "data BLOB NOT NULL);"
            "CREATE INDEX timestamp_idx ON messages (timestamp ASC);"
            "INSERT INTO schema VALUES (3, 'humble');")
        ids = {}
        for topic, msgtype in topics:
            ids[topic] = db.execute("INSERT INTO topics (name, type, serialization_format, offered_qos_profiles) "
                                    "VALUES (?, ?, 'cdr', ?)", (topic, msgtype, HUMBLE_QOS)).lastrowid
        db.executemany("INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)",
                       [(ids[t], stamp, data) for t, _, stamp, data in part])
        db.execute("INSERT INTO metadata (metadata_version, metadata) VALUES (5, ?)", (meta,))
        db.commit()
        db.close()
    (path / "metadata.yaml").write_text(meta)
    return path


CALIBRATION = b"camera_matrix: [600, 0, 160, 0, 600, 160, 0, 0, 1]\n"


def write_recorder_mcap(path: Path, files: int = 1) -> Path:
    """MCAP written with Foxglove's Writer as a Jazzy recorder does: zstd chunks with CRCs, ros2msg schemas,
    channel metadata (QoS by name, type hash), publish time before log time, per-channel sequence numbers,
    an attachment and metadata records (the rosbag2 one with custom_data). `path` ending in .mcap: one bare
    file; else a rosbag2 directory (metadata v9) split into `files` files."""
    import yaml
    from mcap.writer import CompressionType, Writer

    ts = recorder_typestore(Stores.LATEST)
    messages = recorder_messages(ts)
    bare = path.suffix == ".mcap"
    parts = [messages] if bare else _split(messages, files)
    names = [path.name] if bare else [f"{path.name}_{i}.mcap" for i in range(len(parts))]
    extra = {"topic": {"type_description_hash": "RIHS01_" + "ab" * 32}, "bag": {
        "custom_data": {"vehicle": "acme-7", "route": "depot loop"}, "ros_distro": "jazzy"}}
    meta = _rosbag2_metadata(9, "mcap", names, parts, JAZZY_QOS, extra)
    if not bare:
        path.mkdir()
        (path / "metadata.yaml").write_text(meta)
    for name, part in zip(names, parts):
        with open(path if bare else path / name, "wb") as stream:
            writer = Writer(stream, chunk_size=32 * 1024, compression=CompressionType.ZSTD)
            writer.start("ros2", "libmcap 1.4.0")
            channels: dict[str, int] = {}
            sequence: dict[str, int] = {}
            for topic, msgtype, stamp, data in part:
                if topic not in channels:
                    schema = writer.register_schema(msgtype, "ros2msg",
                                                    ts.generate_msgdef(msgtype, ros_version=2)[0].encode())
                    channels[topic] = writer.register_channel(topic, "cdr", schema, {
                        "offered_qos_profiles": JAZZY_QOS, "topic_type_hash": ts.hash_rihs01(msgtype)})
                sequence[topic] = sequence.get(topic, 0) + 1
                writer.add_message(channels[topic], stamp, data, publish_time=stamp - 4000, sequence=sequence[topic])
            writer.add_attachment(START_NS, START_NS, "calibration/front.yaml", "application/yaml", CALIBRATION)
            writer.add_metadata("acme_vehicle", {"vin": "WACME000000000007", "software": "drive 4.2"})
            if bare:
                writer.add_metadata("rosbag2", {"serialized_metadata": yaml.safe_dump(
                    yaml.safe_load(meta)["rosbag2_bagfile_information"], sort_keys=False)})
            writer.finish()
    return path
