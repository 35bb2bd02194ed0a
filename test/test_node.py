"""ldfa_node on real ROS 2 (rclpy + Fast DDS on loopback), no stand-in.

The node runs as a real process (`python -m ldfa_ros.node --ros-args ...`) fed by a real camera
process (test/ros_camera.py: the astronaut photo as sensor_msgs/Image and CompressedImage), and
in-process where a fault must be injected into the pipeline. Everything it sends is received by
real subscribers through DDS, parameters go through its real parameter services, signals are real
signals. Every received image is checked: the face is hidden and the bytes are never the input's.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest

import ros_env
from conftest import ASTRONAUT_FACE

if ros_env.ROS_MISSING:
    pytest.skip(ros_env.ROS_MISSING, allow_module_level=True)

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.msg import ParameterType  # noqa: E402
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from ldfa_ros import frames, node_config  # noqa: E402
from ldfa_ros import node as ldfa_node  # noqa: E402
from ldfa_ros.pipeline import Pipeline  # noqa: E402
from ldfa_ros.record import typestore  # noqa: E402
from ros_camera import message, picture  # noqa: E402
from ros_env import RosProcess, node_command, node_script, wait_until  # noqa: E402
from test_live import FaceDetector  # noqa: E402
from test_pipeline import assert_face_hidden  # noqa: E402

VISION = ldfa_node.vision_msgs()
CAMERA = [sys.executable, str(ros_env.ROOT / "test" / "ros_camera.py")]
START_S = 120  # imports, DDS discovery and warm-up of a node process on 2 busy cores
WHOLE = np.array([0, 0, 512, 512])


class Probe:
    """The test's side of the graph: a node in its own context, spun on a thread."""

    def __init__(self) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def subscribe(self, msg_type: Any, topic: str, reliable: bool = True) -> list[Any]:
        """Messages arriving on `topic`, appended as they come."""
        got: list[Any] = []
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE if reliable
                         else ReliabilityPolicy.BEST_EFFORT)
        self.node.create_subscription(msg_type, topic, got.append, qos)
        return got

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 20.0) -> Any:
        client = self.node.create_client(srv_type, name)
        try:
            assert client.wait_for_service(timeout), f"service {name} not available"
            future = client.call_async(request)
            wait_until(future.done, timeout, f"reply from {name}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def set(self, node: str, **values: Any) -> list[Any]:
        request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg()
                                                    for k, v in values.items()])
        return list(self.call(SetParameters, f"{node}/set_parameters", request).results)

    def get(self, node: str, *names: str) -> dict[str, Any]:
        reply = self.call(GetParameters, f"{node}/get_parameters", GetParameters.Request(names=list(names)))
        return dict(zip(names, reply.values))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture(scope="module")
def probe(ros_domain: int):
    p = Probe()
    yield p
    p.close()


def statuses(reports: list[Any]) -> dict[str, Any]:
    """The newest DiagnosticStatus of each name in the received /diagnostics arrays."""
    out = {}
    for report in list(reports):
        for status in report.status:
            out[status.name] = status
    return out


def values(status: Any) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def check_anonymized(msg: Any, raw: Any, box: np.ndarray = ASTRONAUT_FACE) -> None:
    """Face hidden, never the input's bytes, type, encoding and geometry kept."""
    assert type(msg) is type(raw)
    assert bytes(msg.data) != bytes(raw.data), "raw frame bytes published"
    if isinstance(raw, Image):
        assert (msg.encoding, msg.height, msg.width, msg.step) == (raw.encoding, raw.height, raw.width, raw.step)
    else:
        assert msg.format == raw.format
    assert_face_hidden(frames.decode(msg).rgb, frames.decode(raw).rgb, box)


def check_stamps(msgs: list[Any], frame_id: str, probe: Probe) -> None:
    """Headers are the camera's: its frame_id, and its (increasing, recent) stamps."""
    now = probe.node.get_clock().now().nanoseconds * 1e-9
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in msgs]
    assert all(m.header.frame_id == frame_id for m in msgs)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert 0 < now - stamps[-1] < 120


# --- one node process, three cameras, shared by the tests up to the SIGINT one -----------------------------
RAW_REL, RAW_BE, JPEG = "/t/raw_rel/image_raw", "/t/raw_be/image_raw", "/t/jpeg/image_raw/compressed"


