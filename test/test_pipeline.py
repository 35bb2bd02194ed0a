"""The pipeline on real faces, and fault injection at every stage: no raw face pixel ever leaves."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE
from ldfa_ros.budget import Decision
from ldfa_ros.detect import Detections
from ldfa_ros.pipeline import FrameInput, Pipeline
from ldfa_ros.settings import Settings, SettingsError


def assert_face_hidden(out: np.ndarray | None, raw: np.ndarray, box: np.ndarray = ASTRONAUT_FACE) -> None:
    """Nothing of the raw face survives: its pixels differ and its detail is gone."""
    if out is None:
        return  # dropped
    x1, y1, x2, y2 = box.astype(int)
    face_out, face_raw = out[y1:y2, x1:x2], raw[y1:y2, x1:x2]
    assert np.mean(np.all(face_out == face_raw, axis=2)) < 0.05, "raw face pixels emitted"
    lap = [cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for f in (face_out, face_raw)]
    assert lap[0] < 0.05 * lap[1], "face detail emitted"


class Boom(RuntimeError):
    pass


def failing(*args, **kwargs):
    raise Boom("injected fault")


class SpyRenderer:
    """Records each call; optionally fails."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    def render(self, jobs):
        self.calls.append(sum(len(j.faces) for j in jobs))
        if self.fail:
            for job in jobs:  # a renderer that dies after touching the image must still not leak
                job.image[:] = job.image[::-1]
            raise Boom("renderer died")
        for job in jobs:
            for region in job.regions:
                job.image[region.slices] = 7


class FixedPlanner:
    def __init__(self, method: str) -> None:
        self.method = method

    def plan(self, method, faces_per_frame, remaining_ms):
        return [[Decision(self.method, "test") for _ in faces] for faces in faces_per_frame]


def test_astronaut_face_blurred_background_identical(astronaut, detector):
    pipeline = Pipeline(Settings(), detector)
    result = pipeline.process(astronaut)
    assert result.error is None and len(result.faces) == 1
    assert result.faces[0].method == "blur" and result.faces[0].age == 0
    assert_face_hidden(result.image, astronaut)
    assert np.array_equal(result.image[~result.changed], astronaut[~result.changed])
    assert result.changed.mean() < 0.15
    assert {"detect", "track", "plan", "render_blur", "total"} <= set(result.timings_ms)
    assert not np.shares_memory(result.image, astronaut)
    assert pipeline.counters["faces_blur"] == 1


def test_wider_dev_faces_changed_background_unchanged(faces_dev, detector):
    root, labels = faces_dev
    pipeline = Pipeline(Settings(), detector)
    for item in [x for x in labels if x["file"].startswith("images/full_")][:4]:
        rgb = cv2.cvtColor(cv2.imread(str(root / item["file"])), cv2.COLOR_BGR2RGB)
        result = pipeline.process(rgb, stream=item["file"])
        assert np.array_equal(result.image[~result.changed], rgb[~result.changed])
        big = [f for f in item["faces"] if f[3] - f[1] >= 64]
        for face in big:
            x1, y1, x2, y2 = (int(v) for v in face)
            assert result.changed[y1:y2, x1:x2].mean() > 0.7, f"{item['file']}: face {face} not hidden"


@pytest.mark.parametrize("stage", ["detect", "track", "blur"])
@pytest.mark.parametrize("on_error", ["blur", "drop"])
def test_fault_at_any_stage_fails_closed(astronaut, detector, monkeypatch, stage, on_error):
    pipeline = Pipeline(Settings(on_error=on_error), detector)
    if stage == "detect":
        pipeline.detector = failing
    elif stage == "track":
        monkeypatch.setattr(pipeline.trackers, "update", failing)
    else:
        pipeline.renderers["blur"] = SpyRenderer(fail=True)
    result = pipeline.process(astronaut)
    assert result.error and stage.replace("blur", "render") in result.error
    assert result.changed.all()
    if on_error == "drop":
        assert result.dropped and pipeline.counters["dropped"] == 1
    else:
        assert_face_hidden(result.image, astronaut)
    assert sum(v for k, v in pipeline.counters.items() if k.startswith("failed_")) == 1


