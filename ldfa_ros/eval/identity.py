"""Is the person still recognisable, and is it still a face: dlib's models, an independent judge.

dlib's 128-D face-recognition ResNet (99.38 % on LFW; two photos of one person lie within 0.6) says
who a face is; its CNN (MMOD) face detector, unrelated to our CenterFace, says whether a face is
still there. Both come with the `eval` extra: `dlib-bin` and `face-recognition-models`. The model
files are found without importing `face_recognition_models`, whose `__init__` needs `pkg_resources`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from .boxes import square_crop
from ..detect.detections import iou_matrix

INSTALL_HINT = "pip install 'ldfa_ros[eval]' (dlib-bin and face-recognition-models)"
SAME_PERSON_DISTANCE = 0.6  # dlib's threshold for "same person"
# The MMOD detector finds faces from about 80 px; faces are cropped with context and scaled to this
# size, which on WIDER faces >= 40 px finds about 4 in 5 originals at ~0.2 s per face on a CPU.
FINDER_FACE_PX = 120
FINDER_CONTEXT = 1.6
FINDER_IOU = 0.3  # MMOD boxes are tighter than WIDER's (no forehead), so IoU 0.5 would miss true hits


class MissingExtraError(RuntimeError):
    """An optional dependency of `ldfa eval` is not installed; the text says what to install."""


def model_dir() -> Path:
    """The folder of `.dat` model files inside the installed `face_recognition_models` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(f"dlib's face models are not installed: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def _model(name: str) -> str:
    path = model_dir() / name
    if not path.is_file():
        raise MissingExtraError(f"dlib model file {path} is missing; reinstall: {INSTALL_HINT}")
    return str(path)


def _dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:
        raise MissingExtraError(f"dlib is not installed: {INSTALL_HINT}") from exc
    return dlib


def _rectangle(dlib: Any, box: np.ndarray) -> Any:
    x1, y1, x2, y2 = (int(round(float(v))) for v in box[:4])
    return dlib.rectangle(x1, y1, x2, y2)


class FaceEmbedder:
    """128-D identity embeddings of faces at given boxes. The labelled box seeds dlib's 5-point
    landmark model, which aligns the face as dlib's own pipeline does, so no detector is needed and
    an anonymized face is embedded exactly where the person was."""

    def __init__(self) -> None:
        self._dlib = _dlib()
        self._landmarks = self._dlib.shape_predictor(_model("shape_predictor_5_face_landmarks.dat"))
        self._net = self._dlib.face_recognition_model_v1(_model("dlib_face_recognition_resnet_model_v1.dat"))

    def __call__(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(N, 128) float embeddings of the faces at `boxes` (N, 4) of the HxWx3 uint8 RGB image."""
        if len(boxes) == 0:
            return np.zeros((0, 128))
        image = np.ascontiguousarray(rgb)
        shapes = self._dlib.full_object_detections()
        for box in boxes:
            shapes.append(self._landmarks(image, _rectangle(self._dlib, box)))
        return np.array([np.asarray(v) for v in self._net.compute_face_descriptor(image, shapes)])


class FaceFinder:
    """Does an independent detector (dlib's CNN) still see a face at each box? Run on a crop around
    each face, scaled to the detector's working size: whole frames would cost seconds each on a CPU
    and miss every face under 80 px."""

    def __init__(self) -> None:
        self._dlib = _dlib()
        self._net = self._dlib.cnn_face_detection_model_v1(_model("mmod_human_face_detector.dat"))

    def __call__(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(N,) bool: a detection overlaps each box with IoU >= FINDER_IOU."""
        if len(boxes) == 0:
            return np.zeros(0, bool)
        size = int(round(FINDER_CONTEXT * FINDER_FACE_PX))
        crops, targets = zip(*(square_crop(rgb, box, FINDER_CONTEXT, size) for box in boxes))
        found = self._net([np.ascontiguousarray(c) for c in crops], 0, batch_size=len(crops))
        result = np.zeros(len(boxes), bool)
        for i, (detections, target) in enumerate(zip(found, targets)):
            rects = [[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in detections]
            result[i] = bool(rects) and iou_matrix(target, np.array(rects)).max() >= FINDER_IOU
        return result