@pytest.fixture(scope="module")
def live(probe: Probe, ros_domain: int, tmp_path_factory):
    """ldfa_node with a reliable raw camera (subscription overridden to reliable), a best-effort raw camera
    and a JPEG camera; detections and recording on; `budget_ms:=50` given as an integer."""
    bag = tmp_path_factory.mktemp("record") / "drive"
    rgb = picture((512, 512))
    raw = {RAW_REL: message("raw", rgb, "raw_rel"), RAW_BE: message("raw", rgb, "raw_be"),
           JPEG: message("jpeg", rgb, "jpeg")}
    out = {RAW_REL: probe.subscribe(Image, f"{RAW_REL}/anonymized"),
           RAW_BE: probe.subscribe(Image, f"{RAW_BE}/anonymized", reliable=False),
           JPEG: probe.subscribe(CompressedImage, "/t/jpeg/image_raw/anonymized/compressed")}
    faces = probe.subscribe(VISION.Detection2DArray, "/t/raw_rel/image_raw/faces") if VISION else []
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
    node = RosProcess(node_script(  # the console script `ros2 run` starts
        "-p", f"cameras:=[{RAW_REL},{RAW_BE},{JPEG}]", "-p", "publish_detections:=true",
        "-p", f"record_path:={bag}", "-p", "budget_ms:=50", "-p", "diagnostics_period:=0.5",
        "-p", f"qos_overrides.{RAW_REL}.subscription.reliability:=reliable"), ros_domain)
    camera = None
    try:
        node.wait_for_line("anonymizing", START_S)
        camera = RosProcess([*CAMERA, f"{RAW_REL}:raw:reliable", f"{RAW_BE}:raw:best_effort", f"{JPEG}:jpeg:reliable",
                             "--rate", "6"], ros_domain)
        camera.wait_for_line("ready", START_S)
        wait_until(lambda: all(len(v) >= 3 for v in out.values()), 90, f"3 outputs of each camera: {node.output}")
        yield SimpleNamespace(node=node, camera=camera, bag=bag, raw=raw, out=out, faces=faces,
                              diagnostics=diagnostics)
    finally:
        if camera is not None:
            camera.signal(signal.SIGINT)
            camera.wait()
        node.stop()


def test_every_output_is_anonymized_with_the_camera_header(live, probe) -> None:
    for camera, msgs in live.out.items():
        msgs = list(msgs)
        for msg in msgs:
            check_anonymized(msg, live.raw[camera])
        check_stamps(msgs, live.raw[camera].header.frame_id, probe)


@pytest.mark.skipif(VISION is None, reason="vision_msgs not installed (no PyPI wheel; built by scripts from source)")
def test_detections_carry_the_frame_header_and_the_face(live) -> None:
    wait_until(lambda: len(live.faces) >= 2, 30, "detections")
    stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in live.out[RAW_REL]}
    for array in list(live.faces):
        assert array.header.frame_id == "raw_rel" and len(array.detections) == 1
        det = array.detections[0]
        assert det.header == array.header and det.results[0].hypothesis.class_id == "face"
        cx, cy = (ASTRONAUT_FACE[:2] + ASTRONAUT_FACE[2:]) / 2
        assert abs(det.bbox.center.position.x - cx) < 15 and abs(det.bbox.center.position.y - cy) < 15
    assert {(a.header.stamp.sec, a.header.stamp.nanosec) for a in live.faces} & stamps


def test_qos_override_of_one_camera_leaves_the_others_as_declared(live, probe) -> None:
    def node_qos(topic: str, publishers: bool = False) -> Any:
        info = (probe.node.get_publishers_info_by_topic if publishers else probe.node.get_subscriptions_info_by_topic)
        [endpoint] = [e for e in info(topic) if e.node_name == "ldfa_node"]
        return endpoint.qos_profile

    assert node_qos(RAW_REL).reliability == ReliabilityPolicy.RELIABLE
    for topic in (RAW_BE, JPEG):
        assert node_qos(topic).reliability == ReliabilityPolicy.BEST_EFFORT, topic  # (depth is not in the graph)
    assert node_qos(f"{RAW_REL}/anonymized", publishers=True).reliability == ReliabilityPolicy.RELIABLE
    names = [f"qos_overrides.{t}.subscription.reliability" for t in (RAW_REL, RAW_BE, JPEG)]
    got = probe.get("/ldfa_node", *names)
    assert [got[n].string_value for n in names] == ["reliable", "best_effort", "best_effort"]


