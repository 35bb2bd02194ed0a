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


def box_mask(shape: tuple[int, int], boxes: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Boolean mask of the union of `boxes` dilated about their centres by `scale`."""
    mask = np.zeros(shape, bool)
    h, w = shape
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
        xa, ya = int(max(0, np.floor(cx - hw))), int(max(0, np.floor(cy - hh)))
        xb, yb = int(min(w, np.ceil(cx + hw))), int(min(h, np.ceil(cy + hh)))
        mask[ya:yb, xa:xb] = True
    return mask
