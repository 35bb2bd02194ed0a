"""Image files in and out: the `ldfa detect`, `ldfa image` and `ldfa demo` commands.

Files go through the same codec as ROS CompressedImage messages, so a PNG stays a PNG (grey stays
grey, 16-bit stays 16-bit) and pixels outside the face regions of a PNG are bit-identical.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import frames
from .cli import add_settings_arguments, image_paths, progress, settings_from_args, write_json
from .pipeline import FrameResult, Pipeline, build_pipeline
from .samples import sample_frames

FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}


@dataclass
class ImageFile:
    """An image file in the shape of a sensor_msgs/CompressedImage, for the frames codec."""

    format: str
    data: np.ndarray
    header: Any = None


def read_image(path: Path) -> frames.DecodedFrame:
    """Decode an image file; FrameError names the file when it is not a readable PNG/JPEG."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise frames.FrameError(f"{path}: unsupported image type {path.suffix!r} (use PNG or JPEG)")
    try:
        return frames.decode(ImageFile(fmt, np.fromfile(path, np.uint8)))
    except frames.FrameError as exc:
        raise frames.FrameError(f"{path}: {exc}") from exc


def anonymize_file(pipeline: Pipeline, src: Path, dst: Path) -> FrameResult:
    """Anonymize one file into `dst` (same format); nothing is written for a dropped frame."""
    decoded = read_image(src)
    result = pipeline.process(decoded.rgb, stream=str(src))
    if result.image is not None:
        out = frames.encode(decoded, result.image, result.changed)
        dst.parent.mkdir(parents=True, exist_ok=True)
        np.asarray(out.data, np.uint8).tofile(dst)
    return result


def report_failures(command: str, failed: dict[str, str]) -> None:
    """One line per failed input on stderr, naming it once."""
    for path, why in failed.items():
        print(f"ldfa {command}: {why if why.startswith(path) else f'{path}: {why}'}", file=sys.stderr)


def run_image(args: argparse.Namespace) -> int:
    pipeline = build_pipeline(settings_from_args(args))
    files, missing = image_paths(args.inputs)
    failed = {m: "no such file or directory" for m in missing}
    summary: dict[str, Any] = {}
    out_dir = Path(args.output)
    for src, rel in progress(files, "anonymizing", "img"):
        try:
            result = anonymize_file(pipeline, src, out_dir / rel)
        except (frames.FrameError, OSError) as exc:
            failed[str(src)] = str(exc)
            continue
        summary[str(src)] = {"output": str(out_dir / rel) if result.image is not None else None,
                             "faces": [asdict(f) for f in result.faces], "error": result.error,
                             "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()}}
        if result.error:
            failed[str(src)] = result.error
    report_failures("image", failed)
    write_json(out_dir / "ldfa_summary.json", {
        "settings": asdict(pipeline.settings), "images": summary, "failed": failed,
        "counters": dict(pipeline.counters)})
    print(f"{len(summary)} image(s) written to {out_dir}, {sum(len(s['faces']) for s in summary.values())} "
          f"face(s) hidden, {len(failed)} failed; summary in {out_dir / 'ldfa_summary.json'}")
    return 1 if failed else 0


def run_detect(args: argparse.Namespace) -> int:
    pipeline = build_pipeline(settings_from_args(args).updated(method="blur"))  # no renderer models to load
    files, missing = image_paths(args.inputs)
    boxes: dict[str, list[list[float]]] = {}
    failed = {m: "no such file or directory" for m in missing}
    for src, _ in progress(files, "detecting", "img"):
        try:
            boxes[str(src)] = pipeline.detect(read_image(src).rgb).as_rows()
        except (frames.FrameError, OSError) as exc:
            failed[str(src)] = str(exc)
    report_failures("detect", failed)
    write_json(Path(args.json), boxes)
    print(f"{sum(map(len, boxes.values()))} face(s) in {len(boxes)} image(s) written to {args.json}")
    return 1 if failed else 0


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.output)
    (out / "sample").mkdir(parents=True, exist_ok=True)
    for name, rgb in sample_frames().items():
        cv2.imwrite(str(out / "sample" / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    args.inputs, args.output = [str(out / "sample")], str(out / "anonymized")
    code = run_image(args)
    for name in sample_frames():
        before, after = (cv2.imread(str(out / d / name)) for d in ("sample", "anonymized"))
        cv2.imwrite(str(out / f"before_after_{name}"), np.hstack([before, after]))
    print(f"demo: compare {out}/before_after_*.png")
    from .bag import run_demo_bag  # a sample bag with a camera topic and Imu/TF/String, through `ldfa bag`

    return max(code, run_demo_bag(out, settings_from_args(args)))


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("image", help="anonymize image files or folders of them",
                              description="Anonymize PNG/JPEG files (folders are searched recursively). Outputs "
                                          "keep file names, relative paths and formats; a JSON summary of faces, "
                                          "methods and timings is written as OUT_DIR/ldfa_summary.json. Exit code "
                                          "1 if any input could not be read or anonymized.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="folder for anonymized images")
    add_settings_arguments(p)
    p.set_defaults(run=run_image)

    p = subparsers.add_parser("detect", help="detect faces and write their boxes as JSON",
                              description='Write {"<path as given>": [[x1, y1, x2, y2, score], ...]} with the raw '
                                          "detector boxes (before dilation), in pixels of each image.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders")
    p.add_argument("--json", required=True, metavar="OUT.json", help="where to write the boxes")
    add_settings_arguments(p)
    p.set_defaults(run=run_detect)

    p = subparsers.add_parser("demo", help="anonymize built-in sample frames (no data needed)",
                              description="Write sample frames with a real face to OUT_DIR/sample, anonymize them "
                                          "into OUT_DIR/anonymized and write before/after images to look at.")
    p.add_argument("-o", "--output", default="ldfa_demo", metavar="OUT_DIR", help="where to write everything")
    add_settings_arguments(p)
    p.set_defaults(run=run_demo)
