"""`ldfa_node`: the rclpy adapter of the live anonymizer, and nothing more.

Declares the parameters of `node_config`, loads and warms up the pipeline, then opens one
best-effort depth-1 subscription per camera and publishes reliably (both overridable per topic
through `qos_overrides.<topic>.<publisher|subscription>.<policy>` parameters; each topic gets its
own QoSProfile, because rclpy applies overrides to the profile object in place). Messages the
middleware reports lost before they reached the node are counted per camera. All frame logic
(latest-frame slots, the worker, fail-closed output, statistics) is in `live.py`.
"""
from __future__ import annotations

import importlib
import signal
import sys
from array import array
from pathlib import Path
from typing import Any, Callable, Sequence

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image

from . import node_config
from .samples import street_frame
from .live import CameraStatus, LiveAnonymizer, Output, PublisherClosed
from .pipeline import FaceRecord, Pipeline, build_pipeline
from .record import Recorder
from .settings import Settings, from_parameters

try:  # Iron and later; Humble has the same classes in qos_event (deprecated since)
    from rclpy.event_handler import QoSMessageLostInfo, SubscriptionEventCallbacks, UnsupportedEventTypeError
except ImportError:  # pragma: no cover - Humble
    from rclpy.qos_event import QoSMessageLostInfo, SubscriptionEventCallbacks, UnsupportedEventTypeError

MESSAGE_TYPES: dict[type, str] = {
    Image: "sensor_msgs/msg/Image",
    CompressedImage: "sensor_msgs/msg/CompressedImage",
}
DETECTIONS_TYPE = "vision_msgs/msg/Detection2DArray"
CONFIG_ERROR_EXIT = 2


class ConfigError(ValueError):
    """A start-up parameter the node cannot run with; the text names it and what is wrong."""


def subscribe_qos() -> QoSProfile:
    """Camera QoS: best-effort depth 1 matches every publisher. A new object per call (see module doc)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


def publish_qos() -> QoSProfile:
    """Output QoS: reliable depth 2. A new object per call (see module doc)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE)


def vision_msgs() -> Any | None:
    """vision_msgs.msg, or None where it is not installed (it has no PyPI wheel)."""
    try:
        return importlib.import_module("vision_msgs.msg")
    except ImportError:
        return None


_LEVELS = {0: DiagnosticStatus.OK, 1: DiagnosticStatus.WARN, 2: DiagnosticStatus.ERROR, 3: DiagnosticStatus.STALE}


def is_real(spec: node_config.ParameterSpec) -> bool:
    """A double or double array: typed dynamically so `-p budget_ms:=50` (an integer) is accepted."""
    default = spec.default[0] if isinstance(spec.default, list) and spec.default else spec.default
    return isinstance(default, float)


def descriptor(spec: node_config.ParameterSpec) -> ParameterDescriptor:
    """The ROS descriptor of a parameter: description, range, choices, read-only unless runtime."""
    desc = ParameterDescriptor(name=spec.name, description=spec.description, read_only=not spec.runtime,
                               dynamic_typing=is_real(spec))
    if spec.choices:
        desc.additional_constraints = f"one of: {', '.join(spec.choices)}"
    if spec.low is not None and spec.high is not None:
        if spec.type == "int":
            desc.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)]
        elif spec.type == "float":
            desc.floating_point_range = [FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high),
                                                            step=0.0)]
        else:
            desc.additional_constraints = f"each within [{spec.low:g}, {spec.high:g}]"
    return desc


