"""Offline anonymization of recorded bags: the `ldfa bag` command, a rosbags adapter and nothing more.

rosbags reads a rosbag2 directory (sqlite3 or mcap, any number of files), a bare .mcap/.db3 file or a
ROS 1 .bag. Image messages go through the same pipeline as the live node; every other message is copied
as raw bytes, with its connection (type, definition, hash, QoS, serialization format) and timestamp.

Offline we can look both ways in time: each camera topic detects its next `carry_frames` frames ahead
(in `jobs` worker threads) and remembers its last `carry_frames` detections, so a face the detector
missed in one frame is still hidden from its neighbours (`track.window_faces`). Memory is that window,
never the whole bag. Per topic, messages keep their order and timestamps; across topics images trail
the other data by the window, which readers undo as they all read in timestamp order.

The bag is written under a temporary name beside OUTPUT and moved into place only when complete, so an
interrupted run leaves nothing at OUTPUT.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import signal
import sys
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import cv2
import numpy as np
import yaml
from rosbags.convert.converter import create_connections_converters
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from rosbags.rosbag1 import Writer as Writer1, WriterError as WriterError1
from rosbags.rosbag2 import StoragePlugin, Writer as Writer2, WriterError as WriterError2
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
from rosbags.typesys import Stores, get_typestore
from tqdm import tqdm

from . import frames
from .cli import add_settings_arguments, settings_from_args, write_json
from .detect import Detections
from .pipeline import FrameInput, FrameResult, Pipeline, build_pipeline
from .samples import write_sample_bag
from .settings import Settings
from .track import distinct_faces, window_faces

log = logging.getLogger("ldfa_ros.bag")

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
# Pixels ldfa cannot anonymize: images inside other messages, and compressed video streams.
EMBEDDED_IMAGE = re.compile(r"\bsensor_msgs/(msg/)?(Image|CompressedImage)\b")
VIDEO_TYPES = ("foxglove_msgs/msg/CompressedVideo", "ffmpeg_image_transport_msgs/msg/FFMPEGPacket",
               "theora_image_transport/msg/Packet")
BARE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}
RENDER_BATCH = 4  # frames per pipeline call, so a GPU renderer can batch the faces of several frames
ERRORS_LISTED = 100  # per topic in the report; all are counted


class BagError(ValueError):
    """A bag that cannot be read or written; the text names the bag, and the topic and message if any."""


@dataclass(frozen=True)
class BagFormat:
    """How a bag is stored: 'ros1' or 'ros2'; for ROS 2 its storage plugin, whether it is one bare file
    (.mcap/.db3) rather than a directory with metadata.yaml, and its metadata version."""

    ros: str
    storage: str = ""
    bare: bool = False
    version: Literal[8, 9] = 8


def input_format(path: Path) -> BagFormat:
    """The format of the bag at `path`; FileNotFoundError or BagError when it is none we can read."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such bag (file or directory)")
    if path.is_dir():
        info = _rosbag2_metadata(path)
        storage = info.get("storage_identifier")
        if storage not in ("sqlite3", "mcap"):
            raise BagError(f"{path}: unsupported rosbag2 storage {storage!r} (supported: sqlite3, mcap)")
        version = info.get("version")
        return BagFormat("ros2", storage, version=9 if isinstance(version, int) and version >= 9 else 8)
    if path.suffix == ".bag":
        return BagFormat("ros1")
    if path.suffix in BARE_SUFFIXES:
        return BagFormat("ros2", BARE_SUFFIXES[path.suffix], bare=True)
    raise BagError(f"{path}: not a bag: expected a rosbag2 directory (with metadata.yaml), a .mcap or .db3 "
                   "file, or a ROS 1 .bag file")


