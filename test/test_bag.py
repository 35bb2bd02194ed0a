"""`ldfa bag`: round trips on ROS 2 sqlite3, ROS 2 mcap and ROS 1 bags with real faces, look-both-ways
coverage, fail-closed handling of bad messages and bags, and safe writing of OUTPUT."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from bags import CAMERAS, ERASED_FRAME, FACE, FRAMES, OTHERS, write_bag
from ldfa_ros import frames
from ldfa_ros.bag import anonymize_bag, report_path
from ldfa_ros.samples import write_sample_bag
from ldfa_ros.cli import main
from ldfa_ros.detect import CenterFace, Detections
from ldfa_ros.pipeline import Pipeline
from ldfa_ros.render.regions import HEIGHT_EXTRA
from ldfa_ros.settings import Settings
from ldfa_ros.track import GROWTH_PER_MISSED_FRAME, window_faces

KINDS = {"sqlite3": "bag_sqlite3", "mcap": "bag_mcap", "ros1": "bag.bag"}
RAW_EXACT = ("/cam/rgb", "/cam/bgr", "/cam/bayer", "/cam/png")  # bit-exact outside the faces
x1, y1, x2, y2 = FACE
# Everything a face region can touch: the box dilated by mask_scale (and HEIGHT_EXTRA) and feather 0.1, grown
# once more where it comes from a neighbouring frame, plus Bayer parity.
MARGIN = int(max(x2 - x1, y2 - y1) * (Settings().mask_scale * HEIGHT_EXTRA * 1.1 * (1 + GROWTH_PER_MISSED_FRAME) - 1)
             / 2) + 3


def fresh(detector: CenterFace, **settings: Any) -> Pipeline:
    """A pipeline without any tracks, sharing the loaded detector."""
    return Pipeline(Settings().updated(**settings), detector)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, detector: CenterFace) -> dict[str, tuple[Path, Path, dict]]:
    """Each kind of bag written once and anonymized once: kind -> (input, output, report)."""
    root = tmp_path_factory.mktemp("bags")
    out = {}
    for kind, name in KINDS.items():
        src = write_bag(root / name, kind).path
        dst = root / f"anon_{name}"
        out[kind] = (src, dst, anonymize_bag(src, dst, fresh(detector), jobs=2))
    return out


def read(path: Path) -> tuple[list[tuple], dict[str, list[tuple[int, bytes, Any]]]]:
    """Connections (all but id/owner) and per topic the (timestamp, raw bytes, message) of every message."""
    with AnyReader([path]) as reader:
        conns = [(c.topic, c.msgtype, c.msgdef, c.digest, c.msgcount, c.ext) for c in reader.connections]
        msgs: dict[str, list[tuple[int, bytes, Any]]] = {}
        for conn, ts, raw in reader.messages():
            msgs.setdefault(conn.topic, []).append((ts, bytes(raw), reader.deserialize(raw, conn.msgtype)))
    return conns, msgs


def pixels(msg: Any) -> np.ndarray:
    return frames.decode(msg).rgb


@pytest.mark.parametrize("kind", KINDS)
def test_everything_but_pixels_is_kept(runs: dict, kind: str) -> None:
    src, dst, report = runs[kind]
    conns_in, msgs_in = read(src)
    conns_out, msgs_out = read(dst)
    assert conns_out == conns_in  # type, definition, hash, QoS / latching, counts
    assert {t: len(m) for t, m in msgs_out.items()} == {t: len(m) for t, m in msgs_in.items()}
    for topic in OTHERS:
        assert [(ts, raw) for ts, raw, _ in msgs_out[topic]] == [(ts, raw) for ts, raw, _ in msgs_in[topic]]
    for topic in CAMERAS:
        assert len(msgs_in[topic]) == FRAMES
        for (ts_in, _, a), (ts_out, _, b) in zip(msgs_in[topic], msgs_out[topic]):
            assert ts_out == ts_in and repr(b.header) == repr(a.header)  # stamp, frame_id (and ROS 1 seq)
            assert type(b).__name__ == type(a).__name__
            kept = ("format",) if hasattr(a, "format") else ("height", "width", "encoding", "is_bigendian", "step")
            assert [getattr(b, f) for f in kept] == [getattr(a, f) for f in kept]
    assert report["image_topics_not_anonymized"] == []
    assert all(t["frames_out"] == FRAMES and t["errors_total"] == 0 for t in report["image_topics"].values())
    assert report_path(dst).is_file()


@pytest.mark.parametrize("kind", KINDS)
def test_faces_hidden_background_exact(runs: dict, kind: str) -> None:
    src, dst, report = runs[kind]
    _, msgs_in = read(src)
    _, msgs_out = read(dst)
    outside = np.ones((320, 320), bool)
    outside[max(0, y1 - MARGIN):y2 + MARGIN, max(0, x1 - MARGIN):x2 + MARGIN] = False
    for topic in CAMERAS:
        for index, ((_, _, a), (_, _, b)) in enumerate(zip(msgs_in[topic], msgs_out[topic])):
            before, after = pixels(a).astype(int), pixels(b).astype(int)
            face = np.abs(after - before)[y1 + 20:y2 - 20, x1 + 20:x2 - 20].mean()
            assert face > 15, f"{topic} frame {index}: face region barely changed ({face:.1f})"
            if topic in RAW_EXACT:
                assert np.array_equal(after[outside], before[outside]), f"{topic} frame {index}: background changed"
        assert report["image_topics"][topic]["faces_hidden"]["blur"] >= FRAMES


def test_face_missed_in_first_frame_is_covered_from_later_frames(runs: dict, tmp_path: Path,
                                                                 detector: CenterFace) -> None:
    """Frame 0 has no detectable face (its face box holds a checkerboard), and no earlier frame exists, so
    only looking ahead can cover it; with carry_frames=0 (no window) it stays untouched."""
    for kind, (_, _, report) in runs.items():
        for topic in CAMERAS:
            assert report["image_topics"][topic]["faces_detected"] == FRAMES - 1, (kind, topic)
            assert report["image_topics"][topic]["faces_from_neighbours"] >= 1, (kind, topic)
    src, dst, _ = runs["sqlite3"]
    no_window = tmp_path / "no_window"
    anonymize_bag(src, no_window, fresh(detector, carry_frames=0), topics=["/cam/rgb"])
    for out, covered in ((dst, True), (no_window, False)):
        _, msgs_in = read(src)
        _, msgs_out = read(out)
        a, b = (pixels(m["/cam/rgb"][ERASED_FRAME][2]).astype(int) for m in (msgs_in, msgs_out))
        changed = np.abs(b - a)[y1 + 10:y2 - 10, x1 + 10:x2 - 10].mean()
        assert (changed > 30) == covered, f"carry-over {covered}: mean change {changed:.1f}"


def test_untouched_image_topics_are_reported(runs: dict, tmp_path: Path, detector: CenterFace) -> None:
    src = runs["mcap"][0]
    report = anonymize_bag(src, tmp_path / "one", fresh(detector), topics=["/cam/png"])
    assert report["image_topics_not_anonymized"] == ["/cam/bayer", "/cam/bgr", "/cam/jpeg", "/cam/rgb"]
    _, msgs_in = read(src)
    _, msgs_out = read(tmp_path / "one")
    assert [r for _, r, _ in msgs_out["/cam/rgb"]] == [r for _, r, _ in msgs_in["/cam/rgb"]]


def test_images_inside_other_message_types_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Pixels ldfa cannot reach (an Image field of a custom message) are copied, but never silently."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    from bags import image_message, scene

    store = get_typestore(Stores.ROS2_HUMBLE)
    store.register(get_types_from_msg("sensor_msgs/Image image\nstring note\n", "my_msgs/msg/Framed"))
    src = tmp_path / "framed"
    with Writer(src, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conn = writer.add_connection("/framed", "my_msgs/msg/Framed", typestore=store)
        inner = image_message(store, "sensor_msgs/msg/Image", "rgb8", scene(), 1, "cam")
        msg = store.types["my_msgs/msg/Framed"](inner, "a face inside")
        writer.write(conn, 1, store.serialize_cdr(msg, "my_msgs/msg/Framed"))
    assert main(["bag", str(src), "-o", str(tmp_path / "out")]) == 0
    assert report_json(tmp_path / "out")["image_topics_not_anonymized"] == ["/framed"]
    assert "/framed carries images that are not anonymized" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["sqlite3", "ros1"])
def test_corrupt_image_messages_fail_closed(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture) -> None:
    src = write_bag(tmp_path / KINDS[kind], kind, corrupt={"/cam/rgb": 2, "/cam/jpeg": 2}).path
    dst = tmp_path / f"anon_{KINDS[kind]}"
    assert main(["bag", str(src), "-o", str(dst)]) == 1  # finished, with errors
    err = capsys.readouterr().err
    assert "/cam/rgb message #2" in err and "/cam/jpeg message #2" in err
    _, msgs_in = read(src)
    _, msgs_out = read(dst)
    raw, jpeg = msgs_out["/cam/rgb"][2][2], msgs_out["/cam/jpeg"][2][2]
    assert repr(raw.header) == repr(msgs_in["/cam/rgb"][2][2].header)
    assert len(raw.data) == len(msgs_in["/cam/rgb"][2][2].data) and not np.asarray(raw.data).any()  # masked
    assert pixels(jpeg).shape == (320, 320, 3) and pixels(jpeg).max() == 0  # masked: black, last known size
    topics = report_json(dst)["image_topics"]
    for topic in ("/cam/rgb", "/cam/jpeg"):
        assert topics[topic]["masked"] == 1 and topics[topic]["frames_out"] == FRAMES
        assert [(e["index"], e["action"]) for e in topics[topic]["errors"]] == [(2, "masked")]

    dropped = tmp_path / f"drop_{KINDS[kind]}"
    assert main(["bag", str(src), "-o", str(dropped), "--on-error", "drop"]) == 1
    _, msgs_drop = read(dropped)
    assert len(msgs_drop["/cam/rgb"]) == len(msgs_drop["/cam/jpeg"]) == FRAMES - 1
    assert len(msgs_drop["/cam/bgr"]) == FRAMES


def report_json(output: Path) -> dict:
    import json

    return json.loads(report_path(output).read_text())


def test_damaged_bags_are_refused_and_leave_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cases = []
    for kind in ("mcap", "ros1"):  # cut files: their index at the end is gone
        src = write_bag(tmp_path / KINDS[kind], kind).path
        file = src if kind == "ros1" else next(src.glob("*.mcap"))
        with open(file, "r+b") as handle:
            handle.truncate(file.stat().st_size * 2 // 3)
        cases.append(src)
    src = write_bag(tmp_path / "lost_rows", "sqlite3").path  # a recording that lost rows its metadata lists
    with sqlite3.connect(next(src.glob("*.db3"))) as db:
        db.execute("DELETE FROM messages WHERE id > 30")
    cases.append(src)
    for src in cases:
        dst = tmp_path / f"out_{src.name}"
        assert main(["bag", str(src), "-o", str(dst)]) == 2
        err = capsys.readouterr().err
        assert str(src) in err and ("truncated" in err or "corrupt" in err), err
        assert not dst.exists() and not report_path(dst).exists()
    assert not list(tmp_path.glob(".*ldfa-partial*"))


def test_bad_arguments_give_clear_errors(runs: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = runs["sqlite3"][0]
    text = tmp_path / "notes.txt"
    text.write_text("x")
    for argv, expected in (
        ([str(tmp_path / "missing"), "-o", str(tmp_path / "o")], "no such bag"),
        ([str(text), "-o", str(tmp_path / "o")], "not a bag"),
        ([str(src), "-o", str(tmp_path / "o"), "--topics", "/imu"], "'/imu': not an image topic"),
        ([str(src), "-o", str(tmp_path / "o"), "--topics", "/nope"], "'/nope': it is not in the bag"),
        ([str(src), "-o", str(tmp_path / "o"), "--format", "ros1"], "must be a .bag file"),
        ([str(src), "-o", str(tmp_path / "o.mcap"), "--storage", "sqlite3"], "cannot hold sqlite3"),
        ([str(src), "-o", str(src / "inside")], "must not be, contain or lie inside the input"),
        ([str(src), "-o", str(text / "o")], "cannot write the bag"),  # its folder is a file
    ):
        assert main(["bag", *argv]) == 2
        assert expected in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_existing_output_needs_overwrite(runs: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--overwrite replaces only ldfa's own output (its report beside it), never a user's file or folder."""
    src = runs["ros1"][0]
    dst = tmp_path / "out.bag"
    dst.write_bytes(b"precious")
    assert main(["bag", str(src), "-o", str(dst), "--topics", "/cam/png"]) == 2
    assert "--overwrite" in capsys.readouterr().err and dst.read_bytes() == b"precious"
    assert main(["bag", str(src), "-o", str(dst), "--topics", "/cam/png", "--overwrite"]) == 2
    assert "not an ldfa output" in capsys.readouterr().err and dst.read_bytes() == b"precious"
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "important.txt").write_text("keep me")
    assert main(["bag", str(runs["sqlite3"][0]), "-o", str(folder), "--overwrite"]) == 2
    assert (folder / "important.txt").read_text() == "keep me"
    ours = tmp_path / "ours.bag"
    assert main(["bag", str(src), "-o", str(ours), "--topics", "/cam/png"]) == 0
    assert main(["bag", str(src), "-o", str(ours), "--topics", "/cam/png", "--overwrite"]) == 0
    assert read(ours)[0] == read(src)[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours.bag", "ours.bag.ldfa_report.json", "out.bag", "work"]


@pytest.mark.parametrize("kind", ["sqlite3", "mcap"])
@pytest.mark.parametrize("mode", ["file", "message"])
def test_rosbag2_compression_is_kept(tmp_path: Path, detector: CenterFace, kind: str, mode: str) -> None:
    """rosbag2 zstd per file (`x.db3.zstd`) or per message: the same files and metadata.yaml come out, and
    rosbags reads the same messages but the anonymized images."""
    src = write_bag(tmp_path / "in", kind, compression=mode).path
    dst = tmp_path / "out"
    anonymize_bag(src, dst, fresh(detector), topics=["/cam/png"])
    assert sorted(p.name for p in dst.iterdir()) == sorted(p.name for p in src.iterdir())
    assert (dst / "metadata.yaml").read_text() == (src / "metadata.yaml").read_text()
    conns_in, msgs_in = read(src)
    conns_out, msgs_out = read(dst)
    assert conns_out == conns_in
    for topic, rows in msgs_in.items():
        same = [a[:2] == b[:2] for a, b in zip(rows, msgs_out[topic])]
        assert len(rows) == len(msgs_out[topic]) and (not any(same) if topic == "/cam/png" else all(same)), topic
    plain = tmp_path / "plain"
    anonymize_bag(src, plain, fresh(detector), topics=["/cam/png"], compression="none")
    assert not list(plain.glob("*.zstd")) and "compression_mode: ''" in (plain / "metadata.yaml").read_text()
    assert read(plain)[0] == conns_in


def test_interrupted_run_leaves_no_output(runs: dict, tmp_path: Path, detector: CenterFace) -> None:
    pipeline = fresh(detector)
    calls = []

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise KeyboardInterrupt

    pipeline.process_many = interrupted  # type: ignore[method-assign]
    dst = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        anonymize_bag(runs["mcap"][0], dst, pipeline)
    assert calls and not dst.exists() and list(tmp_path.iterdir()) == []


def test_killed_cli_run_leaves_no_output(tmp_path: Path) -> None:
    """SIGTERM (a batch job's time limit) mid-run: exit 143, nothing at OUTPUT, no partial files."""
    src = write_sample_bag(tmp_path / "in", 30, encoding="jpeg")
    dst = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-m", "ldfa_ros.cli", "bag", str(src), "-o", str(dst)],
                             stderr=subprocess.PIPE, text=True)
    while not list(tmp_path.glob(".out.*")) and child.poll() is None:  # the run has started writing
        time.sleep(0.02)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143, err
    assert "nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_conversion_between_ros_versions_and_storages(runs: dict, tmp_path: Path, detector: CenterFace) -> None:
    src1, _, _ = runs["ros1"]
    to2 = tmp_path / "from_ros1.mcap"  # a bare .mcap file
    report = anonymize_bag(src1, to2, fresh(detector), topics=["/cam/rgb"])
    assert report["output_format"] == {"ros": "ros2", "storage": "mcap", "bare": True, "version": 8}
    _, msgs1 = read(src1)
    _, msgs2 = read(to2)
    assert [m.data for _, _, m in msgs2["/chatter"]] == [m.data for _, _, m in msgs1["/chatter"]]
    assert [m.transforms[0].transform.translation.x for _, _, m in msgs2["/tf"]] == \
        [m.transforms[0].transform.translation.x for _, _, m in msgs1["/tf"]]
    assert [repr(m.header.stamp) for _, _, m in msgs2["/cam/rgb"]] == \
        [repr(m.header.stamp) for _, _, m in msgs1["/cam/rgb"]]

    src2, _, _ = runs["sqlite3"]
    as_mcap = tmp_path / "as_mcap"
    anonymize_bag(src2, as_mcap, fresh(detector), topics=["/cam/rgb"], storage="mcap")
    assert next(as_mcap.glob("*.mcap"))
    conns_in, msgs_in = read(src2)
    conns_out, msgs_out = read(as_mcap)
    assert conns_out == conns_in
    assert [(t, r) for t, r, _ in msgs_out["/imu"]] == [(t, r) for t, r, _ in msgs_in["/imu"]]


