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
import glob
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import sys
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import cv2
import numpy as np
import zstandard
from mcap.exceptions import McapError
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from rosbags.rosbag1 import WriterError as WriterError1
from rosbags.rosbag2 import WriterError as WriterError2
from rosbags.typesys import Stores, get_typestore
from tqdm import tqdm

from . import frames
from .bag_io import (COMPRESSIONS, BagCopy, BagError, Key, McapCopy, RosbagsCopy, SqliteCopy, key, open_rosbags_writer,
                     rosbag2_metadata)
from .cli import add_settings_arguments, at_least, settings_from_args, write_json
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
        info = rosbag2_metadata(path)
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
        if path.suffix != ".bag":
            raise BagError(f"{path}: a ROS 1 bag must be a .bag file (the input is ROS 1; --format ros2 converts)")
        if storage:
            raise BagError(f"{path}: --storage applies to ROS 2 output only")
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
    if output.exists() or output.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{output} exists; choose another OUTPUT or pass --overwrite")
        if not owned_by_ldfa(output):
            raise FileExistsError(f"{output} exists and is not an ldfa output (no {report_path(output).name} "
                                  "naming it beside it); --overwrite replaces only ldfa's own outputs")
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


class _BagRun:
    """One pass over a bag: read, window, anonymize, write."""

    def __init__(self, reader: BagCopy, out: BagCopy, pipeline: Pipeline, image_conns: list[Connection],
                 jobs: int, bar: Any) -> None:
        self.reader, self.out, self.pipeline, self.bar = reader, out, pipeline, bar
        self.window = pipeline.settings.carry_frames
        self.images = {key(c) for c in image_conns}
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
                if key(conn) in self.images:
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
        report.faces += distinct_faces([np.asarray(f.box) for f in result.faces if not f.copy_of])
        report.regions += len(result.faces)
        for face in result.faces:
            report.faces_hidden[face.method] = report.faces_hidden.get(face.method, 0) + 1
            report.faces_from_neighbours += face.age > 0
            if face.reason != "configured":
                report.fallbacks[face.reason] = report.fallbacks.get(face.reason, 0) + 1
        if result.image is None:
            report.dropped += 1
            report.error(pending.index, pending.timestamp, result.error or "dropped", "dropped")
            self.out.skip(pending.conn)  # an in-place copy must delete the input's row/record, not leave it
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
            self.out.skip(pending.conn)
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


def _messages(reader: BagCopy, source: Path) -> Iterator[tuple[Connection, int, bytes]]:
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
        counts[key(conn)] += 1
        last = f"last read: message #{counts[key(conn)] - 1} of {conn.topic} at {timestamp} ns"
        yield conn, timestamp, data
    for conn in reader.connections:
        if conn.msgcount > counts[key(conn)]:
            raise BagError(f"{source}: the bag is truncated: {conn.topic} should have {conn.msgcount} messages but "
                           f"only {counts[key(conn)]} could be read")


PARTIAL = ".ldfa-partial"  # marker file inside a scratch folder: written by this tool, with its pid
SAMPLE_MARK = ".ldfa-sample"  # marker file inside the demo's sample bag, which the next demo run replaces