def output_format(path: Path, source: BagFormat, ros: str | None = None, storage: str | None = None) -> BagFormat:
    """The format to write OUTPUT in: as asked, else as its name says (.bag, .mcap, .db3), else as the input."""
    ros = ros or ("ros1" if path.suffix == ".bag" else "ros2" if path.suffix in BARE_SUFFIXES else source.ros)
    if ros == "ros1":
        if path.suffix != ".bag" or storage:
            raise BagError(f"{path}: a ROS 1 bag must be a .bag file, and --storage applies to ROS 2 only")
        return BagFormat("ros1")
    if path.suffix == ".bag":
        raise BagError(f"{path}: a ROS 2 bag cannot end in .bag (readers take that for ROS 1)")
    bare = path.suffix in BARE_SUFFIXES
    if bare and storage and storage != BARE_SUFFIXES[path.suffix]:
        raise BagError(f"{path}: a {path.suffix} file cannot hold {storage} storage")
    storage = storage or (BARE_SUFFIXES[path.suffix] if bare else source.storage or "sqlite3")
    return BagFormat("ros2", storage, bare, source.version if source.ros == "ros2" else 8)


def check_paths(source: Path, output: Path, *, overwrite: bool = False, ros: str | None = None,
                storage: str | None = None) -> tuple[BagFormat, BagFormat]:
    """Input and output formats, after refusing anything that could touch the input or an existing OUTPUT."""
    src = input_format(source)
    dst = output_format(output, src, ros, storage)
    a, b = source.resolve(), output.resolve()
    if a == b or a in b.parents or b in a.parents:
        raise BagError(f"{output}: the output must not be, contain or lie inside the input {source}")
    if (output.exists() or output.is_symlink()) and not overwrite:
        raise FileExistsError(f"{output} exists; choose another OUTPUT or pass --overwrite")
    return src, dst


def report_path(output: Path) -> Path:
    """Where the JSON report of OUTPUT goes: next to it."""
    return output.with_name(output.name + ".ldfa_report.json")


@dataclass
class TopicReport:
    """What happened to one image topic."""

    msgtype: str
    frames_in: int = 0
    frames_out: int = 0
    blurred_whole: int = 0
    masked: int = 0
    dropped: int = 0
    faces_detected: int = 0
    faces: int = 0  # distinct faces hidden, summed over frames (overlapping regions of one face count once)
    regions: int = 0  # regions hidden, summed over frames (a face may have several: tracked, from neighbours)
    faces_hidden: dict[str, int] = field(default_factory=dict)  # regions by method
    faces_from_neighbours: int = 0  # hidden faces this frame did not detect itself (age > 0)
    fallbacks: dict[str, int] = field(default_factory=dict)  # by reason, for faces not hidden as configured
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_total: int = 0

    def error(self, index: int, timestamp: int, text: str, action: str) -> None:
        self.errors_total += 1
        if len(self.errors) < ERRORS_LISTED:
            self.errors.append({"index": index, "timestamp": timestamp, "error": text, "action": action})


@dataclass
class _Prepared:
    """An image message deserialized, decoded and detected (in a worker), or why it could not be."""

    msg: Any = None
    decoded: frames.DecodedFrame | None = None
    detections: Detections | None = None  # None with `detect_error`: detection failed
    error: str | None = None
    detect_error: str | None = None

    @property
    def blind(self) -> bool:
        """Decoded but not detected: its faces are unknown, to itself and to its neighbours."""
        return self.decoded is not None and self.detections is None


@dataclass
class _Pending:
    """An image message between reading and writing; `index` counts messages of its topic from 0."""

    conn: Connection
    timestamp: int
    index: int
    little_endian: bool
    prepared: Future[_Prepared]


@dataclass
class _Topic:
    """One camera topic: frames read ahead, detections of frames already written, and its report."""

    ahead: deque[_Pending]
    behind: deque[Detections | None]
    behind_blind: deque[bool]
    report: TopicReport
    size: tuple[int, int] | None = None  # (height, width) of its last decodable frame


