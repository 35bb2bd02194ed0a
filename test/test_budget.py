"""The latency model and the planner: diffusion for the largest faces that fit, blur for the rest,
and blur (never the raw face) when the inpainter overruns or fails. No torch needed."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ASTRONAUT_FACE
from ldfa_ros.budget import DeadlineExceeded, LatencyModel, Planner, batches
from ldfa_ros.detect import Detections
from ldfa_ros.pipeline import FrameInput, Pipeline
from ldfa_ros.settings import Settings
from ldfa_ros.track import Face


def face(size: float, track_id: int = 1) -> Face:
    return Face(np.array([10, 10, 10 + size, 10 + size], np.float32), 0.9, track_id)


@pytest.mark.parametrize("faces, sizes", [(0, []), (1, [1]), (3, [4]), (5, [8]), (8, [8]), (11, [8, 4]),
                                          (17, [8, 8, 1])])
def test_faces_are_split_into_bucketed_calls(faces, sizes):
    assert batches(faces) == sizes


def test_latency_is_a_high_percentile_learnt_per_bucket_and_resolution():
    model = LatencyModel(window=4)
    for ms in (10, 11, 12, 100):  # one slow call in four
        model.observe(4, 256, ms)
    assert model.predict(4, 256) == 12  # robust to one outlier among few samples
    for ms in (100, 100, 100):  # the window forgets: now mostly slow
        model.observe(4, 256, ms)
    assert model.predict(4, 256) == 100
    assert model.predict(4, 512) is None  # another resolution is not guessed
    model.observe(2, 512, 30)
    assert model.predict(8, 512) == 120  # unseen larger bucket: linear bound from the largest measured
    assert model.predict(1, 512) == 30  # unseen smaller bucket: bounded by the next larger one
    assert model.cost(11, 512) == 120 + 60  # a call of 8 and one of 4
    assert model.cost(3, 1024) is None
    assert model.counts() == {(4, 256): 4, (2, 512): 1}


def test_latency_table_round_trips_and_is_ignored_for_other_settings(tmp_path):
    model = LatencyModel()
    model.observe(1, 256, 9.5)
    model.observe(4, 256, 21.0)
    path = tmp_path / "latency.json"
    model.save(path, {"steps": 4})
    again = LatencyModel.load(path, {"steps": 4})
    assert again is not None and again.predict(4, 256) == 21.0 and again.predict(1, 256) == 9.5
    assert LatencyModel.load(path, {"steps": 8}) is None
    zero_window = '{"signature": {"steps": 4}, "window": 0, "quantile": 90, "samples": []}'
    for damaged in ("{not json", "[]", '"x"', zero_window):
        path.write_text(damaged)
        assert LatencyModel.load(path, {"steps": 4}) is None, damaged
    assert LatencyModel.load(tmp_path / "absent.json", {}) is None
    assert json.loads(json.dumps(model.to_json())) == model.to_json()


def costs(table: dict[int, float]):
    """An injected diffusion cost: ms for n faces."""
    return lambda n: table.get(n)


def test_largest_faces_get_diffusion_within_the_budget():
    planner = Planner(costs({1: 10.0, 2: 15.0, 3: 40.0}))
    frames = [[face(20, 1), face(100, 2)], [face(60, 3)]]
    plans = planner.plan("ldfa", frames, remaining_ms=20.0)
    assert [[d.method for d in p] for p in plans] == [["blur", "ldfa"], ["ldfa"]]
    assert plans[0][1].reason.startswith("within budget: 2 face(s) ~15 ms")
    assert plans[0][0].reason.startswith("over budget: ldfa for 3 face(s) ~40 ms > 20 ms")
    assert [d.method for d in planner.plan("auto", frames, 50.0)[0]] == ["ldfa", "ldfa"]
    assert {d.method for p in planner.plan("ldfa", frames, 5.0) for d in p} == {"blur"}
    assert {d.method for p in planner.plan("ldfa", frames, -3.0) for d in p} == {"blur"}


def test_without_a_budget_or_timings_diffusion_is_tried():
    frames = [[face(30), face(40)]]
    assert [d.reason for d in Planner(costs({1: 500.0})).plan("ldfa", frames, None)[0]] == ["no budget"] * 2
    unknown = Planner(costs({})).plan("ldfa", frames, 10.0)[0]
    assert [d.method for d in unknown] == ["ldfa", "ldfa"] and "no timing" in unknown[0].reason


def test_auto_without_diffusion_blurs_and_classic_methods_are_kept():
    frames = [[face(30)], []]
    plans = Planner().plan("auto", frames, None)
    assert len(plans[1]) == 0 and plans[0][0].method == "blur" and "ldfa unavailable" in plans[0][0].reason
    assert Planner(costs({1: 1.0})).plan("pixelate", frames, 0.0)[0][0].method == "pixelate"


class LateRenderer:
    """An inpainter that touches the frame, then finds it will miss the deadline."""

    def __init__(self) -> None:
        self.deadlines: list[float | None] = []

    def render(self, jobs):
        self.deadlines += [job.deadline for job in jobs]
        for job in jobs:
            for region in job.regions:
                job.image[region.slices][region.alpha > 0] = 0  # partial work, inside the region
        raise DeadlineExceeded("would end 12 ms after the deadline", 45.0)


def astronaut_input(astronaut) -> FrameInput:
    boxes = ASTRONAUT_FACE[None].astype(np.float32)
    return FrameInput(astronaut, "cam", Detections(boxes, np.ones(1, np.float32), np.zeros((1, 5, 2), np.float32)))


def test_an_overrunning_inpainter_yields_blurred_faces(astronaut):
    from test_pipeline import assert_face_hidden

    late = LateRenderer()
    pipeline = Pipeline(Settings(method="ldfa", budget_ms=1000.0), None, {"ldfa": late}, Planner(costs({1: 1.0})))
    result = pipeline.process_many([astronaut_input(astronaut)])[0]
    assert late.deadlines and late.deadlines[0] is not None  # the budget reached the renderer as a deadline
    assert [(f.method, f.reason) for f in result.faces] == [("blur", "ldfa over deadline")]
    assert pipeline.counters["fallback_ldfa_overrun"] == 1
    assert_face_hidden(result.image, astronaut)
    assert np.array_equal(result.image[~result.changed], astronaut[~result.changed])


def test_a_failing_inpainter_yields_blurred_faces_with_the_reason(astronaut):
    from test_pipeline import SpyRenderer, assert_face_hidden

    pipeline = Pipeline(Settings(method="ldfa"), None, {"ldfa": SpyRenderer(fail=True)}, Planner(costs({})))
    result = pipeline.process_many([astronaut_input(astronaut)])[0]
    assert [(f.method, f.reason) for f in result.faces] == [("blur", "ldfa failed: Boom")]
    assert pipeline.counters["fallback_ldfa_error"] == 1
    assert_face_hidden(result.image, astronaut)
