"""Carry faces across frames so that a one-frame detector miss never leaks a face.

Live, a light tracker per stream: detections are matched to tracks greedily by overlap (or, for a
fast face, by nearness at its own size); a track the detector lost stays hidden for `carry_frames`
frames where its velocity, measured between its sightings, takes it, at the size it was last seen
and grown a little each missed frame for the error of that guess. Offline (bags) we can look both
ways: `window_faces` links a window's detections into tracks the same way and puts a face the frame
missed between its sightings either side. Track ids also give the diffusion renderer a stable seed,
so one person keeps one synthetic face.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .detect.detections import Detections, iou_matrix

GROWTH_PER_MISSED_FRAME = 0.05
MATCH_IOU = 0.3
# Sightings `frames` apart may be one face up to REACH face sizes a frame apart (sizes within SIZE_RATIO):
# a face crossing a panning frame moves most of its width a frame.
REACH = 1.5
SIZE_RATIO = 1.6


@dataclass(frozen=True)
class Face:
    """A face to hide in one frame. `age` is frames since the detector last saw it (0: seen now)."""

    box: np.ndarray
    score: float
    track_id: int
    age: int = 0
    landmarks: np.ndarray | None = None
    copy_of: int = 0  # a cautious copy left where track `copy_of` was when its detection matched by nearness


def moved(box: np.ndarray, velocity: np.ndarray, frames: float) -> np.ndarray:
    """`box` after `frames` frames at `velocity` (x, y per frame of its centre), at its own size grown
    by GROWTH_PER_MISSED_FRAME a frame."""
    centre = (box[:2] + box[2:]) / 2 + velocity * frames
    half = (box[2:] - box[:2]) * (1.0 + GROWTH_PER_MISSED_FRAME * abs(frames)) / 2
    return np.concatenate([centre - half, centre + half]).astype(np.float32)


def affinity(a: np.ndarray, b: np.ndarray, frames: np.ndarray | float = 1.0) -> np.ndarray:
    """How plausibly each (N, 4) box of `a` and (M, 4) box of `b` are one face `frames` apart: their IoU,
    or, where higher, 1 at the same centre falling to 0 at REACH face sizes per frame (sizes alike)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    size_a, size_b = (a[:, 2:] - a[:, :2]).max(axis=1), (b[:, 2:] - b[:, :2]).max(axis=1)
    distance = np.linalg.norm((a[:, None, :2] + a[:, None, 2:] - b[None, :, :2] - b[None, :, 2:]) / 2, axis=2)
    size = np.maximum(size_a[:, None], size_b[None])
    ratio = size / np.maximum(np.minimum(size_a[:, None], size_b[None]), 1e-6)
    near = np.where(ratio < SIZE_RATIO, 1.0 - distance / np.maximum(size * REACH * np.asarray(frames), 1e-6), 0.0)
    return np.maximum(iou_matrix(a, b), near)


@dataclass
class _Track:
    face: Face
    seen: np.ndarray  # the last detected box
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    # For a cautious copy (`face.copy_of`): the jump its track made to the match on nearness. The copy goes
    # once that track moves on by about the same jump (then they were one fast face).
    jump: np.ndarray | None = None

    def predicted(self, ahead: int = 1) -> np.ndarray:
        """Where the face is `ahead` frames after this one."""
        return moved(self.seen, self.velocity, self.face.age + ahead)

    def sighted(self, face: Face) -> _Track:
        frames = self.face.age + 1
        step = (_centre(face.box) - _centre(self.seen)) / frames
        velocity = step if not self.velocity.any() else 0.5 * self.velocity + 0.5 * step
        return _Track(face, face.box, velocity.astype(np.float32))


def _followed(track: _Track, moved_on: dict[int, np.ndarray]) -> bool:
    """Whether a cautious copy is explained: the track it copies was matched on overlap this frame, moving
    on at about the jump it made, so the two were one fast face, not a face and a neighbour."""
    source = track.face.copy_of
    if track.jump is None or source not in moved_on:
        return False
    size = float((track.seen[2:] - track.seen[:2]).max())
    return bool(np.linalg.norm(moved_on[source] - track.jump) < 0.5 * size)


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2