class _Output:
    """The bag writer, with an output connection per input connection and how raw bytes carry over:
    unchanged within a ROS version, through rosbags' converter between ROS 1 and ROS 2."""

    def __init__(self, writer: Writer1 | Writer2, reader: AnyReader) -> None:
        self.writer = writer
        self.reader = reader
        if isinstance(writer, Writer2) == reader.is2:
            self.connections = {_key(c): self._copy(c) for c in reader.connections}
            self.convert: dict[str, Callable[[Any], Any]] = {c.msgtype: memoryview for c in reader.connections}
        else:
            connmap, self.convert = create_connections_converters(reader.connections, None, reader, writer)
            self.connections = {_key(c): connmap[(c.id, c.owner)] for c in reader.connections}

    def _copy(self, conn: Connection) -> Connection:
        """The output connection for `conn`, with its definition, hash and QoS/latching as recorded."""
        for existing in self.writer.connections:
            if (existing.topic, existing.msgtype, existing.ext) == (conn.topic, conn.msgtype, conn.ext):
                return existing
        msgdef = conn.msgdef.data or None
        if isinstance(self.writer, Writer2):
            return self.writer.add_connection(
                conn.topic, conn.msgtype, typestore=self.reader.typestore, msgdef=msgdef, rihs01=conn.digest or None,
                serialization_format=conn.ext.serialization_format,  # type: ignore[union-attr]
                offered_qos_profiles=conn.ext.offered_qos_profiles)  # type: ignore[union-attr]
        return self.writer.add_connection(
            conn.topic, conn.msgtype, typestore=self.reader.typestore, msgdef=msgdef, md5sum=conn.digest or None,
            callerid=conn.ext.callerid, latching=conn.ext.latching)  # type: ignore[union-attr]

    def raw(self, conn: Connection, timestamp: int, data: Any) -> None:
        self.writer.write(self.connections[_key(conn)], timestamp, self.convert[conn.msgtype](data))

    def message(self, conn: Connection, timestamp: int, msg: Any, little_endian: bool) -> None:
        """Serialize like the input (ROS version, CDR byte order), then carry over like raw bytes."""
        store = self.reader.typestore
        data = (store.serialize_cdr(msg, conn.msgtype, little_endian=little_endian) if self.reader.is2
                else store.serialize_ros1(msg, conn.msgtype))
        self.raw(conn, timestamp, data)


def _key(conn: Connection) -> tuple[int, int]:
    return conn.id, id(conn.owner)