def test_runtime_parameters_through_the_parameter_services(live, probe) -> None:
    assert probe.get("/ldfa_node", "budget_ms")["budget_ms"].type == ParameterType.PARAMETER_DOUBLE  # given as 50
    assert probe.get("/ldfa_node", "budget_ms")["budget_ms"].double_value == 50.0
    [ok] = probe.set("/ldfa_node", threshold=0.25)
    assert ok.successful
    [ok] = probe.set("/ldfa_node", budget_ms=80)  # an integer for a double: `ros2 param set ... budget_ms 80`
    assert ok.successful
    got = probe.get("/ldfa_node", "threshold", "budget_ms")
    assert got["threshold"].double_value == 0.25
    assert (got["budget_ms"].type, got["budget_ms"].double_value) == (ParameterType.PARAMETER_DOUBLE, 80.0)
    [rejected] = probe.set("/ldfa_node", threshold=1.5)
    assert not rejected.successful
    [rejected] = probe.set("/ldfa_node", method="smudge")
    assert not rejected.successful and "method must be one of" in rejected.reason
    [rejected] = probe.set("/ldfa_node", budget_ms="soon")
    assert not rejected.successful and "budget_ms must be a number" in rejected.reason
    [rejected] = probe.set("/ldfa_node", cameras=["/x/image"])
    assert not rejected.successful
    assert probe.get("/ldfa_node", "cameras")["cameras"].string_array_value == [RAW_REL, RAW_BE, JPEG]
    reply = probe.call(DescribeParameters, "/ldfa_node/describe_parameters",
                       DescribeParameters.Request(names=["threshold", "cameras", "carry_frames"]))
    threshold, cameras, carry = reply.descriptors
    assert (threshold.floating_point_range[0].from_value, threshold.floating_point_range[0].to_value) == (0.01, 0.99)
    assert cameras.read_only and not threshold.read_only and carry.integer_range[0].to_value == 300
    assert threshold.description == {p.name: p for p in node_config.parameters()}["threshold"].description
    n = len(live.out[RAW_REL])  # frames still flow, anonymized, after the changes
    wait_until(lambda: len(live.out[RAW_REL]) > n + 2, 30, "outputs after parameter changes")
    check_anonymized(live.out[RAW_REL][-1], live.raw[RAW_REL])


def test_diagnostics_per_camera_with_drops_and_dds_losses(live) -> None:
    wait_until(lambda: len(live.diagnostics) >= 2, 30, "/diagnostics")
    latest = statuses(live.diagnostics)
    for camera in (RAW_REL, RAW_BE, JPEG):
        status = latest[f"/ldfa_node: {camera}"]
        assert status.hardware_id == f"/ldfa_node: {camera}"
        v = values(status)
        assert {"drops", "dds_lost", "drops_total", "dds_lost_total", "latency_p50_ms"} <= set(v)
        assert int(v["frames_total"]) > 0
    assert latest["/ldfa_node: worker"].hardware_id == "/ldfa_node"
    assert latest["/ldfa_node: worker"].level == b"\x00"


def test_repeated_sigint_while_frames_flow_exits_0_and_the_bag_reads_back(live) -> None:
    """Ctrl-C twice (terminal and a non-interactive `ros2 launch`), or held down: SIGINT every 20 ms until
    the node has gone, so signals land in every phase of the shutdown, interpreter finalization too (once
    killed it with -2); the worker is mid-frame at the first."""
    n = len(live.out[RAW_REL])
    wait_until(lambda: len(live.out[RAW_REL]) > n, 30, "a new output")
    sent, end = 0, time.monotonic() + 30
    while live.node.running() and time.monotonic() < end:
        live.node.signal(signal.SIGINT)
        sent += 1
        time.sleep(0.02)
    assert sent >= 2
    assert live.node.wait(30) == 0, live.node.output
    assert "Traceback" not in live.node.output and "RCLError" not in live.node.output, live.node.output
    check_record(live)


