"""CPU cost per 1920x1080 frame of each detector preset (`ldfa` blur), against deface on the same frames,
and the memory peak of detecting one 8000x6000 frame, tiled as the detector does and in one piece.

deface runs its defaults (threshold 0.2, native resolution, 1.3x its own box scaling); the realtime
preset is the same network at the same resolution, the recall preset adds a 2x pass and mirrored passes.
Prints a table and writes JSON (default benchmarks/results/bench_cpu.json).

    python benchmarks/bench_cpu.py [--frames 10] [--json PATH] [--no-large]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def frames_1080p(count: int) -> list[np.ndarray]:
    """Camera-like 1080p frames with real faces at several sizes, each shifted so no two are equal."""
    from ldfa_ros.samples import sample_frames

    base = sample_frames()["street_1080p.png"]
    return [np.ascontiguousarray(np.roll(base, 7 * i, axis=0)) for i in range(count)]  # faces stay whole


def run_deface(frames: list[np.ndarray]) -> tuple[float, list[int]]:
    from deface.centerface import CenterFace
    from deface.deface import anonymize_frame

    centerface = CenterFace(backend="onnxrt", override_execution_provider="CPUExecutionProvider")
    centerface(frames[0], threshold=0.2)  # warm-up
    counts = []
    start = time.perf_counter()
    for frame in frames:
        frame = frame.copy()
        dets, _ = centerface(frame, threshold=0.2)
        anonymize_frame(dets, frame, mask_scale=1.3, replacewith="blur", ellipse=True, draw_scores=False,
                        replaceimg=None, mosaicsize=20)
        counts.append(len(dets))
    return time.perf_counter() - start, counts


def run_ldfa(frames: list[np.ndarray], preset: str) -> tuple[float, list[int]]:
    from ldfa_ros.pipeline import build_pipeline
    from ldfa_ros.settings import Settings

    pipeline = build_pipeline(Settings().updated(preset=preset, method="blur", carry_frames=0))
    pipeline.process(frames[0], stream="warm-up")
    counts = []
    start = time.perf_counter()
    for frame in frames:
        counts.append(len(pipeline.process(frame).faces))
    return time.perf_counter() - start, counts


def large_frame_peak(tiled: bool) -> dict[str, float]:
    """Run in a child process: detect once on an 8000x6000 frame; its peak RSS and time."""
    code = (
        "import resource, sys, time, numpy as np\n"
        "from ldfa_ros.detect import centerface\n"
        f"centerface.TILE_PX = centerface.TILE_PX if {tiled} else 10**6\n"
        "from ldfa_ros.samples import sample_frames\n"
        "import cv2\n"
        "frame = cv2.resize(sample_frames()['street_1080p.png'], (8000, 6000))\n"
        "detector = centerface.CenterFace()\n"
        "t = time.perf_counter(); found = detector(frame, threshold=0.2)\n"
        "print(time.perf_counter() - t, len(found), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return {"seconds": round(float(out[0]), 2), "faces": int(out[1]), "peak_rss_gb": round(int(out[2]) / 2**20, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10, help="number of 1080p frames")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_cpu.json"))
    parser.add_argument("--no-large", action="store_true", help="skip the 8000x6000 memory measurement")
    args = parser.parse_args()
    from ldfa_ros.settings import PRESETS

    frames = frames_1080p(args.frames)
    result: dict = {"frames": len(frames), "resolution": "1920x1080", "cpu_count": os.cpu_count(),
                    "machine": platform.processor() or platform.machine(), "presets": {}}
    deface_s, deface_faces = run_deface(frames)
    result["deface"] = {"ms_per_frame": round(1000 * deface_s / len(frames), 1),
                        "faces_per_frame": float(np.mean(deface_faces))}
    for preset, values in PRESETS.items():
        seconds, faces = run_ldfa(frames, preset)
        result["presets"][preset] = {**{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()},
                                     "ms_per_frame": round(1000 * seconds / len(frames), 1),
                                     "fps": round(len(frames) / seconds, 2),
                                     "faces_per_frame": float(np.mean(faces)),
                                     "cost_vs_deface": round(seconds / deface_s, 2)}
    if not args.no_large:
        result["frame_8000x6000"] = {"tiled": large_frame_peak(True), "one_piece": large_frame_peak(False)}
    result["self_peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(json.dumps(result, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
