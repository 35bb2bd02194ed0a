"""Latent diffusion face anonymization (LDFA, arXiv 2302.08931): each face replaced by a synthetic one.

Each face becomes a square crop with context around its region, resized to the model resolution,
with the whole region masked out: the model never sees the original face and denoises from pure
noise (full strength; the paper's A1111 setup started from the noised face at strength 0.75, which
can leak identity). All faces of all frames of a tick go through batched calls whose sizes are
bucketed, so tensor shapes repeat (on a GPU the UNet replays one CUDA graph per bucket). Each result
is colour-matched to the context around the mask and blended in with the region's feathered alpha, so
pixels outside the regions stay bit-identical. Only the crop squares go to the model's device and only
the face patches come back; resizing, masking and colour matching happen there.
"""
from __future__ import annotations

import hashlib
import inspect
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from ..budget import BUCKETS, DeadlineExceeded, LatencyModel, batches
from .graphs import StaticUNet
from .job import RenderJob
from .regions import Region, blend, face_region

if TYPE_CHECKING:
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
    """A face's square of side `side` at (`x`, `y`) of the frame; it may stick out of the frame, and
    what lies outside is black in `pixels` (side x side x 3 uint8) and set in `mask` (side x side bool),
    which marks what the model must generate: every pixel a face region may write, and all it cannot see."""

    pixels: np.ndarray
    mask: np.ndarray
    x: int
    y: int
    side: int


def cut(image: np.ndarray, region: Region, hidden: Sequence[Region] = ()) -> Crop:
    """The square around one face region of an H x W x 3 uint8 frame. Every region in `hidden`
    (the frame's other faces) that reaches into the crop is masked too: the model never sees a raw
    face, its own or a neighbour's. Outside the frame is masked, not repeated: repeating the edge would
    copy the pixels of a face touching it into the unmasked context."""
    x1, y1, x2, y2 = region.roi
    side = int(np.ceil(max(x2 - x1, y2 - y1) * CONTEXT))
    x, y = (x1 + x2 - side) // 2, (y1 + y2 - side) // 2
    h, w = image.shape[:2]
    fx1, fy1, fx2, fy2 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    square = np.zeros((side, side, 3), np.uint8)
    square[fy1 - y:fy2 - y, fx1 - x:fx2 - x] = image[fy1:fy2, fx1:fx2]
    mask = np.ones((side, side), bool)
    mask[fy1 - y:fy2 - y, fx1 - x:fx2 - x] = False
    for other in (region, *hidden):
        ox1, oy1, ox2, oy2 = other.roi
        cx1, cy1, cx2, cy2 = max(ox1, x), max(oy1, y), min(ox2, x + side), min(oy2, y + side)
        if cx2 > cx1 and cy2 > cy1:
            inside = other.alpha[cy1 - oy1:cy2 - oy1, cx1 - ox1:cx2 - ox1] > 0
            mask[cy1 - y:cy2 - y, cx1 - x:cx2 - x] |= inside
    return Crop(square, mask, x, y, side)


