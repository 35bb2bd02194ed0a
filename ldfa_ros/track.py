"""Carry faces across frames so that a one-frame detector miss never leaks a face.

A light IoU tracker per stream: detections are matched to tracks greedily by overlap; a track the
detector lost keeps being hidden for `carry_frames` frames at its constant-velocity prediction,
grown a little each missed frame to absorb motion. Track ids also give the diffusion renderer a
stable seed, so one person keeps one synthetic face.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

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
