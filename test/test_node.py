"""ldfa_node executed against the rclpy stand-in in test/rclpy_standin (ROS 2 cannot be installed here).

Checks the adapter: parameters and their descriptors, topics and QoS, start-up order, fail-closed
output under many cameras, bursts, slow renders and injected faults, diagnostics, parameter
validation, recording and main(). Every test ends by checking that no raw frame was published.
Also type-checks the node against the real rclpy sources with mypy (see mypy.ini).
"""
from __future__ import annotations

import array
import importlib.util
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE
from ldfa_ros import frames, node_config
from ldfa_ros.pipeline import Pipeline
from rclpy_standin.activate import standin_imports
from test_live import FaceDetector, Inpainter
from test_pipeline import assert_face_hidden

ROOT = Path(__file__).resolve().parents[1]
WHOLE = np.array([0, 0, 512, 512])


@pytest.fixture(scope="module")
def ros():
    """The stand-in modules, imported for this module only."""
    with standin_imports():
        import rclpy
        import standin
        from builtin_interfaces.msg import Time
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import CompressedImage, Image
        from std_msgs.msg import Header

        from ldfa_ros import node

        yield SimpleNamespace(rclpy=rclpy, bus=standin.BUS, node=node, Parameter=Parameter, Image=Image,
                              CompressedImage=CompressedImage, Header=Header, Time=Time)


@pytest.fixture
def env(ros):
    """A fresh bus and rclpy context; afterwards, no published image may be a raw input."""
    ros.bus.reset()
    ros.rclpy.init()
    delivered: list[Any] = []
    deliver = ros.bus.deliver
    ros.bus.deliver = lambda topic, msg: delivered.append(msg) or deliver(topic, msg)
    nodes: list[Any] = []

    def make(cameras=("/cam0/image_raw",), detector=None, factory=None, **params: Any):
        params = {"cameras": list(cameras), **params}
        factory = factory or (lambda settings: Pipeline(settings, detector or FaceDetector()))
        n = ros.node.LdfaNode(factory, parameter_overrides=[ros.Parameter(k, value=v) for k, v in params.items()])
        nodes.append(n)
        return n

    yield SimpleNamespace(make=make, delivered=delivered, **vars(ros))
    for n in nodes:
        if not n.destroyed:
            n.destroy_node()
    ros.rclpy.try_shutdown()
    raw = {id(m) for m in delivered}
    raw_bytes = {bytes(m.data) for m in delivered}
    for topic, msgs in ros.bus.published.items():
        for msg in msgs:
            assert id(msg) not in raw, f"an input message was published on {topic}"
            if hasattr(msg, "data"):
                assert bytes(msg.data) not in raw_bytes, f"raw frame bytes published on {topic}"


