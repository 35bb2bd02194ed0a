"""Image files in and out: the `ldfa detect`, `ldfa image` and `ldfa demo` commands.

Files go through the same codec as ROS CompressedImage messages, so a PNG stays a PNG (grey stays
grey, 16-bit stays 16-bit) and pixels outside the face regions of a PNG are bit-identical.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass, asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import frames
from .cli import (DETECT_OPTIONS, IMAGE_OPTIONS, add_settings_arguments, image_paths, progress, settings_from_args,
                  write_json)
from .pipeline import FrameResult, Pipeline, build_pipeline
from .samples import sample_frames

FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}
SUMMARY = "ldfa_summary.json"  # in OUT_DIR: what was written; marks the outputs --overwrite may replace
NOTHING_TO_DO = 3  # exit code: no image to anonymize in the inputs


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
    """Anonymize one file into `dst` (same format), atomically: `dst` is whole or absent, never half
    written; nothing is written for a dropped frame."""
    decoded = read_image(src)
    result = pipeline.process(decoded.rgb, stream=str(src))
    if result.image is not None:
        out = frames.encode(decoded, result.image, result.changed)
        dst.parent.mkdir(parents=True, exist_ok=True)
        partial = dst.with_name(f".{dst.name}.ldfa-tmp-{os.getpid()}")
        try:
            np.asarray(out.data, np.uint8).tofile(partial)
            os.replace(partial, dst)
        finally:
            partial.unlink(missing_ok=True)
    return result


def report_failures(command: str, failed: dict[str, str]) -> None:
    """One line per failed input on stderr, naming it once."""
    for path, why in failed.items():
        print(f"ldfa {command}: {why if why.startswith(path) else f'{path}: {why}'}", file=sys.stderr)


def plan_outputs(files: list[tuple[Path, Path]], inputs: list[str], out_dir: Path,
                 overwrite: bool) -> list[tuple[Path, Path]]:
    """(input, output) pairs, after refusing anything that could lose a file: an output folder that is,
    contains or lies inside an input folder, two inputs with one output name, an output that is an input,
    and existing outputs (without --overwrite, or with it when ldfa's summary there does not list them)."""
    out = out_dir.resolve()
    for item in inputs:
        path = Path(item).resolve()
        if Path(item).is_dir() and (path == out or path in out.parents or out in path.parents):
            raise ValueError(f"{out_dir}: the output folder must not be, contain or lie inside the input {item}")
    plan = [(src, out_dir / rel) for src, rel in files]
    sources = {src.resolve(): src for src, _ in plan}
    seen: dict[Path, Path] = {}
    for src, dst in plan:
        target = dst.resolve()
        if target in sources:
            raise ValueError(f"{dst}: the output would replace the input {sources[target]}")
        if target in seen:
            raise ValueError(f"{seen[target]} and {src} would both be written to {dst}; anonymize them in "
                             "separate runs or into separate folders")
        seen[target] = src
    existing = [dst for _, dst in plan if dst.exists() or dst.is_symlink()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists ({len(existing)} output(s) do); choose another OUT_DIR or "
                              "pass --overwrite")
    ours = _outputs_listed(out_dir / SUMMARY)
    foreign = [dst for dst in existing if dst.resolve() not in ours]
    if foreign:
        raise FileExistsError(f"{foreign[0]} exists and is not listed in {out_dir / SUMMARY} as ldfa's output "
                              f"({len(foreign)} such file(s)); --overwrite replaces only ldfa's own outputs")
    return plan


def _outputs_listed(summary: Path) -> set[Path]:
    """The outputs an earlier `ldfa image` run recorded in its summary."""
    try:
        images = json.loads(summary.read_text())["images"]
        return {Path(v["output"]).resolve() for v in images.values() if v.get("output")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def check_writable(folder: Path) -> None:
    """Create `folder` and prove a file can be written there, before any work: OSError names it if not."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ldfa-probe-"):
            pass
    except OSError as exc:
        raise OSError(f"{folder}: cannot write the output folder: {exc.strerror or exc}") from None


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM or SIGHUP: stop like Ctrl-C, between files."""
    raise KeyboardInterrupt


def run_image(args: argparse.Namespace) -> int:
    files, missing, skipped = image_paths(args.inputs)
    out_dir = Path(args.output)
    for path in missing:
        print(f"ldfa image: {path}: no such file or directory", file=sys.stderr)
    if skipped:
        kinds = ", ".join(sorted({p.suffix.lower() or p.name for p in skipped}))
        print(f"ldfa image: skipped {len(skipped)} file(s) that are not PNG or JPEG ({kinds})", file=sys.stderr)
    if not files:
        print("ldfa image: nothing to do: no PNG or JPEG images in the input(s)", file=sys.stderr)
        return 2 if missing else NOTHING_TO_DO
    plan = plan_outputs(files, args.inputs, out_dir, getattr(args, "overwrite", False))
    check_writable(out_dir)
    pipeline = build_pipeline(settings_from_args(args))
    failed = {m: "no such file or directory" for m in missing}
    summary: dict[str, Any] = {}
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    interrupted = False
    try:
        for src, dst in progress(plan, "anonymizing", "img"):
            try:
                result = anonymize_file(pipeline, src, dst)
            except (frames.FrameError, OSError) as exc:
                failed[str(src)] = str(exc)
                continue
            summary[str(src)] = {"output": str(dst) if result.image is not None else None,
                                 "faces": [asdict(f) for f in result.faces], "error": result.error,
                                 "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()}}
            if result.error:
                failed[str(src)] = result.error
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    report_failures("image", {k: v for k, v in failed.items() if k not in missing})
    write_json(out_dir / SUMMARY, {
        "settings": asdict(pipeline.settings), "images": summary, "failed": failed,
        "counters": dict(pipeline.counters)})
    if interrupted:
        print(f"ldfa image: interrupted; {len(summary)} image(s) were written whole, none half (listed in "
              f"{out_dir / SUMMARY})", file=sys.stderr)
        return 130
    print(f"{len(summary)} image(s) written to {out_dir}, {sum(len(s['faces']) for s in summary.values())} "
          f"face(s) hidden, {len(failed)} failed; summary in {out_dir / SUMMARY}")
    return 1 if failed else 0


def run_detect(args: argparse.Namespace) -> int:
    if Path(args.json).exists() and not args.overwrite:  # refused before any work: never a user's file lost
        raise FileExistsError(f"{args.json} exists; choose another --json file or add --overwrite to replace it")
    pipeline = build_pipeline(settings_from_args(args).updated(method="blur"))  # no renderer models to load
    files, missing, _ = image_paths(args.inputs)
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
    args.inputs, args.output, args.overwrite = [str(out / "sample")], str(out / "anonymized"), True
    code = run_image(args)
    for name in sample_frames():
        before, after = (cv2.imread(str(out / d / name)) for d in ("sample", "anonymized"))
        cv2.imwrite(str(out / f"before_after_{name}"), np.hstack([before, after]))
    print(f"demo: compare {out}/before_after_*.png")
    from .bag import run_demo_bag  # a sample bag with a camera topic and Imu/TF/String, through `ldfa bag`

    return max(code, run_demo_bag(out, settings_from_args(args)))


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("image", help="anonymize image files or folders of them",
                              description="Anonymize PNG/JPEG files (folders are searched recursively; other "
                                          "files are skipped and counted). Outputs keep file names, relative paths "
                                          "and formats and are written whole or not at all; a JSON summary of "
                                          "faces, methods and timings is written as OUT_DIR/ldfa_summary.json. "
                                          "Inputs are never written to. Exit code 0: done; 1: done, but some "
                                          "inputs could not be read or anonymized; 2: refused, nothing written; "
                                          "3: nothing to do (no PNG/JPEG found); 130: interrupted.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                   help="folder for anonymized images: not an input folder, nor inside or around one")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs that OUT_DIR/ldfa_summary.json lists as ldfa's")
    add_settings_arguments(p, only=IMAGE_OPTIONS)
    p.set_defaults(run=run_image)

    p = subparsers.add_parser("detect", help="detect faces and write their boxes as JSON",
                              description='Write {"<path as given>": [[x1, y1, x2, y2, score], ...]} with the raw '
                                          "detector boxes (before dilation), in pixels of each image.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders")
    p.add_argument("--json", required=True, metavar="OUT.json", help="where to write the boxes (a new file)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.json if it exists")
    add_settings_arguments(p, only=DETECT_OPTIONS)
    p.set_defaults(run=run_detect)

    p = subparsers.add_parser("demo", help="anonymize built-in sample frames (no data needed)",
                              description="Write sample frames with a real face to OUT_DIR/sample, anonymize them "
                                          "into OUT_DIR/anonymized and write before/after images to look at.")
    p.add_argument("-o", "--output", default="ldfa_demo", metavar="OUT_DIR", help="where to write everything")
    add_settings_arguments(p)  # its sample bag carries faces between frames too
    p.set_defaults(run=run_demo)
