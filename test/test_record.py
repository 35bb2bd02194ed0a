"""Privacy-safe recording: the MCAP recorder, and the one function that decides what `ros2 bag record` gets."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from ldfa_ros.record import Recorder, bag_record_command, record_topics, typestore


def image(store, value: int):
    Image, Header, Time = (store.types[t] for t in
                           ("sensor_msgs/msg/Image", "std_msgs/msg/Header", "builtin_interfaces/msg/Time"))
    return Image(Header(Time(7, 5), "cam0"), 2, 3, "rgb8", 0, 9, np.full(18, value, np.uint8))


def detections(store):
    t = store.types
    hyp = t["vision_msgs/msg/ObjectHypothesisWithPose"](
        t["vision_msgs/msg/ObjectHypothesis"]("face", 0.9),
        t["geometry_msgs/msg/PoseWithCovariance"](
            t["geometry_msgs/msg/Pose"](t["geometry_msgs/msg/Point"](0.0, 0.0, 0.0),
                                        t["geometry_msgs/msg/Quaternion"](0.0, 0.0, 0.0, 1.0)), np.zeros(36)))
    header = t["std_msgs/msg/Header"](t["builtin_interfaces/msg/Time"](7, 5), "cam0")
    box = t["vision_msgs/msg/BoundingBox2D"](t["vision_msgs/msg/Pose2D"](t["vision_msgs/msg/Point2D"](10.0, 20.0), 0.0),
                                             4.0, 6.0)
    return t["vision_msgs/msg/Detection2DArray"](header, [t["vision_msgs/msg/Detection2D"](header, [hyp], box, "3")])


def test_recorder_writes_an_mcap_that_reads_back(tmp_path) -> None:
    store = typestore("humble")
    topics = {"/cam0/anonymized": "sensor_msgs/msg/Image", "/cam0/faces": "vision_msgs/msg/Detection2DArray"}
    rec = Recorder(tmp_path / "bag", topics, lambda m: bytes(store.serialize_cdr(m, m.__msgtype__)))
    for i in range(5):
        assert rec.write("/cam0/anonymized", 1000 + i, image(store, i))
    rec.write("/cam0/faces", 2000, detections(store))
    rec.close()
    assert (rec.written, rec.dropped, rec.errors) == (6, 0, 0)
    assert not rec.write("/cam0/anonymized", 3000, image(store, 9)), "a closed recording refuses, and counts"
    rec.close()
    assert (rec.written, rec.dropped) == (6, 1)
    assert list((tmp_path / "bag").glob("*.mcap"))
    with AnyReader([tmp_path / "bag"], default_typestore=typestore()) as reader:
        got = [(c.topic, t, reader.deserialize(d, c.msgtype)) for c, t, d in reader.messages()]
    images = [m for topic, _, m in got if topic == "/cam0/anonymized"]
    assert [int(m.data[0]) for m in images] == [0, 1, 2, 3, 4]
    assert images[0].header.frame_id == "cam0" and images[0].header.stamp.sec == 7
    [(_, stamp, faces)] = [g for g in got if g[0] == "/cam0/faces"]
    det = faces.detections[0]
    assert stamp == 2000 and det.results[0].hypothesis.class_id == "face" and det.bbox.center.position.y == 20.0


def test_recorder_refuses_to_overwrite_and_unknown_topics_types(tmp_path) -> None:
    (tmp_path / "old").mkdir()
    with pytest.raises(FileExistsError, match="old"):
        Recorder(tmp_path / "old", {"/a": "sensor_msgs/msg/Image"}, bytes)
    with pytest.raises(ValueError, match="my_msgs/msg/Thing"):
        Recorder(tmp_path / "new", {"/a": "my_msgs/msg/Thing"}, bytes)
    rec = Recorder(tmp_path / "new2", {"/a": "sensor_msgs/msg/Image"}, bytes)
    with pytest.raises(KeyError, match="/raw"):
        rec.write("/raw", 0, b"")
    rec.close()


def test_a_slow_disk_drops_and_counts_instead_of_blocking(tmp_path) -> None:
    release = threading.Event()
    store = typestore()

    def slow(msg):
        release.wait(10)
        return bytes(store.serialize_cdr(msg, msg.__msgtype__))

    rec = Recorder(tmp_path / "bag", {"/a": "sensor_msgs/msg/Image"}, slow, queue_size=2)
    results = [rec.write("/a", i, image(store, 1)) for i in range(6)]
    release.set()
    rec.close()
    assert results.count(False) == rec.dropped >= 3
    assert rec.written + rec.dropped == 6


def test_a_bad_message_is_counted_and_recording_goes_on(tmp_path) -> None:
    store = typestore()

    def serialize(msg):
        if msg is None:
            raise ValueError("not a message")
        return bytes(store.serialize_cdr(msg, msg.__msgtype__))

    rec = Recorder(tmp_path / "bag", {"/a": "sensor_msgs/msg/Image"}, serialize)
    rec.write("/a", 0, None)
    rec.write("/a", 1, image(store, 2))
    rec.close()
    assert (rec.written, rec.errors) == (1, 1)


def test_record_topics_takes_outputs_and_never_raw_camera_topics() -> None:
    plan = record_topics(["/cam0/image_raw", "/cam1/image_raw/compressed", "side/image"],
                         publish_detections=True, namespace="/car",
                         extra_topics=["/tf", "/cam0/image_raw", "/cam0/image_raw/compressed", "/cam0/image_raw/theora",
                                       "/cam1/image_raw", "/cam1/image_raw/compressed", "side/image",
                                       "/car/side/image/compressedDepth", "/cam0/image_raw/anonymized",
                                       "/cam0/image_rawer", "/diagnostics", "/tf"])
    assert plan.topics == ["/cam0/image_raw/anonymized", "/cam0/image_raw/faces",
                           "/cam1/image_raw/anonymized/compressed", "/cam1/image_raw/faces",
                           "/car/side/image/anonymized", "/car/side/image/faces",
                           "/tf", "/cam0/image_rawer", "/diagnostics"]
    assert plan.excluded == ["/cam0/image_raw", "/cam0/image_raw/compressed", "/cam0/image_raw/theora",
                             "/cam1/image_raw", "/cam1/image_raw/compressed", "/car/side/image",
                             "/car/side/image/compressedDepth"]


def test_record_topics_without_detections_and_with_a_custom_suffix() -> None:
    plan = record_topics(["/cam/image"], output_suffix="anon")
    assert plan.topics == ["/cam/image/anon"] and plan.excluded == []
    with pytest.raises(ValueError, match="private"):
        record_topics(["/cam/image"], extra_topics=["~/x"])
    with pytest.raises(ValueError, match="cameras"):
        record_topics([])


def test_bag_record_command() -> None:
    assert bag_record_command("drive", ["/a", "/b"]) == ["ros2", "bag", "record", "-s", "mcap", "-o", "drive",
                                                         "/a", "/b"]
    with pytest.raises(ValueError):
        bag_record_command("drive", [])
