"""Everything the live node needs from a GPU, measured in one run (`benchmarks/gpu.sh` installs and calls it).

1. Detector on a 1920x1080 frame: onnxruntime TensorRT fp16 vs the CUDA provider (vs torch eager through
   onnx2torch, when it installs).
2. The node's path on 1080p frames with 4 real faces: Pipeline (detect + track + plan + diffusion 256 px LCM)
   p50/p95 and the GPU memory it holds, TensorRT + graphs vs CUDA provider + eager; every output is checked
   anonymized (faces found, all inpainted, pixels outside them bit-identical, no face found again there).
3. Diffusion (the product's LdfaRenderer, SD-1.5-inpainting architecture, random fp16 weights: speed does
   not depend on them): 1/2/4/8 faces x 256/384/512 px x 2/3/4 LCM steps, UNet replayed from CUDA graphs vs
   eager. Last, as the part that gives way to the time budget.

Prints one line per row and writes JSON (--json). Rows that do not fit in --time-budget-s are recorded as
skipped. `--dry-run` runs every path that needs no CUDA on the CPU: tiny random models, small frames.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_diffusion import build_model, frame_with_faces  # noqa: E402
from ldfa_ros.budget import Planner  # noqa: E402
from ldfa_ros.detect import CenterFace, Detections, iou_matrix  # noqa: E402
from ldfa_ros.detect.centerface import _dynamic_model_bytes, default_model_path  # noqa: E402
from ldfa_ros.detect.runtime import bucket_shape, io_binding, providers_for, run_bound  # noqa: E402
from ldfa_ros.pipeline import Pipeline  # noqa: E402
from ldfa_ros.render.ldfa import LdfaRenderer  # noqa: E402
from ldfa_ros.render.models import DiffusionModel  # noqa: E402
from ldfa_ros.samples import street_frame  # noqa: E402
from ldfa_ros.settings import Settings  # noqa: E402

TARGETS = {"node_p95_ms": 33.0, "detector_trt_ms": 1.5, "node_gpu_memory_gb": 3.0}
REPLAY_TOLERANCE = 1e-2  # graph replay vs eager, relative to the output's scale (same kernels: ~0 expected)
PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}


def detector_devices(available: list[str]) -> list[str]:
    """The detector devices this onnxruntime can run, fastest first (a machine with only the CPU build still
    measures the node path, with its detector on the CPU, rather than recording errors)."""
    return [device for device, provider in PROVIDERS.items() if provider in available]


def ran_devices(devices: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """Those of `devices` whose detector row ran (and the CPU): onnxruntime lists TensorRT even where its
    libraries will not load, and the node rows should measure a detector that works."""
    ran = {row.get("device") for row in rows if row["stage"] == "detector" and "error" not in row
           and "skipped" not in row}
    return [device for device in devices if device == "cpu" or device in ran]


def fastest(devices: list[str]) -> str:
    """The first of `devices`, or the CPU."""
    return devices[0] if devices else "cpu"


class Clock:
    """Wall-clock budget of the whole run: later rows are skipped rather than overrunning it."""

    def __init__(self, budget_s: float) -> None:
        self.end = time.perf_counter() + budget_s

    def left(self) -> float:
        return self.end - time.perf_counter()


class Report:
    """The rows so far, written out (with the summary) after each one: if the machine is taken back or the
    run is killed at its time limit, every row measured until then is kept."""

    def __init__(self, path: Path, environment: dict[str, Any]) -> None:
        self.path, self.rows, self.started = path, [], time.perf_counter()
        self.head = {"benchmark": "ldfa_ros GPU check", "environment": environment}

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        self.write()

    def write(self) -> dict[str, Any]:
        report = self.head | {"rows": self.rows, "summary": summary(self.rows),
                              "wall_s": round(time.perf_counter() - self.started, 1)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(report, indent=1) + "\n")
        return report


def guarded(row: dict[str, Any], measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The row with what `measure` found, or with its error: one failing part (a TensorRT build, an
    unsupported op) must not cost the rest of a short GPU session."""
    try:
        return row | measure()
    except Exception as exc:  # noqa: BLE001 - recorded in the JSON and the exit code
        return row | {"error": f"{type(exc).__name__}: {exc}"[:500]}


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "runs": len(ms)}


