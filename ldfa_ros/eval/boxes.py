"""Box arithmetic for evaluation: size buckets and coverage of labelled faces."""
from __future__ import annotations

import cv2
import numpy as np

from ..detect.detections import iou_matrix

SIZE_BUCKETS = ((0, 16, "<16"), (16, 32, "16-32"), (32, 64, "32-64"), (64, 1 << 30, ">=64"))


def bucket_of(height: float) -> str:
    """WIDER-style face-height bucket name."""
    for low, high, name in SIZE_BUCKETS:
        if low <= height < high:
            return name
    raise ValueError(f"negative face height {height}")


def covered_fraction(boxes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each (N, 4) box, the share of its pixels set in the boolean `mask`."""
    integral = cv2.integral(mask.astype(np.uint8))
    h, w = mask.shape
    out = np.zeros(len(boxes))
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
        xa, ya = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.floor(y1), 0, h))
        xb, yb = int(np.clip(np.ceil(x2), 0, w)), int(np.clip(np.ceil(y2), 0, h))
        area = (xb - xa) * (yb - ya)
        if area > 0:
            out[i] = (integral[yb, xb] - integral[ya, xb] - integral[yb, xa] + integral[ya, xa]) / area
    return out


def scaled_boxes(boxes: np.ndarray, scale: float) -> np.ndarray:
    """(N, 4) boxes dilated about their centres by `scale`."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    centre, half = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) * scale / 2
    return np.hstack([centre - half, centre + half])


def box_mask(shape: tuple[int, int], boxes: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Boolean mask of the union of `boxes` dilated about their centres by `scale`."""
    mask = np.zeros(shape, bool)
    h, w = shape
    for x1, y1, x2, y2 in scaled_boxes(boxes, scale):
        xa, ya = int(max(0, np.floor(x1))), int(max(0, np.floor(y1)))
        xb, yb = int(min(w, np.ceil(x2))), int(min(h, np.ceil(y2)))
        mask[ya:yb, xa:xb] = True
    return mask


def match_detections(faces: np.ndarray, ignore: np.ndarray, detections: np.ndarray, scores: np.ndarray,
                     iou: float = 0.5) -> tuple[np.ndarray, int, int]:
    """WIDER FACE counting: which labelled faces a detection found, true and false positives.

    Detections, best score first, each claim the unclaimed face they overlap most at IoU >= `iou`;
    one that claims none but overlaps an `ignore` box that well is neither a hit nor a false positive.
    """
    overlap = iou_matrix(detections, faces)
    ignored = iou_matrix(detections, ignore).max(axis=1, initial=0.0) >= iou
    found = np.zeros(overlap.shape[1], bool)
    tp = fp = 0
    for d in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
        row = np.where(found, -1.0, overlap[d])
        if len(row) and row.max() >= iou:
            found[int(row.argmax())] = True
            tp += 1
        elif not ignored[d]:
            fp += 1
    return found, tp, fp


def square_crop(image: np.ndarray, box: np.ndarray, context: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A `size` x `size` crop of the square `context` times the box's longer side about its centre
    (zero past the frame edges), and the box in crop pixels. Looking at, or detecting on, faces of
    one scale whatever their size in the frame."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, np.float64).reshape(4))
    side = max(1, int(np.ceil(context * max(x2 - x1, y2 - y1, 1.0))))
    xa, ya = int(np.floor((x1 + x2 - side) / 2)), int(np.floor((y1 + y2 - side) / 2))
    patch = np.zeros((side, side) + image.shape[2:], image.dtype)
    h, w = image.shape[:2]
    sx, sy = max(xa, 0), max(ya, 0)
    ex, ey = min(xa + side, w), min(ya + side, h)
    if ex > sx and ey > sy:
        patch[sy - ya:ey - ya, sx - xa:ex - xa] = image[sy:ey, sx:ex]
    interp = cv2.INTER_AREA if size < side else cv2.INTER_LINEAR
    k = size / side
    return cv2.resize(patch, (size, size), interpolation=interp), (np.array([x1, y1, x2, y2]) - [xa, ya, xa, ya]) * k
