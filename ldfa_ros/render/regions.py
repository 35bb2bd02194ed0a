"""Where a face is hidden: the dilated box, its ellipse or box shape and a feathered edge.

A region's `alpha` is 1 over the dilated face shape and falls to 0 across the feather band outside
it; pixels where alpha is 0 are never written, so everything outside a region stays bit-identical.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# CenterFace's box runs from the brows to the lower lip; a person's face, as WIDER labels it, reaches from
# chin to forehead: its boxes are 1.1x as tall at the median and 1.3-1.4x at the 90th percentile (WIDER dev,
# matched detections). Regions grow this much more in height than in width to cover that.
HEIGHT_EXTRA = 1.15


@dataclass(frozen=True)
class Region:
    """A face's area in a frame: `roi` (x1, y1, x2, y2) integer slice bounds and `alpha` over it."""

    roi: tuple[int, int, int, int]
    alpha: np.ndarray
    face_size: float

    @property
    def slices(self) -> tuple[slice, slice]:
        x1, y1, x2, y2 = self.roi
        return slice(y1, y2), slice(x1, x2)


def face_region(box: np.ndarray, frame_shape: tuple[int, ...], mask_scale: float, shape: str,
                feather: float) -> Region | None:
    """The region hiding detector `box` (dilated `mask_scale` times, its height HEIGHT_EXTRA more); None
    when it lies outside the frame."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    ax, ay = max(x2 - x1, 1.0) * mask_scale / 2, max(y2 - y1, 1.0) * mask_scale * HEIGHT_EXTRA / 2
    outer = 1.0 + feather
    h, w = frame_shape[:2]
    rx1, ry1 = max(0, int(np.floor(cx - ax * outer))), max(0, int(np.floor(cy - ay * outer)))
    rx2, ry2 = min(w, int(np.ceil(cx + ax * outer))), min(h, int(np.ceil(cy + ay * outer)))
    if rx2 <= rx1 or ry2 <= ry1:
        return None
    dx = (np.arange(rx1, rx2, dtype=np.float32) + 0.5 - cx) / ax
    dy = (np.arange(ry1, ry2, dtype=np.float32) + 0.5 - cy) / ay
    if shape == "ellipse":
        r = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
    elif shape == "box":
        r = np.maximum(np.abs(dy)[:, None], np.abs(dx)[None, :])
    else:
        raise ValueError(f"unknown region shape {shape!r}: use ellipse or box")
    alpha = np.clip((outer - r) / feather, 0.0, 1.0) if feather > 0 else (r <= 1.0).astype(np.float32)
    return Region((rx1, ry1, rx2, ry2), alpha.astype(np.float32), max(x2 - x1, y2 - y1))


def blend(image: np.ndarray, region: Region, replacement: np.ndarray) -> None:
    """Write `replacement` (the roi's size) into `image` in place, weighted by the region's alpha."""
    rows, cols = region.slices
    roi = image[rows, cols]
    alpha = region.alpha[..., None] if roi.ndim == 3 else region.alpha
    mixed = roi * (1.0 - alpha) + replacement.astype(np.float32) * alpha
    inside = region.alpha > 0
    roi[inside] = np.clip(np.rint(mixed), 0, np.iinfo(image.dtype).max).astype(image.dtype)[inside]


def changed_mask(frame_shape: tuple[int, ...], regions: list[Region]) -> np.ndarray:
    """Boolean H x W mask of every pixel a region may have written."""
    mask = np.zeros(frame_shape[:2], bool)
    for region in regions:
        rows, cols = region.slices
        mask[rows, cols] |= region.alpha > 0
    return mask
