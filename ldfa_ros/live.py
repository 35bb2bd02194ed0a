"""ROS-free core of the live node: latest-frame slots, the one worker, fail-closed output, statistics.

Subscription callbacks only `submit()` a message into its camera's size-1 slot; a newer message
replaces an unprocessed one (counted as a drop, never silent). One worker thread with one pipeline
(one set of models) serves all cameras. With a diffusion renderer a tick takes the newest frame of
every camera and anonymizes them together with `Pipeline.process_many`, so the faces of all cameras
go to the GPU in one batch. With classic methods only there is nothing to batch, and a tick takes the
one camera that has waited longest: each frame then waits for one frame's work, not all cameras'.

Fail-closed: a frame that cannot be decoded is not published (there are no pixels to blur); a
pipeline or encoding failure publishes the whole frame blurred (or nothing, per `on_error`); the
input message is never handed to `publish`. Every such event is counted per camera and logged.

Messages the middleware reports lost before they reached the node (`lost()`, e.g. fragments of a
large raw frame missing on a best-effort subscription) are counted per camera next to the node's own
drops, so a camera that DDS starves is not silently STALE.

Latency and the budget are measured on the node clock from the header stamp when it is plausible
(see `node_config.STAMP_MAX_AGE_S`), else from arrival.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from . import frames
from .node_config import STAMP_MAX_AGE_S, STAMP_MAX_AHEAD_S, check_node_value
from .pipeline import FaceRecord, FrameInput, FrameResult, Pipeline
from .render.classic import blur_frame
from .settings import CLASSIC_METHODS
from .track import distinct_faces

log = logging.getLogger("ldfa_ros.live")

OK, WARN, ERROR, STALE = 0, 1, 2, 3  # diagnostic_msgs/DiagnosticStatus levels
LATENCY_SAMPLES = 4096  # per camera and report window: bounds memory when reports stop being read
WORKER_POLL_S = 0.1  # how often an idle worker checks whether it should stop
# process_many reads a budget of 0 as "no budget"; a spent deadline is passed as this instead.
SPENT_BUDGET_MS = 1e-3


class PublisherClosed(Exception):
    """Raised by `publish` when the node is shutting down: the frame is counted as not published."""


@dataclass
class Arrival:
    """A message waiting in its camera's slot, and the time its latency is measured from."""

    msg: Any
    reference: float  # node clock seconds


@dataclass
class Output:
    """One anonymized frame for the adapter to publish. `msg` is a new message built by the frames
    codec (None: publish no image); it is never the input message."""

    camera: str
    msg: Any | None
    header: Any
    faces: list[FaceRecord]
    error: str | None


def stamp_seconds(msg: Any) -> float | None:
    """The header stamp of a message in seconds, or None when it has none."""
    stamp = getattr(getattr(msg, "header", None), "stamp", None)
    if stamp is None:
        return None
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def latency_reference(stamp: float | None, arrived: float, mode: str) -> float:
    """What a frame's latency is measured from: its stamp if `mode` is 'stamp' and the stamp is
    plausible against the node clock, else its arrival."""
    if mode == "stamp" and stamp is not None and -STAMP_MAX_AHEAD_S <= arrived - stamp <= STAMP_MAX_AGE_S:
        return stamp
    return arrived


class LatestSlots:
    """A size-1 drop-oldest slot per camera, and one condition that wakes the single worker."""

    def __init__(self, cameras: Sequence[str]) -> None:
        self._cameras = set(cameras)
        # Filled slots only. A dict keeps the position of a key whose value is replaced, so its order
        # is the order in which the slots were filled from empty: who has waited longest comes first.
        self._items: dict[str, Arrival] = {}
        self._cond = threading.Condition()

    def put(self, camera: str, item: Arrival) -> bool:
        """Store the newest item of `camera`; True when it replaced one the worker never took."""
        if camera not in self._cameras:
            raise KeyError(f"unknown camera {camera!r}")
        with self._cond:
            replaced = camera in self._items
            self._items[camera] = item
            self._cond.notify()
        return replaced

    def take(self, timeout: float, limit: int | None = None) -> dict[str, Arrival]:
        """Wait up to `timeout` s for any item, then empty the slots that have one: all of them, or
        the `limit` that have waited longest."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._items), timeout)
            return {camera: self._items.pop(camera) for camera in list(self._items)[:limit]}

    def pending(self) -> int:
        """Items waiting now (at most one per camera)."""
        with self._cond:
            return len(self._items)


@dataclass
class CameraStatus:
    """One camera's diagnostics for the last report window."""

    camera: str
    level: int
    message: str
    values: dict[str, str]


