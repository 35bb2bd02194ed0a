"""Carry faces across frames so that a one-frame detector miss never leaks a face.

A light IoU tracker per stream: detections are matched to tracks greedily by overlap; a track the
detector lost keeps being hidden for `carry_frames` frames at its constant-velocity prediction,
grown a little each missed frame to absorb motion. Track ids also give the diffusion renderer a
stable seed, so one person keeps one synthetic face.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .detect.detections import Detections, iou_matrix

GROWTH_PER_MISSED_FRAME = 0.05


@dataclass(frozen=True)
class Face:
    """A face to hide in one frame. `age` is frames since the detector last saw it (0: seen now)."""

    box: np.ndarray
    score: float
    track_id: int
    age: int = 0
    landmarks: np.ndarray | None = None


@dataclass
class _Track:
    face: Face
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))

    def predicted(self) -> np.ndarray:
        return self.face.box + self.velocity


class Tracker:
    """One stream's tracks."""

    def __init__(self, carry_frames: int, match_iou: float = 0.3) -> None:
        self.carry_frames = carry_frames
        self.match_iou = match_iou
        self._tracks: list[_Track] = []
        self._ids = itertools.count(1)

    def update(self, detections: Detections) -> list[Face]:
        """Faces to hide in this frame: all detections, plus recently lost tracks carried over."""
        predicted = np.array([t.predicted() for t in self._tracks], np.float32).reshape(-1, 4)
        pairs = _greedy_match(iou_matrix(predicted, detections.boxes), self.match_iou)
        matched_tracks = {ti for ti, _ in pairs}
        matched_dets = {di for _, di in pairs}
        survivors: list[_Track] = []
        for ti, di in pairs:
            track = self._tracks[ti]
            box = detections.boxes[di]
            velocity = 0.5 * track.velocity + 0.5 * (box - track.face.box) / (track.face.age + 1)
            survivors.append(_Track(self._face(detections, di, track.face.track_id), velocity.astype(np.float32)))
        for ti, track in enumerate(self._tracks):
            if ti in matched_tracks or track.face.age >= self.carry_frames:
                continue
            box = _grow(track.predicted(), 1.0 + GROWTH_PER_MISSED_FRAME)
            face = Face(box, track.face.score, track.face.track_id, track.face.age + 1, None)
            survivors.append(_Track(face, track.velocity))
        for di in range(len(detections)):
            if di not in matched_dets:
                survivors.append(_Track(self._face(detections, di, next(self._ids))))
        self._tracks = survivors
        return [t.face for t in survivors]

    @staticmethod
    def _face(detections: Detections, index: int, track_id: int) -> Face:
        return Face(detections.boxes[index].copy(), float(detections.scores[index]), track_id, 0,
                    detections.landmarks[index].copy())


def _greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, col) pairs, best overlap first, each row and column used once."""
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if r not in used_r and c not in used_c:
            pairs.append((r, c))
            used_r.add(r)
            used_c.add(c)
    return pairs


def _grow(box: np.ndarray, factor: float) -> np.ndarray:
    centre = (box[:2] + box[2:]) / 2
    half = (box[2:] - box[:2]) * factor / 2
    return np.concatenate([centre - half, centre + half]).astype(np.float32)


class StreamTrackers:
    """A tracker per stream name (camera topic), created on first use."""

    def __init__(self, carry_frames: int) -> None:
        self.carry_frames = carry_frames
        self._trackers: dict[str, Tracker] = {}

    def update(self, stream: str, detections: Detections) -> list[Face]:
        tracker = self._trackers.get(stream)
        if tracker is None:
            tracker = self._trackers[stream] = Tracker(self.carry_frames)
        tracker.carry_frames = self.carry_frames
        return tracker.update(detections)


def window_faces(window: Sequence[Detections | None], center: int, match_iou: float = 0.3) -> list[Face]:
    """Faces for frame `center` of one stream that its neighbours saw but it did not.

    Offline (bags) we can look both ways: `window` holds one stream's detections of frames t-N..t+N
    (None where detection failed) and `center` is t's index in it. Each side contributes its nearest
    sighting of every face that frame t lacks, grown like a track carried that many frames. A sighting
    before t and one after t that are close enough to be one face (it moved at most its own size a
    frame) become the hull of the two, which also covers the path between them; pairing two different
    faces this way only hides more. These faces have track id 0 (untracked) and `age` = frames to the
    nearest sighting.
    """
    own = window[center]
    seen = own.boxes if own is not None else np.zeros((0, 4), np.float32)
    before = _sightings(window[center - 1::-1] if center > 0 else [], seen, match_iou)
    after = _sightings(window[center + 1:], seen, match_iou)
    pairs = _greedy_match(_reach(before, after), 1e-6)
    faces = [Face(np.concatenate([np.minimum(before[b].box[:2], after[a].box[:2]),
                                  np.maximum(before[b].box[2:], after[a].box[2:])]),
                  max(before[b].score, after[a].score), 0, min(before[b].age, after[a].age))
             for b, a in pairs]
    paired_before, paired_after = {b for b, _ in pairs}, {a for _, a in pairs}
    faces += [f for i, f in enumerate(before) if i not in paired_before]
    faces += [f for i, f in enumerate(after) if i not in paired_after]
    return faces


def _reach(before: list[Face], after: list[Face]) -> np.ndarray:
    """How plausibly each pair is one face: 1 at the same place, falling to 0 at a distance of the face's
    size times the frames between the sightings; below 0 beyond."""
    if not before or not after:
        return np.zeros((len(before), len(after)))
    b = np.array([f.box for f in before], np.float64)
    a = np.array([f.box for f in after], np.float64)
    centre_b, centre_a = (b[:, :2] + b[:, 2:]) / 2, (a[:, :2] + a[:, 2:]) / 2
    distance = np.linalg.norm(centre_b[:, None] - centre_a[None], axis=2)
    size = np.maximum((b[:, 2:] - b[:, :2]).max(axis=1)[:, None], (a[:, 2:] - a[:, :2]).max(axis=1)[None])
    frames = np.array([f.age for f in before])[:, None] + np.array([f.age for f in after])[None]
    return 1.0 - distance / np.maximum(size * frames, 1e-6)


def _sightings(frames: Sequence[Detections | None], seen: np.ndarray, match_iou: float) -> list[Face]:
    """Nearest-first frames -> the nearest sighting of each face not in `seen`, grown by its distance.

    Faces are followed frame to frame by overlap, so a moving face that frame t has is not taken for a
    new one a few frames away."""
    found: list[Face] = []
    frontier = seen  # where each face already accounted for was last seen
    for distance, detections in enumerate(frames, 1):
        if detections is None or not len(detections):
            continue
        overlap = iou_matrix(detections.boxes, frontier)
        new = overlap.max(axis=1, initial=0.0) < match_iou
        for i in np.flatnonzero(new):
            box = _grow(detections.boxes[i], 1.0 + GROWTH_PER_MISSED_FRAME * distance)
            found.append(Face(box, float(detections.scores[i]), 0, distance))
        lost = overlap.max(axis=0, initial=0.0) < match_iou  # not seen in this frame: keep their last place
        frontier = np.concatenate([detections.boxes, frontier[lost]])
    return found