class LdfaNode(Node):
    """Anonymizes faces in every configured camera topic and republishes the frames.

    ConfigError when a start-up parameter is wrong; the caller (main) reports it in one line."""

    def __init__(self, pipeline_factory: Callable[[Settings, list[tuple[int, int]]], Pipeline] = build_pipeline,
                 **node_args: Any) -> None:
        super().__init__("ldfa_node", **node_args)
        specs = node_config.parameters()
        values = self._declare(specs)
        self._runtime = {s.name for s in specs if s.runtime}
        self._owned = {s.name: s for s in specs}
        node_only = {s.name for s in node_config.NODE_PARAMETERS}
        vision = vision_msgs()
        if values["publish_detections"] and vision is None:
            self.get_logger().warning("publish_detections is set but vision_msgs is not installed: "
                                      "no detections topics")
        self._vision = vision if values["publish_detections"] else None
        try:
            settings = from_parameters({k: v for k, v in values.items() if k not in node_only})
            for name in ("budget_reference", "diagnostics_period"):
                node_config.check_node_value(name, values[name])
            cameras = node_config.camera_topics(values["cameras"], values["output_suffix"],
                                                values["detections_suffix"])
            self._frame_sizes = node_config.frame_sizes(values["frame_sizes"])
        except ValueError as exc:  # SettingsError too
            raise ConfigError(str(exc)) from exc
        # cameras are known by their resolved input topic (after namespace and remapping) everywhere
        names = {cam.input: self.resolve_topic_name(cam.input) for cam in cameras}
        self._recorder: Recorder | None = None
        pipeline = pipeline_factory(settings, self._frame_sizes)
        self._live = LiveAnonymizer(pipeline, list(names.values()), self._publish, self._now,
                                    values["budget_reference"])
        try:
            self._set_up(cameras, names, values)
        except BaseException:  # a signal or a bad record_path: leave no worker or open bag behind
            self._close()
            raise

    def _set_up(self, cameras: list[node_config.CameraTopics], names: dict[str, str], values: dict[str, Any]) -> None:
        """Warm up, then create the outputs, the recorder, diagnostics, and last the subscriptions."""
        settings = self._live.pipeline.settings
        self.get_logger().info(f"warming up (method {settings.method}, device {settings.device})")
        self._live.warm_up(street_frame(*self._frame_sizes[0]))
        if not self.context.ok():  # a signal during warm-up: nothing more to set up
            raise ExternalShutdownException()

        qos_options = QoSOverridingOptions.with_default_policies()
        self._images: dict[str, Publisher] = {}
        self._detections: dict[str, Publisher] = {}
        published: dict[str, str] = {}  # resolved topic -> message type, for the recorder
        for cam in cameras:
            image_type = CompressedImage if cam.compressed else Image
            pub = self._images[names[cam.input]] = self.create_publisher(
                image_type, cam.output, publish_qos(), qos_overriding_options=qos_options)
            published[pub.topic_name] = MESSAGE_TYPES[image_type]
            if self._vision is not None:
                pub = self._detections[names[cam.input]] = self.create_publisher(
                    self._vision.Detection2DArray, cam.detections, publish_qos(),
                    qos_overriding_options=qos_options)
                published[pub.topic_name] = DETECTIONS_TYPE
        try:
            self._recorder = self._open_recorder(values["record_path"], published)
        except (OSError, ValueError) as exc:  # FileExistsError: a user's file is never overwritten
            raise ConfigError(str(exc)) from exc
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(float(values["diagnostics_period"]), self._report)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        pre_set = getattr(self, "add_pre_set_parameters_callback", None)  # Iron and later
        if pre_set is not None:
            pre_set(self._as_declared_types)
        self._live.start()
        for cam in cameras:  # last: no frame is taken before the models are warm and the outputs exist
            self._subscribe(CompressedImage if cam.compressed else Image, cam.input, names[cam.input], qos_options)
        self.get_logger().info("anonymizing " + ", ".join(
            f"{name} -> {self._images[name].topic_name}" for name in names.values()))

    def _declare(self, specs: list[node_config.ParameterSpec]) -> dict[str, Any]:
        """Declare every parameter; their start-up values as plain Python (lists, floats for doubles)."""
        values: dict[str, Any] = {}
        for spec in specs:
            try:
                value = self.declare_parameter(spec.name, spec.default, descriptor(spec)).value
            except ParameterException as exc:  # a value of the wrong type or out of range
                text = str(exc).removesuffix(f": {spec.name}")  # rclpy appends the name
                raise ConfigError(f"parameter {spec.name}: {text}") from exc
            if value is None:  # `-p cameras:=[]`: an empty list has no type in ROS 2
                raise ConfigError(f"parameter {spec.name} has no value (an empty list?); default: {spec.default!r}")
            values[spec.name] = plain(value)
            real = as_real(values[spec.name]) if is_real(spec) else None
            if real is not None:  # store an integer given for a double as the double it means
                values[spec.name] = real
                self.set_parameters([Parameter(spec.name, value=real)])
        return values

    def _subscribe(self, msg_type: Any, topic: str, camera: str, qos_options: QoSOverridingOptions) -> None:
        def lost(info: QoSMessageLostInfo) -> None:
            self._live.lost(camera, info.total_count_change)

        try:
            self.create_subscription(msg_type, topic, self._on_frame(camera), subscribe_qos(),
                                     qos_overriding_options=qos_options,
                                     event_callbacks=SubscriptionEventCallbacks(message_lost=lost))
        except UnsupportedEventTypeError:  # an rmw that cannot report lost messages
            self.get_logger().warning(f"{camera}: this middleware does not report lost messages")
            self.create_subscription(msg_type, topic, self._on_frame(camera), subscribe_qos(),
                                     qos_overriding_options=qos_options)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_frame(self, camera: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            self._live.submit(camera, msg)
        return callback

    def _open_recorder(self, path: str, topics: dict[str, str]) -> Recorder | None:
        if not path:
            return None
        self.get_logger().info(f"recording {', '.join(topics)} to {path}")
        return Recorder(Path(path), topics, serialize_message)

    def _publish(self, out: Output) -> None:
        if not self.context.ok():
            raise PublisherClosed("the node is shutting down")
        stamp = self.get_clock().now().nanoseconds
        sent = []
        detections = self._detections.get(out.camera)
        if detections is not None:
            msg = detection_array(self._vision, out.header, out.faces)
            detections.publish(msg)
            sent.append((detections, msg))
        if out.msg is not None:  # last: once the image is out, nothing here can fail and miscount it
            self._images[out.camera].publish(out.msg)
            sent.append((self._images[out.camera], out.msg))
        if self._recorder is not None:
            for pub, msg in sent:
                self._recorder.write(pub.topic_name, stamp, msg)

    def _report(self) -> None:
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [self._camera_status(s) for s in self._live.statuses()] + [self._node_status()]
        self._diagnostics.publish(array)

    def _camera_status(self, status: CameraStatus) -> DiagnosticStatus:
        """Named and identified by the node's fully qualified name: two instances never collide."""
        node = self.get_fully_qualified_name()
        return DiagnosticStatus(level=_LEVELS[status.level], name=f"{node}: {status.camera}",
                                message=status.message, hardware_id=f"{node}: {status.camera}",
                                values=[KeyValue(key=k, value=v) for k, v in status.values.items()])

    def _node_status(self) -> DiagnosticStatus:
        live = self._live
        values = {"method": live.pipeline.settings.method, "worker_errors": str(live.worker_errors),
                  **{k: str(v) for k, v in sorted(live.pipeline.counters.items())}}
        if self._recorder is not None:
            values.update(recorded=str(self._recorder.written), record_dropped=str(self._recorder.dropped),
                          record_errors=str(self._recorder.errors))
        ok = live.alive and (self._recorder is None or not self._recorder.dropped + self._recorder.errors)
        message = "ok" if ok else ("worker stopped" if not live.alive else "recording lost messages")
        node = self.get_fully_qualified_name()
        return DiagnosticStatus(level=DiagnosticStatus.OK if ok else DiagnosticStatus.ERROR,
                                name=f"{node}: worker", hardware_id=node, message=message,
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])

    def _as_declared_types(self, params: list[Parameter]) -> list[Parameter]:
        """Integers given for this node's doubles become doubles before they are stored (`ros2 param set`
        parses 50 as an integer); anything else is left to `_on_set_parameters` to judge."""
        out = []
        for param in params:
            spec = self._owned.get(param.name)
            real = as_real(plain(param.value)) if spec is not None and is_real(spec) else None
            out.append(param if real is None else Parameter(param.name, value=real))
        return out

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validate runtime changes of this node's parameters; others (use_sim_time, ...) pass through."""
        changes = {p.name: plain(p.value) for p in params if p.name in self._owned}
        fixed = sorted(set(changes) - self._runtime)
        if fixed:
            return SetParametersResult(successful=False, reason=f"{', '.join(fixed)}: read-only, set at startup")
        try:
            self._live.configure(**changes)
        except ValueError as exc:  # SettingsError too
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _close(self) -> None:
        self._live.stop()  # waits for the tick in progress: see LiveAnonymizer.stop
        if self._recorder is not None:
            self._recorder.close()

    def destroy_node(self) -> None:
        """Stop the worker and close the recording before the node goes."""
        self._close()
        super().destroy_node()