def dets(*boxes: list[float]) -> Detections:
    b = np.array(boxes, np.float32).reshape(-1, 4)
    return Detections(b, np.full(len(b), 0.9, np.float32), np.zeros((len(b), 5, 2), np.float32))


def test_window_faces_follow_motion_at_the_face_size() -> None:
    a, b = [100, 100, 140, 150], [120, 100, 160, 150]
    # missed in the middle, seen on both sides: put between the sightings at its size (not their hull)
    [face] = window_faces([dets(a), dets(), dets(b)], 1)
    assert face.age == 1 and face.track_id == 0
    grown = 1 + GROWTH_PER_MISSED_FRAME
    assert face.box.tolist() == pytest.approx([130 - 20 * grown, 125 - 25 * grown, 130 + 20 * grown, 125 + 25 * grown])
    # seen only ahead (the first frame of a face), moving left 20 px a frame: extrapolated back along that motion
    [face] = window_faces([dets(), None, dets(b), dets(a)], 0)
    assert face.age == 2 and (face.box[0] + face.box[2]) / 2 == pytest.approx(180)
    assert face.box[2] - face.box[0] == pytest.approx(40 * (1 + 2 * GROWTH_PER_MISSED_FRAME))
    # seen in the frame itself: nothing to add; far apart faces are kept apart
    assert window_faces([dets(a), dets(a), dets(a)], 1) == []
    far = window_faces([dets([0, 0, 20, 20]), dets(), dets([200, 200, 220, 220])], 1)
    assert sorted(f.box[0] for f in far) == pytest.approx([-0.5, 199.5])
    # a small fast face (it moves nearly its width a frame) missed in the middle: covered where it was
    [face] = window_faces([dets([100, 100, 126, 133]), None, dets([148, 100, 174, 133])], 1)
    assert face.box[0] <= 124 and face.box[2] >= 150 and face.box[2] - face.box[0] < 30
    # a face that the frame has, followed by overlap into the neighbours, adds nothing
    moving = [dets([100 + 10 * i, 100, 150 + 10 * i, 160]) for i in range(5)]
    assert window_faces(moving, 2) == []


