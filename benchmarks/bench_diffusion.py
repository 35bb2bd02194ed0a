"""Speed of the latent diffusion renderer on the real SD-1.5-inpainting architecture (random weights:
speed does not depend on them, so nothing is downloaded).

For each resolution and face count it runs the product's `LdfaRenderer` on a 1080p frame with that many
faces, and reports per stage (crop, encode, one UNet step, all UNet steps, decode, composite) the median,
and for the whole call (= the frame's diffusion cost) p50 and p95. Prints JSON and writes it to --json.

    python benchmarks/bench_diffusion.py                                  # CPU: small default, a few minutes
    python benchmarks/bench_diffusion.py --device cuda --fp16 --cuda-graph  # GPU: 1/2/4/8 faces at 256/512

Needs torch, diffusers, numpy and opencv (`pip install -e .[diffusion]`), run from the repository root.
`--cuda-graph` uses the renderer's UNet replay from one CUDA graph per batch bucket (eager without it).
`--compile` tries torch.compile. `benchmarks/gpu.sh` runs the whole GPU check (detector, diffusion, node path).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ldfa_ros.budget import batches  # noqa: E402
from ldfa_ros.render.job import RenderJob  # noqa: E402
from ldfa_ros.render.ldfa import LdfaRenderer  # noqa: E402
from ldfa_ros.render.models import DiffusionModel  # noqa: E402
from ldfa_ros.render.regions import face_region  # noqa: E402
from ldfa_ros.track import Face  # noqa: E402

# stable-diffusion-v1-5/stable-diffusion-inpainting's unet/config.json and vae/config.json (the parts that matter).
SD15_UNET: dict[str, Any] = {
    "sample_size": 64, "in_channels": 9, "out_channels": 4, "layers_per_block": 2, "cross_attention_dim": 768,
    "block_out_channels": (320, 640, 1280, 1280), "attention_head_dim": 8,
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3}
SD15_VAE: dict[str, Any] = {
    "block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "latent_channels": 4, "sample_size": 512,
    "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
    "scaling_factor": 0.18215}
SD15_SCHEDULER: dict[str, Any] = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                                  "steps_offset": 1}


def build_model(device: torch.device, dtype: torch.dtype, vae_kind: str, compile_unet: bool) -> DiffusionModel:
    from diffusers import AutoencoderKL, AutoencoderTiny, LCMScheduler, UNet2DConditionModel

    torch.manual_seed(0)
    with torch.device(device):  # initialise on the device: seconds instead of a minute on the CPU
        unet: Any = UNet2DConditionModel(**SD15_UNET)
        vae: Any = AutoencoderTiny() if vae_kind == "taesd" else AutoencoderKL(**SD15_VAE)
        embeds = torch.randn(1, 77, SD15_UNET["cross_attention_dim"], dtype=dtype)
    for module in (unet, vae):
        module.eval().requires_grad_(False)
        if dtype != torch.float32:
            module.to(dtype)
    if compile_unet:
        unet = torch.compile(unet)  # attribute access (unet.config) passes through to the module
    return DiffusionModel(unet, vae, LCMScheduler(**SD15_SCHEDULER), embeds, None, device, dtype)


def frame_with_faces(count: int, face_px: int, rng: np.random.Generator) -> RenderJob:
    """A 1920x1080 frame with `count` faces of `face_px` pixels spread along a row."""
    image = rng.integers(0, 256, (1080, 1920, 3), np.uint8)
    faces, regions = [], []
    for i in range(count):
        x = 100 + i * (1720 - face_px) / max(count - 1, 1)
        box = np.array([x, 400, x + face_px, 400 + face_px * 1.2], np.float32)
        faces.append(Face(box, 1.0, i))
        regions.append(face_region(box, image.shape, 1.3, "ellipse", 0.1))
    return RenderJob(image, "bench", faces, [r for r in regions if r is not None])


def measure(renderer: LdfaRenderer, faces: int, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(faces)
    for _ in range(args.warmup):
        renderer.render([frame_with_faces(faces, args.face_px, rng)])
    stages: dict[str, list[float]] = {}
    totals: list[float] = []
    renderer.profile = True
    for _ in range(args.repeats):
        renderer.render([frame_with_faces(faces, args.face_px, rng)])
        for name, ms in renderer.last_timings.items():
            stages.setdefault(name, []).append(ms)
    if renderer.model.device.type == "cuda":  # end to end without the per-stage synchronisation
        renderer.profile = False
        for _ in range(args.repeats):
            job = frame_with_faces(faces, args.face_px, rng)
            t0 = time.perf_counter()
            renderer.render([job])
            totals.append((time.perf_counter() - t0) * 1000)
    else:
        totals = stages["total"]
    row = {"resolution": renderer.resolution, "faces": faces, "batches": batches(faces, renderer.buckets),
           **{f"{name}_ms": round(float(np.median(v)), 2) for name, v in stages.items() if name != "total"},
           "frame_ms_p50": round(float(np.percentile(totals, 50)), 2),
           "frame_ms_p95": round(float(np.percentile(totals, 95)), 2), "runs": len(totals)}
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--fp16", action="store_true", help="half precision (what the renderer uses on CUDA)")
    parser.add_argument("--cuda-graph", action="store_true", help="replay the UNet from CUDA graphs")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (slow to start)")
    parser.add_argument("--vae", default="taesd", choices=("taesd", "kl"), help="TAESD or SD's own autoencoder")
    parser.add_argument("--faces", type=int, nargs="+", help="face counts (default: CPU 1 2, CUDA 1 2 4 8)")
    parser.add_argument("--resolutions", type=int, nargs="+", help="crop sides (default: CPU 256, CUDA 256 512)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--face-px", type=int, default=120, help="face box height in the 1080p frame")
    parser.add_argument("--repeats", type=int, help="measured runs per setting (default: CPU 1, CUDA 30)")
    parser.add_argument("--warmup", type=int, help="unmeasured runs per setting first (default: CPU 0, CUDA 3)")
    parser.add_argument("--json", type=Path, help="where to write the JSON (default benchmarks/results/"
                                                  "bench_diffusion_<device>.json)")
    args = parser.parse_args()
    gpu = args.device == "cuda"
    args.faces = args.faces or ([1, 2, 4, 8] if gpu else [1, 2])
    args.resolutions = args.resolutions or ([256, 512] if gpu else [256])
    args.repeats = args.repeats or (30 if gpu else 1)
    args.warmup = args.warmup if args.warmup is not None else (3 if gpu else 0)
    if gpu and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no CUDA GPU")
    if args.cuda_graph and not gpu:
        parser.error("--cuda-graph needs --device cuda")
    device = torch.device(args.device)
    dtype = torch.float16 if args.fp16 else torch.float32
    t0 = time.perf_counter()
    model = build_model(device, dtype, args.vae, args.compile)
    setup_s = time.perf_counter() - t0
    results = []
    for resolution in args.resolutions:
        renderer = LdfaRenderer(model, resolution=resolution, steps=args.steps, cuda_graphs=args.cuda_graph)
        results += [measure(renderer, faces, args) for faces in args.faces]
    import diffusers

    report = {
        "benchmark": "LdfaRenderer on SD-1.5-inpainting architecture, random weights, 1080p frame",
        "device": torch.cuda.get_device_name() if gpu else platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(), "torch": torch.__version__, "diffusers": diffusers.__version__,
        "dtype": str(dtype).replace("torch.", ""), "vae": args.vae, "steps": args.steps, "scheduler": "LCM",
        "cuda_graph": args.cuda_graph, "compile": args.compile, "face_px": args.face_px,
        "warmup_runs": args.warmup, "setup_s": round(setup_s, 1), "results": results,
    }
    path = args.json or Path("benchmarks/results") / f"bench_diffusion_{args.device}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
