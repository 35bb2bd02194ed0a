"""Where the detector runs: onnxruntime on the CPU, on CUDA, or compiled by TensorRT (fp16).

TensorRT through onnxruntime's TensorRT execution provider, not TensorRT's own runtime: the same
InferenceSession, pre- and post-processing serve all three devices; any node TensorRT cannot take
falls back to the CUDA provider (and the CPU) inside the one graph; ORT keeps the engine and timing
caches; and no second binding layer (tensorrt + cuda-python buffers) is needed. Its cost is a small
per-call overhead, well under the detector's 1.5 ms target.

An engine is built for fixed shapes: each camera resolution is padded to its bucket (a multiple of
the network stride), and the optimisation profile spans those buckets, batch 1-2 (a frame and its
mirror). A shape outside every profile gets an engine of its own when first met (`Engines`): a profile is
never stretched mid-drive. Engines are cached per (model hash, GPU, TensorRT version), so a changed model,
GPU or TensorRT builds new ones instead of loading stale ones; the timing cache makes rebuilds quicker.
On a GPU provider the frame goes up as uint8 and is padded into a device buffer the session reads in
place (`Runner`): a 1088 x 1920 float blob is 25 MB to build on the host and copy each frame.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

log = logging.getLogger("ldfa_ros")

STRIDE = 32  # CenterFace's input must be a multiple of this
MAX_BATCH = 2  # a frame and its mirrored copy in one call
CACHE_ROOT = Path("~/.cache/ldfa_ros/trt")


def bucket_shape(height: int, width: int, stride: int = STRIDE) -> tuple[int, int]:
    """The padded input shape for a camera resolution: the next multiple of `stride` on each side."""
    return -(-height // stride) * stride, -(-width // stride) * stride


def gpu_name() -> str:
    """The GPU's name (for the engine cache key), from nvidia-smi; 'unknown-gpu' when it cannot tell."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return out or "unknown-gpu"
    except (OSError, subprocess.SubprocessError):
        return "unknown-gpu"


def tensorrt_version() -> str:
    """The installed TensorRT's version, or 'unknown': from its pip packages (`tensorrt`, `tensorrt-cu12`,
    `tensorrt-cu13`, ...), the one with the libraries first, since those are what onnxruntime loads."""
    found = {}
    for dist in metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
        if re.fullmatch(r"tensorrt(-cu\d+)?(-libs)?", name):
            found[name] = dist.version
    return found[min(found, key=lambda name: (not name.endswith("-libs"), name))] if found else "unknown"


def engine_cache_dir(model: bytes, gpu: str, trt_version: str, root: Path = CACHE_ROOT) -> Path:
    """The folder for this model's engines on this GPU and TensorRT: a change of any builds anew."""
    digest = hashlib.sha256(model).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", gpu).strip("-") or "gpu"
    return root.expanduser() / f"{digest}-{slug}-trt{trt_version}"


def span(buckets: Sequence[tuple[int, int]]) -> tuple[int, int, int, int]:
    """(min H, min W, max H, max W) of the bucket shapes: the box an engine's profile takes."""
    hs, ws = [h for h, _ in buckets], [w for _, w in buckets]
    return min(hs), min(ws), max(hs), max(ws)


def profile_shapes(input_name: str, buckets: Sequence[tuple[int, int]]) -> dict[str, str]:
    """TensorRT EP's explicit optimisation profile covering the bucket shapes, batch 1 to MAX_BATCH."""
    min_h, min_w, max_h, max_w = span(buckets)
    h0, w0 = buckets[0]
    return {"trt_profile_min_shapes": f"{input_name}:1x3x{min_h}x{min_w}",
            "trt_profile_opt_shapes": f"{input_name}:1x3x{h0}x{w0}",
            "trt_profile_max_shapes": f"{input_name}:{MAX_BATCH}x3x{max_h}x{max_w}"}


def profile_folder(buckets: Sequence[tuple[int, int]]) -> str:
    """The engine folder's name for one profile: onnxruntime names an engine by its graph alone and rebuilds
    over it when the profile differs, so sessions with different profiles (node, bag workers) need their own."""
    if not buckets:
        return "per-shape"
    min_h, min_w, max_h, max_w = span(buckets)
    return f"{min_h}x{min_w}-{buckets[0][0]}x{buckets[0][1]}-{max_h}x{max_w}-b{MAX_BATCH}"


