"""The paper's naive baselines and our fallback: blur, pixelate and solid mask.

Blur and pixelate first shrink the face to a few cells (area averaging), which throws the identity
away for good; a plain Gaussian of fixed size would leave large faces recognisable and can be
partly undone by deconvolution.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from .regions import Region, blend

if TYPE_CHECKING:
    from .job import RenderJob

# Samples (blocks) across a face box that survive blurring (pixelating): as few as deface's blur leaves (its
# box filter is half the box) or fewer. On WIDER dev faces >= 40 px the mean change inside the box is then
# blur 35, pixelate 32 grey levels against deface's 33 (6 cells: 27; 8 blocks: 21, which left glasses
# and beards readable).
BLUR_CELLS = 3
PIXELATE_CELLS = 3
FRAME_BLUR_CELLS = 12  # samples across the whole frame when it is blurred fail-closed


def _shrink(roi: np.ndarray, face_size: float, cells: int) -> np.ndarray:
    h, w = roi.shape[:2]
    factor = min(1.0, cells / max(face_size, 1.0))
    small = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(roi, small, interpolation=cv2.INTER_AREA)


def blurred(roi: np.ndarray, face_size: float, cells: int = BLUR_CELLS) -> np.ndarray:
    """A smooth, irreversible blur: about `cells` samples survive across the face.

    The smoothing runs at 8 px per cell and is then scaled up: a full-size Gaussian of the same width
    would cost (face_size / 8 / cells)^2 times more (seconds on a whole 1080p frame).
    """
    h, w = roi.shape[:2]
    small = _shrink(roi, face_size, cells)
    per_cell = min(8.0, max(face_size / cells, 1.0))
    mid = (min(w, round(small.shape[1] * per_cell)), min(h, round(small.shape[0] * per_cell)))
    smooth = cv2.GaussianBlur(cv2.resize(small, mid, interpolation=cv2.INTER_LINEAR), (0, 0), max(per_cell / 2, 0.5),
                              borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(smooth, (w, h), interpolation=cv2.INTER_LINEAR)


def pixelated(roi: np.ndarray, face_size: float, cells: int = PIXELATE_CELLS) -> np.ndarray:
    """Mosaic of about `cells` blocks across the face."""
    h, w = roi.shape[:2]
    return cv2.resize(_shrink(roi, face_size, cells), (w, h), interpolation=cv2.INTER_NEAREST)


def masked(roi: np.ndarray, face_size: float, color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """A solid fill."""
    out = np.empty_like(roi)
    out[...] = np.asarray(color, roi.dtype)[: roi.shape[2]] if roi.ndim == 3 else color[0]
    return out


FILTERS = {"blur": blurred, "pixelate": pixelated, "mask": masked}


def render_regions(image: np.ndarray, regions: list[Region], method: str) -> None:
    """Hide every region of `image` in place with a classic `method`."""
    filt = FILTERS[method]
    for region in regions:
        rows, cols = region.slices
        blend(image, region, filt(image[rows, cols], region.face_size))


def blur_frame(image: np.ndarray) -> np.ndarray:
    """The whole frame blurred past recognition: what a frame becomes when anything failed."""
    size = max(image.shape[:2])
    return blurred(image, size, FRAME_BLUR_CELLS)


class ClassicRenderer:
    """Pipeline renderer for one classic method."""

    def __init__(self, method: str) -> None:
        self.method = method

    def render(self, jobs: Sequence[RenderJob]) -> None:
        for job in jobs:
            render_regions(job.image, job.regions, self.method)


CLASSIC_RENDERERS = {method: ClassicRenderer(method) for method in FILTERS}
