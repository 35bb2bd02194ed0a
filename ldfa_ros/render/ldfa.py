"""Latent diffusion face anonymization (LDFA, arXiv 2302.08931): each face replaced by a synthetic one.

Each face becomes a square crop with context around its region, resized to the model resolution,
with the whole region masked out: the model never sees the original face and denoises from pure
noise (full strength; the paper's A1111 setup started from the noised face at strength 0.75, which
can leak identity). All faces of all frames of a tick go through batched calls whose sizes are
bucketed, so tensor shapes repeat. Each result is colour-matched to the context around the mask and
blended in with the region's feathered alpha, so pixels outside the regions stay bit-identical.
"""
from __future__ import annotations

import hashlib
import inspect
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import cv2
import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from ..budget import BUCKETS, DeadlineExceeded, LatencyModel, batches
from .regions import Region, blend, face_region

if TYPE_CHECKING:
    from ..pipeline import RenderJob
    from ..track import Face
    from .models import DiffusionModel

CONTEXT = 2.0  # crop side / region side: the model sees hair, neck and surroundings
SEAM = 1 / 16  # width of the ring (share of the crop) around the mask where colour is matched


def face_seed(seed: int, stream: str, track_id: int) -> int:
    """Noise seed of one tracked face: the same across frames and runs (not Python's salted hash)."""
    digest = hashlib.blake2b(f"{seed}/{stream}/{track_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


@dataclass(frozen=True)
class Crop:
    """A face's model input cut from the square of side `side` at (`x`, `y`) of the frame (it may
    stick out of the frame: edge pixels are repeated). `mask` marks what the model must generate:
    every pixel the region may write. `valid` marks pixels inside the frame. All R x R."""

    pixels: np.ndarray
    mask: np.ndarray
    valid: np.ndarray
    x: int
    y: int
    side: int


def _resized(a: np.ndarray, size: int) -> np.ndarray:
    shrink = a.shape[0] > size
    return cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def cut(image: np.ndarray, region: Region, resolution: int, hidden: Sequence[Region] = ()) -> Crop:
    """The model input for one face region of an H x W x 3 uint8 frame. Every region in `hidden`
    (the frame's other faces) that reaches into the crop is masked too: the model never sees a raw
    face, its own or a neighbour's."""
    x1, y1, x2, y2 = region.roi
    side = int(np.ceil(max(x2 - x1, y2 - y1) * CONTEXT))
    x, y = (x1 + x2 - side) // 2, (y1 + y2 - side) // 2
    h, w = image.shape[:2]
    fx1, fy1, fx2, fy2 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    square = cv2.copyMakeBorder(image[fy1:fy2, fx1:fx2], fy1 - y, y + side - fy2, fx1 - x, x + side - fx2,
                                cv2.BORDER_REPLICATE)
    mask = np.zeros((side, side), np.float32)
    for other in (region, *hidden):
        ox1, oy1, ox2, oy2 = other.roi
        cx1, cy1, cx2, cy2 = max(ox1, x), max(oy1, y), min(ox2, x + side), min(oy2, y + side)
        if cx2 > cx1 and cy2 > cy1:
            inside = other.alpha[cy1 - oy1:cy2 - oy1, cx1 - ox1:cx2 - ox1] > 0
            mask[cy1 - y:cy2 - y, cx1 - x:cx2 - x][inside] = 1
    valid = np.zeros((side, side), np.uint8)
    valid[fy1 - y:fy2 - y, fx1 - x:fx2 - x] = 1
    return Crop(_resized(square, resolution), _resized(mask, resolution) > 0,  # any coverage: generate it
                cv2.resize(valid, (resolution, resolution), interpolation=cv2.INTER_NEAREST) > 0, x, y, side)


def match_colour(generated: np.ndarray, crop: Crop) -> np.ndarray:
    """Shift the generated colours so that, in a ring just outside the mask, they average what the
    frame has there: the model's colour drift would otherwise show as a seam."""
    width = max(3, round(crop.mask.shape[0] * SEAM) | 1)
    grown = cv2.dilate(crop.mask.astype(np.uint8), np.ones((width, width), np.uint8)) > 0
    ring = grown & ~crop.mask & crop.valid
    if not ring.any():
        return generated
    shift = crop.pixels[ring].astype(np.float32).mean(0) - generated[ring].mean(0)
    return np.clip(generated + shift, 0, 255)


def paste(image: np.ndarray, region: Region, crop: Crop, generated: np.ndarray) -> None:
    """Blend the generated R x R x 3 crop (float 0-255) into `image` through the region's alpha."""
    full = _resized(generated, crop.side)
    x1, y1, x2, y2 = region.roi
    blend(image, region, full[y1 - crop.y:y2 - crop.y, x1 - crop.x:x2 - crop.x])


class LdfaRenderer:
    """The pipeline's `ldfa` renderer: drives a 9-channel SD inpainting UNet and a scheduler itself
    (no per-face pipeline call), over batches of every face of every job of a tick.

    Each batch's measured time teaches `latency`, which the planner asks through `predicted_ms`.
    A job's `deadline` (a `time.perf_counter()` instant) makes a batch stop with DeadlineExceeded as
    soon as it projects to finish late; the pipeline then blurs those faces.
    """

    def __init__(self, model: DiffusionModel, *, resolution: int, steps: int, guidance: float = 1.0, seed: int = 0,
                 latency: LatencyModel | None = None, buckets: Sequence[int] = BUCKETS) -> None:
        self.scale = 2 ** (len(_encoder_channels(model.vae)) - 1)
        multiple = self.scale * 2 ** (len(model.unet.config.block_out_channels) - 1)
        if resolution % multiple:
            raise ValueError(f"resolution {resolution} is not a multiple of {multiple}, as this model needs")
        self.model = model
        self.resolution = resolution
        self.steps = steps
        self.guidance = guidance
        self.seed = seed
        self.latency = latency or LatencyModel()
        self.buckets = tuple(sorted(buckets))
        self.profile = False  # when True, CUDA is synchronised after each stage so `last_timings` are true
        self.last_timings: dict[str, float] = {}
        self._step_generator = "generator" in inspect.signature(model.scheduler.step).parameters

    def predicted_ms(self, faces: int) -> float | None:
        """Expected ms to inpaint `faces` faces, from measured calls (None before any)."""
        return self.latency.cost(faces, self.resolution, self.buckets)

    def render(self, jobs: Sequence[RenderJob]) -> None:
        """Inpaint every face of `jobs` in place, in bucketed batches."""
        items = [(job, face, region) for job in jobs for face, region in zip(job.faces, job.regions)]
        for job in jobs:
            if job.image.ndim != 3 or job.image.shape[2] != 3 or job.image.dtype != np.uint8:
                raise ValueError(f"ldfa needs H x W x 3 uint8 RGB frames; stream {job.stream!r} gave "
                                 f"{job.image.shape} {job.image.dtype}")
        deadlines = [job.deadline for job in jobs if job.deadline is not None]
        try:
            self._render_items(items, min(deadlines) if deadlines else None)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()  # the pipeline blurs these faces; the next tick may fit again
            raise

    def warmup(self, budget_ms: float | None = None, repeats: int = 3) -> None:
        """Measure the bucket sizes, smallest first, after one unmeasured call each (the first calls of a
        shape pay for CUDA setup and kernel selection). Stops at a call slower than `budget_ms`: larger
        buckets cannot fit either (the latency model bounds them from it), and on a CPU each takes minutes."""
        from ..pipeline import RenderJob
        from ..track import Face

        res = self.resolution
        for bucket in self.buckets:
            image = np.full((res * 2, res * 2 * bucket, 3), 128, np.uint8)
            faces = [Face(np.array([res * (2 * i + 0.7), res * 0.7, res * (2 * i + 1.3), res * 1.3], np.float32),
                          1.0, i) for i in range(bucket)]
            regions = [r for r in (face_region(f.box, image.shape, 1.3, "ellipse", 0.1) for f in faces) if r]
            job = RenderJob(image, "warmup", faces, regions)
            items = [(job, f, r) for f, r in zip(faces, regions)]
            for i in range(repeats + 1):
                self._render_items(items, None, record=i > 0)
                if i > 0 and budget_ms is not None and self.last_timings["total"] > budget_ms:
                    return

    def _render_items(self, items: list[tuple[RenderJob, Face, Region]], deadline: float | None,
                      record: bool = True) -> None:
        start = 0
        for size in batches(len(items), self.buckets):
            chunk = items[start:start + size]
            start += size
            t0 = time.perf_counter()
            crops = [cut(job.image, region, self.resolution, job.hidden) for job, _, region in chunk]
            padded = crops + [crops[-1]] * (size - len(chunk))
            seeds = [face_seed(self.seed, job.stream, face.track_id) for job, face, _ in chunk]
            t1 = time.perf_counter()
            try:
                out = self.generate(np.stack([c.pixels for c in padded]), np.stack([c.mask for c in padded]),
                                    seeds + [0] * (size - len(chunk)), deadline, t0)
            except DeadlineExceeded as exc:
                if record:
                    self.latency.observe(size, self.resolution, exc.projected_ms)
                raise
            t2 = time.perf_counter()
            for (job, _, region), crop, generated in zip(chunk, crops, out):
                paste(job.image, region, crop, match_colour(generated, crop))
            t3 = time.perf_counter()
            if record:
                self.latency.observe(size, self.resolution, (t3 - t0) * 1000)
            self.last_timings.update(crop=(t1 - t0) * 1000, composite=(t3 - t2) * 1000, total=(t3 - t0) * 1000)

    @torch.inference_mode()
    def generate(self, pixels: np.ndarray, masks: np.ndarray, seeds: list[int], deadline: float | None = None,
                 started: float | None = None) -> np.ndarray:
        """Inpaint a batch: B x R x R x 3 uint8 crops and B x R x R bool masks to B x R x R x 3 float
        0-255. Stops with DeadlineExceeded as soon as it projects to end after `deadline`."""
        m = self.model
        started = time.perf_counter() if started is None else started
        clock = _Clock(m.device, self.profile or deadline is not None)
        image = torch.from_numpy(pixels).to(m.device).permute(0, 3, 1, 2).to(m.dtype) / 127.5 - 1
        mask = torch.from_numpy(masks).to(m.device)[:, None].to(m.dtype)
        condition = _encode(m.vae, image * (mask < 0.5)) * m.vae.config.scaling_factor
        mask = torch.nn.functional.max_pool2d(mask, self.scale)  # a latent is masked if any of its pixels is
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        latents = randn_tensor(condition.shape, generator=generators, device=m.device, dtype=m.dtype)
        m.scheduler.set_timesteps(self.steps, device=m.device)
        latents = latents * m.scheduler.init_noise_sigma
        negative = m.negative_embeds if self.guidance > 1.0 else None
        guided = negative is not None
        embeds = m.prompt_embeds.expand(len(seeds), -1, -1)
        if negative is not None:
            embeds = torch.cat([negative.expand(len(seeds), -1, -1), embeds])
            mask, condition = torch.cat([mask, mask]), torch.cat([condition, condition])
        step_kwargs = {"generator": generators} if self._step_generator else {}
        timings = {"encode": clock.lap()}
        for i, t in enumerate(m.scheduler.timesteps):
            x = torch.cat([latents, latents]) if guided else latents
            x = torch.cat([m.scheduler.scale_model_input(x, t), mask, condition], dim=1)
            noise = m.unet(x, t, encoder_hidden_states=embeds, return_dict=False)[0]
            if guided:
                uncond, cond = noise.chunk(2)
                noise = uncond + self.guidance * (cond - uncond)
            latents = m.scheduler.step(noise, t, latents, **step_kwargs, return_dict=False)[0]
            timings["unet_steps"] = timings.get("unet_steps", 0.0) + clock.lap()
            if deadline is not None:
                per_step = timings["unet_steps"] / (i + 1)
                left = len(m.scheduler.timesteps) - i - 1
                projected = clock.now + (per_step * left + timings["encode"]) / 1000  # decoding ~ encoding
                _check(deadline, projected, started)
        decoded = _decode(m.vae, latents / m.vae.config.scaling_factor)
        rgb = ((decoded + 1) * 127.5).clamp(0, 255).round().to(torch.uint8)  # a quarter of the bytes to copy
        out = rgb.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)
        timings["decode"] = clock.lap()
        if deadline is not None:
            _check(deadline, clock.now, started)
        timings["unet_step"] = timings.get("unet_steps", 0.0) / max(len(m.scheduler.timesteps), 1)
        self.last_timings = timings
        return out


class _Clock:
    """Lap times in ms; synchronises CUDA first when the numbers matter (profiling, deadlines)."""

    def __init__(self, device: torch.device, sync: bool) -> None:
        self.sync = sync and device.type == "cuda"
        self.now = time.perf_counter()

    def lap(self) -> float:
        if self.sync:
            torch.cuda.synchronize()
        last, self.now = self.now, time.perf_counter()
        return (self.now - last) * 1000


def _check(deadline: float, projected_end: float, started: float) -> None:
    if projected_end > deadline:
        late = (projected_end - deadline) * 1000
        raise DeadlineExceeded(f"ldfa would end {late:.0f} ms after the deadline", (projected_end - started) * 1000)


def _encoder_channels(vae: Any) -> Sequence[int]:
    config = vae.config
    return config.encoder_block_out_channels if hasattr(config, "encoder_block_out_channels") \
        else config.block_out_channels


def _encode(vae: Any, images: torch.Tensor) -> torch.Tensor:
    """Latents of images in [-1, 1]: TAESD's directly, the KL autoencoder's distribution mean."""
    out = vae.encode(images)
    return out.latents if hasattr(out, "latents") else out.latent_dist.mode()


def _decode(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    return vae.decode(latents, return_dict=False)[0]