def stamp_now(ros) -> Any:
    ns = ros.bus.clock()
    return ros.Time(sec=ns // 10**9, nanosec=ns % 10**9)


def raw_image(ros, rgb: np.ndarray, frame_id: str = "cam0") -> Any:
    h, w = rgb.shape[:2]
    return ros.Image(header=ros.Header(stamp=stamp_now(ros), frame_id=frame_id), height=h, width=w,
                     encoding="rgb8", is_bigendian=0, step=w * 3, data=array.array("B", rgb.tobytes()))


def jpeg_image(ros, rgb: np.ndarray, frame_id: str = "cam1") -> Any:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return ros.CompressedImage(header=ros.Header(stamp=stamp_now(ros), frame_id=frame_id), format="jpeg",
                               data=array.array("B", data.tobytes()))


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def settled(node: Any) -> Callable[[], bool]:
    """True once every input was handled (published, superseded or failed)."""
    def done() -> bool:
        totals = [node._live.totals(c) for c in node._live.cameras]
        return all(t.get("inputs", 0) == t.get("drops", 0) + t.get("frames", 0)
                   == t.get("drops", 0) + t.get("outputs", 0) + t.get("not_published", 0)
                   for t in totals) and not node._live.pending()
    return done


def test_parameters_are_declared_from_node_config_with_descriptors(env) -> None:
    node = env.make()
    for spec in node_config.parameters():
        desc = node.describe_parameter(spec.name)
        assert desc.description == spec.description
        assert desc.read_only is (not spec.runtime), spec.name
        expected = ["/cam0/image_raw"] if spec.name == "cameras" else spec.default
        assert node.get_parameter(spec.name).value == expected
    threshold = node.describe_parameter("threshold").floating_point_range[0]
    assert (threshold.from_value, threshold.to_value) == (0.01, 0.99)
    assert node.describe_parameter("carry_frames").integer_range[0].to_value == 300
    assert "ldfa" in node.describe_parameter("method").additional_constraints


def test_topics_types_and_qos(env) -> None:
    from rclpy.qos import ReliabilityPolicy

    node = env.make(["/cam0/image_raw", "/cam1/image_raw/compressed"], publish_detections=True)
    subs = {s.topic_name: s for s in node.subscriptions}
    pubs = {p.topic_name: p for p in node.publishers}
    assert subs["/cam0/image_raw"].msg_type is env.Image
    assert subs["/cam1/image_raw/compressed"].msg_type is env.CompressedImage
    for sub in subs.values():
        assert sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT and sub.qos_profile.depth == 1
    assert pubs["/cam0/image_raw/anonymized"].msg_type is env.Image
    assert pubs["/cam1/image_raw/anonymized/compressed"].msg_type is env.CompressedImage
    assert {"/cam0/image_raw/faces", "/cam1/image_raw/faces", "/diagnostics"} <= set(pubs)
    assert pubs["/cam0/image_raw/anonymized"].qos_profile.reliability == ReliabilityPolicy.RELIABLE


def test_qos_is_overridable_per_topic(env) -> None:
    from rclpy.qos import ReliabilityPolicy

    node = env.make(**{"qos_overrides./cam0/image_raw.subscription.reliability": "reliable",
                       "qos_overrides./cam0/image_raw/anonymized.publisher.depth": 7})
    assert node.subscriptions[0].qos_profile.reliability == ReliabilityPolicy.RELIABLE
    assert {p.topic_name: p for p in node.publishers}["/cam0/image_raw/anonymized"].qos_profile.depth == 7


def test_relative_topics_are_wired_by_remapping(env, ros) -> None:
    node = ros.node.LdfaNode(lambda s: Pipeline(s, FaceDetector()), namespace="/car",
                             cli_args=["--ros-args", "-r", "image:=/front/image_raw",
                                       "-r", "image/anonymized:=/front/anonymized"])
    try:
        assert [s.topic_name for s in node.subscriptions] == ["/front/image_raw"]
        assert "/front/anonymized" in {p.topic_name for p in node.publishers}
    finally:
        node.destroy_node()


def test_models_warm_up_before_subscriptions_open(env) -> None:
    seen: list[tuple[int, int]] = []

    class Spy(FaceDetector):
        def __call__(self, rgb, **kw):
            seen.append((sum(len(s) for s in env.bus.subscriptions.values()), len(env.bus.published)))
            return super().__call__(rgb, **kw)

    node = env.make(detector=Spy())
    assert seen[0] == (0, 0)  # warm-up ran with no subscription open and nothing published
    assert len(node.subscriptions) == 1


def test_startup_fails_loudly_when_warm_up_fails(env) -> None:
    with pytest.raises(RuntimeError, match="warm-up"):
        env.make(detector=FaceDetector(fail=True))
    assert not env.bus.subscriptions.get("/cam0/image_raw")


def test_bad_camera_list_is_rejected_at_startup(env) -> None:
    with pytest.raises(ValueError, match="more than once"):
        env.make(["/a/image", "/a/image"])


def test_real_detector_end_to_end_keeps_types_headers_and_hides_faces(env, astronaut) -> None:
    from ldfa_ros.pipeline import build_pipeline

    node = env.make(["/cam0/image_raw", "/cam1/image_raw/compressed"], factory=build_pipeline,
                    publish_detections=True)
    raw, jpeg = raw_image(env, astronaut), jpeg_image(env, astronaut)
    env.bus.deliver("/cam0/image_raw", raw)
    env.bus.deliver("/cam1/image_raw/compressed", jpeg)
    wait_for(settled(node))
    out = env.bus.published["/cam0/image_raw/anonymized"][0]
    assert isinstance(out, env.Image) and out.header == raw.header
    assert (out.encoding, out.height, out.width, out.step) == ("rgb8", 512, 512, 1536)
    assert_face_hidden(frames.decode(out).rgb, astronaut)
    out = env.bus.published["/cam1/image_raw/anonymized/compressed"][0]
    assert isinstance(out, env.CompressedImage) and out.format == "jpeg" and out.header == jpeg.header
    assert_face_hidden(frames.decode(out).rgb, frames.decode(jpeg).rgb)
    detections = env.bus.published["/cam0/image_raw/faces"][0]
    assert detections.header == raw.header and len(detections.detections) == 1
    det = detections.detections[0]
    assert det.results[0].hypothesis.class_id == "face" and det.results[0].hypothesis.score > 0.5
    cx, cy = (ASTRONAUT_FACE[:2] + ASTRONAUT_FACE[2:]) / 2
    assert abs(det.bbox.center.position.x - cx) < 15 and abs(det.bbox.center.position.y - cy) < 15
    assert det.header == raw.header


@pytest.mark.parametrize("on_error", ["blur", "drop"])
def test_faults_never_publish_the_input(env, astronaut, on_error) -> None:
    detector = FaceDetector()
    node = env.make(["/cam0/image_raw", "/cam1/image_raw"], detector=detector, on_error=on_error)
    detector.fail = True  # after the warm-up
    bad = raw_image(env, astronaut, "cam1")
    bad.encoding = "unknown_encoding"
    env.bus.deliver("/cam0/image_raw", raw_image(env, astronaut))
    env.bus.deliver("/cam1/image_raw", bad)
    wait_for(settled(node))
    assert not env.bus.published.get("/cam1/image_raw/anonymized")  # undecodable: no pixels to blur
    published = env.bus.published.get("/cam0/image_raw/anonymized", [])
    if on_error == "drop":
        assert published == []
    else:
        assert_face_hidden(frames.decode(published[0]).rgb, astronaut, WHOLE)
    assert node._live.totals("/cam0/image_raw")["errors"] == 1
    assert node._live.totals("/cam1/image_raw")["not_published"] == 1


def test_many_cameras_bursts_and_slow_renders(env, astronaut) -> None:
    """8 cameras, bursts of 10 frames each, a slow batching renderer and a detector that fails on
    every 7th call: every input is accounted for, drops are counted and reported, faces of several
    cameras are rendered in one call, no raw frame leaves."""
    class SlowInpainter(Inpainter):
        def render(self, jobs):
            time.sleep(0.02)
            super().render(jobs)

    class Flaky(FaceDetector):
        def __call__(self, rgb, **kw):
            self.fail = self.calls % 7 == 6
            return super().__call__(rgb, **kw)

    renderer = SlowInpainter()
    cameras = [f"/cam{i}/image_raw" for i in range(8)]
    node = env.make(cameras, factory=lambda s: Pipeline(s, Flaky(box=ASTRONAUT_FACE / 2), {"ldfa": renderer}),
                    method="ldfa")
    small = np.ascontiguousarray(astronaut[::2, ::2])
    for _ in range(3):
        for _ in range(10):
            for i, camera in enumerate(cameras):
                env.bus.deliver(camera, raw_image(env, small, f"cam{i}"))
        wait_for(settled(node))
    env.bus.fire_timers()
    report = env.bus.published["/diagnostics"][-1]
    by_name = {s.name: {kv.key: kv.value for kv in s.values} for s in report.status}
    drops = 0
    for camera in cameras:
        totals = node._live.totals(camera)
        assert totals["inputs"] == 30 and totals["drops"] > 0
        assert by_name[f"ldfa_node: {camera}"]["drops_total"] == str(totals["drops"])
        drops += totals["drops"]
        for msg in env.bus.published.get(f"{camera}/anonymized", []):
            assert_face_hidden(frames.decode(msg).rgb, small, ASTRONAUT_FACE / 2)
    assert drops > 0 and max(renderer.batches) > 1  # faces of several cameras rendered in one call
    assert node._live.alive


def test_diagnostics_levels_and_values(env, astronaut) -> None:
    node = env.make(["/ok/image", "/bad/image", "/idle/image"])
    node._live.statuses()  # open a fresh window
    env.bus.deliver("/ok/image", raw_image(env, astronaut))
    bad = raw_image(env, astronaut)
    bad.step = 10  # inconsistent geometry: cannot be decoded
    env.bus.deliver("/bad/image", bad)
    wait_for(settled(node))
    env.bus.fire_timers()
    report = env.bus.published["/diagnostics"][-1]
    status = {s.name: s for s in report.status}
    assert status["ldfa_node: /ok/image"].level == b"\x00"
    assert status["ldfa_node: /bad/image"].level == b"\x02" and "decode" in status["ldfa_node: /bad/image"].message
    assert status["ldfa_node: /idle/image"].level == b"\x03"
    assert status["ldfa_node: worker"].level == b"\x00"
    values = {kv.key: kv.value for kv in status["ldfa_node: /ok/image"].values}
    assert values["faces_per_frame"] == "1.00" and values["errors"] == "0" and values["classic_share"] == "1.00"
    assert float(values["latency_p50_ms"]) >= 0 and float(values["output_rate_hz"]) > 0


def test_budget_miss_is_a_warning(env, astronaut) -> None:
    node = env.make(detector=FaceDetector(delay=0.05), budget_ms=10.0)
    node._live.statuses()
    env.bus.deliver("/cam0/image_raw", raw_image(env, astronaut))
    wait_for(settled(node))
    env.bus.fire_timers()
    status = env.bus.published["/diagnostics"][-1].status[0]
    assert status.level == b"\x01" and "budget" in status.message


def test_node_defaults_to_the_realtime_preset_and_opts_in_to_recall(env) -> None:
    live = env.make()._live.pipeline.settings
    assert (live.preset, live.scales, live.flip) == ("realtime", (1.0,), False)
    recall = env.make(preset="recall")._live.pipeline.settings
    assert (recall.threshold, recall.scales, recall.flip) == (0.22, (1.0, 2.0), True)
    tuned = env.make(preset="recall", threshold=0.4)._live.pipeline.settings
    assert (tuned.threshold, tuned.scales) == (0.4, (1.0, 2.0))


def test_runtime_parameters_are_validated(env, astronaut) -> None:
    node = env.make()
    P = env.Parameter
    [ok] = node.set_parameters([P("threshold", value=0.5)])
    assert ok.successful
    [rejected] = node.set_parameters([P("threshold", value=1.5)])
    assert not rejected.successful  # outside the descriptor's range
    [rejected] = node.set_parameters([P("method", value="smudge")])
    assert not rejected.successful and "method must be one of" in rejected.reason
    [rejected] = node.set_parameters([P("budget_reference", value="whenever")])
    assert not rejected.successful and "budget_reference" in rejected.reason
    [rejected] = node.set_parameters([P("cameras", value=["/x"])])
    assert not rejected.successful and "read-only" in rejected.reason
    # the node's own check, behind ROS' read-only flag, and foreign parameters pass through
    assert not node._on_set_parameters([P("device", value="cuda")]).successful
    assert node._on_set_parameters([P("use_sim_time", value=True)]).successful
    env.bus.deliver("/cam0/image_raw", raw_image(env, astronaut))
    wait_for(settled(node))
    assert node._live.pipeline.settings.threshold == 0.5 and node._live.pipeline.settings.method == "blur"


def test_record_path_writes_only_anonymized_topics(env, astronaut, tmp_path) -> None:
    from rosbags.highlevel import AnyReader

    from ldfa_ros.record import typestore

    bag = tmp_path / "drive"
    node = env.make(["/cam0/image_raw", "/cam1/image_raw/compressed"], publish_detections=True,
                    record_path=str(bag))
    for _ in range(3):
        env.bus.deliver("/cam0/image_raw", raw_image(env, astronaut))
        env.bus.deliver("/cam1/image_raw/compressed", jpeg_image(env, astronaut))
        wait_for(settled(node))
    node.destroy_node()
    counts: dict[str, int] = {}
    with AnyReader([bag], default_typestore=typestore()) as reader:
        assert {c.topic for c in reader.connections} == {
            "/cam0/image_raw/anonymized", "/cam1/image_raw/anonymized/compressed",
            "/cam0/image_raw/faces", "/cam1/image_raw/faces"}
        for connection, _, data in reader.messages():
            counts[connection.topic] = counts.get(connection.topic, 0) + 1
            msg = reader.deserialize(data, connection.msgtype)
            if connection.msgtype.startswith("sensor_msgs"):
                assert_face_hidden(frames.decode(msg).rgb, astronaut, ASTRONAUT_FACE)
            else:
                assert msg.detections[0].results[0].hypothesis.class_id == "face"
    assert counts == {topic: len(env.bus.published[topic]) for topic in counts}
    assert sum(counts.values()) == 12


@pytest.mark.parametrize("stop", ["KeyboardInterrupt", "ExternalShutdownException"])
def test_main_spins_and_shuts_down_cleanly(ros, stop) -> None:
    from rclpy.executors import ExternalShutdownException

    ros.bus.reset()
    spun: list[Any] = []

    def spin(node: Any) -> None:
        spun.append(node)
        raise KeyboardInterrupt if stop == "KeyboardInterrupt" else ExternalShutdownException()

    ros.bus.on_spin = spin
    ros.node.main([])
    assert spun and spun[0].destroyed and not spun[0]._live.alive
    assert ros.bus.shutdowns == 1 and not ros.bus.initialized


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None or importlib.util.find_spec("rclpy") is None,
                    reason="needs mypy and rclpy-intellisense (pip install -e .[test])")
def test_node_type_checks_against_real_rclpy(monkeypatch) -> None:
    from mypy import api

    monkeypatch.chdir(ROOT)
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "mypy.ini")])
    assert status == 0, stdout + stderr