def plain(value: Any) -> Any:
    """A parameter value as plain Python: rclpy gives array parameters as array.array."""
    return list(value) if isinstance(value, (array, tuple)) else value


def as_real(value: Any) -> float | list[float] | None:
    """An integer, or a list of integers, as floats; None for anything else (the settings check judges it)."""
    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if whole(value):
        return float(value)
    if isinstance(value, list) and value and all(whole(v) for v in value):
        return [float(v) for v in value]
    return None


def detection_array(vision: Any, header: Any, faces: Sequence[FaceRecord]) -> Any:
    """Faces of one frame as a vision_msgs (module `vision`) Detection2DArray, header copied from the frame."""
    out = vision.Detection2DArray(header=header)
    for face in faces:
        x1, y1, x2, y2 = (float(v) for v in face.box)
        det = vision.Detection2D(header=header, id=str(face.track_id))
        det.bbox.center.position.x, det.bbox.center.position.y = (x1 + x2) / 2, (y1 + y2) / 2
        det.bbox.size_x, det.bbox.size_y = x2 - x1, y2 - y1
        hypothesis = vision.ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = "face", float(face.score)
        det.results = [hypothesis]
        out.detections.append(det)
    return out


class Interrupted(BaseException):
    """SIGINT or SIGTERM during set-up. Not KeyboardInterrupt: one raised while a C extension runs
    Python code makes the interpreter kill itself with SIGINT at exit, after a clean shutdown."""


