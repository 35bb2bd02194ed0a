"""A labelled face set: images and a `labels.json` in the WIDER-derived format of `faces-dev`.

`labels.json` is a list of `{file, width, height, faces: [[x1, y1, x2, y2], ...], ignore: [...]}`
with boxes in pixels of the stored file; `ignore` holds faces WIDER marks invalid (a detection on
them is neither a hit nor a false positive). Other keys are kept out of the way. A box of zero width
or height (WIDER has some) cannot be covered or missed: it is skipped with a warning naming it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..images import read_image

log = logging.getLogger("ldfa_ros.eval")

LABELS = "labels.json"


@dataclass(frozen=True)
class LabelledImage:
    """One image of the set and its face boxes, (N, 4) and (M, 4) float x1 y1 x2 y2."""

    path: Path
    width: int
    height: int
    faces: np.ndarray
    ignore: np.ndarray

    @property
    def name(self) -> str:
        return self.path.name

    def read(self) -> np.ndarray:
        """The image as HxWx3 uint8 RGB; a ValueError names the file if its size disagrees with its label."""
        rgb = read_image(self.path).rgb
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"{self.path}: image is {rgb.shape[1]}x{rgb.shape[0]} but {LABELS} says "
                             f"{self.width}x{self.height}")
        return rgb


def load_dataset(root: str | Path) -> list[LabelledImage]:
    """Every entry of `root/labels.json`, checked; errors name the entry and what is wrong with it."""
    root = Path(root)
    labels = root / LABELS
    if not labels.is_file():
        raise FileNotFoundError(f"{labels} not found: a dataset folder holds images and a {LABELS} listing "
                                "{file, width, height, faces: [[x1, y1, x2, y2], ...], ignore: [...]}")
    try:
        entries = json.loads(labels.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{labels}: not valid JSON ({exc})") from exc
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{labels}: expected a non-empty list of image entries")
    return [_entry(root, labels, i, e) for i, e in enumerate(entries)]


def _entry(root: Path, labels: Path, index: int, entry: Any) -> LabelledImage:
    where = f"{labels} entry {index}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an object, got {type(entry).__name__}")
    missing = [k for k in ("file", "width", "height", "faces") if k not in entry]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    where = f"{labels} entry {index} ({entry['file']})"
    path = root / str(entry["file"])
    if not path.is_file():
        raise FileNotFoundError(f"{where}: image file {path} not found")
    width, height = entry["width"], entry["height"]
    if not all(isinstance(v, int) and v > 0 for v in (width, height)):
        raise ValueError(f"{where}: width and height must be positive integers, got {width!r}, {height!r}")
    return LabelledImage(path, width, height, _boxes(entry["faces"], f"{where} faces"),
                         _boxes(entry.get("ignore", []), f"{where} ignore"))


def _boxes(value: Any, where: str) -> np.ndarray:
    try:
        boxes = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        boxes = np.zeros((0, 0))
    if boxes.size == 0 and isinstance(value, list):
        return np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{where}: expected a list of [x1, y1, x2, y2] boxes, got {value!r:.80}")
    if not np.isfinite(boxes).all() or ((boxes[:, 2:] - boxes[:, :2]) < 0).any():
        raise ValueError(f"{where}: every box needs x2 >= x1 and y2 >= y1, got {value!r:.80}")
    empty = ((boxes[:, 2:] - boxes[:, :2]) == 0).any(axis=1)
    for box in boxes[empty]:
        log.warning("%s: skipping the box %s of zero width or height", where, box.tolist())
    return boxes[~empty]
