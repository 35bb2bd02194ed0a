"""Test-only helpers of the rclpy stand-in: the message base class and an in-process topic bus.

Not part of any ROS API. Tests use `BUS` to deliver messages to subscriptions, read what was
published, fire timers and decide what `rclpy.spin` does.
"""
from __future__ import annotations

import array
import threading
import time
from collections import defaultdict
from typing import Any, Callable

# Field kinds checked like rclpy's generated setters: a float64 field takes only float, a byte field
# only bytes of length 1, a uint8[] field array.array('B') or a sequence of ints in [0, 255].
_SCALARS: dict[str, tuple[type, ...]] = {"float": (float,), "int": (int,), "str": (str,), "bool": (bool,)}


class Message:
    """Base of the stand-in messages: keyword constructor, checked field assignment."""

    _type = ""
    _fields: dict[str, tuple[str, Callable[[], Any]]] = {}

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(self._fields)
        assert not unknown, f"Invalid arguments passed to constructor: {sorted(unknown)}"
        for name, (_, default) in self._fields.items():
            setattr(self, name, kwargs[name] if name in kwargs else default())

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._fields:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        object.__setattr__(self, name, _checked(type(self).__name__, name, self._fields[name][0], value))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, f) == getattr(other, f) for f in self._fields)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{f}={getattr(self, f)!r}' for f in self._fields)})"


def _checked(owner: str, name: str, kind: Any, value: Any) -> Any:
    what = f"The '{name}' field of {owner}"
    if isinstance(kind, str) and kind in _SCALARS:
        ok = isinstance(value, _SCALARS[kind]) and not (kind != "bool" and isinstance(value, bool))
        assert ok, f"{what} must be of type '{kind}', got {value!r}"
    elif kind == "byte":
        assert isinstance(value, bytes) and len(value) == 1, f"{what} must be bytes of length 1, got {value!r}"
    elif kind == "uint8[]":
        if isinstance(value, array.array):
            assert value.typecode == "B", f"{what} must be array.array('B')"
            return value
        assert isinstance(value, (bytes, bytearray, list, tuple)) and all(
            isinstance(v, int) and 0 <= v < 256 for v in value), f"{what} must be a sequence of uint8"
        return array.array("B", value)
    elif kind == "float[]":
        assert all(isinstance(v, float) for v in value), f"{what} must be a sequence of float"
        return array.array("d", value)
    elif isinstance(kind, list):  # [MessageClass]: a sequence of those messages
        assert all(isinstance(v, kind[0]) for v in value), f"{what} must be a list of {kind[0].__name__}"
        return list(value)
    else:  # a nested message class
        assert isinstance(value, kind), f"{what} must be a {kind.__name__}, got {type(value).__name__}"
    return value


class Bus:
    """Topics of every stand-in node in this process."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.subscriptions: dict[str, list[Any]] = defaultdict(list)
        self.published: dict[str, list[Any]] = defaultdict(list)
        self.timers: list[Any] = []
        self.nodes: list[Any] = []
        self.on_spin: Callable[[Any], None] = lambda node: None
        self.initialized = False
        self.shutdowns = 0
        self.clock: Callable[[], int] = time.time_ns  # the node clock (ns); tests may shift it

    def deliver(self, topic: str, msg: Any) -> int:
        """Call every subscription callback of `topic` with `msg`, as an executor would; how many."""
        subs = list(self.subscriptions.get(topic, []))
        for sub in subs:
            if not isinstance(msg, sub.msg_type):
                raise TypeError(f"{topic} carries {sub.msg_type.__name__}, not {type(msg).__name__}")
            sub.callback(msg)
        return len(subs)

    def fire_timers(self) -> None:
        for timer in list(self.timers):
            if not timer.cancelled:
                timer.callback()


BUS = Bus()