def timed(fn: Callable[[], Any], repeats: int, warmup: int, cuda: bool) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def detector_rows(args: argparse.Namespace, clock: Clock, frame: np.ndarray, report: Report) -> None:
    h, w = frame.shape[:2]
    if args.dry_run:  # the provider chains the GPU run builds, without a GPU to run them on
        everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
        with tempfile.TemporaryDirectory() as cache:
            chain = providers_for("tensorrt", cache, model=b"dry-run", buckets=[bucket_shape(h, w)],
                                  available=everything)
        report.add({"stage": "detector", "device": "tensorrt", "skipped": "dry run", "providers": chain})
    for device in ["cpu"] if args.dry_run else ["tensorrt", "cuda"]:
        if device not in args.detector_devices:
            report.add({"stage": "detector", "device": device, "skipped": f"onnxruntime has no {PROVIDERS[device]}"})
            continue
        if clock.left() < 30:
            report.add({"stage": "detector", "device": device, "skipped": "time budget"})
            continue
        report.add(guarded({"stage": "detector", "device": device}, lambda: detector_run(args, frame, device)))
    report.add(torch_detector_row(args, clock, frame))


def provided(detector: CenterFace, device: str) -> None:
    """Raise when onnxruntime fell back from `device`'s provider (libraries missing): the row's label would lie."""
    if PROVIDERS[device] not in detector.session.get_providers():
        raise RuntimeError(f"onnxruntime dropped {PROVIDERS[device]}: {detector.session.get_providers()}")


def detector_run(args: argparse.Namespace, frame: np.ndarray, device: str) -> dict[str, Any]:
    h, w = frame.shape[:2]
    t0 = time.perf_counter()
    recall = Settings().updated(preset="recall")
    # builds (or loads) the TensorRT engine for the frame's buckets at every scale of both presets
    detector = CenterFace(device=device, resolutions=[(h, w)], scales=recall.scales)
    build_s = time.perf_counter() - t0
    provided(detector, device)
    found = detector(frame)
    ms = timed(lambda: detector(frame), args.repeats, args.warmup, cuda=False)
    # the recall preset: native and 2x passes, each batched with its mirror (two calls)
    ms_recall = timed(lambda: detector(frame, recall.threshold, recall.scales, recall.flip), args.repeats,
                      args.warmup, cuda=False)
    blob = np.zeros((1, 3, *bucket_shape(h, w)), np.float32)
    outputs = [o.name for o in detector.session.get_outputs()]
    network = timed(lambda: detector.session.run(outputs, {"input.1": blob}), args.repeats, args.warmup, False)
    resident: Any = blob if args.dry_run else torch.from_numpy(blob).cuda()
    where = "cpu" if args.dry_run else "cuda"
    bound = timed(lambda: run_bound(detector.session, "input.1", resident, where), args.repeats, args.warmup, False)
    on_device = timed(resident_run(detector.session, resident, where), args.repeats, args.warmup, False)
    return {"providers": detector.session.get_providers(), "frame_size": [w, h], "faces_found": len(found),
            "build_s": round(build_s, 1), "frame": percentiles(ms), "frame_recall_preset": percentiles(ms_recall),
            "network": percentiles(network), "network_bound": percentiles(bound),
            "network_on_device": percentiles(on_device)}