def _erased_changed(src: Path, out: Path) -> float:
    """Mean change inside the face box of the frame whose face the detector cannot see."""
    _, msgs_in = read(src)
    _, msgs_out = read(out)
    a, b = (pixels(m["/cam/rgb"][ERASED_FRAME][2]).astype(int) for m in (msgs_in, msgs_out))
    return float(np.abs(b - a)[y1 + 10:y2 - 10, x1 + 10:x2 - 10].mean())


def test_lookahead_detection_failing_in_workers_is_retried(runs: dict, tmp_path: Path,
                                                           detector: CenterFace) -> None:
    """A detector that fails only on the read-ahead threads: retried on the main thread, so the window
    still covers the missed face, and the retries are counted."""
    import threading

    def flaky(rgb: np.ndarray, **kwargs: Any) -> Detections:
        if threading.current_thread().name.startswith("ldfa-bag"):
            raise RuntimeError("transient device error")
        return detector(rgb, **kwargs)

    src = runs["sqlite3"][0]
    report = anonymize_bag(src, tmp_path / "out", Pipeline(Settings(), flaky), topics=["/cam/rgb"])
    assert report["counters"]["bag_detect_retried"] >= FRAMES
    assert report["image_topics"]["/cam/rgb"]["errors_total"] == 0
    assert _erased_changed(src, tmp_path / "out") > 30