def check_record(live: Any) -> None:
    """The bag holds only anonymized topics; rosbags and rclpy's own deserialization agree on it."""
    from rosbags.highlevel import AnyReader

    images = {f"{RAW_REL}/anonymized", f"{RAW_BE}/anonymized", "/t/jpeg/image_raw/anonymized/compressed"}
    detections = {f"{RAW_REL}/faces", f"{RAW_BE}/faces", "/t/jpeg/image_raw/faces"} if VISION else set()
    counts: dict[str, int] = {}
    with AnyReader([live.bag], default_typestore=typestore()) as reader:
        assert {c.topic for c in reader.connections} == images | detections
        for connection, _, data in reader.messages():
            counts[connection.topic] = counts.get(connection.topic, 0) + 1
            ours = reader.deserialize(data, connection.msgtype)
            if connection.msgtype == "vision_msgs/msg/Detection2DArray":
                theirs = deserialize_message(data, VISION.Detection2DArray)
                assert theirs.detections[0].results[0].hypothesis.class_id == "face"
                assert len(ours.detections) == len(theirs.detections)
                continue
            theirs = deserialize_message(data, CompressedImage if "compressed" in connection.topic else Image)
            camera = next(c for c in live.raw if connection.topic.startswith(c.removesuffix("/compressed")))
            check_anonymized(theirs, live.raw[camera])
            assert bytes(ours.data) == bytes(theirs.data) and ours.header.frame_id == theirs.header.frame_id
    assert set(counts) == images | detections and min(counts.values()) >= 3


# --- separate node processes: signals at each stage, start-up mistakes ------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stage", ["warm-up", "idle"])
def test_signal_exits_0_without_traceback(ros_domain, sig, stage) -> None:
    node = RosProcess(node_command("-r", f"__ns:=/sig_{stage.replace('-', '_')}_{sig.name}",
                                   "-p", "cameras:=[/sig/image_raw]"), ros_domain)
    try:
        node.wait_for_line("warming up" if stage == "warm-up" else "anonymizing", START_S)
        node.signal(sig)
        assert node.wait(30) == 0, node.output
    finally:
        node.stop()
    assert "Traceback" not in node.output, node.output
    assert ("anonymizing" in node.output) is (stage == "idle"), "the signal came at another stage"


def test_sigterm_while_the_worker_is_busy_exits_0(probe, ros_domain) -> None:
    """Two-scale, mirrored detection of 720p frames at 15 Hz: the worker never catches up (drops > 0)."""
    topic = "/busy/image_raw"
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
    out = probe.subscribe(Image, f"{topic}/anonymized")
    node = RosProcess(node_command("-r", "__ns:=/busy", "-p", f"cameras:=[{topic}]", "-p", "scales:=[1.0,2.0]",
                                   "-p", "flip:=true", "-p", "diagnostics_period:=0.5"), ros_domain)
    camera = None
    try:
        node.wait_for_line("anonymizing", START_S)
        camera = RosProcess([*CAMERA, f"{topic}:raw:reliable", "--rate", "15", "--size", "1280x720"], ros_domain)

        def busy() -> bool:
            status = statuses(diagnostics).get(f"/busy/ldfa_node: {topic}")
            return bool(out) and status is not None and int(values(status)["drops_total"]) > 0

        wait_until(busy, 90, "a saturated worker")
        node.signal(signal.SIGTERM)
        assert node.wait(30) == 0, node.output
    finally:
        node.stop()
        if camera is not None:
            camera.signal(signal.SIGINT)
            camera.wait()
    assert "Traceback" not in node.output, node.output
    scale = np.array([1280 / 512, 720 / 512] * 2)  # the photo stretched to 720p
    check_anonymized(out[-1], message("raw", picture((1280, 720)), "busy"), ASTRONAUT_FACE * scale)


@pytest.mark.parametrize(("param", "expected"), [
    ("cameras:=[]", "parameter cameras has no value"),
    ("budget_ms:=soon", "budget_ms must be a number, got 'soon'"),
    ("method:=smudge", "method must be one of"),
    ("carry_frames:=1.5", "parameter carry_frames: "),
    ("cameras:=[/a/image,/a/image]", "more than once"),
    ("frame_sizes:=[1080p]", "frame_sizes: '1080p' is not WIDTHxHEIGHT"),
])
def test_startup_mistakes_are_one_line_errors(ros_domain, param, expected) -> None:
    """Through the console script (it once dropped the status: exit 0) and `python -m` alike."""
    command = node_script if param.startswith("cameras") else node_command
    node = RosProcess(command("-r", "__ns:=/mistake", "-p", param), ros_domain)
    try:
        assert node.wait(60) == 2, node.output
    finally:
        node.stop()
    [line] = [line for line in node.lines if not line.startswith("[INFO]")]
    assert line.startswith("ldfa_node: error: ") and expected in line, node.output