def resident_run(session: Any, blob: Any, where: str) -> Callable[[], None]:
    """One network call with input and outputs bound in `where`'s memory, outputs allocated once and left there:
    the engine's own time (`network_bound` adds the copy of 8 MB of outputs to the host)."""
    binding = io_binding(session, "input.1", blob, where)
    session.run_with_iobinding(binding)
    for output, value in zip(session.get_outputs(), binding.get_outputs()):
        binding.bind_ortvalue_output(output.name, value)

    def run() -> None:
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
    return run


def torch_detector_row(args: argparse.Namespace, clock: Clock, frame: np.ndarray) -> dict[str, Any]:
    """CenterFace's network in torch eager (fp16 on CUDA) via onnx2torch: the eager baseline."""
    try:
        from onnx2torch import convert
    except ImportError as exc:
        return {"stage": "detector", "device": "torch", "skipped": f"onnx2torch not importable ({exc})"}
    return guarded({"stage": "detector"}, lambda: torch_detector_run(args, frame, convert))


def torch_detector_run(args: argparse.Namespace, frame: np.ndarray, convert: Any) -> dict[str, Any]:
    import onnx

    device = torch.device("cpu" if args.dry_run else "cuda")
    dtype = torch.float32 if args.dry_run else torch.float16
    net = convert(onnx.load_from_string(_dynamic_model_bytes(default_model_path()))).to(device, dtype).eval()
    blob = torch.zeros((1, 3, *bucket_shape(*frame.shape[:2])), device=device, dtype=dtype)
    with torch.inference_mode():
        ms = timed(lambda: net(blob), args.repeats, args.warmup, cuda=device.type == "cuda")
    return {"device": f"torch eager {str(dtype).replace('torch.', '')}", "network": percentiles(ms)}


def diffusion_model(args: argparse.Namespace) -> DiffusionModel:
    if args.dry_run:
        sys.path.insert(0, str(ROOT / "test"))
        from tiny_sd import tiny_pipeline, tiny_taesd
        from diffusers import LCMScheduler

        pipe, vae = tiny_pipeline(), tiny_taesd()
        embeds = torch.randn(1, 77, pipe.unet.config.cross_attention_dim)
        for module in (pipe.unet, vae):
            module.eval().requires_grad_(False)
        return DiffusionModel(pipe.unet, vae, LCMScheduler.from_config(pipe.scheduler.config), embeds, None,
                              torch.device("cpu"), torch.float32)
    return build_model(torch.device("cuda"), torch.float16, "taesd", compile_unet=False)


def diffusion_rows(args: argparse.Namespace, clock: Clock, model: DiffusionModel, report: Report) -> None:
    for graphs in ((True, False) if model.device.type == "cuda" else (False,)):
        for resolution in args.resolutions:
            renderer = LdfaRenderer(model, resolution=resolution, steps=max(args.steps), cuda_graphs=graphs)
            for steps in args.steps:
                renderer.steps = steps
                for faces in args.faces:
                    row = {"stage": "diffusion", "cuda_graphs": renderer.unet.graphs, "resolution": resolution,
                           "steps": steps, "faces": faces}
                    if clock.left() < 60:
                        report.add(row | {"skipped": "time budget"})
                        continue
                    report.add(guarded(row, lambda: diffusion_run(args, renderer, faces)))
            if model.device.type == "cuda":
                renderer.unet = None  # type: ignore[assignment]  # its graphs' memory goes back to the pool
                torch.cuda.empty_cache()


def compiled_rows(args: argparse.Namespace, clock: Clock, model: DiffusionModel, report: Report) -> None:
    """The node's diffusion setting with the UNet through torch.compile (`--compile BACKEND`: inductor on the
    GPU), inside the renderer's CUDA graphs and without them, against the grid's uncompiled rows: whether
    compiling beats the graph replay enough to pay for its start-up time."""
    for graphs in (True, False) if model.device.type == "cuda" else (False,):
        row = {"stage": "diffusion", "compiled": args.compile, "cuda_graphs": graphs,
               "resolution": args.node_resolution, "steps": args.node_steps, "faces": 4}
        if clock.left() < 120:
            report.add(row | {"skipped": "time budget"})
            continue
        report.add(guarded(row, lambda: compiled_run(args, model, graphs)))


