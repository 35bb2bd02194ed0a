"""Run every method over a labelled set and measure privacy and utility face by face.

Detection runs once per image and is shared by all methods (they differ only in how they hide), so
detector recall/precision is reported once. A method's anonymized region is its `FrameResult.changed`
mask: every pixel it may have written, feathered edge included (the whole frame after a failure).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from .boxes import SIZE_BUCKETS, box_mask, covered_fraction, match_detections, scaled_boxes, square_crop
from .dataset import LabelledImage
from .identity import FaceEmbedder, FaceFinder
from .methods import Anonymized, Method
from .metrics import COVERED, MethodTally, by_bucket, ms_summary, rate
from ..pipeline import Pipeline

DETECT_IOU = 0.5
SHEET_CONTEXT = 1.6
SHEET_PX = 128
SHEET_MIN_FACE = 16
# dlib reads pixels within about twice a face box (landmarks, aligned chip, detector crop): when a
# method left all of them as they were, the original's answers are reused rather than recomputed.
JUDGED_CONTEXT = 2.0


@dataclass
class SheetRow:
    """One sampled face for the contact sheet: its crop before and after each method."""

    image: str
    height: float
    crops: dict[str, np.ndarray] = field(default_factory=dict)
    covered: dict[str, bool] = field(default_factory=dict)


@dataclass
class Evaluation:
    report: dict[str, Any]
    sheet: list[SheetRow]


def sample_faces(dataset: Sequence[LabelledImage], count: int) -> list[tuple[int, int]]:
    """(image, face) indices of `count` faces, smallest to largest, spread evenly over the log of the
    face heights present (>= 16 px when there are any): small faces are the many, large the telling."""
    faces = [(float(b[3] - b[1]), i, j) for i, item in enumerate(dataset) for j, b in enumerate(item.faces)]
    pool = sorted([f for f in faces if f[0] >= SHEET_MIN_FACE] or faces)
    if len(pool) <= count:
        return [(i, j) for _, i, j in pool]
    logs = np.log(np.maximum([f[0] for f in pool], 1.0))
    picks: list[int] = []
    for target in np.linspace(logs[0], logs[-1], count):
        free = [k for k in range(len(pool)) if k not in picks]
        picks.append(min(free, key=lambda k: abs(logs[k] - target)))
    return [(pool[k][1], pool[k][2]) for k in sorted(picks)]


@dataclass
class _Original:
    """What is measured on an image before any method touches it."""

    rgb: np.ndarray
    heights: np.ndarray  # of every labelled face
    identity: np.ndarray  # which faces are large enough for the identity measures
    embeddings: np.ndarray  # of those faces: the gallery
    detectable: np.ndarray  # ... and whether dlib's detector finds them
    outside: np.ndarray  # background mask: beyond every labelled face's region


def evaluate(dataset: Sequence[LabelledImage], methods: dict[str, Method], detector: Pipeline,
             embedder: FaceEmbedder, finder: FaceFinder, *, unavailable: dict[str, str] | None = None,
             min_face: float = 40.0, sample: int = 12, images: Iterable[int] | None = None) -> Evaluation:
    """Anonymize every image with every method; the report of what it did to each labelled face.

    `detector` is a pipeline whose `detect` (the user's settings) supplies the boxes every method hides;
    `unavailable` names methods that could not run and why; `images` optionally wraps
    range(len(dataset)), e.g. in a progress bar.
    """
    start = time.perf_counter()
    settings = detector.settings
    tallies = {name: MethodTally() for name in methods}
    wanted = {(i, j): SheetRow(dataset[i].name, float(dataset[i].faces[j, 3] - dataset[i].faces[j, 1]))
              for i, j in sample_faces(dataset, sample)}
    heights: list[np.ndarray] = []
    gallery: list[np.ndarray] = []
    found_before: list[np.ndarray] = []
    found: list[np.ndarray] = []
    tp = fp = 0
    detect_ms: list[float] = []
    for index in images if images is not None else range(len(dataset)):
        item = dataset[index]
        rgb = item.read()
        t0 = time.perf_counter()
        detections = detector.detect(rgb)
        detect_ms.append((time.perf_counter() - t0) * 1000)
        hit, t, f = match_detections(item.faces, item.ignore, detections.boxes, detections.scores, DETECT_IOU)
        found.append(hit)
        tp, fp = tp + t, fp + f
        face_heights = item.faces[:, 3] - item.faces[:, 1]
        identity = face_heights >= min_face
        region_scale = settings.mask_scale * (1 + settings.feather)
        original = _Original(rgb, face_heights, identity, embedder(rgb, item.faces[identity]),
                             finder(rgb, item.faces[identity]),
                             ~box_mask(rgb.shape[:2], np.vstack([item.faces, item.ignore]), region_scale))
        heights.append(face_heights)
        gallery.append(original.embeddings)
        found_before.append(original.detectable)
        rows = {j: row for (i, j), row in wanted.items() if i == index}
        for j, row in rows.items():
            row.crops["original"] = square_crop(rgb, item.faces[j], SHEET_CONTEXT, SHEET_PX)[0]
        for name, method in methods.items():
            out = method(rgb, str(item.path), detections)  # a stream per image: nothing carries over
            coverage = _tally(tallies[name], item, original, out, embedder, finder)
            for j, row in rows.items():
                row.crops[name] = square_crop(out.image, item.faces[j], SHEET_CONTEXT, SHEET_PX)[0]
                row.covered[name] = bool(coverage[j] >= COVERED)
    all_heights = np.concatenate(heights) if heights else np.zeros(0)
    all_found = np.concatenate(found) if found else np.zeros(0, bool)
    all_gallery = np.concatenate(gallery) if gallery else np.zeros((0, 128))
    n = len(all_gallery)
    report = {
        "images": len(heights),
        "faces": len(all_found),
        "faces_by_height": {name: int(v["faces"]) for name, v in by_bucket(all_heights, all_found).items()},
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()},
        "anonymized_region": "FrameResult.changed: every pixel the method may have written",
        "covered_threshold": COVERED,
        "detector": {
            "iou": DETECT_IOU, "recall": by_bucket(all_heights, all_found), "true_positives": tp,
            "false_positives": fp, "precision": rate(tp, tp + fp), "ms_per_image": ms_summary(detect_ms),
        },
        "identity": {"min_face_px": min_face, "faces": n, "chance_top1": rate(1, n), "chance_top5": rate(min(5, n), n)},
        "reference_detectable": rate(sum(int(f.sum()) for f in found_before), n),
        "methods": {name: tally.summary(all_gallery) for name, tally in tallies.items()},
        "unavailable": dict(unavailable or {}),
        "buckets": [name for _, _, name in SIZE_BUCKETS],
        "eval_s": round(time.perf_counter() - start, 1),
    }
    return Evaluation(report, [row for row in wanted.values() if row.crops])


def _tally(tally: MethodTally, item: LabelledImage, original: _Original, out: Anonymized,
           embedder: FaceEmbedder, finder: FaceFinder) -> np.ndarray:
    """Measure one method's output on one image into its tally; the covered share of each face."""
    coverage = covered_fraction(item.faces, out.changed)
    tally.coverage.append(coverage)
    tally.heights.append(original.heights)
    boxes = item.faces[original.identity]
    redo = covered_fraction(scaled_boxes(boxes, JUDGED_CONTEXT), out.changed) > 0
    embeddings, detectable = original.embeddings.copy(), original.detectable.copy()
    embeddings[redo] = embedder(out.image, boxes[redo])
    detectable[redo] = finder(out.image, boxes[redo])
    tally.embeddings.append(embeddings)
    tally.detectable.append(detectable)
    tally.hidden.append(coverage[original.identity] >= COVERED)
    tally.add_background(original.rgb, out.image, original.outside)
    tally.ms.append(out.ms)
    tally.rendered.update(out.rendered)
    if out.error:
        tally.errors.append(f"{item.name}: {out.error}")
    return coverage