def test_existing_record_path_is_refused_and_left_alone(ros_domain, tmp_path) -> None:
    bag = tmp_path / "drive"
    bag.mkdir()
    (bag / "keep.txt").write_text("mine")
    node = RosProcess(node_command("-r", "__ns:=/rec", "-p", "cameras:=[/rec/image_raw]", "-p",
                                   f"record_path:={bag}"), ros_domain)
    try:
        assert node.wait(START_S) == 2, node.output
    finally:
        node.stop()
    assert "already exists" in node.output and "Traceback" not in node.output
    assert [p.name for p in bag.iterdir()] == ["keep.txt"] and (bag / "keep.txt").read_text() == "mine"


# --- in-process: the real rclpy node with a pipeline the test controls -----------------------------------
@pytest.fixture
def make(probe):
    """Build LdfaNode in the probe's context and executor; destroyed afterwards."""
    nodes: list[Any] = []

    def build(cameras=("/cam0/image_raw",), detector: Any = None, namespace: str = "/inproc",
              cli_args: list[str] | None = None, factory: Callable | None = None, **params: Any) -> Any:
        overrides = [Parameter("cameras", value=list(cameras))] + [Parameter(k, value=v) for k, v in params.items()]
        node = ldfa_node.LdfaNode(factory or (lambda s, sizes: Pipeline(s, detector or FaceDetector())),
                                  context=probe.context, namespace=namespace, parameter_overrides=overrides,
                                  cli_args=cli_args)
        nodes.append(node)
        probe.executor.add_node(node)
        return node

    yield build
    for node in nodes:
        probe.executor.remove_node(node)
        node.destroy_node()


def publish_when_matched(probe: Probe, topic: str, msgs: list[Any], subscribers: int = 1) -> None:
    pub = probe.node.create_publisher(type(msgs[0]), topic, 10)
    wait_until(lambda: pub.get_subscription_count() >= subscribers, 20, f"{subscribers} subscriber(s) of {topic}")
    for msg in msgs:
        msg.header.stamp = probe.node.get_clock().now().to_msg()
        pub.publish(msg)
        time.sleep(0.05)


def test_parameters_are_declared_from_node_config(make) -> None:
    node = make()
    for spec in node_config.parameters():
        desc = node.describe_parameter(spec.name)
        assert desc.description == spec.description and desc.read_only is (not spec.runtime), spec.name
        expected = ["/cam0/image_raw"] if spec.name == "cameras" else spec.default
        assert ldfa_node.plain(node.get_parameter(spec.name).value) == expected, spec.name
    assert "ldfa" in node.describe_parameter("method").additional_constraints
    published = {p.topic_name for p in node.publishers}  # a generator in real rclpy
    assert published >= {"/cam0/image_raw/anonymized", "/diagnostics", "/parameter_events"}


def test_two_instances_in_namespaces_remapped_report_distinct_diagnostics(make, probe) -> None:
    remap = ["--ros-args", "-r", "image:=/front/image_raw", "-r", "image/anonymized:=anonymized"]
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
    outs = {ns: probe.subscribe(Image, f"{ns}/anonymized") for ns in ("/car1", "/car2")}
    for ns in outs:
        make(["image"], namespace=ns, cli_args=remap, diagnostics_period=0.2)
    raw = message("raw", picture((512, 512)), "front")
    publish_when_matched(probe, "/front/image_raw", [raw] * 3, subscribers=2)
    wait_until(lambda: all(outs.values()), 30, "outputs of both instances")
    for msgs in outs.values():
        check_anonymized(msgs[0], raw)
    wait_until(lambda: {"/car1/ldfa_node: /front/image_raw", "/car2/ldfa_node: /front/image_raw"}
               <= set(statuses(diagnostics)), 30, "diagnostics of both")
    latest = statuses(diagnostics)
    assert latest["/car1/ldfa_node: worker"].hardware_id == "/car1/ldfa_node"
    assert latest["/car2/ldfa_node: worker"].hardware_id == "/car2/ldfa_node"


