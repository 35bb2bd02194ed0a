"""A panning camera bag: carried faces follow the motion instead of smearing into bands.

The camera pans 30 px a frame across a street scene with the astronaut's real face, about 46 px tall,
so consecutive sightings overlap too little to be chained by overlap alone; in one frame the face is
erased (a checkerboard the detector does not take for a face). The output is read back with Foxglove's
MCAP reader and checked against the input pixels.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from mcap_ros2.reader import read_ros2_messages
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from bags import BEST_EFFORT, START_NS, PERIOD_NS, image_message
from ldfa_ros.bag import anonymize_bag
from ldfa_ros.detect import CenterFace
from ldfa_ros.pipeline import Pipeline
from ldfa_ros.settings import Settings

FRAMES, STEP, WIDTH, HEIGHT = 11, 30, 480, 240
ERASED = 5
FACE_H = 46
TOPIC = "/cam/front"


def world() -> tuple[np.ndarray, np.ndarray]:
    """A wide scene with the astronaut's head pasted in; the face box in it."""
    from skimage import data

    scene = cv2.resize(data.coffee(), (WIDTH + STEP * (FRAMES - 1), HEIGHT), interpolation=cv2.INTER_AREA)
    head = data.astronaut()[30:230, 140:310]
    k = FACE_H / 120  # the face box is 120 px tall in the astronaut photo, at (41, 28) in this crop
    head = cv2.resize(head, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    x, y = 290, 90
    scene[y:y + head.shape[0], x:x + head.shape[1]] = head
    return scene, np.array([x + 41 * k, y + 28 * k, x + 130 * k, y + 148 * k])


def frames() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The pan: frames and the face box in each; the camera moves right, so the face moves left."""
    scene, face = world()
    out, boxes = [], []
    for i in range(FRAMES):
        rgb = np.ascontiguousarray(scene[:, i * STEP:i * STEP + WIDTH])
        box = face - [i * STEP, 0, i * STEP, 0]
        if i == ERASED:
            x1, y1, x2, y2 = box.astype(int)
            squares = np.indices((y2 - y1, x2 - x1)).sum(axis=0) // 6 % 2
            rgb[y1:y2, x1:x2] = (squares * 200)[..., None].astype(np.uint8)
        out.append(rgb)
        boxes.append(box)
    return out, boxes


def write_pan(path: Path, rgbs: list[np.ndarray]) -> Path:
    """The frames as a rosbag2 MCAP (benchmarks/bench_pan.py uses it too)."""
    ts = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=ts, offered_qos_profiles=[BEST_EFFORT])
        for i, rgb in enumerate(rgbs):
            msg = image_message(ts, "sensor_msgs/msg/Image", "rgb8", rgb, START_NS + i * PERIOD_NS, "front")
            writer.write(conn, START_NS + i * PERIOD_NS, ts.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    return path


def anonymize_pan(src: Path, dst: Path, settings: Settings, detector: CenterFace) -> tuple[list[np.ndarray], dict]:
    """`ldfa bag`'s code on the pan: the output frames (read with Foxglove's reader) and the topic's report."""
    report = anonymize_bag(src, dst, Pipeline(settings, detector))
    [path] = dst.glob("*.mcap")
    images = [np.frombuffer(m.ros_msg.data, np.uint8).reshape(HEIGHT, WIDTH, 3)
              for m in read_ros2_messages(str(path), topics=[TOPIC])]
    return images, report["image_topics"][TOPIC]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, detector: CenterFace) -> dict:
    """The pan anonymized at the offline default (recall preset) with and without carry-over."""
    root = tmp_path_factory.mktemp("pan")
    rgbs, boxes = frames()
    src = write_pan(root / "pan", rgbs)
    out = {carry: anonymize_pan(src, root / f"out_{carry}", Settings().updated(preset="recall", carry_frames=carry),
                                detector) for carry in (5, 0)}
    return {"in": rgbs, "boxes": boxes, **out}


def _face_change(before: np.ndarray, after: np.ndarray, box: np.ndarray) -> float:
    x1, y1, x2, y2 = np.round(box).astype(int)
    return float(np.abs(after[y1:y2, x1:x2].astype(int) - before[y1:y2, x1:x2]).mean())


def test_the_face_is_detected_in_every_frame_but_the_erased_one(runs: dict) -> None:
    report = runs[0][1]
    assert report["faces_detected"] == FRAMES - 1
    for i, (before, after, box) in enumerate(zip(runs["in"], runs[0][0], runs["boxes"])):
        assert (_face_change(before, after, box) > 15) == (i != ERASED), f"frame {i} without carry-over"


def test_a_panning_face_missed_in_one_frame_stays_covered(runs: dict) -> None:
    for i, (before, after, box) in enumerate(zip(runs["in"], runs[5][0], runs["boxes"])):
        assert _face_change(before, after, box) > 15, f"frame {i}: the face is not covered"


def test_carry_over_does_not_smear_a_panning_face_into_a_band(runs: dict) -> None:
    """Changed pixels per frame stay within 2x of the carry-over-free run (the hull of the sightings
    changed 4-14 % of every frame where one face changes well under 1 %)."""
    for i, (before, carried, single) in enumerate(zip(runs["in"], runs[5][0], runs[0][0])):
        share = np.any(carried != before, axis=2).mean()
        alone = np.any(single != before, axis=2).mean() if i != ERASED else None
        if alone is not None:
            assert share <= 2 * alone, f"frame {i}: {share:.3%} of the frame changed vs {alone:.3%} without carry"
        else:
            assert share <= 2 * np.mean([np.any(s != b, axis=2).mean() for s, b in zip(runs[0][0], runs["in"])])


def test_the_report_counts_faces_and_regions_apart(runs: dict) -> None:
    report = runs[5][1]
    assert report["faces"] == FRAMES, "one face in every frame"
    assert report["regions"] >= report["faces"]