class _BagRun:
    """One pass over a bag: read, window, anonymize, write."""

    def __init__(self, reader: AnyReader, out: _Output, pipeline: Pipeline, image_conns: list[Connection],
                 jobs: int, bar: Any) -> None:
        self.reader, self.out, self.pipeline, self.bar = reader, out, pipeline, bar
        self.window = pipeline.settings.carry_frames
        self.images = {_key(c) for c in image_conns}
        self.topics: dict[str, _Topic] = {}
        for c in image_conns:
            if c.topic not in self.topics:
                self.topics[c.topic] = _Topic(deque(), deque(maxlen=self.window), deque(maxlen=self.window),
                                              TopicReport(c.msgtype))
        self.copied: Counter[str] = Counter()
        self.batch: list[tuple[_Topic, _Pending, list[Any], str | None]] = []
        self.workers = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ldfa-bag")

    def run(self, messages: Iterator[tuple[Connection, int, bytes]]) -> None:
        try:
            for conn, timestamp, data in messages:
                if _key(conn) in self.images:
                    self._read_image(conn, timestamp, data)
                else:
                    self.out.raw(conn, timestamp, data)
                    self.copied[conn.topic] += 1
            for topic in self.topics.values():
                while topic.ahead:
                    self._take(topic)
            self._flush()
        finally:
            self.workers.shutdown(cancel_futures=True)

    def _read_image(self, conn: Connection, timestamp: int, data: bytes) -> None:
        topic = self.topics[conn.topic]
        little = not self.reader.is2 or len(data) < 2 or data[1] == 1  # CDR encapsulation names the byte order
        prepared = self.workers.submit(self._prepare, conn.msgtype, data)
        topic.ahead.append(_Pending(conn, timestamp, topic.report.frames_in, little, prepared))
        topic.report.frames_in += 1
        if len(topic.ahead) > self.window:
            self._take(topic)

    def _prepare(self, msgtype: str, data: bytes) -> _Prepared:
        """Worker: message -> pixels -> faces. Never raises: a failure is recorded and fails closed later."""
        try:
            msg = self.reader.deserialize(data, msgtype)
        except Exception as exc:  # noqa: BLE001 - any corrupt message must be contained, not abort the bag
            return _Prepared(error=f"cannot deserialize {msgtype}: {type(exc).__name__}: {exc}")
        try:
            decoded = frames.decode(msg)
        except frames.FrameError as exc:
            return _Prepared(msg, error=str(exc))
        try:
            return _Prepared(msg, decoded, self.pipeline.detect(decoded.rgb))
        except Exception as exc:  # noqa: BLE001 - retried on the main thread, then fails closed
            return _Prepared(msg, decoded, detect_error=f"{type(exc).__name__}: {exc}")

    def _retry_detect(self, prepared: _Prepared) -> None:
        """Detect again, on this thread, a frame whose detection failed in a worker; counted and logged."""
        if not prepared.blind or prepared.detect_error is None:
            return
        self.pipeline.counters["bag_detect_retried"] += 1
        try:
            prepared.detections = self.pipeline.detect(prepared.decoded.rgb)  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001
            log.error("detection failed twice (%s; then %s: %s)", prepared.detect_error, type(exc).__name__, exc)
            self.pipeline.counters["bag_detect_failed"] += 1
        prepared.detect_error = None

    def _take(self, topic: _Topic) -> None:
        """The oldest frame read ahead, with the faces its window saw, joins the render batch."""
        pending = topic.ahead.popleft()
        own = pending.prepared.result()
        window = [own] + [p.prepared.result() for p in topic.ahead]
        for prepared in window:
            self._retry_detect(prepared)
        # A frame whose window has a frame of unknown faces cannot be covered from it: it fails closed.
        blind = any(p.blind for p in window) or any(topic.behind_blind)
        extra = []
        if own.decoded is not None and not blind:
            extra = window_faces([*topic.behind, *(p.detections for p in window)], len(topic.behind))
        topic.behind.append(own.detections)
        topic.behind_blind.append(own.blind)
        why = "face detection failed in its look-around window" if blind else None
        self.batch.append((topic, pending, extra, why))
        if len(self.batch) >= RENDER_BATCH:
            self._flush()

    def _flush(self) -> None:
        inputs = []
        for _, pending, extra, blind in self.batch:
            prepared = pending.prepared.result()
            if prepared.decoded is not None:  # the topic is the stream: each camera has its own tracker
                inputs.append(FrameInput(prepared.decoded.rgb, pending.conn.topic, prepared.detections, extra, blind))
        results = iter(self.pipeline.process_many(inputs))
        for topic, pending, _, _ in self.batch:
            prepared = pending.prepared.result()
            if prepared.decoded is None:
                self._write_failed(topic, pending, prepared)
            else:
                self._write(topic, pending, prepared, next(results))
            self.bar.update(1)
        self.batch = []

    def _write(self, topic: _Topic, pending: _Pending, prepared: _Prepared, result: FrameResult) -> None:
        report = topic.report
        assert prepared.decoded is not None
        topic.size = prepared.decoded.rgb.shape[:2]
        if prepared.detections is not None:
            report.faces_detected += len(prepared.detections)
        report.faces += distinct_faces([np.asarray(f.box) for f in result.faces])
        report.regions += len(result.faces)
        for face in result.faces:
            report.faces_hidden[face.method] = report.faces_hidden.get(face.method, 0) + 1
            report.faces_from_neighbours += face.age > 0
            if face.reason != "configured":
                report.fallbacks[face.reason] = report.fallbacks.get(face.reason, 0) + 1
        if result.image is None:
            report.dropped += 1
            report.error(pending.index, pending.timestamp, result.error or "dropped", "dropped")
            return
        try:
            msg = frames.encode(prepared.decoded, result.image, result.changed)
        except frames.FrameError as exc:
            why = f"re-encoding failed: {exc}" + (f" (after {result.error})" if result.error else "")
            self._write_failed(topic, pending, _Prepared(prepared.msg, error=why), "unencodable")
            return
        if result.error:
            report.blurred_whole += 1
            report.error(pending.index, pending.timestamp, result.error, "blurred whole")
        self.out.message(pending.conn, pending.timestamp, msg, pending.little_endian)
        report.frames_out += 1

    def _write_failed(self, topic: _Topic, pending: _Pending, prepared: _Prepared, why: str = "undecodable") -> None:
        """An image that cannot be decoded (or encoded): black in place (on_error=blur) or dropped; never
        the original."""
        report = topic.report
        masked = None
        if prepared.msg is not None and self.pipeline.settings.on_error == "blur":
            masked = _masked(prepared.msg, topic.size)
        action = "dropped" if masked is None else "masked"
        report.error(pending.index, pending.timestamp, prepared.error or "undecodable", action)
        self.pipeline.counters[f"bag_{action}_{why}"] += 1
        if masked is None:
            report.dropped += 1
            return
        self.out.message(pending.conn, pending.timestamp, masked, pending.little_endian)
        report.masked += 1
        report.frames_out += 1