@pytest.mark.parametrize("on_error", ["blur", "drop"])
def test_faults_publish_the_whole_frame_blurred_or_nothing(make, probe, on_error) -> None:
    detector = FaceDetector()
    cams = [f"/fault_{on_error}/ok/image_raw", f"/fault_{on_error}/bad/image_raw"]
    node = make(cams, detector=detector, on_error=on_error)
    detector.fail = True  # after the warm-up
    outs = [probe.subscribe(Image, f"{c}/anonymized") for c in cams]
    raw = message("raw", picture((512, 512)), "ok")
    bad = message("raw", picture((512, 512)), "bad")
    bad.encoding = "no_such_encoding"
    publish_when_matched(probe, cams[0], [raw])
    publish_when_matched(probe, cams[1], [bad])
    wait_until(lambda: node._live.totals(cams[0]).get("errors") == 1
               and node._live.totals(cams[1]).get("not_published") == 1, 30, "both frames handled")
    time.sleep(0.5)  # anything published would have arrived by now
    assert not outs[1]  # undecodable: no pixels to blur
    if on_error == "drop":
        assert not outs[0]
    else:
        [msg] = outs[0]
        check_anonymized(msg, raw, WHOLE)


def test_frame_sizes_reach_the_detector_and_the_warm_up_takes_the_first(make) -> None:
    """A TensorRT detector builds its engines for `frame_sizes` when the pipeline is built; the warm-up frame
    has the first size, so nothing is built again for it."""
    class Recording(FaceDetector):
        shapes: list[tuple[int, ...]] = []

        def __call__(self, rgb: np.ndarray, **kwargs: Any) -> Any:
            self.shapes.append(rgb.shape)
            return super().__call__(rgb, **kwargs)

    detector, seen = Recording(), []
    make(["/sizes/image_raw"], namespace="/sizes", frame_sizes=["1280x720", "1920x1080", "1280x720"],
         factory=lambda settings, sizes: seen.append(sizes) or Pipeline(settings, detector))
    assert seen == [[(720, 1280), (1080, 1920)]]
    assert detector.shapes == [(720, 1280, 3)]


def test_failed_warm_up_stops_start_up(make) -> None:
    with pytest.raises(RuntimeError, match="warm-up"):
        make(detector=FaceDetector(fail=True), namespace="/warm")


def test_detections_are_disabled_without_vision_msgs(make, monkeypatch) -> None:
    monkeypatch.setattr(ldfa_node, "vision_msgs", lambda: None)
    node = make(["/novision/image_raw"], publish_detections=True, namespace="/novision")
    topics = {p.topic_name for p in node.publishers}
    assert "/novision/image_raw/anonymized" in topics and "/novision/image_raw/faces" not in topics


def test_messages_lost_in_dds_are_counted_on_diagnostics(make, probe, ros_domain) -> None:
    """1080p raw frames at 30 Hz on a best-effort depth-1 subscription: DDS loses some, the node says so."""
    topic = "/lossy/image_raw"
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
    make([topic], namespace="/lossy", diagnostics_period=0.5)
    camera = RosProcess([*CAMERA, f"{topic}:raw:best_effort", "--rate", "30", "--size", "1920x1080"], ros_domain)
    try:
        def lost() -> int:
            status = statuses(diagnostics).get(f"/lossy/ldfa_node: {topic}")
            return int(values(status)["dds_lost_total"]) if status is not None else 0

        wait_until(lambda: lost() > 0, 60, "a lost message counted")
    finally:
        camera.signal(signal.SIGINT)
        camera.wait()
    status = statuses(diagnostics)[f"/lossy/ldfa_node: {topic}"]
    assert status.level in (b"\x00", b"\x01")  # WARN while losses are in the window; never STALE with drops 0


def test_node_defaults_to_the_realtime_preset_and_opts_in_to_recall(make) -> None:
    live = make(namespace="/preset_default")._live.pipeline.settings
    assert (live.preset, live.scales, live.flip) == ("realtime", (1.0,), False)
    recall = make(namespace="/preset_recall", preset="recall")._live.pipeline.settings
    assert (recall.threshold, recall.scales, recall.flip) == (0.22, (1.0, 2.0), True)
    tuned = make(namespace="/preset_tuned", preset="recall", threshold=0.4)._live.pipeline.settings
    assert (tuned.threshold, tuned.scales) == (0.4, (1.0, 2.0))