class _Signals:
    """Python's side of SIGINT and SIGTERM, behind rclpy's handlers (which shut the context down and wake
    the executor, then call this): interrupts the node's set-up (a long warm-up), and is otherwise a no-op,
    so nothing is raised in the middle of shutting down (Ctrl-C in `ros2 launch` sends two signals)."""

    def __init__(self) -> None:
        self.setting_up = True
        self.received = 0

    def __call__(self, signum: int, frame: Any) -> None:
        self.received += 1
        if self.setting_up and self.received == 1:
            raise Interrupted(signal.Signals(signum).name)


def main(args: list[str] | None = None) -> int:
    """Entry point of `ros2 run ldfa_ros ldfa_node` and `python -m ldfa_ros.node` (Humble and Jazzy).

    SIGINT and SIGTERM end it with status 0 at any time: while idle, during warm-up or while the
    worker is busy. A wrong start-up parameter is one line on stderr and status 2."""
    signals = _Signals()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signals)
    rclpy.init(args=args)
    node = None
    status = 0
    try:
        node = LdfaNode()
        signals.setting_up = False
        rclpy.spin(node)
    except (Interrupted, KeyboardInterrupt, ExternalShutdownException):
        pass
    except ConfigError as exc:
        print(f"ldfa_node: error: {exc}", file=sys.stderr)
        status = CONFIG_ERROR_EXIT
    except Exception:
        if rclpy.ok():
            raise
        # else the context was shut down by a signal while the node was being set up: a clean stop
    finally:
        signals.setting_up = False
        try:
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
        finally:
            # From here on a signal is ignored: the interpreter's finalization puts back the default action
            # of signals with a Python handler (not of ignored ones), and a second Ctrl-C arriving then
            # would kill the process with -2 after a clean shutdown.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
    return status


if __name__ == "__main__":
    sys.exit(main())
