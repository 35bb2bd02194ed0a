"""`ldfa eval`: privacy and utility of anonymization methods on a labelled face set."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..cli import add_settings_arguments, progress, settings_from_args
from ..pipeline import build_pipeline
from .dataset import load_dataset
from .evaluate import evaluate
from .identity import FaceEmbedder, FaceFinder, MissingExtraError
from .methods import METHOD_CHOICES, build_methods, parse_methods
from .report import write_report
from .video import evaluate_video

DEFAULT_METHODS = "blur,pixelate,mask,ldfa"


def run_eval(args: argparse.Namespace) -> int:
    names = parse_methods(args.methods)
    if args.min_face <= 0 or args.sample < 0 or (args.limit is not None and args.limit <= 0):
        raise ValueError("--min-face and --limit must be positive and --sample not negative")
    if args.video < 0 or args.video == 1 or args.pan < 1:
        raise ValueError("--video takes 0 (off) or at least 2 frames, and --pan at least 1 px")
    dataset = load_dataset(args.dataset)[: args.limit]
    settings = settings_from_args(args)
    try:
        embedder, finder = FaceEmbedder(), FaceFinder()
    except MissingExtraError as exc:
        print(f"ldfa eval: error: {exc}", file=sys.stderr)
        return 2
    methods, unavailable = build_methods(names, settings)
    for name, why in unavailable.items():
        print(f"ldfa eval: {name} not evaluated: {why}", file=sys.stderr)
    pipeline = build_pipeline(settings)
    evaluation = evaluate(dataset, methods, pipeline, embedder, finder, unavailable=unavailable,
                          min_face=args.min_face, sample=args.sample,
                          images=progress(range(len(dataset)), "evaluating", "img"))
    if args.video:
        evaluation.report["video"] = evaluate_video(dataset, pipeline, args.video, args.pan,
                                                    progress(range(len(dataset)), "video", "img"))
    paths = write_report(evaluation, args.output, str(args.dataset))
    print(paths[1].read_text())
    print("written: " + ", ".join(str(p) for p in paths))
    if not methods:
        print("ldfa eval: error: none of the methods could be evaluated", file=sys.stderr)
        return 1
    return 0


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval", help="measure privacy and utility of anonymization methods on labelled faces",
        description="Anonymize every image of DATASET_DIR (images and a labels.json of {file, width, height, "
                    "faces: [[x1, y1, x2, y2], ...], ignore: [...]}) with each method and measure: coverage of "
                    "the labelled faces by size; detector recall/precision (WIDER rules); identity leak with "
                    "dlib's face recognition (re-identification among all originals, same-person rate); "
                    "detectability by dlib's CNN face detector; background change; time. Writes report.json, "
                    "report.md and contact_sheet.png into REPORT_DIR. Needs the eval extra: "
                    "pip install 'ldfa_ros[eval]'.")
    p.add_argument("dataset", type=Path, metavar="DATASET_DIR", help="folder with labels.json and the images")
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="where to write the report")
    p.add_argument("--method", dest="methods", default=DEFAULT_METHODS, metavar="M1,M2,...",
                   help=f"comma-separated methods from {', '.join(METHOD_CHOICES)}; 'none' (untouched) and "
                        f"'weakblur' (Gaussian sigma 1.5) are evaluation baselines that leak on purpose "
                        f"(default {DEFAULT_METHODS}; ldfa is reported as not evaluated when its weights are missing)")
    p.add_argument("--min-face", type=float, default=40.0, metavar="PX",
                   help="smallest labelled face height for the identity and detectability measures (default 40)")
    p.add_argument("--sample", type=int, default=12, metavar="N", help="faces on the contact sheet (default 12)")
    p.add_argument("--video", type=int, default=0, metavar="FRAMES",
                   help="also turn each image into a camera pan of FRAMES frames (crop moving --pan px a frame, "
                        "labels with it) and report coverage per frame without carry-over, with the live "
                        "tracker's and with the bag tool's look-both-ways (default 0: off)")
    p.add_argument("--pan", type=int, default=24, metavar="PX", help="pan speed for --video in px/frame (default 24)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate only the first N images")
    add_settings_arguments(p, exclude=("method",))
    p.set_defaults(run=run_eval)