def providers_for(device: str, engine_cache: str | Path | None = None, *, model: bytes = b"",
                  input_name: str = "input.1", buckets: Sequence[tuple[int, int]] = (),
                  available: Sequence[str] | None = None) -> list[Any]:
    """onnxruntime execution providers for `device` ('cpu', 'cuda' or 'tensorrt'), best first.

    'tensorrt' compiles to an fp16 engine cached under `engine_cache` (default: a folder keyed by the
    model, GPU and TensorRT version), one subfolder per profile beside the shared timing cache; CUDA and CPU
    stay behind it for anything TensorRT cannot take.
    `buckets` (padded frame shapes) fix the engine's profile; without them TensorRT builds per shape seen.
    """
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    chain: list[Any] = []
    if device == "tensorrt":
        if "TensorrtExecutionProvider" not in available:
            raise ValueError("detector device 'tensorrt' needs onnxruntime-gpu with TensorRT "
                             f"(available providers: {sorted(available)})")
        cache = Path(engine_cache) if engine_cache else engine_cache_dir(model, gpu_name(), tensorrt_version())
        engines = cache / profile_folder(buckets)
        os.makedirs(engines, exist_ok=True)
        options = {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(engines),
                   "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)}
        if buckets:
            options.update(profile_shapes(input_name, buckets))
        chain.append(("TensorrtExecutionProvider", options))
    if device in ("tensorrt", "cuda"):
        if "CUDAExecutionProvider" not in available:
            raise ValueError(f"detector device {device!r} needs onnxruntime-gpu (available: {sorted(available)})")
        chain.append("CUDAExecutionProvider")
    elif device != "cpu":
        raise ValueError(f"unknown detector device {device!r}: use cpu, cuda or tensorrt")
    chain.append("CPUExecutionProvider")
    return chain


def create_session(model: bytes, device: str, options: Any, engine_cache: str | Path | None = None,
                   buckets: Sequence[tuple[int, int]] = ()) -> Any:
    """An InferenceSession on `device`; warns when onnxruntime dropped the asked-for provider (e.g. the
    TensorRT libraries failed to load), since the detector then runs slower than the budget assumes."""
    import onnxruntime as ort

    chain = providers_for(device, engine_cache, model=model, buckets=buckets)
    session = ort.InferenceSession(model, options, providers=chain)
    wanted = chain[0][0] if isinstance(chain[0], tuple) else chain[0]
    if wanted not in session.get_providers():
        log.warning("detector: %s could not be used, running on %s", wanted, session.get_providers()[0])
    return session


def warm(session: Any, input_name: str, buckets: Sequence[tuple[int, int]], batches: Sequence[int] = (1,)) -> None:
    """Run each bucket shape once, so TensorRT builds (or loads) its engine at start-up, not mid-drive."""
    import numpy as np

    outputs = [o.name for o in session.get_outputs()]
    for h, w in buckets:
        for batch in batches:
            session.run(outputs, {input_name: np.zeros((batch, 3, h, w), np.float32)})


def run_bound(session: Any, input_name: str, blob: Any, device: str = "cuda") -> list[Any]:
    """Run on an input already in `device` memory (a contiguous float32 torch tensor or, on the CPU, a
    numpy array), outputs left there until copied back: no 25 MB host copy of a 1088 x 1920 input per call."""
    binding = io_binding(session, input_name, blob, device)
    session.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()


def io_binding(session: Any, input_name: str, blob: Any, device: str) -> Any:
    """An IO binding reading `blob` in place (a torch tensor or numpy array in `device` memory), its outputs
    allocated by onnxruntime in `device` memory."""
    import numpy as np

    pointer = blob.data_ptr() if hasattr(blob, "data_ptr") else blob.ctypes.data
    binding = session.io_binding()
    binding.bind_input(input_name, device, 0, np.float32, tuple(blob.shape), pointer)
    for output in session.get_outputs():
        binding.bind_output(output.name, device)
    return binding


def device_buffers(device: str) -> str | None:
    """Where the detector's input is prepared: 'cuda' for a GPU provider when torch can reach the GPU
    (the diffusion install has it), else None: a host blob (the core install has no torch)."""
    if device == "cpu":
        return None
    try:
        import torch
    except ImportError:
        return None
    return "cuda" if torch.cuda.is_available() else None


class Runner:
    """Runs the network on H x W x 3 uint8 frames of one shape in one batch (a frame and its mirror), each
    zero-padded to their bucket. On the host: a numpy float32 blob (what onnxruntime's CPU provider reads
    anyway). With `on_device` (the CUDA and TensorRT providers), the uint8 frames are uploaded with torch, a
    quarter of the bytes of the float blob, and are padded and converted there into a per-(batch, bucket)
    buffer the session reads in place (IO binding); torch on the CPU takes the same path, which is how it is
    tested without a GPU. Those buffers are shared, so one call fills and runs them at a time (bag workers
    call from several threads: unlocked, a frame could be detected on another frame's pixels)."""

    def __init__(self, session: Any, input_name: str, outputs: Sequence[str], on_device: str | None = None) -> None:
        self.session = session
        self.input_name = input_name
        self.outputs = list(outputs)
        self.on_device = on_device  # None, "cuda", or "cpu" (torch buffers on the host)
        self._buffers: dict[tuple[int, ...], Any] = {}  # by input shape (batch, 3, H, W)
        self._lock = threading.Lock()

    def __call__(self, *images: Any) -> list[Any]:
        """The network's outputs, batch first: row i belongs to images[i]."""
        import numpy as np

        h, w = images[0].shape[:2]
        if any(image.shape[:2] != (h, w) for image in images):
            raise ValueError(f"one batch takes frames of one shape, got {[image.shape for image in images]}")
        shape = (len(images), 3, *bucket_shape(h, w))
        if self.on_device is None:
            blob = np.zeros(shape, np.float32)
            for row, image in enumerate(images):
                blob[row, :, :h, :w] = image.transpose(2, 0, 1)
            return list(self.session.run(self.outputs, {self.input_name: blob}))
        import torch

        with self._lock:
            buffer = self._buffers.get(shape)
            if buffer is None:
                buffer = self._buffers[shape] = torch.zeros(shape, dtype=torch.float32, device=self.on_device)
            buffer.zero_()  # frames of another size may share the bucket: no stale pixels in the padding
            for row, image in enumerate(images):
                pixels = torch.from_numpy(np.ascontiguousarray(image)).to(self.on_device)
                buffer[row, :, :h, :w].copy_(pixels.permute(2, 0, 1))
            if buffer.is_cuda:
                torch.cuda.current_stream().synchronize()  # onnxruntime reads it on its own stream
            outputs = run_bound(self.session, self.input_name, buffer, self.on_device)  # copied to the host
        by_name = dict(zip([o.name for o in self.session.get_outputs()], outputs))
        return [by_name[name] for name in self.outputs]


Shape = tuple[int, int]  # a padded input's (H, W)


class Engines:
    """The detector's sessions, each with the input shapes it takes. With `fixed` (TensorRT: an engine is
    compiled for its optimisation profile), a session spans the box of the buckets it was made for, and a
    shape outside every box gets a new session for it; otherwise one session takes every shape.
    `make(buckets)` builds and warms a session's Runner. A shape whose build failed is not rebuilt per frame
    (minutes each on TensorRT): its frames fail at once, and the caller's fail-closed path covers them.
    Thread-safe: bag workers meeting a new frame size build its engine once."""

    def __init__(self, make: Callable[[list[Shape]], Runner], fixed: bool) -> None:
        self.make = make
        self.fixed = fixed
        self.built: list[tuple[tuple[int, int, int, int] | None, Runner]] = []  # (min H, min W, max H, max W)
        self.failed: dict[Shape, str] = {}
        self._lock = threading.RLock()

    def prepare(self, buckets: Sequence[Shape]) -> bool:
        """Make sure every bucket has a session (one new session for all that lack one); True if one was built."""
        with self._lock:
            return self._prepare(buckets)

    def _prepare(self, buckets: Sequence[Shape]) -> bool:
        if self.fixed:
            buckets = [b for b in dict.fromkeys(buckets) if self._find(b) is None]
            if not buckets:
                return False
        elif self.built:
            return False
        for shape in buckets:
            if shape in self.failed:
                raise RuntimeError(f"detector: no engine for {shape[1]}x{shape[0]} inputs: {self.failed[shape]}")
        t0 = time.perf_counter()
        try:
            runner = self.make(list(buckets))
        except Exception as error:
            self.failed.update((shape, f"building it failed: {error!r}") for shape in buckets)
            raise
        self.built.append((span(buckets) if self.fixed else None, runner))
        log.info("detector: session for input shapes %s ready in %.1f s",
                 [f"{h}x{w}" for h, w in buckets] if self.fixed else "of any size", time.perf_counter() - t0)
        return True

    def runner(self, shape: Shape) -> Runner:
        """The session for a padded input shape; with `fixed`, built for it if no session spans it (logged)."""
        found = self._find(shape)
        if found is not None:
            return found
        with self._lock:
            found = self._find(shape)  # another thread may have built it meanwhile
            if found is None:
                log.warning("detector: no engine takes a %dx%d input; building one now (frames wait)", shape[1],
                            shape[0])
                self._prepare([shape])
                found = self.built[-1][1]
            return found

    def _find(self, shape: Shape) -> Runner | None:
        h, w = shape
        for box, runner in self.built:
            if box is None or (box[0] <= h <= box[2] and box[1] <= w <= box[3]):
                return runner
        return None
