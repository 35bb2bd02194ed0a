"""The ROS-free core of the live node: slots, the worker tick, fail-closed outputs, statistics."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE
from ldfa_ros import frames, live
from ldfa_ros.detect import Detections
from ldfa_ros.images import ImageFile
from ldfa_ros.live import ERROR, OK, STALE, WARN, Arrival, LatestSlots, LiveAnonymizer, latency_reference
from ldfa_ros.pipeline import Pipeline
from ldfa_ros.settings import Settings, SettingsError
from test_pipeline import assert_face_hidden


class Clock:
    """A node clock that tests move by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FaceDetector:
    """Reports the astronaut's face in every frame; can be slowed down or made to fail."""

    def __init__(self, delay: float = 0.0, fail: bool = False, box: np.ndarray = ASTRONAUT_FACE) -> None:
        self.delay, self.fail, self.calls, self.box = delay, fail, 0, box

    def __call__(self, rgb: np.ndarray, **_: Any) -> Detections:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("injected detector fault")
        return Detections(self.box[None].astype(np.float32), np.array([0.9], np.float32),
                          np.zeros((1, 5, 2), np.float32))


@dataclass
class Stamp:
    sec: int
    nanosec: int


@dataclass
class Header:
    stamp: Stamp
    frame_id: str = "cam"


@dataclass
class RawImage:
    """The fields of sensor_msgs/Image (what the frames codec reads)."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: Any = field(repr=False)


def image_msg(rgb: np.ndarray, stamp: float = 1000.0, encoding: str = "rgb8") -> RawImage:
    h, w = rgb.shape[:2]
    return RawImage(Header(Stamp(int(stamp), int(round(stamp % 1 * 1e9)))), h, w, encoding, 0, w * 3,
                    np.frombuffer(rgb.tobytes(), np.uint8))


def pixels(msg: Any) -> np.ndarray:
    return frames.decode(msg).rgb


def drain(anonymizer: LiveAnonymizer) -> None:
    """Tick until no frame waits."""
    while anonymizer.tick():
        pass


def make_live(cameras=("a", "b"), clock=None, detector=None, **settings: Any):
    published: list[live.Output] = []
    pipeline = Pipeline(Settings().updated(**settings), detector or FaceDetector())
    anonymizer = LiveAnonymizer(pipeline, list(cameras), published.append, clock or Clock())
    return anonymizer, published


def test_slot_keeps_the_newest_and_reports_what_it_replaced() -> None:
    slots = LatestSlots(["a", "b", "c"])
    assert slots.put("a", Arrival(1, 0.0)) is False
    assert slots.put("b", Arrival(2, 0.0)) is False
    assert slots.put("a", Arrival(3, 0.0)) is True  # replaces 1; a still waits longest
    assert slots.pending() == 2
    assert {c: a.msg for c, a in slots.take(0.0, limit=1).items()} == {"a": 3}
    slots.put("c", Arrival(4, 0.0))
    slots.put("a", Arrival(5, 0.0))
    assert list(slots.take(0.0)) == ["b", "c", "a"]  # all, longest waiting first
    assert slots.pending() == 0 and slots.take(0.0) == {}
    with pytest.raises(KeyError, match="d"):
        slots.put("d", Arrival(6, 0.0))


def test_take_wakes_when_a_frame_arrives() -> None:
    slots = LatestSlots(["a"])
    threading.Timer(0.05, lambda: slots.put("a", Arrival("x", 0.0))).start()
    start = time.monotonic()
    assert slots.take(5.0)["a"].msg == "x"
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("stamp, mode, expected", [
    (999.9, "stamp", 999.9),  # a plausible stamp is the reference
    (1000.05, "stamp", 1000.05),  # slightly ahead: clock jitter, still trusted
    (990.0, "stamp", 1000.0),  # 10 s old: an unsynced camera clock, use arrival
    (1001.0, "stamp", 1000.0),  # from the future
    (None, "stamp", 1000.0),
    (999.9, "arrival", 1000.0),
])
def test_latency_reference(stamp, mode, expected) -> None:
    assert latency_reference(stamp, 1000.0, mode) == pytest.approx(expected)


class Inpainter:
    """A stand-in diffusion renderer (fills the regions), to make the pipeline batch cameras."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def render(self, jobs):
        self.batches.append(len(jobs))
        for job in jobs:
            for region in job.regions:
                rows, cols = region.slices
                job.image[rows, cols] = 0


def spy_batches(anonymizer: LiveAnonymizer) -> list[int]:
    batches: list[int] = []
    process_many = anonymizer.pipeline.process_many
    anonymizer.pipeline.process_many = lambda frames_, budget=None: batches.append(len(frames_)) or process_many(
        frames_, budget)
    return batches