def compiled_run(args: argparse.Namespace, model: DiffusionModel, graphs: bool) -> dict[str, Any]:
    compiled = dataclasses.replace(model, unet=torch.compile(model.unet, backend=args.compile))
    renderer = LdfaRenderer(compiled, resolution=args.node_resolution, steps=args.node_steps, cuda_graphs=graphs)
    t0 = time.perf_counter()
    renderer.warmup(repeats=0)  # compiles (and captures) every bucket size, as the node's start-up would
    return {"start_s": round(time.perf_counter() - t0, 1)} | diffusion_run(args, renderer, 4)


def diffusion_run(args: argparse.Namespace, renderer: LdfaRenderer, faces: int) -> dict[str, Any]:
    base = frame_with_faces(faces, args.face_px, np.random.default_rng(faces))
    if args.dry_run:
        base = shrunk(base, args.frame)
    jobs = [dataclasses.replace(base, image=base.image.copy()) for _ in range(args.warmup + args.repeats)]
    ms = timed(lambda: renderer.render([jobs.pop()]), args.repeats, args.warmup, renderer.model.device.type == "cuda")
    return percentiles(ms) | {"graphs_captured": renderer.unet.captures}


def shrunk(job: Any, size: tuple[int, int]) -> Any:
    """A 1080p benchmark job scaled to `size` (dry run: small frames)."""
    from ldfa_ros.render.regions import face_region
    from ldfa_ros.track import Face
    import cv2

    w, h = size
    factor = w / job.image.shape[1]
    image = cv2.resize(job.image, (w, h), interpolation=cv2.INTER_AREA)
    faces = [Face(f.box * factor, f.score, f.track_id) for f in job.faces]
    regions = [face_region(f.box, image.shape, 1.3, "ellipse", 0.1) for f in faces]
    return type(job)(image, job.stream, faces, [r for r in regions if r is not None])


def node_rows(args: argparse.Namespace, clock: Clock, model: DiffusionModel, report: Report) -> None:
    """The node's per-frame path on the sample frame (4 real faces), each output checked anonymized:
    TensorRT + CUDA graphs, then the CUDA provider + eager UNet (the fastest detector whose own row ran, where
    those did not), each measured alone in GPU memory."""
    devices = ran_devices(args.detector_devices, report.rows)
    runs = [("cpu", False)] if args.dry_run else [(fastest(devices), True),
                                                  (fastest([d for d in devices if d != "tensorrt"]), False)]
    for device, graphs in runs:
        row: dict[str, Any] = {"stage": "node", "detector": device, "cuda_graphs": graphs,
                               "frame": list(args.frame), "resolution": args.node_resolution,
                               "steps": args.node_steps}
        if clock.left() < 45:
            report.add(row | {"skipped": "time budget"})
            continue
        report.add(guarded(row, lambda: node_run(args, model, device, graphs)))
        gc.collect()  # the run's detector, graphs and buffers go before the next one is measured
        if model.device.type == "cuda":
            torch.cuda.empty_cache()


