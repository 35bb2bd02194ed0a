"""Temporal carry-over: a face the detector misses stays hidden for carry_frames frames."""
from __future__ import annotations

import numpy as np

from ldfa_ros.detect import Detections
from ldfa_ros.track import StreamTrackers, Tracker


def dets(*boxes: list[float]) -> Detections:
    n = len(boxes)
    return Detections(np.array(boxes, np.float32).reshape(n, 4), np.full(n, 0.9, np.float32),
                      np.zeros((n, 5, 2), np.float32))


def test_missed_face_is_carried_for_n_frames_then_dropped():
    tracker = Tracker(carry_frames=3)
    for x in (0, 4, 8):  # moving right 4 px per frame
        faces = tracker.update(dets([x, 0, x + 40, 40]))
        assert [f.age for f in faces] == [0]
    ids = set()
    for age in (1, 2, 3):
        faces = tracker.update(Detections.empty())
        assert [f.age for f in faces] == [age]
        ids.add(faces[0].track_id)
        width = faces[0].box[2] - faces[0].box[0]
        assert width > 40, "a carried box grows to absorb motion"
        assert faces[0].box[0] + width / 2 > 20 + 8 + 4 * (age - 1), "and moves with the track's velocity"
    assert len(ids) == 1
    assert tracker.update(Detections.empty()) == []


def test_ids_follow_faces_and_new_faces_get_new_ids():
    tracker = Tracker(carry_frames=2)
    first = tracker.update(dets([0, 0, 40, 40]))
    second = tracker.update(dets([2, 0, 42, 40], [200, 200, 240, 240]))
    assert second[0].track_id == first[0].track_id
    assert second[1].track_id != first[0].track_id
    assert tracker.update(dets([4, 0, 44, 40]))[0].track_id == first[0].track_id


def test_streams_are_independent():
    trackers = StreamTrackers(carry_frames=5)
    trackers.update("front", dets([0, 0, 40, 40]))
    assert trackers.update("rear", Detections.empty()) == []
    assert len(trackers.update("front", Detections.empty())) == 1