@pytest.mark.parametrize("method", ["blur", "ldfa"])
def test_tick_anonymizes_the_newest_frames(astronaut, method) -> None:
    """With diffusion one tick takes every camera (one GPU batch); with blur one camera per tick."""
    anonymizer, published = make_live(("a", "b", "c"))
    anonymizer.pipeline.renderers["ldfa"] = Inpainter()
    anonymizer.configure(method=method)
    batches = spy_batches(anonymizer)
    old = image_msg(np.zeros_like(astronaut))
    for camera in ("a", "b", "c"):
        anonymizer.submit(camera, old)
        anonymizer.submit(camera, image_msg(astronaut))
    while anonymizer.tick():
        pass
    assert batches == ([3] if method == "ldfa" else [1, 1, 1])
    assert [o.camera for o in published] == ["a", "b", "c"]
    for out in published:
        assert out.error is None
        assert out.msg is not None and out.msg is not old
        assert out.msg.encoding == "rgb8" and (out.msg.height, out.msg.width) == astronaut.shape[:2]
        assert_face_hidden(pixels(out.msg), astronaut)
        assert [f.method for f in out.faces] == [method]
    for camera in ("a", "b", "c"):
        totals = anonymizer.totals(camera)
        assert (totals["inputs"], totals["drops"], totals["frames"], totals["outputs"]) == (2, 1, 1, 1)


def test_header_is_kept(astronaut) -> None:
    anonymizer, published = make_live(("a",))
    msg = image_msg(astronaut, stamp=999.5)
    anonymizer.submit("a", msg)
    anonymizer.tick()
    assert published[0].msg.header == msg.header and published[0].header == msg.header


def test_compressed_input_stays_compressed(astronaut) -> None:
    anonymizer, published = make_live(("a",))
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    anonymizer.submit("a", ImageFile("jpeg", jpeg.reshape(-1), Header(Stamp(1000, 0))))
    anonymizer.tick()
    out = published[0].msg
    assert out.format == "jpeg" and out.header.stamp == Stamp(1000, 0)
    assert_face_hidden(pixels(out), pixels(ImageFile("jpeg", jpeg.reshape(-1))))


def test_detector_fault_publishes_the_whole_frame_blurred(astronaut) -> None:
    anonymizer, published = make_live(("a",), detector=FaceDetector(fail=True))
    anonymizer.submit("a", image_msg(astronaut))
    anonymizer.tick()
    out = published[0]
    assert out.error and out.error.startswith("detect")
    blurred = pixels(out.msg)
    assert_face_hidden(blurred, astronaut, np.array([0, 0, 512, 512]))  # nothing of the frame survives
    totals = anonymizer.totals("a")
    assert totals["errors"] == 1 and totals["outputs"] == 1 and totals.get("not_published", 0) == 0


def test_on_error_drop_publishes_no_image(astronaut) -> None:
    anonymizer, published = make_live(("a",), detector=FaceDetector(fail=True), on_error="drop")
    anonymizer.submit("a", image_msg(astronaut))
    anonymizer.tick()
    assert published[0].msg is None and published[0].error
    assert anonymizer.totals("a")["not_published"] == 1


@pytest.mark.parametrize("bad", [
    dict(encoding="rgb8", data=np.zeros(10, np.uint8)),  # truncated
    dict(encoding="weird16", data=np.zeros(512 * 512 * 3, np.uint8)),
])
def test_undecodable_frame_publishes_nothing_and_is_counted(astronaut, bad) -> None:
    anonymizer, published = make_live(("a",))
    msg = image_msg(astronaut)
    msg.encoding, msg.data = bad["encoding"], bad["data"]
    anonymizer.submit("a", msg)
    anonymizer.tick()
    assert published == []
    totals = anonymizer.totals("a")
    assert totals["errors"] == 1 and totals["not_published"] == 1
    assert totals["frames"] == 1 and totals.get("processed", 0) == 0


def test_pipeline_crash_is_caught_and_fails_closed(astronaut) -> None:
    anonymizer, published = make_live(("a", "b"))
    anonymizer.pipeline.process_many = lambda *a, **k: (_ for _ in ()).throw(MemoryError("out of GPU memory"))
    for camera in ("a", "b"):
        anonymizer.submit(camera, image_msg(astronaut))
    drain(anonymizer)
    assert len(published) == 2
    for out in published:
        assert out.error.startswith("pipeline: MemoryError")
        assert_face_hidden(pixels(out.msg), astronaut, np.array([0, 0, 512, 512]))
    assert anonymizer.pipeline.counters["failed_pipeline"] == 2


