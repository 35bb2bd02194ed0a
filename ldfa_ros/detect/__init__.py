"""Face detectors and their runtimes."""
from .centerface import CenterFace, default_model_path
from .detections import Detections, iou_matrix

__all__ = ["CenterFace", "Detections", "default_model_path", "iou_matrix"]
