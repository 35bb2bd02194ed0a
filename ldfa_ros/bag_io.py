"""Bag storage for `ldfa bag`: read a bag and write its copy, keeping everything a reader of the input sees.

Within one storage the copy is made at the storage's own level, so nothing is re-interpreted:
- sqlite3 (rosbag2): the input files are copied row by row and only the image rows are rewritten in
  place, so the schema version, metadata, topics (with their definitions, or none, as recorded) and every
  other row stay byte-identical; metadata.yaml is copied as written.
- MCAP: Foxglove's `mcap` reads the input record by record and its Writer writes the same header,
  schemas, channels (with metadata), messages (log and publish time, sequence), attachments and
  metadata records, with the input's chunk compression and chunk CRCs. A bare .mcap written as a rosbag2
  directory gets the metadata.yaml rosbag2 would write for it.
rosbag2 per-file and per-message compression are kept in both. ROS 1 bags and conversions between
ROS versions or storages go through rosbags (connections with their definition, hash, QoS or latching,
and the input's chunk compression).

Every copy takes the messages it yields back in the same order per connection, so the extra fields of
a message (its row, publish time, sequence) wait in a queue per connection until it is written.
"""
from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import lz4.frame
import yaml
import zstandard
from mcap import records
from mcap.reader import make_reader
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer as McapWriter
from rosbags.convert.converter import create_connections_converters
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection, ConnectionExtRosbag2, MessageDefinition, MessageDefinitionFormat
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import StoragePlugin, Writer as Writer2
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
from rosbags.rosbag2.metadata import dump_qos_v8, dump_qos_v9, parse_qos
from rosbags.typesys import Stores, get_typestore

COMPRESSIONS = ("keep", "none", "zstd", "lz4", "bz2")  # --compression
_MCAP_COMPRESSION = {"": CompressionType.NONE, "none": CompressionType.NONE, "zstd": CompressionType.ZSTD,
                     "lz4": CompressionType.LZ4}
Key = tuple[int, int]


class BagError(ValueError):
    """A bag that cannot be read or written; the text names the bag, and the topic and message if any."""


def key(conn: Connection) -> Key:
    """Identity of a connection across the files of a bag."""
    return conn.id, id(conn.owner)


def rosbag2_metadata(path: Path) -> dict[str, Any]:
    """The `rosbag2_bagfile_information` mapping of a rosbag2 directory; BagError when unreadable."""
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


class _Rosbag2Files:
    """The storage files of a rosbag2 directory or bare file, and its rosbag2 compression, unpacked on demand."""

    def __init__(self, source: Path, work: Path, keep: bool) -> None:
        self.source, self.work, self.keep = source, work, keep
        self.info = rosbag2_metadata(source) if source.is_dir() else {}
        names = self.info.get("relative_file_paths") or [] if source.is_dir() else [source.name]
        self.names: list[str] = [str(n) for n in names]
        self.mode = str(self.info.get("compression_mode") or "").upper()  # FILE, MESSAGE or ''
        self.fmt = str(self.info.get("compression_format") or "")
        if self.mode and self.fmt != "zstd":
            raise BagError(f"{source}: unsupported rosbag2 compression {self.fmt!r} (supported: zstd)")
        self.unpack_all = self.mode == "MESSAGE" and not keep  # every message is written decompressed

    def readable(self, name: str) -> Path:
        """A path of file `name` to read: the input itself, or its unpacked copy in the work folder."""
        path = self.source / name if self.source.is_dir() else self.source
        if self.mode != "FILE":
            return path
        unpacked = self.work / "unpacked" / Path(name).with_suffix("").name
        unpacked.parent.mkdir(exist_ok=True)
        with path.open("rb") as src, unpacked.open("wb") as dst:
            zstandard.ZstdDecompressor().copy_stream(src, dst)
        return unpacked

    def output_name(self, name: str) -> str:
        """The file name to write for input file `name` before it is packed again."""
        return Path(name).with_suffix("").name if self.mode == "FILE" else name

    def pack(self, path: Path) -> None:
        """Compress a finished output file like the input's (per-file mode), or leave it unpacked."""
        if self.mode == "FILE" and self.keep:
            packed = path.with_name(path.name + ".zstd")
            with path.open("rb") as src, packed.open("wb") as dst:
                zstandard.ZstdCompressor().copy_stream(src, dst)
            path.unlink()

    def decode(self, data: bytes) -> bytes:
        return zstandard.ZstdDecompressor().decompress(data) if self.mode == "MESSAGE" else data

    def encode(self, data: bytes) -> bytes:
        return zstandard.ZstdCompressor().compress(data) if self.mode == "MESSAGE" and self.keep else data

    def write_metadata(self, out_dir: Path, dropped: dict[str, int]) -> None:
        """metadata.yaml as written, with counts lowered by dropped frames and compression removed if asked."""
        if not self.source.is_dir():
            return
        text = (self.source / "metadata.yaml").read_text()
        if dropped or (self.mode and not self.keep):
            doc = yaml.safe_load(text)
            info = doc["rosbag2_bagfile_information"]
            info["message_count"] = int(info.get("message_count", 0)) - sum(dropped.values())
            for topic in info.get("topics_with_message_count") or []:
                topic["message_count"] -= dropped.get(topic["topic_metadata"]["name"], 0)
            if self.mode and not self.keep:
                info["compression_mode"], info["compression_format"] = "", ""
                if self.mode == "FILE":
                    info["relative_file_paths"] = [self.output_name(n) for n in self.names]
                    for entry in info.get("files") or []:
                        entry["path"] = self.output_name(entry["path"])
            text = yaml.safe_dump(doc, sort_keys=False)
        (out_dir / "metadata.yaml").write_text(text)