class _Stats:
    """Counters of one camera: totals since start, and the current report window."""

    def __init__(self, started: float) -> None:
        self.total: Counter[str] = Counter()
        self.window: Counter[str] = Counter()
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.since = started
        self.last_error = ""

    def count(self, key: str, n: int = 1) -> None:
        self.total[key] += n
        self.window[key] += n


class LiveAnonymizer:
    """Anonymizes the newest frame of each camera on one worker thread and hands outputs to `publish`.

    `clock` gives the node clock in seconds (ROS time, so sim time works); `publish` runs on the
    worker thread. Thread-safe: `submit` and `configure` may be called from any thread.
    """

    def __init__(self, pipeline: Pipeline, cameras: Sequence[str], publish: Callable[[Output], None],
                 clock: Callable[[], float], budget_reference: str = "stamp") -> None:
        self.pipeline = pipeline
        self.cameras = list(cameras)
        self.budget_reference = check_node_value("budget_reference", budget_reference)
        self._publish = publish
        self._clock = clock
        self._slots = LatestSlots(self.cameras)
        self._lock = threading.Lock()  # guards _stats and _pending
        self._stats = {camera: _Stats(clock()) for camera in self.cameras}
        self._pending: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.worker_errors = 0

    # --- called from subscription callbacks and parameter updates -------------------------------
    def submit(self, camera: str, msg: Any) -> None:
        """Put a camera's message into its slot (replacing, and counting, an unprocessed one)."""
        arrived = self._clock()
        reference = latency_reference(stamp_seconds(msg), arrived, self.budget_reference)
        replaced = self._slots.put(camera, Arrival(msg, reference))
        with self._lock:
            stats = self._stats[camera]
            stats.count("inputs")
            if replaced:
                stats.count("drops")

    def lost(self, camera: str, count: int) -> None:
        """Count messages of `camera` that the middleware reports lost before they reached the node."""
        with self._lock:
            self._stats[camera].count("dds_lost", count)

    def configure(self, **changes: Any) -> None:
        """Validate changes now (ValueError/SettingsError names the problem) and apply them between
        ticks, so one tick never mixes settings."""
        changes = dict(changes)
        reference = changes.pop("budget_reference", self.budget_reference)
        check_node_value("budget_reference", reference)
        if changes.get("method") == "ldfa" and "ldfa" not in self.pipeline.renderers:
            raise ValueError("method ldfa needs the diffusion renderer, which loads only at start-up: "
                             "start the node with method ldfa or auto")
        with self._lock:
            self.pipeline.settings.updated(**{**self._pending, **changes})
            self._pending.update(changes)
            self.budget_reference = reference

    # --- the worker ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ldfa-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the worker after its current tick, waiting for it by default: a process that exits while
        the worker is inside onnxruntime or torch is aborted by them ("terminate called ...")."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def pending(self) -> int:
        """Frames waiting for the worker now; never more than the number of cameras."""
        return self._slots.pending()

    def totals(self, camera: str) -> dict[str, int]:
        """A camera's counters since start. Every input is superseded (`drops`), waiting, or taken by
        the worker (`frames`); a taken frame is published (`outputs`) or `not_published`; `processed`
        frames went through the pipeline; `errors` counts fail-closed events."""
        with self._lock:
            return dict(self._stats[camera].total)

    @property
    def batches_cameras(self) -> bool:
        """Whether a tick takes every camera at once: only worth it when a diffusion renderer batches."""
        return self.pipeline.settings.method in ("ldfa", "auto") and "ldfa" in self.pipeline.renderers

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick(WORKER_POLL_S)
            except Exception:  # noqa: BLE001 - the worker outlives any fault; tick counted it per camera
                self.worker_errors += 1
                log.exception("worker tick failed; continuing")

    def tick(self, timeout: float = 0.0) -> int:
        """Anonymize and publish the newest frames of one tick (see the module docstring); how many."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            self.pipeline.configure(**pending)
        taken = self._slots.take(timeout, None if self.batches_cameras else 1)
        if not taken:
            return 0
        with self._lock:
            for camera in taken:  # from here on each frame is published, or counted as not published
                self._stats[camera].count("frames")
        done: set[str] = set()  # cameras whose frame is published or counted as not published
        try:
            self._handle(taken, done)
        except Exception as exc:
            for camera in set(taken) - done:
                self._error(camera, f"worker: {type(exc).__name__}: {exc}")
            raise
        return len(taken)

    def _handle(self, taken: dict[str, Arrival], done: set[str]) -> None:
        decoded: list[tuple[str, Arrival, frames.DecodedFrame]] = []
        for camera, arrival in taken.items():
            try:
                decoded.append((camera, arrival, frames.decode(arrival.msg)))
            except Exception as exc:  # noqa: BLE001 - no pixels: nothing can be published
                self._error(camera, f"decode: {type(exc).__name__}: {exc}", published=False)
                done.add(camera)
        if not decoded:
            return
        try:
            results = self.pipeline.process_many([FrameInput(f.rgb, camera) for camera, _, f in decoded],
                                                 self._remaining_ms([a for _, a, _ in decoded]))
            if len(results) != len(decoded):
                raise RuntimeError(f"pipeline returned {len(results)} results for {len(decoded)} frames")
        except Exception as exc:  # noqa: BLE001 - the pipeline fails closed itself; this is the backstop
            results = [self.pipeline.fail_closed(f.rgb, "pipeline", exc) for _, _, f in decoded]
        for (camera, arrival, frame), result in zip(decoded, results):
            self._emit(camera, arrival, frame, result)
            done.add(camera)

    def _remaining_ms(self, arrivals: list[Arrival]) -> float | None:
        """What is left of the earliest deadline of this tick, for the planner; None without a budget."""
        budget = self.pipeline.settings.budget_ms
        if budget <= 0:
            return None
        left = min(a.reference for a in arrivals) * 1000 + budget - self._clock() * 1000
        return max(left, SPENT_BUDGET_MS)

    def _emit(self, camera: str, arrival: Arrival, frame: frames.DecodedFrame, result: FrameResult) -> None:
        error, msg = result.error, None
        if result.image is not None:
            try:
                msg = frames.encode(frame, result.image, result.changed)
            except Exception as exc:  # noqa: BLE001 - retry once as a whole blurred frame, else nothing
                error = f"encode: {type(exc).__name__}: {exc}"
                msg = self._encode_whole_blurred(frame, error)
        try:
            self._publish(Output(camera, msg, frame.source.header, result.faces, error))
        except PublisherClosed as exc:  # shutting down: not an error of the frame
            log.info("%s: frame not published: %s", camera, exc)
            msg = None
            if error is None:  # else _error below counts it
                with self._lock:
                    self._stats[camera].count("not_published")
        except Exception as exc:  # noqa: BLE001
            error, msg = f"publish: {type(exc).__name__}: {exc}", None
        latency = self._clock() - arrival.reference
        with self._lock:
            stats = self._stats[camera]
            stats.count("processed")
            stats.count("faces", distinct_faces([np.asarray(f.box) for f in result.faces if not f.copy_of]))
            stats.count("regions", len(result.faces))
            stats.count("inpainted", sum(f.method not in CLASSIC_METHODS for f in result.faces))
            if msg is not None:
                stats.count("outputs")
                stats.latencies.append(latency)
                budget = self.pipeline.settings.budget_ms
                if budget > 0 and latency * 1000 > budget:
                    stats.count("over_budget")
        if error is not None:
            self._error(camera, error, published=msg is not None)

    def _encode_whole_blurred(self, frame: frames.DecodedFrame, error: str) -> Any | None:
        if self.pipeline.settings.on_error != "blur":
            return None
        try:
            return frames.encode(frame, blur_frame(frame.rgb), None)
        except Exception:  # noqa: BLE001
            return None

    def _error(self, camera: str, error: str, published: bool = False) -> None:
        with self._lock:
            stats = self._stats[camera]
            stats.count("errors")
            if not published:
                stats.count("not_published")
            stats.last_error = error
        log.error("%s: %s; frame %s", camera, error, "published blurred whole" if published else "not published")

    # --- diagnostics --------------------------------------------------------------------------
    def warm_up(self, rgb: np.ndarray) -> FrameResult:
        """Run `rgb` through the pipeline once so models are loaded and compiled before any frame
        arrives; RuntimeError if the pipeline failed on it (the node must not start half-working)."""
        result = self.pipeline.process_many([FrameInput(rgb, "warm-up")])[0]
        if result.error:
            raise RuntimeError(f"warm-up frame failed: {result.error}")
        return result

    def statuses(self) -> list[CameraStatus]:
        """Diagnostics of every camera since the previous call, which starts a new window."""
        now = self._clock()
        budget = self.pipeline.settings.budget_ms
        out = []
        with self._lock:
            for camera, stats in self._stats.items():
                out.append(_status(camera, stats, now, budget))
                stats.window, stats.since, stats.last_error = Counter(), now, ""
                stats.latencies.clear()
        return out


def _status(camera: str, stats: _Stats, now: float, budget_ms: float) -> CameraStatus:
    w, total = stats.window, stats.total
    elapsed = max(now - stats.since, 1e-9)
    lat = np.asarray(stats.latencies) * 1000
    p50, p99 = (np.percentile(lat, [50, 99]) if lat.size else (float("nan"), float("nan")))
    values = {
        "input_rate_hz": f"{w['inputs'] / elapsed:.2f}",
        "output_rate_hz": f"{w['outputs'] / elapsed:.2f}",
        "latency_p50_ms": f"{p50:.1f}",
        "latency_p99_ms": f"{p99:.1f}",
        "budget_ms": f"{budget_ms:g}",
        "over_budget": str(w["over_budget"]),
        "faces_per_frame": f"{w['faces'] / w['processed']:.2f}" if w["processed"] else "0.00",
        "regions_per_frame": f"{w['regions'] / w['processed']:.2f}" if w["processed"] else "0.00",
        "inpainted_share": f"{w['inpainted'] / w['regions']:.2f}" if w["regions"] else "0.00",
        "classic_share": f"{1 - w['inpainted'] / w['regions']:.2f}" if w["regions"] else "0.00",
        "drops": str(w["drops"]),
        "dds_lost": str(w["dds_lost"]),
        "errors": str(w["errors"]),
        "not_published": str(w["not_published"]),
        "inputs_total": str(total["inputs"]),
        "drops_total": str(total["drops"]),
        "dds_lost_total": str(total["dds_lost"]),
        "errors_total": str(total["errors"]),
        "frames_total": str(total["frames"]),
    }
    if w["errors"]:
        level, message = ERROR, f"{w['errors']} frame(s) failed closed; last: {stats.last_error}"
    elif w["over_budget"]:
        level, message = WARN, f"{w['over_budget']} frame(s) over the {budget_ms:g} ms budget"
    elif w["dds_lost"]:
        level, message = WARN, (f"{w['dds_lost']} message(s) lost in the middleware before the node "
                                "(large raw frames: see the README on QoS)")
    elif not w["inputs"] and not w["frames"]:
        level, message = STALE, "no input"
    else:
        level, message = OK, "ok"
    return CameraStatus(camera, level, message, values)