def test_encode_failure_retries_as_whole_blur_then_gives_up(astronaut, monkeypatch) -> None:
    anonymizer, published = make_live(("a",))
    real_encode, calls = frames.encode, []

    def flaky(frame, rgb, changed, **kw):
        calls.append(changed)
        if len(calls) == 1:
            raise frames.FrameError("injected")
        return real_encode(frame, rgb, changed, **kw)

    monkeypatch.setattr(frames, "encode", flaky)
    anonymizer.submit("a", image_msg(astronaut))
    anonymizer.tick()
    assert calls[1] is None  # the retry is the whole frame
    assert published[0].error.startswith("encode") and published[0].msg is not None
    assert_face_hidden(pixels(published[0].msg), astronaut, np.array([0, 0, 512, 512]))

    monkeypatch.setattr(frames, "encode", lambda *a, **k: (_ for _ in ()).throw(frames.FrameError("always")))
    anonymizer.submit("a", image_msg(astronaut))
    anonymizer.tick()
    assert published[1].msg is None
    assert anonymizer.totals("a")["not_published"] == 1


def test_remaining_budget_is_measured_from_the_earliest_reference(astronaut) -> None:
    clock = Clock(1000.0)
    anonymizer, _ = make_live(("a", "b"), clock=clock, budget_ms=100.0)
    anonymizer.pipeline.renderers["ldfa"] = Inpainter()
    anonymizer.configure(method="ldfa")  # batches cameras
    budgets: list[Any] = []
    anonymizer.pipeline.process_many = lambda frames_, budget=None: budgets.append(budget) or [
        SimpleNamespace(image=None, changed=None, faces=[], error="spy") for _ in frames_]
    anonymizer.submit("a", image_msg(astronaut, stamp=999.97))  # stamped 30 ms ago
    anonymizer.submit("b", image_msg(astronaut, stamp=999.99))
    clock.now = 1000.02  # 20 ms later the worker takes them
    anonymizer.tick()
    assert budgets[-1] == pytest.approx(100 - 50)
    anonymizer.submit("a", image_msg(astronaut, stamp=999.0))  # 1 s late: budget spent, not "no budget"
    anonymizer.tick()
    assert 0 < budgets[-1] < 0.01
    anonymizer.configure(budget_ms=0.0)
    anonymizer.submit("a", image_msg(astronaut))
    anonymizer.tick()
    assert budgets[-1] is None


def test_configure_validates_now_and_applies_between_ticks(astronaut) -> None:
    anonymizer, _ = make_live(("a",))
    with pytest.raises(SettingsError, match="threshold"):
        anonymizer.configure(threshold=5.0)
    with pytest.raises(SettingsError, match="method"):
        anonymizer.configure(method="smudge")
    with pytest.raises(ValueError, match="budget_reference"):
        anonymizer.configure(budget_reference="sometime", threshold=0.5)
    with pytest.raises(ValueError, match="start-up"):
        anonymizer.configure(method="ldfa")  # no diffusion renderer was loaded
    assert anonymizer.pipeline.settings.threshold == 0.2  # the failed call changed nothing
    assert anonymizer.budget_reference == "stamp"
    anonymizer.configure(threshold=0.5, budget_reference="arrival")
    assert anonymizer.pipeline.settings.threshold == 0.2 and anonymizer.budget_reference == "arrival"
    anonymizer.tick()
    assert anonymizer.pipeline.settings.threshold == 0.5


def test_statuses_report_rates_latency_faces_drops_and_levels(astronaut) -> None:
    clock = Clock(1000.0)
    anonymizer, _ = make_live(("a", "b", "c"), clock=clock, budget_ms=50.0)
    anonymizer.statuses()  # start a window at t = 1000
    for i in range(3):  # camera a: 3 inputs, 2 superseded
        anonymizer.submit("a", image_msg(astronaut, stamp=1000.0))
    anonymizer.submit("b", image_msg(astronaut, stamp=1000.0))
    clock.now = 1000.02
    drain(anonymizer)  # both at 20 ms latency: within budget
    anonymizer.submit("b", image_msg(astronaut, stamp=1000.02))
    clock.now = 1000.1
    drain(anonymizer)  # b: 80 ms > 50 ms budget
    clock.now = 1002.0
    status = {s.camera: s for s in anonymizer.statuses()}
    a, b, c = status["a"].values, status["b"].values, status["c"].values
    assert status["a"].level == OK and status["b"].level == WARN and status["c"].level == STALE
    assert a["input_rate_hz"] == "1.50" and a["output_rate_hz"] == "0.50" and a["drops"] == "2"
    assert b["input_rate_hz"] == "1.00" and b["over_budget"] == "1"
    assert float(b["latency_p50_ms"]) == pytest.approx(50.0, abs=0.1)  # median of 20 and 80
    assert float(b["latency_p99_ms"]) == pytest.approx(79.4, abs=0.1)
    assert a["faces_per_frame"] == "1.00" and a["inpainted_share"] == "0.00" and a["classic_share"] == "1.00"
    assert c["latency_p50_ms"] == "nan"
    again = {s.camera: s for s in anonymizer.statuses()}  # a new window: nothing happened in it
    assert again["a"].values["drops"] == "0" and again["a"].values["drops_total"] == "2"
    assert again["a"].level == STALE