class BagCopy(ABC):
    """What the anonymizing loop reads from and writes to: connections, messages in storage order, and
    `raw` / `message` / `skip` for each message yielded, in the same order per connection."""

    is2 = True
    connections: list[Connection]
    typestore: Any

    def __init__(self) -> None:
        self.extras: dict[Key, deque[Any]] = defaultdict(deque)
        self.dropped: dict[str, int] = defaultdict(int)

    @abstractmethod
    def messages(self) -> Iterator[tuple[Connection, int, bytes]]:
        """(connection, timestamp, raw bytes) of every message, in storage order."""

    def deserialize(self, data: bytes, msgtype: str) -> Any:
        return self.typestore.deserialize_cdr(bytes(data), msgtype)

    @abstractmethod
    def raw(self, conn: Connection, timestamp: int, data: Any) -> None:
        """Write serialized `data` as the message of `conn` next in line."""

    def message(self, conn: Connection, timestamp: int, msg: Any, little_endian: bool) -> None:
        """Serialize like the input (CDR byte order), then write like raw bytes."""
        self.raw(conn, timestamp, self.typestore.serialize_cdr(msg, conn.msgtype, little_endian=little_endian))

    def skip(self, conn: Connection) -> None:
        """The message of `conn` next in line is not written (a dropped frame)."""
        self.extras[key(conn)].popleft()
        self.dropped[conn.topic] += 1

    def finish(self) -> None:
        """Complete the output; only then is it a bag."""

    def close(self) -> None:
        """Release files, complete or not."""


