"""Stand-in of rclpy.node.Node: the part of its API that ldfa_ros.node uses, with rclpy's checks."""
from __future__ import annotations

import logging
from typing import Any, Callable

from builtin_interfaces.msg import Time as TimeMsg
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import (InvalidParameterTypeException, InvalidParameterValueException,
                              ParameterAlreadyDeclaredException, ParameterNotDeclaredException)
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from standin import BUS


class Time:
    def __init__(self, *, nanoseconds: int = 0) -> None:
        self.nanoseconds = nanoseconds

    def to_msg(self) -> TimeMsg:
        return TimeMsg(sec=self.nanoseconds // 10**9, nanosec=self.nanoseconds % 10**9)


class Clock:
    def now(self) -> Time:
        return Time(nanoseconds=BUS.clock())


class Subscription:
    def __init__(self, msg_type: Any, topic: str, callback: Callable[[Any], None], qos_profile: QoSProfile) -> None:
        self.msg_type, self.topic, self.callback, self.qos_profile = msg_type, topic, callback, qos_profile

    @property
    def topic_name(self) -> str:
        return self.topic


class Timer:
    def __init__(self, period: float, callback: Callable[[], None]) -> None:
        assert period > 0, "timer period must be positive"
        self.timer_period_ns, self.callback, self.cancelled = int(period * 1e9), callback, False

    def cancel(self) -> None:
        self.cancelled = True


class _Logger:
    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(f"standin.{name}")

    def debug(self, message: str) -> None:
        self._log.debug(message)

    def info(self, message: str) -> None:
        self._log.info(message)

    def warning(self, message: str) -> None:
        self._log.warning(message)

    warn = warning

    def error(self, message: str) -> None:
        self._log.error(message)


def _in_range(value: Any, desc: ParameterDescriptor) -> bool:
    for ranges in (desc.floating_point_range, desc.integer_range):
        for r in ranges:
            if not r.from_value - 1e-6 <= value <= r.to_value + 1e-6:
                return False
    return True


_QOS_VALUES = {"history": {"keep_last": HistoryPolicy.KEEP_LAST, "keep_all": HistoryPolicy.KEEP_ALL},
               "reliability": {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}}


class Node:
    def __init__(self, node_name: str, *, namespace: str | None = None, cli_args: list[str] | None = None,
                 parameter_overrides: list[Parameter] | None = None, **_: Any) -> None:
        assert BUS.initialized, "rclpy.init must be called before creating a node"
        self._name, self._namespace = node_name, namespace or "/"
        self._overrides = {p.name: p for p in parameter_overrides or []}
        self._remaps: dict[str, str] = {}
        args = list(cli_args or [])
        for i, arg in enumerate(args):
            if arg in ("-r", "--remap") and ":=" in args[i + 1]:
                src, dst = args[i + 1].split(":=", 1)
                self._remaps[self._expand(src)] = self._expand(dst)
        self._parameters: dict[str, Parameter] = {}
        self._descriptors: dict[str, ParameterDescriptor] = {}
        self._callbacks: list[Callable[[list[Parameter]], SetParametersResult]] = []
        self.publishers: list[Publisher] = []
        self.subscriptions: list[Subscription] = []
        self.destroyed = False
        BUS.nodes.append(self)

    def get_name(self) -> str:
        return self._name

    def get_namespace(self) -> str:
        return self._namespace

    def get_clock(self) -> Clock:
        return Clock()

    def get_logger(self) -> _Logger:
        return _Logger(self._name)

    # --- parameters ---------------------------------------------------------------------------
    def declare_parameter(self, name: str, value: Any = None, descriptor: ParameterDescriptor | None = None,
                          ignore_override: bool = False) -> Parameter:
        if name in self._parameters:
            raise ParameterAlreadyDeclaredException(name)
        desc = descriptor or ParameterDescriptor()
        desc.type = Parameter.Type.from_parameter_value(value).value
        param = Parameter(name, value=value)
        if not ignore_override and name in self._overrides:
            param = self._overrides[name]
        if param.type_.value != desc.type:
            raise InvalidParameterTypeException(
                f"Trying to set parameter '{name}' to '{param.value}' of type '{param.type_.name}', "
                f"expecting type '{Parameter.Type(desc.type).name}'")
        if not _in_range(param.value, desc):
            raise InvalidParameterValueException(f"{name}: {param.value} is out of range")
        for callback in self._callbacks:
            result = callback([param])
            if not result.successful:
                raise InvalidParameterValueException(f"{name}: {result.reason}")
        self._parameters[name], self._descriptors[name] = param, desc
        return param

    def get_parameter(self, name: str) -> Parameter:
        if name not in self._parameters:
            raise ParameterNotDeclaredException(name)
        return self._parameters[name]

    def describe_parameter(self, name: str) -> ParameterDescriptor:
        if name not in self._descriptors:
            raise ParameterNotDeclaredException(name)
        return self._descriptors[name]

    def add_on_set_parameters_callback(self, callback: Callable[[list[Parameter]], SetParametersResult]) -> None:
        self._callbacks.insert(0, callback)

    def set_parameters(self, parameter_list: list[Parameter]) -> list[SetParametersResult]:
        results = []
        for param in parameter_list:
            if param.name not in self._parameters:
                raise ParameterNotDeclaredException(param.name)
            results.append(self._set_one(param))
        return results

    def _set_one(self, param: Parameter) -> SetParametersResult:
        desc = self._descriptors[param.name]
        if desc.read_only:
            return SetParametersResult(successful=False, reason="Trying to set a read-only parameter: " + param.name)
        if param.type_.value != desc.type:
            return SetParametersResult(successful=False, reason=f"Wrong parameter type, expected "
                                       f"'{Parameter.Type(desc.type).name}' got '{param.type_.name}'")
        if not _in_range(param.value, desc):
            return SetParametersResult(successful=False, reason="Parameter value is out of range")
        for callback in self._callbacks:
            result = callback([param])
            assert isinstance(result, SetParametersResult), "a parameter callback must return SetParametersResult"
            if not result.successful:
                return result
        self._parameters[param.name] = param
        return SetParametersResult(successful=True)

    # --- topics -------------------------------------------------------------------------------
    def _expand(self, topic: str) -> str:
        if topic.startswith("/"):
            return topic
        if topic.startswith("~/"):
            return f"{self._namespace.rstrip('/')}/{self._name}/{topic[2:]}"
        return f"{self._namespace.rstrip('/')}/{topic}"

    def resolve_topic_name(self, topic: str, *, only_expand: bool = False) -> str:
        expanded = self._expand(topic)
        return expanded if only_expand else self._remaps.get(expanded, expanded)

    def _qos(self, qos_profile: QoSProfile | int, topic: str, entity: str, options: Any) -> QoSProfile:
        """The profile after `qos_overrides.<topic>.<entity>.<policy>` overrides, which rclpy
        declares as read-only parameters when overriding options are given."""
        qos = QoSProfile(depth=qos_profile) if isinstance(qos_profile, int) else qos_profile.copy()
        for policy in (options.policy_kinds if options is not None else ()):
            name = f"qos_overrides.{topic}.{entity}.{policy}"
            current = getattr(qos, policy)
            default = current if policy == "depth" else {v: k for k, v in _QOS_VALUES[policy].items()}[current]
            value = self.declare_parameter(name, default, ParameterDescriptor(read_only=True)).value
            setattr(qos, policy, value if policy == "depth" else _QOS_VALUES[policy][value])
        return qos

    def create_publisher(self, msg_type: Any, topic: str, qos_profile: QoSProfile | int, *,
                         qos_overriding_options: Any = None, **_: Any) -> Publisher:
        name = self.resolve_topic_name(topic)
        pub = Publisher(msg_type, name, self._qos(qos_profile, name, "publisher", qos_overriding_options))
        self.publishers.append(pub)
        return pub

    def create_subscription(self, msg_type: Any, topic: str, callback: Callable[[Any], None],
                            qos_profile: QoSProfile | int, *, qos_overriding_options: Any = None,
                            **_: Any) -> Subscription:
        name = self.resolve_topic_name(topic)
        sub = Subscription(msg_type, name, callback,
                           self._qos(qos_profile, name, "subscription", qos_overriding_options))
        self.subscriptions.append(sub)
        with BUS.lock:
            BUS.subscriptions[name].append(sub)
        return sub

    def create_timer(self, timer_period_sec: float, callback: Callable[[], None], **_: Any) -> Timer:
        timer = Timer(timer_period_sec, callback)
        BUS.timers.append(timer)
        return timer

    def destroy_node(self) -> None:
        for sub in self.subscriptions:
            BUS.subscriptions[sub.topic].remove(sub)
        self.destroyed = True
