"""Video coverage: each labelled image becomes a short camera pan, so carry-over's gain is a number.

A crop moves across the image `step` px a frame, its labels moved with it (a face cut by the crop
edge is kept while at least half of it shows, clipped). Every frame is detected on its own; coverage
of each face in each frame is then measured three ways: the frame's own detections, the live
tracker's carry-over (forward only), and the bag tool's look-both-ways window. Regions are the
pipeline's (`face_region` with the user's settings), so this is what the pipeline would hide.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from .boxes import covered_fraction
from .dataset import LabelledImage
from .metrics import COVERED, by_bucket
from ..detect import Detections
from ..pipeline import Pipeline
from ..render.regions import changed_mask, face_region
from ..track import Face, Tracker, window_faces

MODES = ("detections", "live", "bag")
MIN_VISIBLE = 0.5  # share of a face's width inside the crop for it to count in that frame


def pan(rgb: np.ndarray, faces: np.ndarray, frames: int, step: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`frames` crops moving `step` px right a frame across `rgb` (narrower steps when the image is too
    narrow to keep half its width), each with the labelled faces in its pixels."""
    h, w = rgb.shape[:2]
    step = min(step, w // (2 * max(frames - 1, 1)))
    width = w - step * (frames - 1)
    out = []
    for k in range(frames):
        x = k * step
        boxes = np.asarray(faces, np.float64).reshape(-1, 4) - [x, 0, x, 0]
        clipped = np.clip(boxes, 0, [width, h, width, h])
        visible = (clipped[:, 2] - clipped[:, 0]) >= MIN_VISIBLE * (boxes[:, 2] - boxes[:, 0])
        out.append((np.ascontiguousarray(rgb[:, x:x + width]), clipped[visible & (clipped[:, 2] > clipped[:, 0])]))
    return out


def evaluate_video(dataset: Sequence[LabelledImage], pipeline: Pipeline, frames: int, step: int,
                   images: Iterable[int] | None = None) -> dict[str, Any]:
    """Coverage by face height over every (frame, face) of every pan, per mode, and the share of each
    frame's pixels the regions change (what carry-over costs the picture)."""
    s = pipeline.settings
    heights: list[np.ndarray] = []
    hits: dict[str, list[np.ndarray]] = {m: [] for m in MODES}
    changed: dict[str, list[float]] = {m: [] for m in MODES}
    for index in images if images is not None else range(len(dataset)):
        clip = pan(dataset[index].read(), dataset[index].faces, frames, step)
        found: list[Detections | None] = [pipeline.detect(rgb) for rgb, _ in clip]
        tracker = Tracker(s.carry_frames)
        for t, (rgb, faces) in enumerate(clip):
            own = [Face(b, 1.0, 0) for b in found[t].boxes]  # type: ignore[union-attr]
            window = found[max(0, t - s.carry_frames):t + s.carry_frames + 1]
            modes = {"detections": own, "live": tracker.update(found[t]),  # type: ignore[arg-type]
                     "bag": own + window_faces(window, t - max(0, t - s.carry_frames))}
            heights.append(faces[:, 3] - faces[:, 1])
            for mode, hidden in modes.items():
                regions = [face_region(f.box, rgb.shape, s.mask_scale, s.shape, s.feather) for f in hidden]
                mask = changed_mask(rgb.shape, [r for r in regions if r is not None])
                hits[mode].append(covered_fraction(faces, mask) >= COVERED)
                changed[mode].append(float(mask.mean()))
    all_heights = np.concatenate(heights) if heights else np.zeros(0)
    return {
        "frames_per_image": frames, "pan_px_per_frame": step, "carry_frames": s.carry_frames,
        "coverage": {m: by_bucket(all_heights, np.concatenate(hits[m]) if hits[m] else np.zeros(0, bool))
                     for m in MODES},
        "changed_share": {m: round(float(np.mean(v)), 4) if v else None for m, v in changed.items()},
    }