class SqliteCopy(BagCopy):
    """sqlite3 -> sqlite3: copy the files, rewrite the image rows in place.

    Deleted rows live on in a database file (free pages, free space inside pages) until overwritten, so
    neither an image row we rewrite or drop nor one the input had deleted may be left there: each file is
    copied with VACUUM INTO, which writes only the live rows (the WAL's too, after an unclean close) into
    fresh pages, and our writes run with secure_delete, which zeroes what they free (upstream SQLite builds
    leave it off)."""

    def __init__(self, source: Path, out_dir: Path, work: Path, images: Callable[[list[Connection]], set[Key]],
                 keep_compression: bool) -> None:
        super().__init__()
        self.files = _Rosbag2Files(source, work, keep_compression)
        self.out_dir = out_dir
        self.typestore = get_typestore(Stores.LATEST)
        self.inputs: list[sqlite3.Connection] = []
        self.outputs: list[sqlite3.Connection] = []
        self.out_paths: list[Path] = []
        self.topic_maps: list[dict[int, Connection]] = []
        by_name: dict[tuple[str, str], Connection] = {}
        out_dir.mkdir(parents=True)
        for name in self.files.names:
            readable = self.files.readable(name)
            self.inputs.append(sqlite3.connect(f"{readable.resolve().as_uri()}?mode=ro", uri=True))
            self.topic_maps.append(self._topics(self.inputs[-1], by_name))
            target = out_dir / self.files.output_name(name)
            try:
                self.inputs[-1].execute("VACUUM INTO ?", (str(target.resolve()),))
            except sqlite3.OperationalError as exc:  # the input was readable: writing failed (full disk, ...)
                raise OSError(f"{target.name}: {exc}") from exc
            self.out_paths.append(target)
            self.outputs.append(sqlite3.connect(target, isolation_level="DEFERRED"))
            self.outputs[-1].execute("PRAGMA secure_delete=ON")
        listed = {t["topic_metadata"]["name"]: int(t["message_count"])  # what the recorder promised
                  for t in self.files.info.get("topics_with_message_count") or []}
        self.connections = [c._replace(msgcount=listed.get(c.topic, c.msgcount)) for c in by_name.values()]
        self.images = images(self.connections)

    def _topics(self, db: sqlite3.Connection, by_name: dict[tuple[str, str], Connection]) -> dict[int, Connection]:
        """topic id -> connection (one per topic name and type across files), counting messages."""
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        defs: dict[str, tuple[str, str, str]] = {}
        if "message_definitions" in tables:
            for msgtype, encoding, text, digest in db.execute(
                    "SELECT topic_type, encoding, encoded_message_definition, type_description_hash "
                    "FROM message_definitions"):
                defs[msgtype] = (encoding, text, digest)
        mapping = {}
        counts = dict(db.execute("SELECT topic_id, count(*) FROM messages GROUP BY topic_id").fetchall())
        for topic_id, name, msgtype, fmt in db.execute("SELECT id, name, type, serialization_format FROM topics"):
            encoding, text, digest = defs.get(msgtype, ("", "", ""))
            old = by_name.get((name, msgtype))
            count = counts.get(topic_id, 0) + (old.msgcount if old else 0)
            conn = Connection(old.id if old else len(by_name) + 1, name, msgtype, MessageDefinition(
                MessageDefinitionFormat.IDL if encoding == "ros2idl" else MessageDefinitionFormat.MSG, text or ""),
                digest or "", count, ConnectionExtRosbag2(fmt, []), self)
            by_name[(name, msgtype)] = conn
            mapping[topic_id] = conn
        for topic_id, conn in list(mapping.items()):  # counts grew as later files were read
            mapping[topic_id] = by_name[(conn.topic, conn.msgtype)]
        return mapping

    def messages(self) -> Iterator[tuple[Connection, int, bytes]]:
        for index, db in enumerate(self.inputs):
            topics = self.topic_maps[index]
            wanted = [tid for tid, conn in topics.items()
                      if self.files.unpack_all or key(by_key(self.connections, conn)) in self.images]
            marks = ",".join("?" * len(wanted)) or "NULL"
            query = (f"SELECT id, topic_id, timestamp, CASE WHEN topic_id IN ({marks}) THEN data END FROM messages "
                     "ORDER BY timestamp, id")
            for row_id, topic_id, timestamp, data in db.execute(query, wanted):
                conn = by_key(self.connections, topics[topic_id])
                if key(conn) in self.images:  # every image row, even an empty one, is rewritten or deleted
                    self.extras[key(conn)].append((index, row_id))
                    data = None if data is None else self.files.decode(data)
                elif data is not None:  # unpacked for --compression none
                    data = self.files.decode(data)
                    self.outputs[index].execute("UPDATE messages SET data = ? WHERE id = ?", (data, row_id))
                yield conn, timestamp, data or b""

    def raw(self, conn: Connection, timestamp: int, data: Any) -> None:
        if key(conn) not in self.images:
            return  # copied with its file
        index, row_id = self.extras[key(conn)].popleft()
        data = self.files.encode(bytes(data))
        self.outputs[index].execute("UPDATE messages SET data = ? WHERE id = ?", (data, row_id))

    def skip(self, conn: Connection) -> None:
        index, row_id = self.extras[key(conn)][0]
        super().skip(conn)
        self.outputs[index].execute("DELETE FROM messages WHERE id = ?", (row_id,))

    def finish(self) -> None:
        for db in self.outputs:
            db.commit()
        self.close()
        for path in self.out_paths:
            self.files.pack(path)
        self.files.write_metadata(self.out_dir, self.dropped)

    def close(self) -> None:
        for db in self.inputs + self.outputs:
            db.close()
        self.inputs, self.outputs = [], []


