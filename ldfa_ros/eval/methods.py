"""The methods `ldfa eval` compares: the pipeline's own, and two evaluation-only baselines.

Every pipeline method runs through `build_pipeline`, the path users take. The baselines exist so the
metrics can be seen to fail: `none` is the untouched image, `weakblur` hides the same regions as the
pipeline with a light Gaussian (sigma 1.5) that leaves people recognisable. `deface` is the tool we
measure ourselves against: its own detector and blur at its defaults, on the same images.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import cv2
import numpy as np

from ..detect import Detections
from ..pipeline import FrameInput, Pipeline, build_pipeline
from ..render.regions import blend
from ..settings import CLASSIC_METHODS, METHODS, Settings

if TYPE_CHECKING:
    from ..pipeline import RenderJob

WEAK_BLUR_SIGMA = 1.5
DEFACE_THRESHOLD, DEFACE_MASK_SCALE = 0.2, 1.3  # deface's defaults
BASELINES = {"none": "the untouched image: every face leaks",
             "weakblur": f"the pipeline's regions under a Gaussian blur of sigma {WEAK_BLUR_SIGMA}: a known leak",
             "deface": f"deface's own detector and blur at its defaults (threshold {DEFACE_THRESHOLD}, mask scale "
                       f"{DEFACE_MASK_SCALE}, ellipse), for comparison"}
METHOD_CHOICES = tuple(BASELINES) + METHODS


@dataclass
class Anonymized:
    """One image after a method: the pixels, where they may differ from the input, the time it took
    (detection excluded: it is shared), and how many faces each renderer actually hid."""

    image: np.ndarray
    changed: np.ndarray
    ms: float
    rendered: Counter[str]
    error: str | None = None


Method = Callable[[np.ndarray, str, Detections], Anonymized]


def untouched(rgb: np.ndarray, stream: str, detections: Detections) -> Anonymized:
    """The `none` baseline."""
    return Anonymized(rgb, np.zeros(rgb.shape[:2], bool), 0.0, Counter())


class PipelineMethod:
    """A method as the pipeline runs it, on detections computed once for all methods."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def __call__(self, rgb: np.ndarray, stream: str, detections: Detections) -> Anonymized:
        result = self.pipeline.process_many([FrameInput(rgb, stream, detections)])[0]
        # A dropped frame (on_error=drop) shows nothing, so it is scored as a black image.
        image = result.image if result.image is not None else np.zeros_like(rgb)
        return Anonymized(image, result.changed, result.timings_ms.get("total", 0.0),
                          Counter(f.method for f in result.faces), result.error)


class Deface:
    """The `deface` baseline: deface's CenterFace and `anonymize_frame` blur; its changed region is the
    union of the ellipses it blurs (as deface computes them)."""

    def __init__(self) -> None:
        from deface.centerface import CenterFace

        self.centerface = CenterFace(backend="onnxrt", override_execution_provider="CPUExecutionProvider")

    def __call__(self, rgb: np.ndarray, stream: str, detections: Detections) -> Anonymized:
        import skimage.draw
        from deface.deface import anonymize_frame, scale_bb

        start = time.perf_counter()
        frame = rgb.copy()
        dets, _ = self.centerface(frame, threshold=DEFACE_THRESHOLD)
        anonymize_frame(dets, frame, mask_scale=DEFACE_MASK_SCALE, replacewith="blur", ellipse=True,
                        draw_scores=False, replaceimg=None, mosaicsize=20)
        changed = np.zeros(rgb.shape[:2], bool)
        h, w = rgb.shape[:2]
        for det in dets:
            x1, y1, x2, y2 = scale_bb(*det[:4].astype(int), DEFACE_MASK_SCALE)
            y1, y2, x1, x2 = max(0, y1), min(h - 1, y2), max(0, x1), min(w - 1, x2)
            ey, ex = skimage.draw.ellipse((y2 - y1) // 2, (x2 - x1) // 2, (y2 - y1) // 2, (x2 - x1) // 2,
                                          shape=(max(y2 - y1, 0), max(x2 - x1, 0)))
            changed[ey + y1, ex + x1] = True
        return Anonymized(frame, changed, (time.perf_counter() - start) * 1000, Counter({"deface": len(dets)}))


class GaussianRenderer:
    """Pipeline renderer for the `weakblur` baseline: a fixed-sigma Gaussian, whatever the face size."""

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def render(self, jobs: Sequence[RenderJob]) -> None:
        for job in jobs:
            for region in job.regions:
                rows, cols = region.slices
                blurred = cv2.GaussianBlur(job.image[rows, cols], (0, 0), self.sigma, borderType=cv2.BORDER_REPLICATE)
                blend(job.image, region, blurred)


def parse_methods(text: str) -> list[str]:
    """`blur,pixelate,...` into names, checked against METHOD_CHOICES."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in METHOD_CHOICES]
    if unknown or not names:
        raise ValueError(f"--method {text!r}: unknown {', '.join(unknown) or 'empty list'}; "
                         f"choose from {', '.join(METHOD_CHOICES)}")
    return list(dict.fromkeys(names))


def build_methods(names: Sequence[str], settings: Settings) -> tuple[dict[str, Method], dict[str, str]]:
    """The runnable methods, and for each one that cannot run here (e.g. ldfa without weights) the reason."""
    methods: dict[str, Method] = {}
    unavailable: dict[str, str] = {}
    for name in names:
        if name == "none":
            methods[name] = untouched
            continue
        if name == "deface":
            methods[name] = Deface()
            continue
        if name == "weakblur":
            pipeline = build_pipeline(settings.updated(method="blur"))
            pipeline.renderers["blur"] = GaussianRenderer(WEAK_BLUR_SIGMA)
            methods[name] = PipelineMethod(pipeline)
            continue
        try:
            pipeline = build_pipeline(settings.updated(method=name))
        except Exception as exc:  # noqa: BLE001 - a method that cannot load is reported, not faked
            if name in CLASSIC_METHODS:
                raise
            unavailable[name] = f"{type(exc).__name__}: {exc}"
            continue
        if name != "auto" and name not in pipeline.renderers:
            unavailable[name] = f"this installation has no {name!r} renderer (its faces would silently be blurred)"
            continue
        methods[name] = PipelineMethod(pipeline)
    return methods, unavailable
