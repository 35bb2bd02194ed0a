"""`ldfa bag` on bags as real recorders write them, checked with readers written by others: Foxglove's `mcap`
with `mcap-ros2-support`, Debian's ROS 1 `rosbag` (run by /usr/bin/python3), sqlite3 with real rclpy
`deserialize_message`. Each must find nothing changed but the pixels of the anonymized images."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from mcap import records
from mcap.stream_reader import StreamReader
from rosbags.highlevel import AnyReader

from bags import (CALIBRATION, FACE, FRAMES, RECORDER_CAMERAS, VENDOR, scene, write_bag, write_humble_bag,
                  write_recorder_mcap)
from ldfa_ros.bag import anonymize_bag
from ldfa_ros.detect import CenterFace
from ldfa_ros.pipeline import Pipeline
from ldfa_ros.settings import Settings

DEBIAN_PYTHON = Path("/usr/bin/python3")
x1, y1, x2, y2 = FACE


def run(src: Path, dst: Path, detector: Any, settings: Settings = Settings(), **kwargs: Any) -> dict:
    before = tree_digest(src)
    report = anonymize_bag(src, dst, Pipeline(settings, detector), **kwargs)
    assert tree_digest(src) == before, "the input is never modified"
    return report


def tree_digest(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def face_changed(rgb_in: np.ndarray, rgb_out: np.ndarray) -> float:
    """Mean absolute change inside the face box."""
    return float(np.abs(rgb_in[y1:y2, x1:x2].astype(int) - rgb_out[y1:y2, x1:x2].astype(int)).mean())


def assert_face_hidden(rgb: np.ndarray) -> None:
    assert rgb.shape == scene().shape
    assert face_changed(scene(), rgb) > 10, "the face is anonymized"


# --- Foxglove's mcap + mcap-ros2-support -----------------------------------------------------------------

def mcap_view(path: Path) -> dict[str, Any]:
    """Everything Foxglove's reader sees in one MCAP file, messages decoded by mcap-ros2-support."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with path.open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        header = reader.get_header()
        summary = reader.get_summary()
        assert summary is not None
        messages: dict[str, list] = {}
        for schema, channel, message, decoded in reader.iter_decoded_messages(log_time_order=False):
            messages.setdefault(channel.topic, []).append((message, decoded))
        attachments = [(a.name, a.media_type, a.create_time, a.log_time, a.data) for a in reader.iter_attachments()]
        metadata = [(m.name, m.metadata) for m in reader.iter_metadata()]
    with path.open("rb") as f:
        chunks = [r for r in StreamReader(f, emit_chunks=True, validate_crcs=True).records
                  if isinstance(r, records.Chunk)]
    return {
        "header": (header.profile, header.library),
        "schemas": sorted((s.id, s.name, s.encoding, s.data) for s in summary.schemas.values()),
        "channels": sorted((c.id, c.topic, c.message_encoding, c.schema_id, sorted(c.metadata.items()))
                           for c in summary.channels.values()),
        "messages": messages, "attachments": attachments, "metadata": metadata,
        "chunk_compression": {c.compression for c in chunks}, "chunk_crcs": all(c.uncompressed_crc for c in chunks),
    }


def decoded_image(msg: Any) -> np.ndarray:
    if hasattr(msg, "format"):
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR),
                            cv2.COLOR_BGR2RGB)
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)


def image_fields(msg: Any) -> tuple:
    kept = ("format",) if hasattr(msg, "format") else ("height", "width", "encoding", "is_bigendian", "step")
    return (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id, *(getattr(msg, k) for k in kept))


def assert_same_mcap(src: Path, dst: Path) -> None:
    a, b = mcap_view(src), mcap_view(dst)
    for part in ("header", "schemas", "channels", "attachments", "metadata", "chunk_compression"):
        assert b[part] == a[part], part
    assert a["chunk_crcs"] and b["chunk_crcs"], "chunk CRCs are written"
    assert b["messages"].keys() == a["messages"].keys()
    for topic, rows in a["messages"].items():
        out = b["messages"][topic]
        assert len(out) == len(rows), topic
        for (m_in, d_in), (m_out, d_out) in zip(rows, out):
            assert (m_out.log_time, m_out.publish_time, m_out.sequence) == (m_in.log_time, m_in.publish_time,
                                                                            m_in.sequence), topic
            if topic in RECORDER_CAMERAS:
                assert image_fields(d_out) == image_fields(d_in)
                assert_face_hidden(decoded_image(d_out))
            else:
                assert m_out.data == m_in.data, topic