def anonymize_bag(source: Path, output: Path, pipeline: Pipeline, *, topics: Sequence[str] | None = None,
                  ros: str | None = None, storage: str | None = None, jobs: int = 1, overwrite: bool = False,
                  show_progress: bool = False, compression: str = "keep") -> dict[str, Any]:
    """Anonymize the image topics of bag `source` into a new bag `output`; return the report (also written
    next to OUTPUT). `pipeline` must be fresh: its trackers must not hold faces of another bag.
    `compression`: keep the input's (default), none, or zstd/lz4 (MCAP chunks), bz2/lz4 (ROS 1 chunks)."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")
    src_fmt, dst_fmt = check_paths(source, output, overwrite=overwrite, ros=ros, storage=storage)
    start = time.perf_counter()
    scratch = output.parent / f".{output.name}.ldfa-partial-{os.getpid()}"
    made = False  # only a scratch folder this run made is removed
    try:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            clean_stale_partials(output)
            scratch.mkdir()
            made = True
            (scratch / PARTIAL).write_text(json.dumps({"pid": os.getpid(), "output": str(output)}) + "\n")
            written = scratch / "bag"
            run, untouched = _copy_bag(source, written, scratch, src_fmt, dst_fmt, pipeline, topics, jobs,
                                       show_progress, compression)
            if dst_fmt.bare:  # a directory was written; the one storage file is all we keep
                files = [p for p in written.iterdir() if p.suffix == output.suffix]
                if len(files) != 1:
                    raise BagError(f"{output}: the input is split into {len(files)} files; a bare {output.suffix} "
                                   "holds one: write a rosbag2 directory instead")
                written = files[0]
            report = _report(source, output, src_fmt, dst_fmt, pipeline, jobs, time.perf_counter() - start, run,
                             untouched)
            write_json(scratch / "report.json", report)
            _publish(written, output, scratch, overwrite)
        except (OSError, sqlite3.Error, zstandard.ZstdError, McapError, WriterError1, WriterError2) as exc:
            raise BagError(f"{output}: cannot write the bag: {type(exc).__name__}: {exc}") from exc
    finally:
        if made:
            shutil.rmtree(scratch, ignore_errors=True)
    return report


def _report(source: Path, output: Path, src_fmt: BagFormat, dst_fmt: BagFormat, pipeline: Pipeline, jobs: int,
            elapsed: float, run: _BagRun, untouched: list[str]) -> dict[str, Any]:
    frames_in = sum(t.report.frames_in for t in run.topics.values())
    return {
        "input": str(source), "output": str(output), "input_format": asdict(src_fmt), "output_format": asdict(dst_fmt),
        "settings": asdict(pipeline.settings), "jobs": jobs, "elapsed_s": round(elapsed, 2),
        "frames_per_s": round(frames_in / elapsed, 2) if elapsed > 0 else None,
        "image_topics": {name: asdict(t.report) for name, t in run.topics.items()},
        "image_topics_not_anonymized": untouched, "copied_messages": dict(run.copied),
        "counters": dict(pipeline.counters),
    }


def clean_stale_partials(output: Path) -> None:
    """Remove the scratch folders of killed runs for OUTPUT (only those with this tool's marker and a dead
    pid, or empty); refuse, naming it, one of a run still alive or one with contents but without the marker."""
    for folder in output.parent.glob(f".{glob.escape(output.name)}.ldfa-partial-*"):
        try:
            pid = int(json.loads((folder / PARTIAL).read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            _remove_unmarked(folder, output)
            continue
        _refuse_alive(pid, folder, output)
        shutil.rmtree(folder)
        log.warning("removed %s, left by a killed run (pid %d)", folder, pid)


def _remove_unmarked(folder: Path, output: Path) -> None:
    """A run killed between making its scratch folder and writing its marker leaves the folder empty, or
    holding an empty marker. That holds nothing of anyone's, so it goes, unless the run its name gives still
    lives; a folder with anything else is refused."""
    marker = folder / PARTIAL
    if not folder.is_symlink() and folder.is_dir() and list(folder.iterdir()) in ([], [marker]) and (
            not marker.exists() or marker.stat().st_size == 0):
        named = folder.name.rpartition("-")[2]
        if named.isdigit():
            _refuse_alive(int(named), folder, output)
        try:
            marker.unlink(missing_ok=True)
            os.rmdir(folder)  # only while still empty
        except OSError:
            pass
        else:
            log.warning("removed %s, left unmarked by a killed run", folder)
            return
    raise BagError(f"{folder}: in the way of {output} and not marked as ldfa's partial output; remove it yourself")


def _refuse_alive(pid: int, folder: Path, output: Path) -> None:
    if pid != os.getpid() and _alive(pid):  # our own pid: a killed run's, reused (e.g. pid 1 in a container)
        raise BagError(f"{output}: another ldfa bag run (pid {pid}) is writing it ({folder})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owned_by_ldfa(output: Path) -> bool:
    """Whether OUTPUT was written by `ldfa bag`: its report lies next to it and names it."""
    try:
        report = json.loads(report_path(output).read_text())
        return isinstance(report, dict) and Path(report["output"]).name == output.name and "input_format" in report
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _copy_bag(source: Path, written: Path, scratch: Path, src_fmt: BagFormat, dst_fmt: BagFormat,
              pipeline: Pipeline, topics: Sequence[str] | None, jobs: int, show_progress: bool,
              compression: str) -> tuple[_BagRun, list[str]]:
    """Read `source`, write the anonymized bag at `written`; the finished run and the untouched image topics."""
    copy = _open_copy(source, written, scratch, src_fmt, dst_fmt, compression, topics)
    try:
        image_conns, untouched = _select(copy.connections, source, topics)
        with tqdm(total=sum(c.msgcount for c in image_conns), desc=written.name, unit="frame",
                  disable=not show_progress, file=sys.stderr, dynamic_ncols=True) as bar:
            run = _BagRun(copy, copy, pipeline, image_conns, jobs, bar)
            run.run(_messages(copy, source))
        copy.finish()
    finally:
        copy.close()
    return run, untouched


def _open_copy(source: Path, written: Path, scratch: Path, src_fmt: BagFormat, dst_fmt: BagFormat,
               compression: str, topics: Sequence[str] | None) -> BagCopy:
    """The copy for these formats: at storage level within one ROS 2 storage, else through rosbags."""
    def images(connections: list[Connection]) -> set[Key]:
        return {key(c) for c in _select(connections, source, topics)[0]}

    same = src_fmt.ros == dst_fmt.ros == "ros2" and src_fmt.storage == dst_fmt.storage and (
        src_fmt.bare <= dst_fmt.bare or dst_fmt.storage == "mcap")  # McapCopy can describe a bare file's directory
    if same and dst_fmt.bare and not src_fmt.bare and compression == "keep" and \
            rosbag2_metadata(source).get("compression_mode"):
        raise BagError(f"{source}: its rosbag2 compression is described in its metadata.yaml, which a bare "
                       f"{dst_fmt.storage} file cannot hold: write a rosbag2 directory, or add --compression none")
    try:
        if same and dst_fmt.storage == "sqlite3":
            if compression not in ("keep", "none"):
                raise BagError(f"sqlite3 output supports --compression keep or none, not {compression!r}")
            return SqliteCopy(source, written, scratch, images, compression == "keep")
        if same:
            return McapCopy(source, written, scratch, images, compression, describe=src_fmt.bare > dst_fmt.bare)
    except (BagError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - sqlite3, mcap and zstd raise their own on a damaged input
        raise BagError(f"{source}: cannot open the bag (truncated or corrupt?): {type(exc).__name__}: "
                       f"{exc}") from exc
    try:
        reader = AnyReader([source], default_typestore=get_typestore(Stores.LATEST))
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags, sqlite3 and yaml raise their own
        raise BagError(f"{source}: cannot open the bag (truncated or corrupt?): {type(exc).__name__}: "
                       f"{exc}") from exc
    try:
        writer = open_rosbags_writer(written, dst_fmt.ros, dst_fmt.storage, dst_fmt.version, reader, source,
                                     compression)
        return RosbagsCopy(reader, writer)
    except BaseException:
        reader.close()
        raise


def _select(connections: list[Connection], source: Path,
            topics: Sequence[str] | None) -> tuple[list[Connection], list[str]]:
    """Image connections to anonymize (all, or those of `topics`), and topics with pixels left as recorded:
    image topics not selected, images embedded in other message types, and video streams."""
    images = {c.topic for c in connections if c.msgtype in IMAGE_TYPES}
    if topics:
        for topic in topics:
            if topic not in images:
                known = "not an image topic" if any(c.topic == topic for c in connections) \
                    else "it is not in the bag"
                raise BagError(f"{source}: cannot anonymize topic {topic!r}: {known}; image topics: "
                               f"{', '.join(sorted(images)) or 'none'}")
        images = set(topics)
    untouched = sorted({c.topic for c in connections if c.msgtype in IMAGE_TYPES} - images)
    untouched += sorted({c.topic for c in connections if c.msgtype not in IMAGE_TYPES and (
        c.msgtype in VIDEO_TYPES or EMBEDDED_IMAGE.search(c.msgdef.data or ""))})
    return [c for c in connections if c.topic in images and c.msgtype in IMAGE_TYPES], untouched


def _publish(written: Path, output: Path, scratch: Path, overwrite: bool) -> None:
    """Move the finished bag and its report into place; an existing OUTPUT (with --overwrite, and only
    when it is ldfa's own) is replaced only now."""
    if output.exists() or output.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{output} appeared while writing; the new bag was discarded")
        if not owned_by_ldfa(output):
            raise FileExistsError(f"{output} appeared while writing and is not an ldfa output; the new bag was "
                                  "discarded")
        output.rename(scratch / "replaced")
    written.rename(output)
    os.replace(scratch / "report.json", report_path(output))


def run_demo_bag(out: Path, settings: Settings) -> int:
    """`ldfa demo`, bag part: write OUT/sample_bag (6 JPEG camera frames with faces beside Imu, TF and
    String topics) and anonymize it into OUT/anonymized_bag exactly as `ldfa bag` does."""
    sample = out / "sample_bag"
    if sample.exists():
        if not (sample / SAMPLE_MARK).is_file():
            raise FileExistsError(f"{sample} exists and is not ldfa's sample bag; choose another demo folder")
        shutil.rmtree(sample)
    write_sample_bag(sample, 6, encoding="jpeg")
    (sample / SAMPLE_MARK).write_text("written by `ldfa demo`; replaced by its next run\n")
    report = anonymize_bag(sample, out / "anonymized_bag", build_pipeline(settings), overwrite=True,
                           show_progress=True)
    errors = sum(t["errors_total"] for t in report["image_topics"].values())
    print(f"demo: anonymized bag in {out / 'anonymized_bag'} (report {report_path(out / 'anonymized_bag')})")
    return 1 if errors else 0


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM (a batch job's time limit) or SIGHUP (a closed ssh session): unwind like Ctrl-C, so no partial
    output is left."""
    raise SystemExit(128 + signum)


def run_bag(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    source, output = Path(args.input), Path(args.output)
    check_paths(source, output, overwrite=args.overwrite, ros=args.format, storage=args.storage)  # fail fast
    previous = {sig: signal.signal(sig, _terminate) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        report = anonymize_bag(source, output, build_pipeline(settings), topics=args.topics, ros=args.format,
                               storage=args.storage, jobs=args.jobs, overwrite=args.overwrite, show_progress=True,
                               compression=args.compression)
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"ldfa bag: interrupted; nothing was written to {output}", file=sys.stderr)
        return exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
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
    p.add_argument("--jobs", type=at_least(1), default=1, metavar="N",
                   help="threads that decode and detect upcoming frames while the main thread renders and writes")
    p.add_argument("--compression", choices=COMPRESSIONS, default="keep",
                   help="keep the input's compression, or none, or zstd/lz4 (MCAP chunks), bz2/lz4 (ROS 1 chunks); "
                        "rosbag2 per-file/per-message compression is kept unless none")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUTPUT if it exists and is an ldfa output (its report lies beside it)")
    add_settings_arguments(p)
    p.set_defaults(run=run_bag)