def by_key(connections: list[Connection], conn: Connection) -> Connection:
    """The current connection object of `conn` (counts are filled in as files are read)."""
    return connections[conn.id - 1]


class McapCopy(BagCopy):
    """MCAP -> MCAP with Foxglove's reader and writer, record by record. `describe`: the input is a bare
    file written as a rosbag2 directory, which needs a metadata.yaml."""

    def __init__(self, source: Path, out_dir: Path, work: Path, images: Callable[[list[Connection]], set[Key]],
                 compression: str, describe: bool = False) -> None:
        super().__init__()
        self.files = _Rosbag2Files(source, work, compression != "none")
        self.out_dir, self.compression, self.describe = out_dir, compression, describe
        self.typestore = get_typestore(Stores.LATEST)
        self.streams: list[BinaryIO] = []
        self.writers: list[McapWriter] = []
        self.out_paths: list[Path] = []
        self.channel_maps: list[dict[int, Connection]] = []  # per file: input channel id -> connection
        self.out_channels: dict[Key, int] = {}  # connection -> output channel id in its file
        self.connections = []
        out_dir.mkdir(parents=True)
        self.readables = [self.files.readable(name) for name in self.files.names]
        for readable, name in zip(self.readables, self.files.names):
            self._open(readable, out_dir / self.files.output_name(name))
        self.images = images(self.connections)

    def _open(self, readable: Path, target: Path) -> None:
        with readable.open("rb") as f:
            reader = make_reader(f)
            header = reader.get_header()
            summary = reader.get_summary()
        if summary is None:
            raise BagError(f"{readable}: MCAP file without a summary section (unindexed); "
                           "reindex it first with `mcap recover`")
        chunks = list(summary.chunk_indexes)
        fmt = chunks[0].compression if chunks else ""
        wanted = fmt if self.compression == "keep" else self.compression
        if wanted not in _MCAP_COMPRESSION:
            raise BagError(f"MCAP output supports --compression keep, none, zstd or lz4, not {wanted!r}")
        size = max((c.uncompressed_size for c in chunks), default=1 << 20)
        stream = target.open("wb")
        self.streams.append(stream)
        writer = McapWriter(stream, chunk_size=max(size, 1024), compression=_MCAP_COMPRESSION[wanted])
        writer.start(header.profile, header.library)
        self.writers.append(writer)
        self.out_paths.append(target)
        schema_ids = {0: 0}
        for known in sorted(summary.schemas.values(), key=lambda s: s.id):
            schema_ids[known.id] = writer.register_schema(known.name, known.encoding, known.data)
        counts = summary.statistics.channel_message_counts if summary.statistics else {}
        channels: dict[int, Connection] = {}
        for channel in sorted(summary.channels.values(), key=lambda c: c.id):
            schema = summary.schemas.get(channel.schema_id)
            conn = Connection(len(self.connections) + 1, channel.topic, schema.name if schema else "",
                              MessageDefinition(MessageDefinitionFormat.IDL if schema and schema.encoding == "ros2idl"
                                                else MessageDefinitionFormat.MSG,
                                                schema.data.decode(errors="replace") if schema else ""),
                              channel.metadata.get("topic_type_hash", ""), counts.get(channel.id, 0),
                              ConnectionExtRosbag2(channel.message_encoding, []), self)
            self.connections.append(conn)
            channels[channel.id] = conn
            self.out_channels[key(conn)] = writer.register_channel(
                channel.topic, channel.message_encoding, schema_ids[channel.schema_id], dict(channel.metadata))
        self.channel_maps.append(channels)

    def messages(self) -> Iterator[tuple[Connection, int, bytes]]:
        for index, readable in enumerate(self.readables):
            channels, writer = self.channel_maps[index], self.writers[index]
            with readable.open("rb") as f:
                for record in StreamReader(f, validate_crcs=True).records:
                    if isinstance(record, records.Message):
                        conn = channels[record.channel_id]
                        self.extras[key(conn)].append((index, record.publish_time, record.sequence))
                        data = record.data
                        if key(conn) in self.images or self.files.unpack_all:
                            data = self.files.decode(data)
                        yield conn, record.log_time, data
                    elif isinstance(record, records.Attachment):
                        writer.add_attachment(record.create_time, record.log_time, record.name, record.media_type,
                                              record.data)
                    elif isinstance(record, records.Metadata):
                        writer.add_metadata(record.name, dict(record.metadata))
                    elif isinstance(record, records.DataEnd):
                        break

    def raw(self, conn: Connection, timestamp: int, data: Any) -> None:
        index, publish_time, sequence = self.extras[key(conn)].popleft()
        if key(conn) in self.images:  # other messages are written as read
            data = self.files.encode(bytes(data))
        self.writers[index].add_message(self.out_channels[key(conn)], timestamp, bytes(data), publish_time, sequence)

    def finish(self) -> None:
        for writer in self.writers:
            writer.finish()
        self.close()
        for path in self.out_paths:
            self.files.pack(path)
        self.files.write_metadata(self.out_dir, self.dropped)
        if self.describe:
            text = yaml.safe_dump(mcap_rosbag2_metadata(self.out_paths[0]), sort_keys=False)
            (self.out_dir / "metadata.yaml").write_text(text)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        self.streams = []