def test_foxglove_mcap_keeps_every_record(tmp_path: Path, detector: CenterFace) -> None:
    """A bare MCAP from Foxglove's writer: zstd chunks with CRCs, publish time, sequence, channel metadata
    (QoS names, type hash), an attachment and metadata records including rosbag2's with custom_data."""
    src = write_recorder_mcap(tmp_path / "drive.mcap")
    run(src, tmp_path / "anon.mcap", detector)
    assert_same_mcap(src, tmp_path / "anon.mcap")
    view = mcap_view(tmp_path / "anon.mcap")
    assert view["chunk_compression"] == {"zstd"}
    assert view["attachments"][0][0] == "calibration/front.yaml" and view["attachments"][0][4] == CALIBRATION
    rosbag2 = dict(view["metadata"])["rosbag2"]["serialized_metadata"]
    assert "custom_data" in rosbag2 and "version: 9" in rosbag2
    assert any(m.publish_time != m.log_time and m.sequence for m, _ in view["messages"]["/wheels"])


def test_split_mcap_directory_kept_file_by_file(tmp_path: Path, detector: CenterFace) -> None:
    src = write_recorder_mcap(tmp_path / "drive", files=2)
    dst = tmp_path / "anon"
    run(src, dst, detector)
    assert (dst / "metadata.yaml").read_text() == (src / "metadata.yaml").read_text()
    names = sorted(p.name for p in src.glob("*.mcap"))
    assert sorted(p.name for p in dst.glob("*.mcap")) == names and len(names) == 2
    for name in names:
        assert_same_mcap(src / name, dst / name)


def rosbags_view(path: Path) -> tuple[list[tuple], list[tuple[str, int, bytes]]]:
    """What rosbags' AnyReader sees: connections (all but id and owner) and every message."""
    with AnyReader([path]) as reader:
        conns = [(c.topic, c.msgtype, c.msgdef, c.digest, c.msgcount, c.ext) for c in reader.connections]
        return conns, [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]