def test_detection_failing_twice_fails_its_window_closed(runs: dict, tmp_path: Path, detector: CenterFace) -> None:
    """Frames with a face cannot be detected at all: the frame without a detectable face must not be
    written as it is (its neighbours' faces are unknown), so every frame of the window is blurred whole."""
    def broken(rgb: np.ndarray, **kwargs: Any) -> Detections:
        found = detector(rgb, **kwargs)
        if len(found):
            raise RuntimeError("detector crashed")
        return found

    src = runs["sqlite3"][0]
    report = anonymize_bag(src, tmp_path / "out", Pipeline(Settings(), broken), topics=["/cam/rgb"])
    topic = report["image_topics"]["/cam/rgb"]
    assert topic["blurred_whole"] == FRAMES and topic["frames_out"] == FRAMES
    assert report["counters"]["bag_detect_failed"] >= 1
    assert _erased_changed(src, tmp_path / "out") > 30


@pytest.mark.parametrize("kind", KINDS)
def test_frames_dropped_by_the_pipeline_leave_no_original_behind(runs: dict, tmp_path: Path, kind: str,
                                                                 detector: CenterFace) -> None:
    """`--on-error drop` and detection failing on the first frame: the frames it fails closed are gone and
    every other is still written where it belongs (sqlite3 and MCAP outputs rewrite the input's own rows
    and records in place), and no original frame is left in the output."""
    src = runs[kind][0]
    _, before = read(src)
    first = pixels(before["/cam/rgb"][0][2])

    def fails_on_the_first(rgb: np.ndarray, **kwargs: Any) -> Detections:
        if np.array_equal(rgb, first):
            raise RuntimeError("detector crashed")
        return detector(rgb, **kwargs)

    out = tmp_path / f"dropped_{KINDS[kind]}"
    pipeline = Pipeline(Settings().updated(on_error="drop", carry_frames=1), fails_on_the_first)
    report = anonymize_bag(src, out, pipeline, topics=["/cam/rgb"])
    dropped = report["image_topics"]["/cam/rgb"]["dropped"]
    _, after = read(out)
    assert 1 <= dropped < FRAMES and len(after["/cam/rgb"]) == FRAMES - dropped
    originals = {raw for _, raw, _ in before["/cam/rgb"]}
    assert not [ts for ts, raw, _ in after["/cam/rgb"] if raw in originals], "an original frame was written"
    assert [ts for ts, _, _ in after["/cam/rgb"]] == [ts for ts, _, _ in before["/cam/rgb"]][dropped:]
    for (_, _, msg), (_, _, orig) in zip(after["/cam/rgb"], before["/cam/rgb"][dropped:]):
        assert msg.header.stamp == orig.header.stamp  # each frame in its own row/record