def mcap_rosbag2_metadata(path: Path) -> dict[str, Any]:
    """The metadata.yaml of a rosbag2 directory holding the one MCAP file at `path`, laid out as rosbag2 (and
    rosbags) write it: counts, times and topics from the file's summary, QoS and type hash from its channel
    metadata; version, custom_data and ros_distro from the rosbag2 metadata record of its recorder, if any."""
    with path.open("rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        recorded = next((m.metadata for m in reader.iter_metadata() if m.name == "rosbag2"), {})
    assert summary is not None and summary.statistics is not None  # our own Writer's file
    try:
        info = yaml.safe_load(recorded.get("serialized_metadata", ""))
    except yaml.YAMLError:
        info = None
    info = info if isinstance(info, dict) else {}
    version = 9 if isinstance(info.get("version"), int) and info["version"] >= 9 else 8
    dump_qos = dump_qos_v9 if version == 9 else dump_qos_v8
    stats = summary.statistics

    def span() -> dict[str, Any]:  # a new mapping each time: YAML would write a shared one as an alias
        return {"duration": {"nanoseconds": stats.message_end_time - stats.message_start_time},
                "starting_time": {"nanoseconds_since_epoch": stats.message_start_time}}

    topics = []
    for channel in sorted(summary.channels.values(), key=lambda c: c.id):
        schema = summary.schemas.get(channel.schema_id)
        try:
            qos = dump_qos(parse_qos(channel.metadata.get("offered_qos_profiles", "")))
        except Exception as exc:  # noqa: BLE001 - rosbags and YAML raise their own on a malformed profile
            raise BagError(f"{path.name}: {channel.topic}: its offered_qos_profiles cannot be written to "
                           f"metadata.yaml ({' '.join(str(exc).split())}); write a bare .mcap OUTPUT") from exc
        topics.append({"topic_metadata": {
            "name": channel.topic, "type": schema.name if schema else "",
            "serialization_format": channel.message_encoding, "offered_qos_profiles": qos,
            "type_description_hash": channel.metadata.get("topic_type_hash", "")},
            "message_count": stats.channel_message_counts.get(channel.id, 0)})
    return {"rosbag2_bagfile_information": {
        "version": version, "storage_identifier": "mcap", "relative_file_paths": [path.name], **span(),
        "message_count": stats.message_count, "topics_with_message_count": topics,
        "compression_format": "", "compression_mode": "",
        "files": [{"path": path.name, **span(), "message_count": stats.message_count}],
        "custom_data": info.get("custom_data") or None, "ros_distro": info.get("ros_distro", "")}}


class RosbagsCopy(BagCopy):
    """ROS 1 bags, and conversions between ROS versions or storages, through rosbags."""

    def __init__(self, reader: AnyReader, writer: Writer1 | Writer2) -> None:
        super().__init__()
        self.reader, self.writer = reader, writer
        self.is2 = reader.is2
        writer.open()
        self.connections = reader.connections
        self.typestore = reader.typestore
        if isinstance(writer, Writer2) == reader.is2:
            if reader.is2:
                missing = sorted({c.topic for c in reader.connections if not c.msgdef.data})
                if missing:
                    raise BagError(f"cannot change the storage of a bag without message definitions ("
                                   f"{', '.join(missing)}): they would have to be invented; keep the input's "
                                   "storage (no --storage, an OUTPUT name like the input's)")
            self.out = {key(c): self._copy(c) for c in reader.connections}
            self.convert: dict[str, Callable[[Any], Any]] = {c.msgtype: memoryview for c in reader.connections}
        else:
            if reader.is2 and any(not c.msgdef.data for c in reader.connections):
                raise BagError("cannot convert a bag without message definitions to ROS 1: they would have to "
                               "be invented")
            connmap, self.convert = create_connections_converters(reader.connections, None, reader, writer)
            self.out = {key(c): connmap[(c.id, c.owner)] for c in reader.connections}

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

    def messages(self) -> Iterator[tuple[Connection, int, bytes]]:
        return self.reader.messages()  # type: ignore[return-value]

    def deserialize(self, data: bytes, msgtype: str) -> Any:
        return self.reader.deserialize(data, msgtype)

    def raw(self, conn: Connection, timestamp: int, data: Any) -> None:
        self.writer.write(self.out[key(conn)], timestamp, self.convert[conn.msgtype](data))

    def message(self, conn: Connection, timestamp: int, msg: Any, little_endian: bool) -> None:
        store = self.reader.typestore
        data = (store.serialize_cdr(msg, conn.msgtype, little_endian=little_endian) if self.reader.is2
                else store.serialize_ros1(msg, conn.msgtype))
        self.raw(conn, timestamp, data)

    def skip(self, conn: Connection) -> None:
        self.dropped[conn.topic] += 1

    def finish(self) -> None:
        self.writer.close()
        self.writer = None  # type: ignore[assignment]

    def close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # noqa: BLE001 - the output is incomplete and is deleted anyway
                pass


def ros1_compression(reader: AnyReader) -> str:
    """The chunk compression of the first ROS 1 bag read ('none', 'bz2' or 'lz4')."""
    import rosbags.rosbag1.reader as r1

    names = {fn: name for name, fn in r1.decompressors.items()}  # type: ignore[attr-defined]
    for bag in reader.readers:
        for chunk in getattr(bag, "chunks", {}).values():
            return names.get(chunk.decompressor, "none")
    return "none"


def roslz4_compress(data: bytes) -> bytes:
    """An LZ4 frame as ROS 1's roslz4 writes and reads it: independent 1 MB blocks, content checksum and no
    content size (rosbags' default frame stores the size, which Debian's rosbag rejects as malformed)."""
    return lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX1MB, block_linked=False,
                              content_checksum=True, store_size=False)


