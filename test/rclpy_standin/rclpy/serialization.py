"""Stand-in of rclpy.serialization: real CDR bytes, made by rosbags from the stand-in message."""
from __future__ import annotations

import array
from typing import Any

import numpy as np

from standin import Message


def _typestore() -> Any:
    from ldfa_ros.record import typestore

    return typestore()


_STORE: list[Any] = []


def to_rosbags(msg: Any, store: Any) -> Any:
    """The rosbags dataclass holding the same values as a stand-in message."""
    values = {}
    for name in msg._fields:
        value = getattr(msg, name)
        if isinstance(value, Message):
            value = to_rosbags(value, store)
        elif isinstance(value, list):
            value = [to_rosbags(v, store) for v in value]
        elif isinstance(value, array.array):
            value = np.frombuffer(value, np.uint8 if value.typecode == "B" else np.float64).copy()
        values[name] = value
    return store.types[msg._type](**values)


def serialize_message(message: Any) -> bytes:
    if not _STORE:
        _STORE.append(_typestore())
    store = _STORE[0]
    return bytes(store.serialize_cdr(to_rosbags(message, store), message._type))