def resized(t: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of N x C x H x W float to `size` x `size`, antialiased when shrinking (area-like).
    Every output pixel is a non-negative mix of input pixels, so a resized mask marks (> 0) every pixel
    that mixes in a masked one."""
    return torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", antialias=True,
                                           align_corners=False)


def model_inputs(crops: Sequence[Crop], resolution: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """B x 3 x R x R float 0-255 crops and B x 1 x R x R bool masks on `device` (resized there, in fp32)."""
    pixels, masks = [], []
    for crop in crops:
        square = torch.from_numpy(crop.pixels).to(device).permute(2, 0, 1)[None].float()
        pixels.append(resized(square, resolution))
        masks.append(resized(torch.from_numpy(crop.mask).to(device)[None, None].float(), resolution) > 0)
    return torch.cat(pixels), torch.cat(masks)


def match_colour(generated: torch.Tensor, pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Shift each generated crop's colours so that, in a ring just outside the mask, they average what
    the frame has there: the model's colour drift would otherwise show as a seam. B x 3 x R x R."""
    width = max(3, round(mask.shape[-1] * SEAM) | 1)
    grown = torch.nn.functional.max_pool2d(mask.float(), width, stride=1, padding=width // 2) > 0
    ring = (grown & ~mask).to(generated.dtype)
    count = ring.sum(dim=(2, 3), keepdim=True)
    shift = ((pixels - generated) * ring).sum(dim=(2, 3), keepdim=True) / count.clamp(min=1)
    return (generated + shift).clamp(0, 255)


def patches(generated: torch.Tensor, crops: Sequence[Crop], regions: Sequence[Region]) -> list[np.ndarray]:
    """Each face's region cut from its generated crop (B x 3 x R x R, 0-255) scaled back to the frame,
    as uint8 roi-sized arrays for `blend` (only these bytes leave the device)."""
    out = []
    for crop, region, one in zip(crops, regions, generated):
        x1, y1, x2, y2 = region.roi
        full = resized(one[None].float(), crop.side)[0, :, y1 - crop.y:y2 - crop.y, x1 - crop.x:x2 - crop.x]
        out.append(full.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy())
    return out


class NonFiniteOutputError(RuntimeError):
    """The model produced NaN or inf (e.g. an fp16 overflow): the pipeline blurs those faces."""


class LdfaRenderer:
    """The pipeline's `ldfa` renderer: drives a 9-channel SD inpainting UNet and a scheduler itself
    (no per-face pipeline call), over batches of every face of every job of a tick.

    Everything between cutting the crops and blending the result runs on the model's device: resizing,
    masking, TAESD, the UNet (replayed from one CUDA graph per batch bucket on a GPU: `cuda_graphs`),
    colour matching and scaling back. Each batch's measured time teaches `latency`, which the planner
    asks through `predicted_ms`. A job's `deadline` (a `time.perf_counter()` instant) makes a batch stop
    with DeadlineExceeded as soon as it projects to finish late; the pipeline then blurs those faces.
    """

    def __init__(self, model: DiffusionModel, *, resolution: int, steps: int, guidance: float = 1.0, seed: int = 0,
                 latency: LatencyModel | None = None, buckets: Sequence[int] = BUCKETS,
                 cuda_graphs: bool = True) -> None:
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
        self.unet = StaticUNet(model.unet, graphs=cuda_graphs and model.device.type == "cuda")
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
        """Measure the bucket sizes, smallest first, after one unmeasured call each (the first call of a
        shape captures its CUDA graph and pays for kernel selection; `repeats=0` does only that). Stops at
        a call slower than `budget_ms`: larger buckets cannot fit either (the latency model bounds them
        from it), and on a CPU each takes minutes."""
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
            captures = self.unet.captures
            crops = [cut(job.image, region, job.hidden) for job, _, region in chunk]
            padded = crops + [crops[-1]] * (size - len(chunk))  # the bucket's shape, so its graph replays
            pixels, masks = model_inputs(padded, self.resolution, self.model.device)
            seeds = [face_seed(self.seed, job.stream, face.track_id) for job, face, _ in chunk]
            t1 = time.perf_counter()
            try:
                generated = self.generate(pixels, masks, seeds + [0] * (size - len(chunk)), deadline, t0)
            except DeadlineExceeded as exc:
                if record and self.unet.captures == captures:
                    self.latency.observe(size, self.resolution, exc.projected_ms)
                raise
            t2 = time.perf_counter()
            matched = match_colour(generated[:len(chunk)], pixels[:len(chunk)], masks[:len(chunk)])
            for (job, _, region), patch in zip(chunk, patches(matched, crops, [r for _, _, r in chunk])):
                blend(job.image, region, patch)
            t3 = time.perf_counter()
            if record and self.unet.captures == captures:  # a call that captured a graph is no sample
                self.latency.observe(size, self.resolution, (t3 - t0) * 1000)
            self.last_timings.update(crop=(t1 - t0) * 1000, composite=(t3 - t2) * 1000, total=(t3 - t0) * 1000)

    @torch.inference_mode()
    def generate(self, pixels: torch.Tensor, masks: torch.Tensor, seeds: list[int], deadline: float | None = None,
                 started: float | None = None) -> torch.Tensor:
        """Inpaint a batch: B x 3 x R x R float 0-255 crops and B x 1 x R x R bool masks (on the model's
        device) to B x 3 x R x R float 0-255 there. Stops with DeadlineExceeded as soon as it projects to
        end after `deadline`; raises NonFiniteOutputError when the model gives NaN or inf."""
        m = self.model
        started = time.perf_counter() if started is None else started
        clock = _Clock(m.device, self.profile or deadline is not None)
        mask = masks.to(m.dtype)
        image = (pixels / 127.5 - 1).to(m.dtype) * (1 - mask)  # masked pixels are 0 (grey) for the encoder
        condition = _encode(m.vae, image) * m.vae.config.scaling_factor
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
            noise = self.unet(x, t, embeds)
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
        if not bool(torch.isfinite(decoded).all()):
            bad = int((~torch.isfinite(decoded)).sum())
            raise NonFiniteOutputError(f"diffusion gave {bad} non-finite values (NaN/inf) for {len(seeds)} face(s)")
        out = ((decoded.float() + 1) * 127.5).clamp(0, 255)
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