def _masked(msg: Any, size: tuple[int, int] | None) -> Any | None:
    """A black image in place of `msg` (same type, header, encoding or format), or None if none can be made:
    raw data is zeroed at its recorded length; a compressed one needs the topic's last known frame size."""
    if not hasattr(msg, "format"):
        return type(msg)(header=msg.header, height=msg.height, width=msg.width, encoding=msg.encoding,
                         is_bigendian=msg.is_bigendian, step=msg.step, data=np.zeros(len(msg.data), np.uint8))
    fmt = msg.format.lower()
    ext = ".png" if "png" in fmt else ".jpg" if "jpeg" in fmt or "jpg" in fmt else None
    if size is None or ext is None:
        return None
    ok, data = cv2.imencode(ext, np.zeros((*size, 3), np.uint8))
    return type(msg)(header=msg.header, format=msg.format, data=data.reshape(-1)) if ok else None


def _rosbag2_metadata(path: Path) -> dict[str, Any]:
    meta = path / "metadata.yaml"
    if not meta.is_file():
        raise BagError(f"{path}: not a rosbag2 directory (no metadata.yaml); pass a .mcap or .db3 file directly")
    try:
        info = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
    except (OSError, yaml.YAMLError, TypeError, KeyError) as exc:
        raise BagError(f"{meta}: unreadable rosbag2 metadata: {type(exc).__name__}: {exc}") from exc
    if not isinstance(info, dict):
        raise BagError(f"{meta}: unreadable rosbag2 metadata: not a mapping")
    return info


def _open_writer(fmt: BagFormat, path: Path, reader: AnyReader, source: Path, same_storage: bool) -> Writer1 | Writer2:
    """A writer at `path` for `fmt`, keeping the input's rosbag2 compression and custom data where it can."""
    if fmt.ros == "ros1":
        return Writer1(path)
    writer = Writer2(path, version=fmt.version, storage_plugin=StoragePlugin[fmt.storage.upper()])
    if reader.is2 and source.is_dir():
        mode = reader.readers[0].compression_mode  # type: ignore[union-attr]
        if mode and same_storage and not fmt.bare:
            writer.set_compression(CompressionMode[mode.upper()], CompressionFormat.ZSTD)
        for key, value in (_rosbag2_metadata(source).get("custom_data") or {}).items():
            writer.set_custom_data(str(key), str(value))
    return writer


def _messages(reader: AnyReader, source: Path) -> Iterator[tuple[Connection, int, bytes]]:
    """All messages in storage order; BagError naming the bag and position when the bag is damaged,
    including when fewer messages can be read than its index or metadata promise (a truncated file)."""
    counts: Counter[tuple[int, int]] = Counter()
    last = "the start"
    it = reader.messages()
    while True:
        try:
            conn, timestamp, data = next(it)
        except StopIteration:
            break
        except Exception as exc:  # noqa: BLE001 - rosbags, sqlite3, zstd and struct all raise their own
            raise BagError(f"{source}: the bag is truncated or corrupt: reading failed after {sum(counts.values())} "
                           f"messages ({last}): {type(exc).__name__}: {exc}") from exc
        counts[_key(conn)] += 1
        last = f"last read: message #{counts[_key(conn)] - 1} of {conn.topic} at {timestamp} ns"
        yield conn, timestamp, data
    for conn in reader.connections:
        if conn.msgcount > counts[_key(conn)]:
            raise BagError(f"{source}: the bag is truncated: {conn.topic} should have {conn.msgcount} messages but "
                           f"only {counts[_key(conn)]} could be read")


