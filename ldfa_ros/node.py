"""`ldfa_node`: the rclpy adapter of the live anonymizer, and nothing more.

Declares the parameters of `node_config`, loads and warms up the pipeline, then opens one
best-effort depth-1 subscription per camera and publishes reliably (both overridable per topic
through `qos_overrides.<topic>.<publisher|subscription>.<policy>` parameters). All frame logic
(latest-frame slots, the worker, fail-closed output, statistics) is in `live.py`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from . import node_config
from .samples import sample_frames
from .live import CameraStatus, LiveAnonymizer, Output
from .pipeline import FaceRecord, Pipeline, build_pipeline
from .record import Recorder
from .settings import Settings, from_parameters

SUBSCRIBE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
PUBLISH_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE)
MESSAGE_TYPES: dict[type, str] = {
    Image: "sensor_msgs/msg/Image",
    CompressedImage: "sensor_msgs/msg/CompressedImage",
    Detection2DArray: "vision_msgs/msg/Detection2DArray",
}
_LEVELS = {0: DiagnosticStatus.OK, 1: DiagnosticStatus.WARN, 2: DiagnosticStatus.ERROR, 3: DiagnosticStatus.STALE}


def descriptor(spec: node_config.ParameterSpec) -> ParameterDescriptor:
    """The ROS descriptor of a parameter: description, range, choices, read-only unless runtime."""
    desc = ParameterDescriptor(name=spec.name, description=spec.description, read_only=not spec.runtime)
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
    """Anonymizes faces in every configured camera topic and republishes the frames."""

    def __init__(self, pipeline_factory: Callable[[Settings], Pipeline] = build_pipeline, **node_args: Any) -> None:
        super().__init__("ldfa_node", **node_args)
        specs = node_config.parameters()
        for spec in specs:
            self.declare_parameter(spec.name, spec.default, descriptor(spec))
        self._runtime = {s.name for s in specs if s.runtime}
        self._owned = {s.name for s in specs}
        values = {s.name: self.get_parameter(s.name).value for s in specs}
        node_only = {s.name for s in node_config.NODE_PARAMETERS}
        settings = from_parameters({k: v for k, v in values.items() if k not in node_only})
        cameras = node_config.camera_topics(list(values["cameras"]), values["output_suffix"],
                                            values["detections_suffix"])
        # cameras are known by their resolved input topic (after namespace and remapping) everywhere
        names = {cam.input: self.resolve_topic_name(cam.input) for cam in cameras}
        self._live = LiveAnonymizer(pipeline_factory(settings), list(names.values()), self._publish,
                                    self._now, values["budget_reference"])
        self.get_logger().info(f"warming up (method {settings.method}, device {settings.device})")
        self._live.warm_up(sample_frames()["street_1080p.png"])

        qos_options = QoSOverridingOptions.with_default_policies()
        self._images: dict[str, Publisher] = {}
        self._detections: dict[str, Publisher] = {}
        published: dict[str, str] = {}  # resolved topic -> message type, for the recorder
        for cam in cameras:
            image_type = CompressedImage if cam.compressed else Image
            pub = self._images[names[cam.input]] = self.create_publisher(
                image_type, cam.output, PUBLISH_QOS, qos_overriding_options=qos_options)
            published[pub.topic_name] = MESSAGE_TYPES[image_type]
            if values["publish_detections"]:
                pub = self._detections[names[cam.input]] = self.create_publisher(
                    Detection2DArray, cam.detections, PUBLISH_QOS, qos_overriding_options=qos_options)
                published[pub.topic_name] = MESSAGE_TYPES[Detection2DArray]
        self._recorder = self._open_recorder(values["record_path"], published)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(float(values["diagnostics_period"]), self._report)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._live.start()
        for cam in cameras:  # last: no frame is taken before the models are warm and the outputs exist
            self.create_subscription(CompressedImage if cam.compressed else Image, cam.input,
                                     self._on_frame(names[cam.input]), SUBSCRIBE_QOS,
                                     qos_overriding_options=qos_options)
        self.get_logger().info("anonymizing " + ", ".join(
            f"{name} -> {self._images[name].topic_name}" for name in names.values()))

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
        stamp = self.get_clock().now().nanoseconds
        sent = []
        detections = self._detections.get(out.camera)
        if detections is not None:
            msg = detection_array(out.header, out.faces)
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
        return DiagnosticStatus(level=_LEVELS[status.level], name=f"{self.get_name()}: {status.camera}",
                                message=status.message, hardware_id=status.camera,
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
        return DiagnosticStatus(level=DiagnosticStatus.OK if ok else DiagnosticStatus.ERROR,
                                name=f"{self.get_name()}: worker", hardware_id=self.get_name(), message=message,
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validate runtime changes of this node's parameters; others (use_sim_time, ...) pass through."""
        changes = {p.name: p.value for p in params if p.name in self._owned}
        fixed = sorted(set(changes) - self._runtime)
        if fixed:
            return SetParametersResult(successful=False, reason=f"{', '.join(fixed)}: read-only, set at startup")
        try:
            self._live.configure(**changes)
        except ValueError as exc:  # SettingsError too
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def destroy_node(self) -> None:
        """Stop the worker and close the recording before the node goes."""
        self._live.stop()
        if self._recorder is not None:
            self._recorder.close()
        super().destroy_node()


def detection_array(header: Any, faces: Sequence[FaceRecord]) -> Detection2DArray:
    """Faces of one frame as vision_msgs, header copied from the frame."""
    array = Detection2DArray(header=header)
    for face in faces:
        x1, y1, x2, y2 = (float(v) for v in face.box)
        det = Detection2D(header=header, id=str(face.track_id))
        det.bbox.center.position.x, det.bbox.center.position.y = (x1 + x2) / 2, (y1 + y2) / 2
        det.bbox.size_x, det.bbox.size_y = x2 - x1, y2 - y1
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = "face", float(face.score)
        det.results = [hypothesis]
        array.detections.append(det)
    return array


def main(args: list[str] | None = None) -> None:
    """Entry point of `ros2 run ldfa_ros ldfa_node` (Humble and Jazzy)."""
    rclpy.init(args=args)
    node = None
    try:
        node = LdfaNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
