"""Temporal carry-over: a face the detector misses stays hidden for carry_frames frames."""
from __future__ import annotations

import numpy as np
import pytest

from ldfa_ros.detect import Detections
from ldfa_ros.track import GROWTH_PER_MISSED_FRAME, StreamTrackers, Tracker, distinct_faces


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


def test_a_fast_face_is_followed_and_carried_at_its_size():
    """A 40 px face moving 30 px a frame (sightings barely overlap): one track, and once lost it is
    hidden where its measured velocity takes it, at its own size (grown a little), not behind it."""
    tracker = Tracker(carry_frames=3)
    ids = {tracker.update(dets([30 * i, 0, 30 * i + 40, 40]))[0].track_id for i in range(4)}
    assert len(ids) == 1, "sightings 30 px apart are one face"
    for age in (1, 2, 3):
        [face] = tracker.update(Detections.empty())
        centre = (face.box[0] + face.box[2]) / 2
        assert centre == pytest.approx(20 + 30 * (3 + age), abs=1.0), f"carried {age} frame(s): where it went"
        assert face.box[2] - face.box[0] == pytest.approx(40 * (1 + GROWTH_PER_MISSED_FRAME * age))


def test_a_face_seen_again_after_a_miss_keeps_its_track_and_velocity():
    tracker = Tracker(carry_frames=3)
    for i in (0, 1, 2):
        tracker.update(dets([20 * i, 0, 20 * i + 40, 40]))
    tracker.update(Detections.empty())
    [face] = tracker.update(dets([80, 0, 120, 40]))
    assert face.age == 0
    [carried] = tracker.update(Detections.empty())
    assert (carried.box[0] + carried.box[2]) / 2 == pytest.approx(120, abs=1.0)


def test_overlapping_regions_of_one_face_count_once():
    assert distinct_faces([]) == 0
    assert distinct_faces([np.array([0, 0, 40, 40]), np.array([4, 0, 44, 40]), np.array([100, 0, 140, 40])]) == 2


def test_a_new_face_beside_a_missed_one_does_not_take_its_cover():
    """Face A is missed in the frame where face B first appears right beside it: B's detection may match
    A's track by nearness, but A must stay covered (carried) all the same."""
    tracker = Tracker(carry_frames=5)
    tracker.update(dets([100, 100, 150, 150]))
    faces = tracker.update(dets([152, 100, 202, 150]))
    boxes = [f.box.round().tolist() for f in faces]
    assert [152, 100, 202, 150] in boxes
    carried = [f for f in faces if f.age == 1]
    assert len(carried) == 1 and abs(carried[0].box[0] - 100) <= 5 and abs(carried[0].box[2] - 150) <= 5
    assert len({f.track_id for f in faces}) == 2
