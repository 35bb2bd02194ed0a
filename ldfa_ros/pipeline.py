"""frame in -> detect -> track -> plan -> render -> frame out, failing closed.

The one rule: a frame leaves this module anonymized, blurred whole, or not at all. A renderer that
fails hands its faces to blur; if blur fails, or detection fails, the whole frame is blurred (or
dropped, per `Settings.on_error`). Every such event is counted and logged.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .budget import DeadlineExceeded, Decision, Planner
from .detect import Detections
from .render.classic import CLASSIC_RENDERERS, blur_frame
from .render.job import Renderer, RenderJob
from .render.regions import changed_mask, face_region
from .settings import Settings
from .track import Face, StreamTrackers

log = logging.getLogger("ldfa_ros")

Detector = Callable[..., Detections]


@dataclass
class _Work:
    index: int
    job: RenderJob
    decisions: list[Decision]


@dataclass
class FaceRecord:
    """What happened to one face: where, how it was found, how it was hidden and why."""

    box: list[float]
    score: float
    track_id: int
    age: int
    method: str
    reason: str
    copy_of: int = 0  # a cautious copy of that track's face (see track.Face): a region, maybe not a face


@dataclass
class FrameResult:
    """The anonymized frame (None when dropped) and its record.

    `changed` marks the pixels that may differ from the input (the whole frame after a failure);
    everything else is bit-identical to the input.
    """

    image: np.ndarray | None
    changed: np.ndarray
    faces: list[FaceRecord] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def dropped(self) -> bool:
        return self.image is None


@dataclass
class FrameInput:
    """A frame to anonymize. `detections` may be given (e.g. computed ahead by the bag tool),
    `extra_faces` adds faces seen in neighbouring frames, and `upstream_error` fails it closed."""

    rgb: np.ndarray
    stream: str = "default"
    detections: Detections | None = None
    extra_faces: list[Face] = field(default_factory=list)
    upstream_error: str | None = None  # a fault before the pipeline (e.g. look-ahead detection): fail closed


class Pipeline:
    """Anonymizes frames of any number of streams with one detector and one set of renderers."""

    def __init__(self, settings: Settings, detector: Detector, renderers: dict[str, Renderer] | None = None,
                 planner: Planner | None = None) -> None:
        self.settings = settings
        self.detector = detector
        self.renderers: dict[str, Renderer] = {**CLASSIC_RENDERERS, **(renderers or {})}
        self.planner = planner or Planner()
        self.trackers = StreamTrackers(settings.carry_frames)
        self.counters: Counter[str] = Counter()

    def configure(self, **changes: Any) -> None:
        """Apply validated setting changes between frames (e.g. from a ROS parameter update)."""
        self.settings = self.settings.updated(**changes)
        self.trackers.carry_frames = self.settings.carry_frames

    def detect(self, rgb: np.ndarray) -> Detections:
        """Raw detector boxes for one frame, with the current threshold and scales."""
        s = self.settings
        return self.detector(rgb, threshold=s.threshold, scales=s.scales, flip=s.flip)

    def process(self, rgb: np.ndarray, stream: str = "default") -> FrameResult:
        """Anonymize one frame."""
        return self.process_many([FrameInput(rgb, stream)])[0]

    def process_many(self, frames: Sequence[FrameInput], budget_ms: float | None = None) -> list[FrameResult]:
        """Anonymize frames of one tick together (faces of all of them go to each renderer at once).

        `budget_ms` overrides `Settings.budget_ms` for this tick, e.g. what is left of a camera deadline.
        """
        start = time.perf_counter()
        settings = self.settings
        results: list[FrameResult | None] = []
        faces_per_frame: list[list[Face]] = []
        timings: list[dict[str, float]] = []
        for frame in frames:
            self.counters["frames"] += 1
            result, faces, timing = self._find_faces(frame)
            results.append(result)
            faces_per_frame.append(faces)
            timings.append(timing)
        budget = settings.budget_ms if budget_ms is None else budget_ms
        remaining = budget - (time.perf_counter() - start) * 1000 if budget > 0 else None
        live = [i for i, r in enumerate(results) if r is None]
        t_plan = time.perf_counter()
        try:
            plans = self.planner.plan(settings.method, [faces_per_frame[i] for i in live], remaining)
            if [len(p) for p in plans] != [len(faces_per_frame[i]) for i in live]:
                raise ValueError("planner did not decide for every face")
        except Exception as exc:  # noqa: BLE001 - no plan: every face gets the fallback
            self.counters["failed_plan"] += 1
            log.error("planner failed (%s: %s); blurring every face", type(exc).__name__, exc)
            fallback = Decision("blur", f"planner failed: {type(exc).__name__}")
            plans = [[fallback] * len(faces_per_frame[i]) for i in live]
        timing_plan = (time.perf_counter() - t_plan) * 1000
        deadline = start + budget / 1000 if budget > 0 else None
        try:
            outputs = self._render([frames[i] for i in live], [faces_per_frame[i] for i in live], plans, deadline)
        except Exception as exc:  # noqa: BLE001 - e.g. regions or output buffers: fail the tick closed
            outputs = [self.fail_closed(frames[i].rgb, "render", exc) for i in live]
        for i, output in zip(live, outputs):
            output.timings_ms = {**timings[i], "plan": timing_plan, **output.timings_ms}
            results[i] = output
        done = [r for r in results if r is not None]
        total = (time.perf_counter() - start) * 1000
        for r in done:
            r.timings_ms["total"] = total
        return done

    def _find_faces(self, frame: FrameInput) -> tuple[FrameResult | None, list[Face], dict[str, float]]:
        if frame.upstream_error is not None:
            return self.fail_closed(frame.rgb, "upstream", RuntimeError(frame.upstream_error)), [], {}
        t0 = time.perf_counter()
        try:
            detections = frame.detections if frame.detections is not None else self.detect(frame.rgb)
            if not np.isfinite(detections.boxes).all():
                raise ValueError("detector returned non-finite boxes")
        except Exception as exc:  # noqa: BLE001 - any detector fault must fail closed
            return self.fail_closed(frame.rgb, "detect", exc), [], {}
        t1 = time.perf_counter()
        try:
            faces = self.trackers.update(frame.stream, detections) + list(frame.extra_faces)
            if not all(np.isfinite(f.box).all() for f in faces):
                raise ValueError("non-finite face box")
        except Exception as exc:  # noqa: BLE001
            return self.fail_closed(frame.rgb, "track", exc), [], {}
        t2 = time.perf_counter()
        return None, faces, {"detect": (t1 - t0) * 1000, "track": (t2 - t1) * 1000}

    def _render(self, frames: list[FrameInput], faces: list[list[Face]],
                plans: list[list[Decision]], deadline: float | None = None) -> list[FrameResult]:
        s = self.settings
        outputs: list[FrameResult] = []
        work: dict[str, list[_Work]] = {}
        for index, (frame, frame_faces, decisions) in enumerate(zip(frames, faces, plans)):
            image = frame.rgb.copy()
            regions = [face_region(f.box, image.shape, s.mask_scale, s.shape, s.feather) for f in frame_faces]
            kept = [(f, r, d) for f, r, d in zip(frame_faces, regions, decisions) if r is not None]
            outputs.append(FrameResult(image, changed_mask(image.shape, [r for _, r, _ in kept])))
            for method in dict.fromkeys(d.method for _, _, d in kept):
                items = [k for k in kept if k[2].method == method]
                job = RenderJob(image, frame.stream, [f for f, _, _ in items], [r for _, r, _ in items], deadline,
                                [r for _, r, _ in kept])
                work.setdefault(method, []).append(_Work(index, job, [d for _, _, d in items]))
        blur_work = work.pop("blur", [])
        for method, entries in work.items():
            failure = self._run(method, entries, outputs)
            if failure is not None:
                late = isinstance(failure, DeadlineExceeded)
                self.counters[f"fallback_{method}_{'overrun' if late else 'error'}"] += sum(
                    len(e.job.faces) for e in entries)
                why = f"{method} over deadline" if late else f"{method} failed: {type(failure).__name__}"
                blur_work += [_Work(e.index, e.job, [Decision("blur", why)] * len(e.decisions)) for e in entries]
        error = self._run("blur", blur_work, outputs)
        if error is not None:
            for index in {e.index for e in blur_work}:
                outputs[index] = self.fail_closed(frames[index].rgb, "render", error)
        return outputs

    def _run(self, method: str, entries: list[_Work], outputs: list[FrameResult]) -> Exception | None:
        """Render `entries` with one renderer call; on failure return the error and record nothing."""
        if not entries:
            return None
        t0 = time.perf_counter()
        try:
            self.renderers[method].render([e.job for e in entries])
        except Exception as exc:  # noqa: BLE001 - a renderer fault must never leave a face raw
            log.warning("renderer %s failed (%s: %s); its faces fall back", method, type(exc).__name__, exc)
            return exc
        elapsed = (time.perf_counter() - t0) * 1000
        for e in entries:
            outputs[e.index].timings_ms[f"render_{method}"] = elapsed
            for face, decision in zip(e.job.faces, e.decisions):
                outputs[e.index].faces.append(_record(face, decision))
                self.counters[f"faces_{decision.method}"] += 1
        return None

    def fail_closed(self, rgb: np.ndarray, stage: str, exc: BaseException) -> FrameResult:
        """Fail closed: the whole frame blurred, or dropped; never the input. Counted and logged; also
        for failures outside the pipeline (e.g. the live node's worker)."""
        self.counters[f"failed_{stage}"] += 1
        log.error("%s failed (%s: %s); frame %s", stage, type(exc).__name__, exc,
                  "dropped" if self.settings.on_error == "drop" else "blurred whole")
        full = np.ones(rgb.shape[:2], bool)
        error = f"{stage}: {type(exc).__name__}: {exc}"
        if self.settings.on_error == "blur":
            try:
                return FrameResult(blur_frame(rgb), full, error=error)
            except Exception as blur_exc:  # noqa: BLE001 - if even blurring fails, drop
                error += f"; whole-frame blur failed: {blur_exc}"
        self.counters["dropped"] += 1
        return FrameResult(None, full, error=error)


def _record(face: Face, decision: Decision) -> FaceRecord:
    return FaceRecord([round(float(v), 1) for v in face.box], round(face.score, 4), face.track_id, face.age,
                      decision.method, decision.reason, face.copy_of)


def build_pipeline(settings: Settings, frame_sizes: Sequence[tuple[int, int]] = (),
                   detector_threads: int = 0) -> Pipeline:
    """The pipeline a user asked for: CenterFace on `settings.device` and the renderers `settings.method` needs.
    `frame_sizes` (H, W) are the frames a TensorRT detector builds its engines for now, not on arrival;
    `detector_threads` caps onnxruntime's CPU threads (0: one per core), e.g. for a fleet worker's share."""
    from .detect import CenterFace

    renderers: dict[str, Renderer] = {}
    planner = Planner()
    if settings.method in ("ldfa", "auto"):
        from .render.models import build_renderer

        diffusion = build_renderer(settings)  # None for auto without weights (it says so once)
        if diffusion is not None:
            renderers["ldfa"] = diffusion
            planner = Planner(diffusion.predicted_ms)
    detector = CenterFace(device=settings.device, threads=detector_threads, resolutions=frame_sizes,
                          scales=settings.scales)
    return Pipeline(settings, detector, renderers, planner)