def open_rosbags_writer(path: Path, ros: str, storage: str, version: int, reader: AnyReader, source: Path,
                        compression: str) -> Writer1 | Writer2:
    """A rosbags writer at `path`: ROS 1 with the input's (or the asked) chunk compression; ROS 2 with the
    input's rosbag2 compression and custom data where the storage stays the same."""
    if ros == "ros1":
        writer1 = Writer1(path)
        wanted = (ros1_compression(reader) if not reader.is2 else "none") if compression == "keep" else compression
        if wanted not in ("none", "bz2", "lz4"):
            raise BagError(f"ROS 1 output supports --compression keep, none, bz2 or lz4, not {wanted!r}")
        if wanted != "none":
            writer1.set_compression(Writer1.CompressionFormat[wanted.upper()])
        if wanted == "lz4":
            writer1.compressor = roslz4_compress
        return writer1
    if compression not in ("keep", "none"):
        raise BagError(f"converted ROS 2 output supports --compression keep or none, not {compression!r}")
    writer = Writer2(path, version=9 if version >= 9 else 8, storage_plugin=StoragePlugin[storage.upper()])
    if reader.is2 and source.is_dir():
        info = rosbag2_metadata(source)
        mode = str(info.get("compression_mode") or "")
        if mode and compression == "keep":
            writer.set_compression(CompressionMode[mode.upper()], CompressionFormat.ZSTD)
        for name, value in (info.get("custom_data") or {}).items():
            writer.set_custom_data(str(name), str(value))
    return writer
