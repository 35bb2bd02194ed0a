"""Detector output: boxes, scores and 5-point landmarks as arrays, with the few box operations needed."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Detections:
    """N faces: `boxes` (N, 4) x1 y1 x2 y2 pixels, `scores` (N,), `landmarks` (N, 5, 2) x y pixels."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    @staticmethod
    def concat(parts: list[Detections]) -> Detections:
        if not parts:
            return Detections.empty()
        return Detections(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.landmarks for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep: np.ndarray) -> Detections:
        return Detections(self.boxes[keep], self.scores[keep], self.landmarks[keep])

    def scaled(self, fx: float, fy: float | None = None) -> Detections:
        """Boxes and landmarks of a frame resized by `fx` (and `fy` vertically, default `fx`)."""
        fy = fx if fy is None else fy
        if fx == 1.0 and fy == 1.0:
            return self
        f = np.array([fx, fy], np.float32)
        return Detections(self.boxes * np.tile(f, 2), self.scores, self.landmarks * f)

    def shifted(self, dx: float, dy: float) -> Detections:
        """Boxes found in a tile whose top-left corner is at (dx, dy) of the frame."""
        d = np.array([dx, dy], np.float32)
        return Detections(self.boxes + np.tile(d, 2), self.scores, self.landmarks + d)

    def mirrored(self, width: int) -> Detections:
        """Boxes found on the horizontally mirrored frame, mapped back to the frame."""
        boxes = self.boxes.copy()
        boxes[:, [0, 2]] = width - self.boxes[:, [2, 0]]
        landmarks = self.landmarks.copy()
        landmarks[..., 0] = width - landmarks[..., 0]
        return Detections(boxes, self.scores, landmarks[:, [1, 0, 2, 4, 3]])

    def nms(self, iou: float) -> Detections:
        """Keep the best-scoring box of each overlapping group (OpenCV's NMS)."""
        if len(self) < 2:
            return self
        xywh = np.column_stack([self.boxes[:, :2], self.boxes[:, 2:] - self.boxes[:, :2]])
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), self.scores.tolist(), 0.0, iou)
        return self.select(np.sort(np.asarray(keep, dtype=np.int64).reshape(-1)))

    def as_rows(self) -> list[list[float]]:
        """[[x1, y1, x2, y2, score], ...] rounded for JSON."""
        return [[round(float(v), 2) for v in box] + [round(float(s), 4)] for box, s in zip(self.boxes, self.scores)]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) x1 y1 x2 y2 boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