def test_whole_frame_blur_failing_too_drops_the_frame(astronaut, monkeypatch):
    import ldfa_ros.pipeline as module

    monkeypatch.setattr(module, "blur_frame", failing)
    pipeline = Pipeline(Settings(), failing)
    result = pipeline.process(astronaut)
    assert result.dropped and "whole-frame blur failed" in result.error


def test_failing_renderer_hands_faces_to_blur(astronaut, detector):
    spy = SpyRenderer(fail=True)
    pipeline = Pipeline(Settings(), detector, renderers={"ldfa": spy}, planner=FixedPlanner("ldfa"))
    result = pipeline.process(astronaut)
    assert spy.calls == [1]
    assert [f.method for f in result.faces] == ["blur"]
    assert "ldfa failed" in result.faces[0].reason
    assert pipeline.counters["fallback_ldfa_error"] == 1
    assert_face_hidden(result.image, astronaut)


def test_unknown_method_fails_closed_to_blur(astronaut, detector):
    pipeline = Pipeline(Settings(), detector, planner=FixedPlanner("nonexistent"))
    result = pipeline.process(astronaut)
    assert [f.method for f in result.faces] == ["blur"]
    assert_face_hidden(result.image, astronaut)


def test_one_renderer_call_for_all_faces_of_a_tick(astronaut, detector):
    spy = SpyRenderer()
    pipeline = Pipeline(Settings(), detector, renderers={"ldfa": spy}, planner=FixedPlanner("ldfa"))
    frames = [FrameInput(astronaut, f"cam{i}") for i in range(3)]
    results = pipeline.process_many(frames)
    assert spy.calls == [3]
    assert [r.faces[0].method for r in results] == ["ldfa"] * 3


def test_given_detections_and_extra_faces_are_hidden(astronaut, detector):
    from ldfa_ros.track import Face

    pipeline = Pipeline(Settings(), failing)  # the detector must not be called
    extra = Face(ASTRONAUT_FACE.astype(np.float32), 0.5, track_id=99, age=2)
    result = pipeline.process_many([FrameInput(astronaut, detections=Detections.empty(), extra_faces=[extra])])[0]
    assert result.error is None and [f.track_id for f in result.faces] == [99]
    assert_face_hidden(result.image, astronaut)


def test_configure_validates_and_keeps_old_settings_on_error(detector):
    pipeline = Pipeline(Settings(), detector)
    pipeline.configure(threshold=0.5, carry_frames=9)
    assert pipeline.settings.threshold == 0.5 and pipeline.trackers.carry_frames == 9
    with pytest.raises(SettingsError, match="threshold"):
        pipeline.configure(threshold=2.0)
    with pytest.raises(SettingsError, match="unknown setting"):
        pipeline.configure(colour="red")
    assert pipeline.settings.threshold == 0.5


def test_carry_over_hides_a_face_the_detector_missed(astronaut, detector):
    pipeline = Pipeline(Settings(carry_frames=2), detector)
    pipeline.process(astronaut, "cam")
    real = pipeline.detector
    pipeline.detector = lambda *a, **k: Detections.empty()  # a one-frame miss
    result = pipeline.process(astronaut, "cam")
    assert [f.age for f in result.faces] == [1]
    assert_face_hidden(result.image, astronaut)
    pipeline.detector = real


def test_a_renderer_is_told_every_face_region_of_its_frame(astronaut, detector):
    """A generative renderer must mask faces handled by other methods too: each job lists them all."""
    from ldfa_ros.track import Face

    class Alternate:
        def plan(self, method, faces_per_frame, remaining_ms):
            return [[Decision("ldfa" if i % 2 == 0 else "blur", "test") for i in range(len(f))]
                    for f in faces_per_frame]

    seen: list[tuple[int, int]] = []

    class Spy:
        def render(self, jobs):
            seen.extend((len(j.faces), len(j.hidden)) for j in jobs)

    other = Face(np.array([20.0, 300.0, 80.0, 380.0], np.float32), 0.5, track_id=7)
    pipeline = Pipeline(Settings(), detector, renderers={"ldfa": Spy()}, planner=Alternate())
    result = pipeline.process_many([FrameInput(astronaut, extra_faces=[other])])[0]
    assert seen == [(1, 2)]
    assert sorted(f.method for f in result.faces) == ["blur", "ldfa"]