def test_bare_mcap_written_as_a_rosbag2_directory(tmp_path: Path, detector: CenterFace) -> None:
    """`ldfa bag drive.mcap -o anon`: the file is copied record by record into the directory, keeping what
    a rosbags writer would drop (publish time, sequence, chunk compression and CRCs, header library,
    attachments, metadata records), beside the metadata.yaml rosbag2 writes, with the recorder's version
    and custom_data; rosbags reads the directory as it reads the file."""
    src = write_recorder_mcap(tmp_path / "drive.mcap")
    dst = tmp_path / "anon"
    run(src, dst, detector)
    assert sorted(p.name for p in dst.iterdir()) == ["drive.mcap", "metadata.yaml"]
    assert_same_mcap(src, dst / "drive.mcap")
    info = yaml.safe_load((dst / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    recorded = yaml.safe_load(dict(mcap_view(src)["metadata"])["rosbag2"]["serialized_metadata"])
    for field in ("version", "storage_identifier", "duration", "starting_time", "message_count", "custom_data",
                  "ros_distro", "relative_file_paths"):
        assert info[field] == recorded[field], field
    assert [(t["topic_metadata"]["name"], t["message_count"]) for t in info["topics_with_message_count"]] == \
        [(t["topic_metadata"]["name"], t["message_count"]) for t in recorded["topics_with_message_count"]]
    assert info["files"] == [{"path": "drive.mcap", "starting_time": info["starting_time"],
                              "duration": info["duration"], "message_count": info["message_count"]}]
    (conns_in, msgs_in), (conns_out, msgs_out) = rosbags_view(src), rosbags_view(dst)
    assert [c[:3] + c[4:] for c in conns_out] == [c[:3] + c[4:] for c in conns_in]
    assert conns_out[0][5].offered_qos_profiles, "QoS as recorded"
    hashes = {topic: dict(meta)["topic_type_hash"] for _, topic, _, _, meta in mcap_view(src)["channels"]}
    assert {c[0]: c[3] for c in conns_out} == hashes, "the type hash of each channel (rosbags reads none there)"
    assert [(topic, t) for topic, t, _ in msgs_out] == [(topic, t) for topic, t, _ in msgs_in]
    assert [m for m in msgs_out if m[0] not in RECORDER_CAMERAS] == [m for m in msgs_in if m[0] not in RECORDER_CAMERAS]


def test_bare_mcap_with_unreadable_qos_is_not_described_with_invented_qos(tmp_path: Path,
                                                                          detector: CenterFace) -> None:
    from mcap.writer import Writer

    src = tmp_path / "odd.mcap"
    with src.open("wb") as f:
        writer = Writer(f)
        writer.start("ros2", "odd recorder")
        schema = writer.register_schema("std_msgs/msg/String", "ros2msg", b"string data")
        channel = writer.register_channel("/note", "cdr", schema, {"offered_qos_profiles": "- history: [keep"})
        writer.add_message(channel, 1, b"\x00\x01\x00\x00\x02\x00\x00\x00a\x00", 1)
        writer.finish()
    with pytest.raises(ValueError, match="/note: its offered_qos_profiles cannot be written") as refused:
        anonymize_bag(src, tmp_path / "out", Pipeline(Settings(), detector))
    assert "\n" not in str(refused.value) and sorted(p.name for p in tmp_path.iterdir()) == ["odd.mcap"]
    run(src, tmp_path / "out.mcap", detector)  # a bare file needs no metadata.yaml


def test_mcap_compression_can_be_changed(tmp_path: Path, detector: CenterFace) -> None:
    src = write_recorder_mcap(tmp_path / "drive.mcap")
    for wanted, seen in (("none", {""}), ("lz4", {"lz4"})):
        run(src, tmp_path / f"{wanted}.mcap", detector, compression=wanted)
        assert mcap_view(tmp_path / f"{wanted}.mcap")["chunk_compression"] == seen


# --- sqlite3 + real rclpy ---------------------------------------------------------------------------------

def sqlite_view(db: Path) -> dict[str, Any]:
    """Every table of a rosbag2 sqlite3 file as sqlite3 returns it."""
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as con:
        tables = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        view = {name: con.execute(f"SELECT * FROM {name}").fetchall() for kind, name, _ in tables if kind == "table"}
    view["sqlite_master"] = tables
    return view


def camera_ids(view: dict[str, Any], cameras: Any = RECORDER_CAMERAS) -> set[int]:
    return {row[0] for row in view["topics"] if row[1] in cameras}


def assert_rows_kept(a: dict[str, Any], b: dict[str, Any], cams: set[int], dropped: int = 0) -> None:
    """Every table equal but the image rows' data; every other row byte-identical, with its id and timestamp;
    each image row rewritten in its place (same id, topic, timestamp) or, `dropped` of them, deleted."""
    assert {k: v for k, v in b.items() if k != "messages"} == {k: v for k, v in a.items() if k != "messages"}
    out = {row[0]: row for row in b["messages"]}
    assert len(out) == len(a["messages"]) - dropped
    for row in a["messages"]:
        if row[1] not in cams:
            assert out[row[0]] == row
        elif row[0] in out:
            assert out[row[0]][:3] == row[:3] and out[row[0]][3] != row[3]


def test_humble_bag_with_vendor_type_and_humble_range(tmp_path: Path, detector: CenterFace) -> None:
    """Humble layout (db schema 3, metadata v5, no definitions): every table but the image rows' data is
    identical, no definition is invented, and real rclpy reads the images and the other messages."""
    src = write_humble_bag(tmp_path / "humble")
    dst = tmp_path / "anon"
    report = run(src, dst, detector)
    assert (dst / "metadata.yaml").read_text() == (src / "metadata.yaml").read_text()
    a, b = sqlite_view(src / "humble_0.db3"), sqlite_view(dst / "humble_0.db3")
    assert "message_definitions" not in b, "no definitions were invented"
    types = {row[0]: row[2] for row in a["topics"]}
    assert VENDOR in types.values() and "sensor_msgs/msg/Range" in types.values()
    cams = camera_ids(a)
    assert_rows_kept(a, b, cams)
    assert sum(t["frames_out"] for t in report["image_topics"].values()) == len(
        [m for m in a["messages"] if m[1] in cams])
    rclpy_check(a, b, types, cams)


def rclpy_check(a: dict, b: dict, types: dict[int, str], cams: set[int]) -> None:
    """Real rclpy deserializes every output message as it does the input's: images with the same header and
    fields and the face hidden; Humble's Range and the vendor type fail or pass alike (identical bytes)."""
    serialization = pytest.importorskip("rclpy.serialization", reason="real rclpy (a ROS 2 install) not importable")
    utilities = pytest.importorskip("rosidl_runtime_py.utilities", reason="rosidl_runtime_py not importable")
    for (_, tid, _, data_a), (_, _, _, data_b) in zip(a["messages"], b["messages"]):
        if tid in cams:
            cls = utilities.get_message(types[tid])
            msg_a, msg_b = (serialization.deserialize_message(d, cls) for d in (data_a, data_b))
            assert image_fields(msg_b) == image_fields(msg_a)
            assert_face_hidden(decoded_image(msg_b))
        elif types[tid] == "sensor_msgs/msg/Imu":
            cls = utilities.get_message(types[tid])
            assert serialization.deserialize_message(data_b, cls) == serialization.deserialize_message(data_a, cls)


def test_split_humble_bag(tmp_path: Path, detector: CenterFace) -> None:
    src = write_humble_bag(tmp_path / "humble", files=2)
    dst = tmp_path / "anon"
    run(src, dst, detector)
    assert (dst / "metadata.yaml").read_text() == (src / "metadata.yaml").read_text()
    for name in ("humble_0.db3", "humble_1.db3"):
        a, b = sqlite_view(src / name), sqlite_view(dst / name)
        assert len(a["messages"]) > 0 and camera_ids(a) and len(a["topics"]) > len(camera_ids(a))
        assert_rows_kept(a, b, camera_ids(a))


@pytest.fixture
def upstream_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite3 as upstream SQLite builds it, with secure_delete off (Debian's build turns it on): the bytes of
    deleted rows stay in the file, in free pages and free space, until something overwrites them."""
    connect = sqlite3.connect

    def insecure(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        db.execute("PRAGMA secure_delete=OFF")
        return db

    monkeypatch.setattr(sqlite3, "connect", insecure)


def raw_face_rows(folder: Path) -> int:
    """How many pixel rows of the astronaut's face, as rgb8 bytes, the files in `folder` hold anywhere."""
    data = b"".join(p.read_bytes() for p in folder.iterdir())
    return sum(scene()[y, x1 + 10:x2 - 10].tobytes() in data for y in range(y1 + 20, y2 - 20))


def test_dropped_frames_leave_no_raw_face_in_sqlite3(tmp_path: Path, detector: CenterFace,
                                                     upstream_sqlite: None) -> None:
    """`--on-error drop` deletes the rows of frames whose detection fails: none of their bytes may be left in
    the output file, and every other row is kept."""
    src = write_bag(tmp_path / "in", "sqlite3").path

    def fails_on_the_face(rgb: np.ndarray, **kwargs: Any) -> Any:
        if np.array_equal(rgb, scene()):
            raise RuntimeError("detector crashed")
        return detector(rgb, **kwargs)

    dst = tmp_path / "anon"
    report = run(src, dst, fails_on_the_face, settings=Settings().updated(on_error="drop"), topics=["/cam/rgb"])
    dropped = report["image_topics"]["/cam/rgb"]["dropped"]
    assert dropped >= FRAMES - 1 and raw_face_rows(src) > 0
    assert raw_face_rows(dst) == 0, "a dropped frame's raw pixels are still in the file"
    [name] = [p.name for p in src.glob("*.db3")]
    a = sqlite_view(src / name)
    assert_rows_kept(a, sqlite_view(dst / name), camera_ids(a, ["/cam/rgb"]), dropped)


@pytest.mark.parametrize("deleted", ["frame", "face row"])
def test_what_the_input_deleted_leaves_no_raw_face_in_sqlite3(tmp_path: Path, detector: CenterFace,
                                                              upstream_sqlite: None, deleted: str) -> None:
    """Bytes the input deleted before (a recorder, a user) still sit in its file where no reader sees them:
    a deleted frame in free pages; a small value replaced in place (here a row of face pixels once put
    before an Imu message) in the free space of a page, which leaves no free page to tell. The output
    must carry neither along, yet keep every row a reader sees."""
    src = write_humble_bag(tmp_path / "humble")
    marker = np.fliplr(scene())[(y1 + y2) // 2, x1:x2].tobytes()  # face pixels found in no live row
    with closing(sqlite3.connect(src / "humble_0.db3")) as db:
        if deleted == "frame":
            row = db.execute("INSERT INTO messages (topic_id, timestamp, data) SELECT id, 0, ? FROM topics "
                             "WHERE name = '/cam/rgb'", (marker * 1000,)).lastrowid
            db.commit()  # on disk before it is deleted
            db.execute("DELETE FROM messages WHERE id = ?", (row,))
        else:
            row, data = db.execute("SELECT m.id, data FROM messages m JOIN topics t ON t.id = topic_id "
                                   "WHERE t.name = '/imu' LIMIT 1 OFFSET 3").fetchone()
            db.execute("UPDATE messages SET data = ? WHERE id = ?", (marker + data, row))
            db.commit()
            db.execute("UPDATE messages SET data = ? WHERE id = ?", (data, row))
        db.commit()
        assert (db.execute("PRAGMA freelist_count").fetchone()[0] > 0) == (deleted == "frame")
    assert marker in (src / "humble_0.db3").read_bytes()
    dst = tmp_path / "anon"
    run(src, dst, detector)
    assert marker not in (dst / "humble_0.db3").read_bytes(), "the input's deleted bytes were carried along"
    a = sqlite_view(src / "humble_0.db3")
    assert_rows_kept(a, sqlite_view(dst / "humble_0.db3"), camera_ids(a))


def test_definition_less_bag_is_not_converted_with_invented_definitions(tmp_path: Path,
                                                                        detector: CenterFace) -> None:
    src = write_humble_bag(tmp_path / "humble")
    with pytest.raises(ValueError, match="without message definitions"):
        anonymize_bag(src, tmp_path / "anon.mcap", Pipeline(Settings(), detector))
    assert not (tmp_path / "anon.mcap").exists()


# --- Debian's rosbag ----------------------------------------------------------------------------------

DEBIAN_DUMP = r"""
import hashlib, json, sys, rosbag
bag = rosbag.Bag(sys.argv[1])
conns = sorted([c.topic, c.datatype, c.md5sum, c.msg_def,
                sorted((k, v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in c.header.items())]
               for c in bag._connections.values())
messages = []
for topic, msg, t in bag.read_messages():
    row = {"topic": topic, "t": t.to_nsec(), "type": msg._type}
    if msg._type.startswith("sensor_msgs/") and msg._type.endswith("Image"):
        row["header"] = [msg.header.seq, msg.header.stamp.to_nsec(), msg.header.frame_id]
        row["fields"] = [getattr(msg, k) for k in ("format", "height", "width", "encoding", "step")
                         if hasattr(msg, k)]
        row["data"] = bytes(bytearray(msg.data)).hex()
    else:
        row["repr"] = str(msg)
    messages.append(row)
raws = [hashlib.sha256(raw[1]).hexdigest() for _, raw, _ in bag.read_messages(raw=True)]
print(json.dumps({"compression": bag.get_compression_info().compression, "connections": conns,
                  "messages": messages, "raw": raws}))
"""


def debian_view(path: Path) -> dict[str, Any]:
    if not DEBIAN_PYTHON.is_file() or subprocess.run([str(DEBIAN_PYTHON), "-c", "import rosbag"],
                                                     capture_output=True).returncode:
        pytest.skip("Debian's python3-rosbag is not installed (apt-get install python3-rosbag)")
    done = subprocess.run([str(DEBIAN_PYTHON), "-c", DEBIAN_DUMP, str(path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("compression", ["bz2", "lz4"])
def test_compressed_ros1_bags_read_by_debian_rosbag(tmp_path: Path, detector: CenterFace, compression: str) -> None:
    src = write_bag(tmp_path / "in.bag", "ros1", compression=compression).path
    dst = tmp_path / "out.bag"
    run(src, dst, detector)
    a, b = debian_view(src), debian_view(dst)
    assert a["compression"] == b["compression"] == compression
    assert b["connections"] == a["connections"]
    assert len(b["messages"]) == len(a["messages"])
    changed = 0
    for row_a, row_b, raw_a, raw_b in zip(a["messages"], b["messages"], a["raw"], b["raw"]):
        assert (row_b["topic"], row_b["t"], row_b["type"]) == (row_a["topic"], row_a["t"], row_a["type"])
        if "repr" in row_a:
            assert (row_b["repr"], raw_b) == (row_a["repr"], raw_a)
        else:
            assert (row_b["header"], row_b["fields"]) == (row_a["header"], row_a["fields"])
            changed += row_b["data"] != row_a["data"]
    assert changed == sum("data" in r for r in a["messages"]), "every image changed (the face is hidden)"


def test_ros1_compression_can_be_changed(tmp_path: Path, detector: CenterFace) -> None:
    src = write_bag(tmp_path / "in.bag", "ros1", compression="bz2").path
    run(src, tmp_path / "out.bag", detector, topics=["/cam/png"], compression="lz4")
    assert debian_view(tmp_path / "out.bag")["compression"] == "lz4"