def node_run(args: argparse.Namespace, model: DiffusionModel, device: str, graphs: bool) -> dict[str, Any]:
    frame = street_frame(args.frame[1], args.frame[0])
    cuda = model.device.type == "cuda"
    if cuda:
        gc.collect()  # what earlier rows left goes before the baseline
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        free_before = torch.cuda.mem_get_info()[0]
    # the detector rows' profile (both presets' scales): TensorRT loads their cached engine instead of a new build
    recall = Settings().updated(preset="recall")
    detector = CenterFace(device=device, resolutions=[frame.shape[:2]], scales=recall.scales)
    provided(detector, device)
    renderer = LdfaRenderer(model, resolution=args.node_resolution, steps=args.node_steps, cuda_graphs=graphs)
    renderer.warmup(repeats=0)  # what build_renderer does on CUDA: every bucket's graph captured at start
    replay_error = renderer.unet.replay_error()
    if replay_error > REPLAY_TOLERANCE:
        raise RuntimeError(f"a CUDA graph's replay differs from the eager UNet by {replay_error:.3g} (relative)")
    pipeline = Pipeline(Settings(method="ldfa", threshold=0.3), detector, {"ldfa": renderer},
                        Planner(renderer.predicted_ms))
    results = []
    ms = timed(lambda: results.append(pipeline.process(frame, "front")), args.repeats, args.warmup, cuda)
    checks = [anonymized(frame, r, detector, args.expect_faces) for r in results]
    out = percentiles(ms) | {"faces_inpainted": sum(f.method == "ldfa" for f in results[-1].faces),
                             "anonymized": all(c == "ok" for c in checks),
                             "problems": sorted({c for c in checks if c != "ok"}),
                             "counters": dict(pipeline.counters), "graph_replay_error": replay_error}
    if cuda:  # weights were loaded before the baseline: added back
        out["gpu_memory_gb"] = round((free_before - torch.cuda.mem_get_info()[0] + model_bytes(model)) / 1e9, 3)
        out["torch_peak_allocated_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 3)
        out["process_gpu_memory_gb"] = process_gpu_memory_gb()
    return out


def process_gpu_memory_gb() -> float | None:
    """What nvidia-smi says this process holds (CUDA context and every allocator included)."""
    import os
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        pid, _, used = line.partition(",")
        if pid.strip() == str(os.getpid()):
            try:
                return round(float(used) * 2**20 / 1e9, 3)
            except ValueError:  # "[N/A]" where the driver does not account per process
                return None
    return None


def model_bytes(model: DiffusionModel) -> int:
    """Bytes of the weights (loaded before the memory baseline was taken, so added back)."""
    return sum(p.numel() * p.element_size() for m in (model.unet, model.vae) for p in m.parameters())


def anonymized(frame: np.ndarray, result: Any, detector: CenterFace, expected: int) -> str:
    """'ok' when the `expected` faces were found and all inpainted, nothing outside them changed, and the detector
    finds no face again where they were; else what is wrong."""
    if result.error or result.image is None:
        return f"failed: {result.error}"
    if len(result.faces) < expected or any(f.method != "ldfa" for f in result.faces):
        return f"faces: {[(f.method, f.reason) for f in result.faces]}"
    if not np.array_equal(result.image[~result.changed], frame[~result.changed]):
        return "pixels outside the faces changed"
    boxes = np.array([f.box for f in result.faces], np.float32)
    again: Detections = detector(result.image, threshold=0.5)
    if len(again) and (iou_matrix(boxes, again.boxes) > 0.3).any():
        return "a face is found again where one was hidden"
    return "ok"


def environment(dry_run: bool) -> dict[str, Any]:
    import diffusers
    import onnxruntime as ort

    info = {"python": platform.python_version(), "torch": torch.__version__, "diffusers": diffusers.__version__,
            "onnxruntime": ort.__version__, "providers": ort.get_available_providers(), "dry_run": dry_run,
            "cpu_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info |= {"gpu": torch.cuda.get_device_name(), "cuda": torch.version.cuda,
                 "gpu_memory_gb": round(torch.cuda.get_device_properties(0).total_memory / 1e9, 1)}
    from ldfa_ros.detect.runtime import tensorrt_version

    info["tensorrt"] = tensorrt_version()
    return info


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's three targets against this run's numbers (and the eager numbers beside them)."""
    def pick(stage: str, **match: Any) -> dict[str, Any]:
        for row in rows:
            measured = "skipped" not in row and "error" not in row
            if row["stage"] == stage and measured and all(row.get(k) == v for k, v in match.items()):
                return row
        return {}

    trt, cuda_ep = pick("detector", device="tensorrt"), pick("detector", device="cuda")
    fast, eager = pick("node", cuda_graphs=True), pick("node", cuda_graphs=False)
    checked = [row for row in rows if "anonymized" in row]  # no output checked is no evidence of anonymity
    out = {"node_p95_ms": fast.get("p95_ms"), "node_p95_ms_eager": eager.get("p95_ms"),
           "detector_trt_ms": trt.get("network_on_device", {}).get("p50_ms"),
           "detector_trt_ms_outputs_to_host": trt.get("network_bound", {}).get("p50_ms"),
           "detector_trt_ms_host_input": trt.get("network", {}).get("p50_ms"),
           "detector_cuda_ep_ms": cuda_ep.get("network_on_device", {}).get("p50_ms"),
           "detector_torch_eager_ms": pick("detector", device="torch eager float16").get("network", {}).get("p50_ms"),
           # what nvidia-smi says the process holds (CUDA context and libraries' handles included), where it says
           "node_gpu_memory_gb": fast.get("process_gpu_memory_gb") or fast.get("gpu_memory_gb"),
           "node_gpu_memory_gb_since_baseline": fast.get("gpu_memory_gb"),
           "node_gpu_memory_gb_eager": eager.get("gpu_memory_gb"),
           "node_detectors": [fast.get("detector"), eager.get("detector")],
           "anonymized": bool(checked) and all(r["anonymized"] for r in checked),
           "errors": [f"{r['stage']} {r.get('device', r.get('detector', ''))}: {r['error']}" for r in rows
                      if "error" in r]}
    out["met"] = {k: None if out[k] is None else out[k] <= limit for k, limit in TARGETS.items()}  # None: not measured
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny models, small frames: no CUDA needed")
    parser.add_argument("--json", type=Path, help="output (default benchmarks/results/gpu_bench[_dry_run].json)")
    parser.add_argument("--time-budget-s", type=float, default=420.0, help="skip rows that would overrun this")
    parser.add_argument("--repeats", type=int, help="measured runs per row (default GPU 20, dry run 1)")
    parser.add_argument("--compile", metavar="BACKEND", help="also time the UNet through torch.compile with this "
                        "backend (inductor: minutes to compile; eager: the code path only), last")
    args = parser.parse_args()
    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        parser.error("no CUDA GPU visible to torch; use --dry-run on a CPU")
    args.repeats = args.repeats or (1 if dry else 20)
    args.warmup = 0 if dry else 3
    args.faces = [1, 2] if dry else [1, 2, 4, 8]
    args.resolutions = [64] if dry else [256, 384, 512]
    args.steps = [2] if dry else [2, 3, 4]
    args.face_px = 120
    args.frame = (960, 540) if dry else (1920, 1080)
    if dry:
        torch.set_num_threads(1)  # tiny models: fastest single-threaded, and steady on a shared CI machine
    args.node_resolution = 64 if dry else 256
    args.node_steps = 2 if dry else 4
    args.expect_faces = 3 if dry else 4  # at 960 x 540 the 30 px face is below the detector's reach
    import onnxruntime as ort

    if not dry and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # CUDA/cuDNN from the pip packages torch installed
    args.detector_devices = detector_devices(ort.get_available_providers())
    clock = Clock(args.time_budget_s)
    torch.manual_seed(0)
    report = Report(args.json or ROOT / "benchmarks" / "results" / f"gpu_bench{'_dry_run' if dry else ''}.json",
                    environment(dry))
    detector_rows(args, clock, street_frame(args.frame[1], args.frame[0]), report)
    model = diffusion_model(args)
    node_rows(args, clock, model, report)  # before the grid: the targets are measured here
    diffusion_rows(args, clock, model, report)
    if args.compile:
        compiled_rows(args, clock, model, report)
    summed = report.write()["summary"]
    print(json.dumps(summed, indent=1))
    print(f"written: {report.path}")
    return 0 if summed["anonymized"] and not summed["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