class Tracker:
    """One stream's tracks."""

    def __init__(self, carry_frames: int, match_iou: float = MATCH_IOU) -> None:
        self.carry_frames = carry_frames
        self.match_iou = match_iou
        self._tracks: list[_Track] = []
        self._ids = itertools.count(1)

    def update(self, detections: Detections) -> list[Face]:
        """Faces to hide in this frame: all detections, plus recently lost tracks carried over."""
        predicted = np.array([t.predicted() for t in self._tracks], np.float32).reshape(-1, 4)
        pairs = _greedy_match(affinity(predicted, detections.boxes), self.match_iou)
        overlap = iou_matrix(predicted, detections.boxes)
        # A match on nearness alone may be another face beside one the detector missed: carry that track too.
        unsure = {ti for ti, di in pairs if overlap[ti, di] < self.match_iou}
        matched_tracks = {ti for ti, _ in pairs} - unsure
        matched_dets = {di for _, di in pairs}
        survivors = [self._tracks[ti].sighted(self._face(detections, di, self._tracks[ti].face.track_id))
                     for ti, di in pairs]
        moved_on = {t.face.track_id: t.velocity for t, (ti, _) in zip(survivors, pairs) if ti not in unsure}
        for ti, track in enumerate(self._tracks):
            if ti in matched_tracks or track.face.age >= self.carry_frames or _followed(track, moved_on):
                continue
            face = Face(track.predicted(), track.face.score, track.face.track_id, track.face.age + 1, None)
            if ti in unsure:  # its id and sightings went with the match; this copy keeps the face covered
                jump = _centre(detections.boxes[dict(pairs)[ti]]) - _centre(track.seen)
                face = Face(face.box, face.score, next(self._ids), face.age, None, track.face.track_id)
                survivors.append(_Track(face, track.seen, track.velocity, jump))
            else:
                face = Face(face.box, face.score, face.track_id, face.age, None, track.face.copy_of)
                survivors.append(_Track(face, track.seen, track.velocity, track.jump))
        for di in range(len(detections)):
            if di not in matched_dets:
                face = self._face(detections, di, next(self._ids))
                survivors.append(_Track(face, face.box))
        self._tracks = survivors
        return [t.face for t in survivors]

    @staticmethod
    def _face(detections: Detections, index: int, track_id: int) -> Face:
        return Face(detections.boxes[index].copy(), float(detections.scores[index]), track_id, 0,
                    detections.landmarks[index].copy())


def _greedy_match(score: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, col) pairs, best score first, each row and column used once."""
    pairs: list[tuple[int, int]] = []
    if score.size == 0:
        return pairs
    rows, cols = np.nonzero(score >= threshold)
    order = np.argsort(-score[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if r not in used_r and c not in used_c:
            pairs.append((r, c))
            used_r.add(r)
            used_c.add(c)
    return pairs


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


@dataclass
class _Chain:
    """One face's sightings in a window: frame index -> (box, score)."""

    sightings: dict[int, tuple[np.ndarray, float]]

    def last(self) -> int:
        return max(self.sightings)

    def predicted(self, index: int) -> np.ndarray:
        """Where the face is at frame `index`, from the motion between its two sightings nearest to it."""
        near = sorted(self.sightings, key=lambda i: abs(index - i))
        box = self.sightings[near[0]][0]
        velocity = np.zeros(2)
        if len(near) > 1:
            velocity = (_centre(box) - _centre(self.sightings[near[1]][0])) / (near[0] - near[1])
        return moved(box, velocity, index - near[0])


def link(window: Sequence[Detections | None], match: float = MATCH_IOU) -> list[_Chain]:
    """One stream's window of detections linked into faces: each frame's boxes join the face whose
    motion so far predicts them best (`affinity` >= `match`), or start a new one."""
    chains: list[_Chain] = []
    for index, detections in enumerate(window):
        if detections is None or not len(detections):
            continue
        predicted = np.array([c.predicted(index) for c in chains], np.float32).reshape(-1, 4)
        gaps = np.array([index - c.last() for c in chains], np.float64).reshape(-1, 1)
        pairs = _greedy_match(affinity(predicted, detections.boxes, gaps), match)
        for ci, di in pairs:
            chains[ci].sightings[index] = (detections.boxes[di], float(detections.scores[di]))
        taken = {di for _, di in pairs}
        chains += [_Chain({index: (detections.boxes[di], float(detections.scores[di]))})
                   for di in range(len(detections)) if di not in taken]
    return chains


def window_faces(window: Sequence[Detections | None], center: int, match: float = MATCH_IOU) -> list[Face]:
    """Faces for frame `center` of one stream that its neighbours saw but it did not.

    Offline (bags) we can look both ways: `window` holds one stream's detections of frames t-N..t+N
    (None where detection failed) and `center` is t's index in it. Sightings are linked into faces
    (`link`); a face seen on both sides of t is put where it was between them (centre and size
    interpolated), one seen on one side only where its motion there takes it, at its size; either is
    grown like a track carried to its nearest sighting. These faces have track id 0 (untracked) and
    `age` = frames to the nearest sighting.
    """
    faces = []
    for chain in link(window, match):
        if center in chain.sightings:
            continue
        before = [i for i in chain.sightings if i < center]
        after = [i for i in chain.sightings if i > center]
        if before and after:
            b, a = max(before), min(after)
            (box_b, score_b), (box_a, score_a) = chain.sightings[b], chain.sightings[a]
            box = box_b + (box_a - box_b) * (center - b) / (a - b)
            age = min(center - b, a - center)
            faces.append(Face(moved(box, np.zeros(2), age), max(score_b, score_a), 0, age))
        else:  # seen on one side only: where its motion on that side takes it
            nearest = max(before) if before else min(after)
            faces.append(Face(chain.predicted(center), chain.sightings[nearest][1], 0, abs(center - nearest)))
    return faces


def distinct_faces(boxes: Sequence[np.ndarray]) -> int:
    """How many faces `boxes` show: boxes that overlap (IoU >= MATCH_IOU, e.g. a tracked face and the
    same face seen from a neighbouring frame) count once. Reports count faces apart from regions."""
    b = np.asarray(list(boxes), np.float64).reshape(-1, 4)
    parent = list(range(len(b)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(iou_matrix(b, b) >= MATCH_IOU, 1))):
        parent[root(int(i))] = root(int(j))
    return len({root(i) for i in range(len(b))})