def anonymize_bag(source: Path, output: Path, pipeline: Pipeline, *, topics: Sequence[str] | None = None,
                  ros: str | None = None, storage: str | None = None, jobs: int = 1, overwrite: bool = False,
                  show_progress: bool = False) -> dict[str, Any]:
    """Anonymize the image topics of bag `source` into a new bag `output`; return the report (also written
    next to OUTPUT). `pipeline` must be fresh: its trackers must not hold faces of another bag."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    src_fmt, dst_fmt = check_paths(source, output, overwrite=overwrite, ros=ros, storage=storage)
    start = time.perf_counter()
    scratch = output.parent / f".{output.name}.ldfa-partial-{os.getpid()}"  # named first: always cleaned up
    try:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir()
            written = scratch / (output.stem if dst_fmt.bare else output.name)
            run, untouched = _copy_bag(source, written, src_fmt, dst_fmt, pipeline, topics, jobs, show_progress)
        except (OSError, WriterError1, WriterError2) as exc:  # reading errors are BagErrors by now
            raise BagError(f"{output}: cannot write the bag: {type(exc).__name__}: {exc}") from exc
        if dst_fmt.bare:  # rosbags writes a directory; the bare storage file is all we keep
            written = next(p for p in written.iterdir() if p.suffix == output.suffix)
        _publish(written, output, scratch, overwrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.perf_counter() - start
    frames_in = sum(t.report.frames_in for t in run.topics.values())
    report = {
        "input": str(source), "output": str(output), "input_format": asdict(src_fmt), "output_format": asdict(dst_fmt),
        "settings": asdict(pipeline.settings), "jobs": jobs, "elapsed_s": round(elapsed, 2),
        "frames_per_s": round(frames_in / elapsed, 2) if elapsed > 0 else None,
        "image_topics": {name: asdict(t.report) for name, t in run.topics.items()},
        "image_topics_not_anonymized": untouched, "copied_messages": dict(run.copied),
        "counters": dict(pipeline.counters),
    }
    write_json(report_path(output), report)
    return report


def _copy_bag(source: Path, written: Path, src_fmt: BagFormat, dst_fmt: BagFormat, pipeline: Pipeline,
              topics: Sequence[str] | None, jobs: int, show_progress: bool) -> tuple[_BagRun, list[str]]:
    """Read `source`, write the anonymized bag at `written`; the finished run and the untouched image topics."""
    try:
        reader = AnyReader([source], default_typestore=get_typestore(Stores.LATEST))
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags, sqlite3 and yaml raise their own
        raise BagError(f"{source}: cannot open the bag (truncated or corrupt?): {type(exc).__name__}: "
                       f"{exc}") from exc
    try:
        image_conns, untouched = _select(reader, source, topics)
        writer = _open_writer(dst_fmt, written, reader, source, src_fmt.storage == dst_fmt.storage)
        with writer, tqdm(total=sum(c.msgcount for c in image_conns), desc=written.name, unit="frame",
                          disable=not show_progress, file=sys.stderr, dynamic_ncols=True) as bar:
            run = _BagRun(reader, _Output(writer, reader), pipeline, image_conns, jobs, bar)
            run.run(_messages(reader, source))
    finally:
        reader.close()
    return run, untouched


def _select(reader: AnyReader, source: Path, topics: Sequence[str] | None) -> tuple[list[Connection], list[str]]:
    """Image connections to anonymize (all, or those of `topics`), and topics with pixels left as recorded:
    image topics not selected, images embedded in other message types, and video streams."""
    images = {c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES}
    if topics:
        for topic in topics:
            if topic not in images:
                known = "not an image topic" if any(c.topic == topic for c in reader.connections) \
                    else "it is not in the bag"
                raise BagError(f"{source}: cannot anonymize topic {topic!r}: {known}; image topics: "
                               f"{', '.join(sorted(images)) or 'none'}")
        images = set(topics)
    untouched = sorted({c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES} - images)
    untouched += sorted({c.topic for c in reader.connections if c.msgtype not in IMAGE_TYPES and (
        c.msgtype in VIDEO_TYPES or EMBEDDED_IMAGE.search(c.msgdef.data or ""))})
    return [c for c in reader.connections if c.topic in images and c.msgtype in IMAGE_TYPES], untouched


def _publish(written: Path, output: Path, scratch: Path, overwrite: bool) -> None:
    """Move the finished bag into place; an existing OUTPUT (with --overwrite) is replaced only now."""
    if output.exists() or output.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{output} appeared while writing; the new bag was discarded")
        output.rename(scratch / "replaced")
    written.rename(output)


def run_demo_bag(out: Path, settings: Settings) -> int:
    """`ldfa demo`, bag part: write OUT/sample_bag (6 JPEG camera frames with faces beside Imu, TF and
    String topics) and anonymize it into OUT/anonymized_bag exactly as `ldfa bag` does."""
    sample = out / "sample_bag"
    shutil.rmtree(sample, ignore_errors=True)
    write_sample_bag(sample, 6, encoding="jpeg")
    report = anonymize_bag(sample, out / "anonymized_bag", build_pipeline(settings), overwrite=True,
                           show_progress=True)
    errors = sum(t["errors_total"] for t in report["image_topics"].values())
    print(f"demo: anonymized bag in {out / 'anonymized_bag'} (report {report_path(out / 'anonymized_bag')})")
    return 1 if errors else 0


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM (e.g. a batch job's time limit): unwind like Ctrl-C, so no partial output is left."""
    raise SystemExit(128 + signum)