def test_statuses_count_faces_apart_from_regions(astronaut) -> None:
    """A face that jumps (matched on nearness) leaves a cautious copy where it was: one face, two regions."""
    detector = FaceDetector()
    anonymizer, _ = make_live(("a",), detector=detector, carry_frames=3)
    anonymizer.statuses()
    anonymizer.submit("a", image_msg(astronaut))
    drain(anonymizer)
    detector.box = ASTRONAUT_FACE + np.array([60, 0, 60, 0])  # ~0.9 face widths on: little overlap, near
    anonymizer.submit("a", image_msg(astronaut))
    drain(anonymizer)
    values = anonymizer.statuses()[0].values
    assert (values["faces_per_frame"], values["regions_per_frame"]) == ("1.00", "1.50")


def test_errors_make_the_level_error(astronaut) -> None:
    anonymizer, _ = make_live(("a",), detector=FaceDetector(fail=True))
    anonymizer.submit("a", image_msg(astronaut))
    anonymizer.tick()
    status = anonymizer.statuses()[0]
    assert status.level == ERROR and "detect" in status.message and status.values["errors"] == "1"


def test_inpainted_share_counts_non_classic_methods(astronaut) -> None:
    anonymizer, _ = make_live(("a",))
    anonymizer.pipeline.renderers["ldfa"] = Inpainter()
    anonymizer.pipeline.configure(method="ldfa")
    anonymizer.submit("a", image_msg(astronaut))
    anonymizer.tick()
    values = anonymizer.statuses()[0].values
    assert values["inpainted_share"] == "1.00" and values["classic_share"] == "0.00"


def test_worker_thread_survives_faults_and_accounts_for_every_frame(astronaut) -> None:
    """Many cameras, bursts, a slow detector and injected faults: every input is either published,
    superseded (a counted drop) or a counted error; the worker never dies."""
    cameras = [f"cam{i}" for i in range(6)]
    failing = {"n": 0}
    anonymizer, published = make_live(cameras, clock=time.time, detector=FaceDetector(delay=0.01))
    real_handle = anonymizer._handle

    def sometimes_crash(taken, done):
        failing["n"] += 1
        if failing["n"] % 4 == 0:
            raise RuntimeError("injected worker fault")
        return real_handle(taken, done)

    anonymizer._handle = sometimes_crash
    anonymizer.start()
    small = astronaut[::4, ::4].copy()
    try:
        for burst in range(5):
            for _ in range(8):
                for camera in cameras:
                    anonymizer.submit(camera, image_msg(small, stamp=time.time()))
            time.sleep(0.05)
        deadline = time.monotonic() + 10
        while anonymizer.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert anonymizer.alive
    finally:
        anonymizer.stop()
    assert not anonymizer.alive and anonymizer.worker_errors >= 1
    for camera in cameras:
        t = anonymizer.totals(camera)
        assert t["inputs"] == 40
        assert t["inputs"] == t.get("drops", 0) + t["frames"], t
        assert t["frames"] == t.get("outputs", 0) + t.get("not_published", 0), t
        assert t.get("drops", 0) > 0
    assert all(o.msg is not None for o in published)


def test_a_fault_midway_through_a_batch_counts_only_the_unpublished(astronaut) -> None:
    anonymizer, published = make_live(("a", "b"))
    anonymizer.pipeline.renderers["ldfa"] = Inpainter()
    anonymizer.configure(method="ldfa")
    real_emit = anonymizer._emit

    def emit_once(camera, *args):
        if published:
            raise RuntimeError("injected fault after the first output")
        real_emit(camera, *args)

    anonymizer._emit = emit_once
    for camera in ("a", "b"):
        anonymizer.submit(camera, image_msg(astronaut))
    with pytest.raises(RuntimeError):
        anonymizer.tick()
    first, second = anonymizer.totals("a"), anonymizer.totals("b")
    assert (first["outputs"], first.get("not_published", 0), first.get("errors", 0)) == (1, 0, 0)
    assert (second.get("outputs", 0), second["not_published"], second["errors"]) == (0, 1, 1)