def run_bag(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    source, output = Path(args.input), Path(args.output)
    check_paths(source, output, overwrite=args.overwrite, ros=args.format, storage=args.storage)  # fail fast
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        report = anonymize_bag(source, output, build_pipeline(settings), topics=args.topics, ros=args.format,
                               storage=args.storage, jobs=args.jobs, overwrite=args.overwrite, show_progress=True)
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"ldfa bag: interrupted; nothing was written to {output}", file=sys.stderr)
        return exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    topics = report["image_topics"].values()
    errors = sum(t["errors_total"] for t in topics)
    if not report["image_topics"]:
        print(f"ldfa bag: warning: {source} has no image topics to anonymize; it was copied as is", file=sys.stderr)
    for name in report["image_topics_not_anonymized"]:
        print(f"ldfa bag: warning: {name} carries images that are not anonymized (not selected, embedded in "
              "another message type, or video): it is copied as recorded", file=sys.stderr)
    for name, topic in report["image_topics"].items():
        for err in topic["errors"]:
            print(f"ldfa bag: {source}: {name} message #{err['index']}: {err['error']} ({err['action']})",
                  file=sys.stderr)
    print(f"{sum(t['frames_in'] for t in topics)} frame(s) on {len(report['image_topics'])} image topic(s) -> "
          f"{output}: {sum(t['faces'] for t in topics)} face(s) hidden in {sum(t['regions'] for t in topics)} "
          f"region(s), {errors} error(s), "
          f"{report['frames_per_s']} frames/s; report in {report_path(output)}")
    return 1 if errors else 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bag", help="anonymize the camera topics of a rosbag (ROS 1 or ROS 2; no ROS install needed)",
        description="Copy a bag with every sensor_msgs/Image and CompressedImage topic (or those given with "
                    "--topics) anonymized; all other messages, connections and timestamps are copied unchanged. "
                    "Faces are carried --carry-frames frames forward and backward per topic. A JSON report is "
                    "written next to OUTPUT. Exit code 0: done; 1: done, but some frames failed (blurred whole, "
                    "masked or dropped; see the report); 2: nothing written.")
    p.add_argument("input", metavar="INPUT", help="rosbag2 directory, .mcap or .db3 file, or ROS 1 .bag file")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="bag to write (a directory for rosbag2, unless it ends in .mcap or .db3)")
    p.add_argument("--topics", nargs="+", metavar="TOPIC", help="image topics to anonymize (default: all)")
    p.add_argument("--format", choices=("ros1", "ros2"), help="output ROS version (default: the input's)")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), help="ROS 2 output storage (default: the input's)")
    p.add_argument("--jobs", type=_positive, default=1, metavar="N",
                   help="threads that decode and detect upcoming frames while the main thread renders and writes")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    add_settings_arguments(p)
    p.set_defaults(run=run_bag)
